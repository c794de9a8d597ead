//! The metric catalog: every metric the broker emits, documented in one
//! place, with its MSK names on both paths.
//!
//! Each [`MetricDef`] is one series shape: the Prometheus series as MSK's
//! open monitoring (JMX exporter, port 11001) shows it, and the CloudWatch
//! metric as MSK publishes it in `AWS/Kafka`, with the monitoring level from
//! which it is published and its dimensions. The Prometheus endpoint, the
//! metric snapshots, the dashboards' tests and `docs/metrics.md` (generated
//! by [`markdown`]) all read this table.
//!
//! MSK's names are kept as MSK shows them, so dashboards and alarms written
//! for MSK work on Wharf; that includes the JMX exporter's CamelCase names,
//! which `promtool check metrics` reports as style findings. Wharf's own
//! metrics (`wharf_*`) follow Prometheus' naming rules.

use std::fmt;

/// MSK's enhanced monitoring levels, from the cheapest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Free, essential metrics.
    Default,
    /// Adds per-broker metrics.
    PerBroker,
    /// Adds per-topic, per-broker metrics.
    PerTopicPerBroker,
    /// Adds per-partition metrics (consumer lag per partition).
    PerTopicPerPartition,
}

impl Level {
    /// Every level, cheapest first.
    pub const ALL: [Level; 4] = [
        Level::Default,
        Level::PerBroker,
        Level::PerTopicPerBroker,
        Level::PerTopicPerPartition,
    ];

    /// MSK's spelling, e.g. `PER_TOPIC_PER_BROKER`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Default => "DEFAULT",
            Level::PerBroker => "PER_BROKER",
            Level::PerTopicPerBroker => "PER_TOPIC_PER_BROKER",
            Level::PerTopicPerPartition => "PER_TOPIC_PER_PARTITION",
        }
    }

    /// Parses MSK's spelling.
    pub fn parse(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// CloudWatch units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// `Bytes`.
    Bytes,
    /// `Bytes/Second`.
    BytesPerSecond,
    /// `Count`.
    Count,
    /// `Count/Second`.
    CountPerSecond,
    /// `Milliseconds`.
    Milliseconds,
    /// `Percent`.
    Percent,
}

impl Unit {
    /// The unit as CloudWatch spells it.
    pub fn cloudwatch(self) -> &'static str {
        match self {
            Unit::Bytes => "Bytes",
            Unit::BytesPerSecond => "Bytes/Second",
            Unit::Count => "Count",
            Unit::CountPerSecond => "Count/Second",
            Unit::Milliseconds => "Milliseconds",
            Unit::Percent => "Percent",
        }
    }
}

/// How a metric's value behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up. Prometheus gets the running total (rate it with
    /// `rate()`); CloudWatch gets the per-second rate over the snapshot
    /// period, as MSK's `…PerSec` metrics are.
    Counter,
    /// A current value.
    Gauge,
}

/// A CloudWatch dimension MSK uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    /// `Cluster Name`.
    ClusterName,
    /// `Broker ID`.
    BrokerId,
    /// `Topic`.
    Topic,
    /// `Consumer Group`.
    ConsumerGroup,
    /// `Partition`.
    Partition,
}

impl Dimension {
    /// The dimension name as MSK spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::ClusterName => "Cluster Name",
            Dimension::BrokerId => "Broker ID",
            Dimension::Topic => "Topic",
            Dimension::ConsumerGroup => "Consumer Group",
            Dimension::Partition => "Partition",
        }
    }
}

/// The Prometheus series: metric name, the value of its `name` label (the
/// JMX MBean's `name=` key) if any, and its other labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromSeries {
    /// Metric name, e.g. `kafka_server_BrokerTopicMetrics_Count`.
    pub metric: &'static str,
    /// Value of the `name` label, e.g. `BytesInPerSec`.
    pub name_label: Option<&'static str>,
    /// The other labels, e.g. `["topic"]`.
    pub labels: &'static [&'static str],
    /// The `# TYPE` line's type: `untyped` for JMX exporter names, as the
    /// JMX exporter writes them, `counter` or `gauge` for Wharf's own.
    pub prom_type: &'static str,
}

/// The CloudWatch metric: name, the level from which it is published, and
/// its dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloudWatchMetric {
    /// Metric name, e.g. `BytesInPerSec`.
    pub name: &'static str,
    /// Published at this level and every level above it.
    pub level: Level,
    /// Dimensions, in MSK's order.
    pub dimensions: &'static [Dimension],
}

/// One row of the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDef {
    /// Stable key the registry uses for this series shape.
    pub key: &'static str,
    /// What it measures.
    pub description: &'static str,
    /// The unit (of the CloudWatch value; Prometheus totals of `…PerSec`
    /// counters are in the base unit, bytes or messages).
    pub unit: Unit,
    /// Counter or gauge.
    pub kind: Kind,
    /// The Prometheus series, if exposed on the endpoint.
    pub prometheus: Option<PromSeries>,
    /// The CloudWatch metric, if written in metric snapshots.
    pub cloudwatch: Option<CloudWatchMetric>,
}

use Dimension::{BrokerId as B, ClusterName as C, ConsumerGroup as G, Partition as P, Topic as T};

const fn jmx(
    metric: &'static str,
    name: &'static str,
    labels: &'static [&'static str],
) -> Option<PromSeries> {
    Some(PromSeries {
        metric,
        name_label: Some(name),
        labels,
        prom_type: "untyped",
    })
}

const fn own(
    metric: &'static str,
    labels: &'static [&'static str],
    prom_type: &'static str,
) -> Option<PromSeries> {
    Some(PromSeries {
        metric,
        name_label: None,
        labels,
        prom_type,
    })
}

const fn cw(
    name: &'static str,
    level: Level,
    dimensions: &'static [Dimension],
) -> Option<CloudWatchMetric> {
    Some(CloudWatchMetric {
        name,
        level,
        dimensions,
    })
}

const BTM: &str = "kafka_server_BrokerTopicMetrics_Count";
const RM: &str = "kafka_server_ReplicaManager_Value";
const KC: &str = "kafka_controller_KafkaController_Value";
const REQ_COUNT: &str = "kafka_network_RequestMetrics_Count";
const LAG: &str = "kafka_consumer_group_ConsumerLagMetrics_Value";
const LOG: &str = "kafka_log_Log_Value";

macro_rules! def {
    ($key:literal, $desc:literal, $unit:ident, $kind:ident, $prom:expr, $cw:expr) => {
        MetricDef {
            key: $key,
            description: $desc,
            unit: Unit::$unit,
            kind: Kind::$kind,
            prometheus: $prom,
            cloudwatch: $cw,
        }
    };
}

/// The catalog, in the order of `docs/metrics.md`.
pub const CATALOG: &[MetricDef] = &[
    def!("bytes_in", "Bytes received from producers by this broker, all topics.", BytesPerSecond, Counter,
        jmx(BTM, "BytesInPerSec", &[]), cw("BytesInPerSec", Level::Default, &[C, B])),
    def!("bytes_in.topic", "Bytes received from producers by this broker, per topic.", BytesPerSecond, Counter,
        jmx(BTM, "BytesInPerSec", &["topic"]), cw("BytesInPerSec", Level::Default, &[C, B, T])),
    def!("bytes_out", "Bytes sent to consumers by this broker, all topics.", BytesPerSecond, Counter,
        jmx(BTM, "BytesOutPerSec", &[]), cw("BytesOutPerSec", Level::Default, &[C, B])),
    def!("bytes_out.topic", "Bytes sent to consumers by this broker, per topic.", BytesPerSecond, Counter,
        jmx(BTM, "BytesOutPerSec", &["topic"]), cw("BytesOutPerSec", Level::Default, &[C, B, T])),
    def!("messages_in", "Messages (records) received from producers, all topics.", CountPerSecond, Counter,
        jmx(BTM, "MessagesInPerSec", &[]), cw("MessagesInPerSec", Level::Default, &[C, B])),
    def!("messages_in.topic", "Messages (records) received from producers, per topic.", CountPerSecond, Counter,
        jmx(BTM, "MessagesInPerSec", &["topic"]), cw("MessagesInPerSec", Level::Default, &[C, B, T])),
    def!("messages_out.topic", "Messages (records) sent to consumers, per topic (Wharf addition: Kafka has no such MBean).", CountPerSecond, Counter,
        jmx(BTM, "MessagesOutPerSec", &["topic"]), None),
    def!("requests", "Requests handled, per Kafka request type (`Produce`, `FetchConsumer`, `Metadata`, ...).", CountPerSecond, Counter,
        jmx(REQ_COUNT, "RequestsPerSec", &["request"]), None),
    def!("request_errors", "Requests answered with an error code, per request type.", CountPerSecond, Counter,
        jmx(REQ_COUNT, "ErrorsPerSec", &["request"]), None),
    def!("request_time.mean", "Mean time to handle a request, per request type, over the last minute or more.", Milliseconds, Gauge,
        jmx("kafka_network_RequestMetrics_Mean", "TotalTimeMs", &["request"]), None),
    def!("request_time.p99", "99th percentile of the time to handle a request, per request type, over the last minute or more.", Milliseconds, Gauge,
        jmx("kafka_network_RequestMetrics_99thPercentile", "TotalTimeMs", &["request"]), None),
    def!("request_time.count", "Requests timed, per request type (the count behind the mean and percentiles).", Count, Counter,
        jmx(REQ_COUNT, "TotalTimeMs", &["request"]), None),
    def!("produce_time.mean", "Mean time to handle a Produce request.", Milliseconds, Gauge,
        None, cw("ProduceTotalTimeMsMean", Level::PerBroker, &[C, B])),
    def!("fetch_consumer_time.mean", "Mean time to handle a consumer's Fetch request.", Milliseconds, Gauge,
        None, cw("FetchConsumerTotalTimeMsMean", Level::PerBroker, &[C, B])),
    def!("partition_count", "Partitions on this broker.", Count, Gauge,
        jmx(RM, "PartitionCount", &[]), cw("PartitionCount", Level::Default, &[C, B])),
    def!("leader_count", "Partitions this broker leads.", Count, Gauge,
        jmx(RM, "LeaderCount", &[]), cw("LeaderCount", Level::Default, &[C, B])),
    def!("under_replicated_partitions", "Partitions with fewer in-sync replicas than replicas.", Count, Gauge,
        jmx(RM, "UnderReplicatedPartitions", &[]), cw("UnderReplicatedPartitions", Level::Default, &[C, B])),
    def!("offline_partitions", "Partitions without an active leader: they can be neither written nor read.", Count, Gauge,
        jmx(KC, "OfflinePartitionsCount", &[]), cw("OfflinePartitionsCount", Level::Default, &[C])),
    def!("active_controller_count", "1 on the broker that is the active controller, else 0.", Count, Gauge,
        jmx(KC, "ActiveControllerCount", &[]), cw("ActiveControllerCount", Level::Default, &[C])),
    def!("global_topic_count", "Topics in the cluster.", Count, Gauge,
        jmx(KC, "GlobalTopicCount", &[]), cw("GlobalTopicCount", Level::Default, &[C])),
    def!("global_partition_count", "Partitions in the cluster, replicas not counted.", Count, Gauge,
        jmx(KC, "GlobalPartitionCount", &[]), cw("GlobalPartitionCount", Level::Default, &[C])),
    def!("connection_count", "Open client connections, per listener (`PLAINTEXT`, `SSL`).", Count, Gauge,
        own("kafka_server_socket_server_metrics_connection_count", &["listener"], "gauge"), None),
    def!("connection_count.broker", "Open client connections, all listeners.", Count, Gauge,
        None, cw("ConnectionCount", Level::Default, &[C, B])),
    def!("log_size", "Bytes of a partition's log on disk.", Bytes, Gauge,
        jmx(LOG, "Size", &["topic", "partition"]), None),
    def!("log_end_offset", "Offset the next record of a partition will get.", Count, Gauge,
        jmx(LOG, "LogEndOffset", &["topic", "partition"]), None),
    def!("log_start_offset", "Earliest offset still held by a partition.", Count, Gauge,
        jmx(LOG, "LogStartOffset", &["topic", "partition"]), None),
    def!("disk_used_percent", "Percent of the data log volume in use.", Percent, Gauge,
        None, cw("KafkaDataLogsDiskUsed", Level::Default, &[C, B])),
    def!("disk_avail_bytes", "Bytes available on the data log volume (node exporter's name, which MSK serves on port 11002).", Bytes, Gauge,
        own("node_filesystem_avail_bytes", &["mountpoint"], "gauge"), None),
    def!("disk_size_bytes", "Size in bytes of the data log volume (node exporter's name).", Bytes, Gauge,
        own("node_filesystem_size_bytes", &["mountpoint"], "gauge"), None),
    def!("sum_offset_lag", "Sum over partitions of how many records a consumer group is behind, per group and topic.", Count, Gauge,
        jmx(LAG, "SumOffsetLag", &["groupId", "topic"]), cw("SumOffsetLag", Level::Default, &[C, G, T])),
    def!("max_offset_lag", "Largest per-partition lag of a consumer group, per group and topic.", Count, Gauge,
        jmx(LAG, "MaxOffsetLag", &["groupId", "topic"]), cw("MaxOffsetLag", Level::Default, &[C, G, T])),
    def!("offset_lag", "Records a consumer group is behind on one partition.", Count, Gauge,
        jmx(LAG, "OffsetLag", &["groupId", "topic", "partition"]), cw("OffsetLag", Level::PerTopicPerPartition, &[C, G, T, P])),
    def!("telemetry_lines", "Telemetry lines by outcome: `accepted` into the queue, `written` to the shipper's socket (resends included), `acked` by the shipper, `spooled` to disk.", Count, Counter,
        own("wharf_telemetry_lines_total", &["outcome"], "counter"), None),
    def!("telemetry_dropped", "Telemetry lines dropped, by reason: `queue_full`, `spool_full`, `spool_error`.", Count, Counter,
        own("wharf_telemetry_dropped_total", &["reason"], "counter"), None),
    def!("telemetry_dropped.broker", "Telemetry lines dropped, all reasons.", CountPerSecond, Counter,
        None, cw("TelemetryLinesDropped", Level::Default, &[C, B])),
    def!("telemetry_spool_bytes", "Bytes the telemetry spool's files take.", Bytes, Gauge,
        own("wharf_telemetry_spool_bytes", &[], "gauge"), None),
    def!("telemetry_unacked_lines", "Telemetry lines the shipper has not acknowledged (spooled or in flight).", Count, Gauge,
        own("wharf_telemetry_unacked_lines", &[], "gauge"), None),
    def!("telemetry_connected", "1 while the broker is connected to the shipper's socket, else 0.", Count, Gauge,
        own("wharf_telemetry_connected", &[], "gauge"), None),
    def!("fetch_batches", "Record batches fetched by consumers, by where they came from: `tail_cache` (recent batches kept in memory), `segments` (read from disk and decrypted during the fetch) or `read_ahead` (read and decrypted ahead of the fetch, for a consumer catching up).", Count, Counter,
        own("wharf_broker_fetch_batches_total", &["source"], "counter"), None),
    def!("tail_cache_bytes", "Bytes of recent batches the tail cache holds (at most `tail_cache_bytes`).", Bytes, Gauge,
        own("wharf_broker_tail_cache_bytes", &[], "gauge"), None),
];

/// The row with this key.
pub fn get(key: &str) -> Option<&'static MetricDef> {
    CATALOG.iter().find(|d| d.key == key)
}

/// Every Prometheus metric name the endpoint can emit.
pub fn prometheus_names() -> Vec<&'static str> {
    let mut names: Vec<_> = CATALOG
        .iter()
        .filter_map(|d| d.prometheus.map(|p| p.metric))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Every CloudWatch metric name the snapshots can carry.
pub fn cloudwatch_names() -> Vec<&'static str> {
    let mut names: Vec<_> = CATALOG
        .iter()
        .filter_map(|d| d.cloudwatch.map(|c| c.name))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// `docs/metrics.md`, generated from the catalog.
pub fn markdown() -> String {
    let mut out = String::new();
    out.push_str(
        "# Broker metrics\n\n\
         <!-- Generated from exporters/src/catalog.rs by \
         `WHARF_UPDATE_DOCS=1 cargo test -p wharf-exporters --test catalog_doc`; do not edit. -->\n\n\
         Every metric the broker emits, on both paths:\n\n\
         - **Prometheus**: the endpoint on port 11001 (`/metrics`), with the names MSK's open \
         monitoring (JMX exporter) shows, so dashboards written for MSK work. `…PerSec` series \
         are running totals: use `rate()`. Series without a `topic` label are the broker's totals.\n\
         - **CloudWatch**: metric snapshot records (`kind: metric`) written to the shipper's \
         socket every period (default 60 s), with MSK's names, units and dimensions, filtered by \
         the configured monitoring level (a metric is sent at its level and every level above). \
         Counters are sent as the per-second rate over the period.\n\n\
         Levels, cheapest first: `DEFAULT`, `PER_BROKER`, `PER_TOPIC_PER_BROKER`, \
         `PER_TOPIC_PER_PARTITION`.\n\n\
         | Metric | Prometheus series | Type | CloudWatch name | Level | Dimensions | Unit |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for d in CATALOG {
        let prom = d.prometheus.map_or("—".to_string(), prom_selector);
        let (cw_name, level, dims) = match d.cloudwatch {
            Some(c) => (
                format!("`{}`", c.name),
                c.level.as_str().to_string(),
                c.dimensions
                    .iter()
                    .map(|d| d.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            None => ("—".into(), "—".into(), "—".into()),
        };
        let kind = match d.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            d.description,
            prom,
            kind,
            cw_name,
            level,
            dims,
            d.unit.cloudwatch()
        ));
    }
    out
}

/// The series written as a PromQL-style selector, e.g.
/// `` `kafka_log_Log_Value{name="Size",topic,partition}` ``.
fn prom_selector(p: PromSeries) -> String {
    let mut labels: Vec<String> = Vec::new();
    if let Some(n) = p.name_label {
        labels.push(format!("name=\"{n}\""));
    }
    labels.extend(p.labels.iter().map(|l| l.to_string()));
    if labels.is_empty() {
        format!("`{}`", p.metric)
    } else {
        format!("`{}{{{}}}`", p.metric, labels.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_every_row_has_a_destination() {
        let mut keys: Vec<_> = CATALOG.iter().map(|d| d.key).collect();
        keys.sort_unstable();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "duplicate catalog keys");
        for d in CATALOG {
            assert!(
                d.prometheus.is_some() || d.cloudwatch.is_some(),
                "{} goes nowhere",
                d.key
            );
        }
    }

    #[test]
    fn cloudwatch_rows_carry_the_cluster_and_stay_within_the_limits() {
        for d in CATALOG {
            if let Some(c) = d.cloudwatch {
                assert_eq!(
                    c.dimensions.first(),
                    Some(&Dimension::ClusterName),
                    "{}",
                    d.key
                );
                assert!(
                    c.dimensions.len() <= 30,
                    "PutMetricData allows 30 dimensions"
                );
            }
        }
    }

    #[test]
    fn covers_what_msk_users_look_for() {
        let prom = prometheus_names();
        for name in [
            "kafka_server_BrokerTopicMetrics_Count",
            "kafka_network_RequestMetrics_Count",
            "kafka_network_RequestMetrics_Mean",
            "kafka_server_ReplicaManager_Value",
            "kafka_controller_KafkaController_Value",
            "kafka_log_Log_Value",
            "kafka_consumer_group_ConsumerLagMetrics_Value",
        ] {
            assert!(prom.contains(&name), "{name}");
        }
        let cwn = cloudwatch_names();
        for name in [
            "BytesInPerSec",
            "BytesOutPerSec",
            "MessagesInPerSec",
            "PartitionCount",
            "LeaderCount",
            "UnderReplicatedPartitions",
            "OfflinePartitionsCount",
            "ActiveControllerCount",
            "KafkaDataLogsDiskUsed",
            "ConnectionCount",
            "SumOffsetLag",
            "MaxOffsetLag",
        ] {
            assert!(cwn.contains(&name), "{name}");
        }
        assert_eq!(
            Level::parse("PER_TOPIC_PER_BROKER"),
            Some(Level::PerTopicPerBroker)
        );
        assert!(Level::Default < Level::PerTopicPerPartition);
    }
}
