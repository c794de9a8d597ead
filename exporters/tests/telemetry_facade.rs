//! The one-call facade the broker uses: logs, metric snapshots and audit
//! records reach a shipper on a real socket, the Prometheus endpoint
//! answers, and shutdown returns.

mod common;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use common::{wait_for, Mode, Shipper};
use tracing_subscriber::layer::SubscriberExt;
use wharf_exporters::{AuditEvent, Telemetry, TelemetryConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_facade_wires_every_path() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("shipper.sock");
    let shipper = Shipper::start(&socket, Mode::Ack);
    let mut cfg = TelemetryConfig::new(&socket, dir.path().join("spool"));
    cfg.prometheus_address = "127.0.0.1:0".into();
    cfg.snapshot_period_seconds = 1;
    cfg.log_level = "info,noisy=error".into();
    cfg.aws_region = Some("eu-west-1".into());
    cfg.aws_account_id = Some("123456789012".into());
    let keys = Arc::new(wharf_envelope::LocalKeyProvider::from_key([3; 32]));
    let telemetry = Telemetry::start(cfg.validate().unwrap(), keys, "orders", 2)
        .await
        .unwrap();

    let subscriber = tracing_subscriber::registry().with(telemetry.log_layer());
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(target: "wharf_broker::server", topic = "payments", "topic created");
        tracing::warn!(target: "noisy", "filtered out");
    });
    telemetry.metrics().topic("payments").record_produce(100, 1);
    assert!(telemetry
        .auditor()
        .emit(AuditEvent::new("CreateTopics").client_id("kcat")));

    let addr = telemetry.prometheus_addr().expect("endpoint on");
    let body = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    assert!(body.contains(
        "kafka_server_BrokerTopicMetrics_Count{name=\"BytesInPerSec\",topic=\"payments\"} 100"
    ));
    assert!(body.contains("wharf_telemetry_connected 1"), "{body}");

    wait_for(|| {
        shipper
            .lines()
            .iter()
            .any(|l| l.contains(r#""kind":"metric""#))
    })
    .await;
    telemetry.shutdown(Duration::from_secs(2)).await;
    let lines: Vec<serde_json::Value> = shipper
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds = |k: &str| lines.iter().filter(|l| l["kind"] == k).count();
    assert_eq!(kinds("log"), 1, "one log line, the filtered one absent");
    assert_eq!(kinds("audit"), 1);
    let audit = lines.iter().find(|l| l["kind"] == "audit").unwrap();
    assert_eq!(
        (
            audit["awsRegion"].as_str(),
            audit["recipientAccountId"].as_str()
        ),
        (Some("eu-west-1"), Some("123456789012")),
        "the configured region and account are in every audit record"
    );
    assert!(kinds("metric") > 0);
    let log = lines.iter().find(|l| l["kind"] == "log").unwrap();
    assert_eq!(
        (log["cluster"].as_str(), log["broker"].as_str()),
        (Some("orders"), Some("2"))
    );
}
