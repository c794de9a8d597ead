//! Broker log events reach a shipper on a real socket as JSON records.

mod common;

use std::time::Duration;

use common::{config, wait_for, Mode, Shipper};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;
use wharf_exporters::{log_filter, LogLayer, SocketWriter};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracing_events_arrive_at_the_shipper_as_log_records() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let shipper = Shipper::start(&cfg.socket_path, Mode::Ack);
    let writer = SocketWriter::start(cfg).unwrap();
    let subscriber = tracing_subscriber::registry().with(
        LogLayer::new(writer.clone(), "wharf-local", 1)
            .with_filter(log_filter("info,wharf_broker::noisy=error").unwrap()),
    );
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..100 {
            tracing::info!(target: "wharf_broker::server", request = "Produce", i, "handled");
            tracing::warn!(target: "wharf_broker::noisy", i, "filtered out");
        }
    });
    wait_for(|| writer.stats().acked == 100).await;
    let lines = shipper.lines();
    assert_eq!(lines.len(), 100);
    for (i, l) in lines.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["kind"], "log");
        assert_eq!(v["target"], "wharf_broker::server");
        assert_eq!(v["cluster"], "wharf-local");
        assert_eq!(v["broker"], "1");
        assert_eq!(v["i"], i);
        assert_eq!(v["request"], "Produce");
    }
    writer.shutdown(Duration::from_secs(1));
}
