//! The request driver with an in-memory destination: the cursor never
//! passes a batch in flight, refused events are dead-lettered and counted,
//! and a partially refused batch counts only what was accepted; the
//! oldest-unacked age covers batches in flight and drops to 0 once settled.

use std::sync::Mutex;
use std::time::Duration;

use wharf_envelope::LocalKeyProvider;

use super::*;
use crate::buffer::AtRest;
use crate::config::BufferConfig;
use crate::record::Kind;
use crate::sinks::cloudwatch_logs::batch::{Format, Limits, LogBatch, LogBatcher, Oversize};

/// Accepts every event but those whose message contains `reject`, which
/// it refuses like `rejectedLogEventsInfo`; holds batches until `gate`
/// opens.
struct Memory {
    got: Mutex<Vec<String>>,
    gate: tokio::sync::Semaphore,
}

#[async_trait::async_trait]
impl Sender for Memory {
    type Batch = LogBatch;
    async fn send(&self, batch: LogBatch) -> Result<Sent> {
        let _permit = self.gate.acquire().await.unwrap();
        let refused: Vec<_> = batch
            .events
            .iter()
            .map(|e| e.message.contains("reject").then_some("rejected_too_old"))
            .collect();
        let sent = crate::sinks::cloudwatch_logs::service::settle(&batch, &refused);
        let mut got = self.got.lock().unwrap();
        for (e, r) in batch.events.iter().zip(&refused) {
            if r.is_none() {
                got.push(e.message.clone());
            }
        }
        Ok(sent)
    }
}

/// The `sink_oldest_unacked_age_seconds` gauge of `sink`, as scraped.
fn oldest_unacked_age(metrics: &Metrics, sink: &str) -> f64 {
    let prefix = format!("wharf_shipper_sink_oldest_unacked_age_seconds{{sink=\"{sink}\"}} ");
    let text = metrics.encode();
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no oldest-unacked gauge for {sink} in:\n{text}"))
}

fn record(n: u64, reject: bool) -> Record {
    Record {
        seq: 0,
        id: uuid::Uuid::now_v7(),
        kind: Kind::Log,
        ts_millis: chrono::Utc::now().timestamp_millis(),
        source: Arc::from("src"),
        line: format!(
            r#"{{"n":{n},"m":"{}"}}"#,
            if reject { "reject" } else { "ok" }
        )
        .into_bytes(),
    }
}

#[tokio::test]
async fn the_cursor_waits_for_batches_in_flight_and_refused_events_are_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(LocalKeyProvider::random());
    let metrics = Arc::new(Metrics::new());
    let buffer = Buffer::open(
        &dir.path().join("buffer"),
        AtRest::new(keys.clone(), "test-buffer"),
        &BufferConfig::default(),
        &["mem".to_owned()],
        metrics.clone(),
    )
    .await
    .unwrap();
    let recs: Vec<Record> = (0..100).map(|n| record(n, n % 10 == 3)).collect();
    buffer.append(recs).await.unwrap().await.unwrap().unwrap();

    let format: Format = Box::new(|r: &Record| {
        Ok((
            "g".into(),
            "s".into(),
            String::from_utf8(r.line.clone()).unwrap(),
        ))
    });
    let limits = Limits {
        max_bytes: 1 << 20,
        max_events: 7,
        max_age: Duration::from_millis(20),
        max_event_age_ms: 14 * 24 * 3600 * 1000,
        oversize: Oversize::Truncate,
    };
    let memory = Arc::new(Memory {
        got: Mutex::default(),
        gate: tokio::sync::Semaphore::new(0),
    });
    let cfg = crate::config::Config::from_toml(
        r#"
data_dir = "/tmp/x"
[sources.src]
type = "socket"
path = "/tmp/x.sock"
[sinks.mem]
type = "cloudwatch_logs"
inputs = ["src"]
"#,
    )
    .unwrap();
    let driver = Driver {
        name: "mem".into(),
        filter: Filter::new(&cfg.sinks["mem"]),
        batcher: LogBatcher::new(limits, format),
        sender: memory.clone(),
        dead_letter: Arc::new(SinkDeadLetter::file(
            &dir.path().join("dl"),
            "mem",
            AtRest::new(keys.clone(), "test-dl"),
            metrics.clone(),
        )),
        max_in_flight: 3,
        buffer: buffer.clone(),
        metrics: metrics.clone(),
    };
    let stop = CancellationToken::new();
    let task = tokio::spawn(driver.run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Three batches are in flight, none answered: nothing is committed,
    // and the oldest event has waited at least as long as we slept.
    assert_eq!(buffer.cursor("mem"), Some(0));
    let waiting = oldest_unacked_age(&metrics, "mem");
    assert!(waiting >= 0.3, "oldest unacked age {waiting} s");
    memory.gate.add_permits(1000);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(buffer.cursor("mem"), Some(100));
    assert_eq!(oldest_unacked_age(&metrics, "mem"), 0.0);
    let got = memory.got.lock().unwrap().clone();
    assert_eq!(got.len(), 90);
    assert!(got.iter().all(|m| !m.contains("reject")));
    assert_eq!(metrics.delivered("mem").get(), 90);
    assert_eq!(metrics.sink_dead_lettered("mem").get(), 10);
    let files: Vec<_> = std::fs::read_dir(dir.path().join("dl")).unwrap().collect();
    assert_eq!(files.len(), 1, "one dead-letter file");
}
