//! Log, metric and audit records share one writer and reach a shipper on a
//! real socket as NDJSON lines of their kind.

mod common;

use std::time::Duration;

use common::{config, wait_for, Mode, Shipper};
use wharf_exporters::catalog::Level;
use wharf_exporters::registry::snapshot::run_snapshots;
use wharf_exporters::{AuditEvent, Auditor, MetricsRegistry, SocketWriter};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_snapshots_and_audit_records_arrive_as_their_kind() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let shipper = Shipper::start(&cfg.socket_path, Mode::Ack);
    let writer = SocketWriter::start(cfg).unwrap();
    let registry = MetricsRegistry::new("orders", 7);
    registry.attach_writer(writer.counters());
    registry.topic("payments").record_produce(500, 5);

    let auditor = Auditor::new(writer.clone(), "orders", 7);
    assert!(auditor
        .emit(AuditEvent::new("DeleteTopics").error("UNKNOWN_TOPIC_OR_PARTITION", "no topic x")));

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run_snapshots(
        registry,
        writer.clone(),
        Level::Default,
        Duration::from_millis(200),
        async {
            let _ = stopped.await;
        },
    ));
    wait_for(|| {
        shipper
            .lines()
            .iter()
            .filter(|l| l.contains(r#""name":"BytesInPerSec""#))
            .count()
            >= 4
    })
    .await;
    let _ = stop.send(());
    task.await.unwrap();

    let lines: Vec<serde_json::Value> = shipper
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let audits: Vec<_> = lines.iter().filter(|l| l["kind"] == "audit").collect();
    assert_eq!(audits.len(), 1, "exactly one audit record");
    assert_eq!(audits[0]["eventName"], "DeleteTopics");
    assert_eq!(audits[0]["errorCode"], "UNKNOWN_TOPIC_OR_PARTITION");
    let metric = lines
        .iter()
        .find(|l| {
            l["kind"] == "metric"
                && l["name"] == "BytesInPerSec"
                && l["dimensions"]["Topic"] == "payments"
        })
        .expect("a per-topic BytesInPerSec record");
    assert_eq!(metric["unit"], "Bytes/Second");
    assert_eq!(metric["dimensions"]["Cluster Name"], "orders");
    assert_eq!(metric["dimensions"]["Broker ID"], "7");
    assert!(metric["value"].as_f64().unwrap() > 0.0);
    assert!(lines
        .iter()
        .all(|l| l["kind"] == "metric" || l["kind"] == "audit"));
    writer.shutdown(Duration::from_secs(1));
}
