//! Periodic metric snapshot records (`kind: metric`) with MSK's CloudWatch
//! names, units and dimensions, filtered by the monitoring level.
//!
//! Gauges are sent as they are; counters as the per-second rate since the
//! previous snapshot (since the registry was created, for the first), as
//! MSK's `…PerSec` metrics are. One record per series:
//! `{"kind":"metric","ts":<epoch ms>,"name":"BytesInPerSec","value":12.5,
//! "unit":"Bytes/Second","dimensions":{"Cluster Name":"c","Broker ID":"1"}}`.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use super::{MetricsRegistry, Sample};
use crate::catalog::{self, Dimension, Kind, Level};
use crate::sink::LineSink;
use crate::time::epoch_millis;

/// The default snapshot period, as MSK publishes to CloudWatch.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(60);

/// One CloudWatch datum.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRecord {
    /// Milliseconds since the Unix epoch.
    pub ts_millis: u64,
    /// CloudWatch metric name.
    pub name: &'static str,
    /// The value (a rate for counters).
    pub value: f64,
    /// CloudWatch unit.
    pub unit: &'static str,
    /// Dimension name to value, e.g. `Cluster Name` → `orders`.
    pub dimensions: BTreeMap<&'static str, String>,
}

impl MetricRecord {
    /// The record as a socket line's JSON object.
    pub fn to_json(&self) -> Value {
        json!({
            "kind": "metric",
            "ts": self.ts_millis,
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "dimensions": self.dimensions,
        })
    }
}

type SeriesId = (&'static str, Vec<(&'static str, String)>);

/// Takes snapshots of a registry, remembering counter values between them.
#[derive(Debug)]
pub struct Snapshotter {
    registry: MetricsRegistry,
    level: Level,
    prev: HashMap<SeriesId, f64>,
    prev_at: Instant,
}

impl Snapshotter {
    /// Snapshots of `registry` at `level`.
    pub fn new(registry: MetricsRegistry, level: Level) -> Self {
        let prev_at = registry.started();
        Self {
            registry,
            level,
            prev: HashMap::new(),
            prev_at,
        }
    }

    /// The records for now.
    pub fn snapshot(&mut self) -> Vec<MetricRecord> {
        self.snapshot_at(Instant::now(), SystemTime::now())
    }

    /// The records for the given instant (for tests).
    pub fn snapshot_at(&mut self, now: Instant, wall: SystemTime) -> Vec<MetricRecord> {
        let samples = self.registry.collect();
        let elapsed = now.saturating_duration_since(self.prev_at).as_secs_f64();
        let ts = epoch_millis(wall);
        let mut out = Vec::new();
        let mut next = HashMap::new();
        for Sample { key, labels, value } in samples {
            let Some(def) = catalog::get(key) else {
                continue;
            };
            let id = (key, labels);
            let reported = if def.kind == Kind::Counter {
                let before = self.prev.get(&id).copied().unwrap_or(0.0);
                next.insert(id.clone(), value);
                let delta = if value >= before {
                    value - before
                } else {
                    value
                };
                if elapsed > 0.0 {
                    delta / elapsed
                } else {
                    0.0
                }
            } else {
                value
            };
            let Some(cw) = def.cloudwatch else { continue };
            if cw.level > self.level {
                continue;
            }
            let Some(dimensions) = self.dimensions(cw.dimensions, &id.1) else {
                continue;
            };
            out.push(MetricRecord {
                ts_millis: ts,
                name: cw.name,
                value: reported,
                unit: def.unit.cloudwatch(),
                dimensions,
            });
        }
        self.prev = next;
        self.prev_at = now;
        out
    }

    fn dimensions(
        &self,
        dims: &[Dimension],
        labels: &[(&'static str, String)],
    ) -> Option<BTreeMap<&'static str, String>> {
        let label = |name: &str| {
            labels
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        };
        dims.iter()
            .map(|d| {
                let v = match d {
                    Dimension::ClusterName => Some(self.registry.cluster().to_string()),
                    Dimension::BrokerId => Some(self.registry.broker_id().to_string()),
                    Dimension::Topic => label("topic"),
                    Dimension::ConsumerGroup => label("groupId"),
                    Dimension::Partition => label("partition"),
                };
                v.map(|v| (d.as_str(), v))
            })
            .collect()
    }

    /// Takes a snapshot and queues its records on `sink`; returns how many
    /// were accepted.
    pub fn write_to(&mut self, sink: &impl LineSink) -> usize {
        self.snapshot()
            .iter()
            .filter(|r| sink.try_send_line(serde_json::to_vec(&r.to_json()).unwrap_or_default()))
            .count()
    }
}

/// Writes a snapshot to `sink` every `period` until `shutdown` completes.
/// The first snapshot is one period after the start.
pub async fn run_snapshots(
    registry: MetricsRegistry,
    sink: impl LineSink,
    level: Level,
    period: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut snapshotter = Snapshotter::new(registry, level);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tick.tick() => {
                snapshotter.write_to(&sink);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::tests::busy_registry;
    use crate::sink::MemorySink;

    fn find<'a>(
        rs: &'a [MetricRecord],
        name: &str,
        dims: &[(&str, &str)],
    ) -> Option<&'a MetricRecord> {
        rs.iter().find(|r| {
            r.name == name
                && r.dimensions.len() == dims.len()
                && dims
                    .iter()
                    .all(|(k, v)| r.dimensions.get(k).map(String::as_str) == Some(*v))
        })
    }

    #[test]
    fn counters_become_per_second_rates_with_msk_dimensions() {
        let reg = MetricsRegistry::new("orders", 3);
        let t = reg.topic("payments");
        let mut s = Snapshotter::new(reg.clone(), Level::Default);
        let t0 = Instant::now();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        s.snapshot_at(t0, wall);
        t.record_produce(6000, 60);
        let rs = s.snapshot_at(t0 + Duration::from_secs(60), wall);
        let r = find(
            &rs,
            "BytesInPerSec",
            &[
                ("Cluster Name", "orders"),
                ("Broker ID", "3"),
                ("Topic", "payments"),
            ],
        )
        .expect("per-topic BytesInPerSec");
        assert_eq!(r.value, 100.0);
        assert_eq!(r.unit, "Bytes/Second");
        assert_eq!(r.ts_millis, 1_700_000_000_000);
        let r = find(
            &rs,
            "MessagesInPerSec",
            &[("Cluster Name", "orders"), ("Broker ID", "3")],
        )
        .unwrap();
        assert_eq!(r.value, 1.0);
        // Nothing new: the rate falls to zero.
        let rs = s.snapshot_at(t0 + Duration::from_secs(120), wall);
        assert_eq!(
            find(
                &rs,
                "BytesInPerSec",
                &[("Cluster Name", "orders"), ("Broker ID", "3")]
            )
            .unwrap()
            .value,
            0.0
        );
    }

    #[test]
    fn the_level_decides_which_metrics_are_sent() {
        let reg = busy_registry();
        let names = |level| {
            let rs = Snapshotter::new(reg.clone(), level).snapshot();
            let mut n: Vec<&str> = rs.iter().map(|r| r.name).collect();
            n.sort_unstable();
            n.dedup();
            n
        };
        let default = names(Level::Default);
        let per_broker = names(Level::PerBroker);
        let per_partition = names(Level::PerTopicPerPartition);
        for n in [
            "BytesInPerSec",
            "OfflinePartitionsCount",
            "KafkaDataLogsDiskUsed",
            "SumOffsetLag",
            "ConnectionCount",
        ] {
            assert!(default.contains(&n), "{n} at DEFAULT");
        }
        assert!(!default.contains(&"ProduceTotalTimeMsMean"));
        assert!(per_broker.contains(&"ProduceTotalTimeMsMean"));
        assert!(!per_broker.contains(&"OffsetLag"));
        assert!(per_partition.contains(&"OffsetLag"));
        let rs = Snapshotter::new(reg.clone(), Level::PerTopicPerPartition).snapshot();
        let lag = find(
            &rs,
            "OffsetLag",
            &[
                ("Cluster Name", "orders"),
                ("Consumer Group", "billing"),
                ("Topic", "payments"),
                ("Partition", "1"),
            ],
        )
        .unwrap();
        assert_eq!(lag.value, 7.0);
        let off = find(&rs, "OfflinePartitionsCount", &[("Cluster Name", "orders")]).unwrap();
        assert_eq!(off.value, 0.0);
    }

    #[test]
    fn records_are_written_as_metric_lines() {
        let sink = MemorySink::new();
        let mut s = Snapshotter::new(busy_registry(), Level::Default);
        let n = s.write_to(&sink);
        let lines = sink.json_lines();
        assert_eq!(n, lines.len());
        assert!(n > 10);
        for l in &lines {
            assert_eq!(l["kind"], "metric");
            assert!(l["ts"].is_u64());
            assert!(l["value"].is_number());
            assert!(l["unit"].is_string());
            assert_eq!(l["dimensions"]["Cluster Name"], "orders");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn run_snapshots_writes_every_period_until_shutdown() {
        let sink = MemorySink::new();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run_snapshots(
            busy_registry(),
            sink.clone(),
            Level::Default,
            Duration::from_secs(60),
            async {
                let _ = rx.await;
            },
        ));
        tokio::time::sleep(Duration::from_secs(59)).await;
        assert_eq!(sink.json_lines().len(), 0);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let one = sink.json_lines().len();
        assert!(one > 0);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(sink.json_lines().len(), 2 * one);
        tx.send(()).unwrap();
        task.await.unwrap();
    }
}
