//! Serves a registry with synthetic broker traffic on the Prometheus
//! endpoint, for tests that scrape it with a real Prometheus
//! (tests/test_dashboards_prometheus.py) before the broker is wired up.
//!
//! Usage: `demo_metrics_endpoint [ADDR]` (default `127.0.0.1:0`); prints
//! `listening on HOST:PORT` once bound, then runs until killed.

use std::sync::Arc;
use std::time::Duration;

use wharf_exporters::socket::WriterCounters;
use wharf_exporters::{http, BrokerGauge, MetricsRegistry};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let registry = MetricsRegistry::new("demo", 1);
    registry.attach_writer(Arc::new(WriterCounters::default()));
    registry.set_gauge(BrokerGauge::ActiveControllerCount, 1);
    registry.set_gauge(BrokerGauge::GlobalTopicCount, 2);
    registry.set_gauge(BrokerGauge::GlobalPartitionCount, 3);
    registry.set_gauge(BrokerGauge::PartitionCount, 3);
    registry.set_gauge(BrokerGauge::LeaderCount, 3);
    registry.set_data_disk("/var/lib/wharf", 100 << 30, 60 << 30);
    let listener = http::bind(addr.parse()?).await?;
    println!("listening on {}", listener.local_addr()?);
    let serve = tokio::spawn(http::serve(
        listener,
        registry.clone(),
        std::future::pending(),
    ));

    // Traffic: produce and fetch on two topics, a consumer group behind.
    let topics = [("payments", 2), ("audit", 1)];
    let listener_metrics = registry.listener("PLAINTEXT");
    listener_metrics.connection_opened();
    let mut offset = 0i64;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        offset += 10;
        for (topic, partitions) in topics {
            let t = registry.topic(topic);
            t.record_produce(10 * 100, 10);
            t.record_fetch(8 * 100, 8);
            for p in 0..partitions {
                let pm = registry.partition(topic, p);
                pm.set_log_size(offset as u64 * 100);
                pm.set_offsets(0, offset);
                registry.set_consumer_lag("billing", topic, p, offset / 5);
            }
        }
        registry.record_request(0, Duration::from_millis(3), false);
        registry.record_request(1, Duration::from_millis(30), false);
        registry.record_request(3, Duration::from_micros(300), offset % 100 == 0);
        // Consumers mostly at the tail: 9 of 10 fetched batches from memory.
        let batches = offset as u64 / 10;
        registry.set_tail_cache(batches * 9, batches, batches / 2, 64 << 20);
        if serve.is_finished() {
            return Ok(());
        }
    }
}
