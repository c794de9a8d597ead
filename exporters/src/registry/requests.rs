//! Request rates and latencies per Kafka request type, lock-free on the
//! hot path.
//!
//! Each request type has atomic counters and a log-scale latency histogram
//! (4 buckets per doubling, 8 µs to about 2.3 min). The mean and the 99th
//! percentile are computed over a window, as the JMX exporter's decaying
//! histograms are: the difference between now and the newest mark at least
//! a minute old (marks are taken when the registry is read, at most every
//! 10 s, and kept for 5 min).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Kafka's request names by API key, as `kafka.network:type=RequestMetrics`
/// names them (`request=` key). Fetch is `FetchConsumer`: Wharf has no
/// replica fetchers.
pub(crate) const API_NAMES: &[&str] = &[
    "Produce",
    "FetchConsumer",
    "ListOffsets",
    "Metadata",
    "LeaderAndIsr",
    "StopReplica",
    "UpdateMetadata",
    "ControlledShutdown",
    "OffsetCommit",
    "OffsetFetch",
    "FindCoordinator",
    "JoinGroup",
    "Heartbeat",
    "LeaveGroup",
    "SyncGroup",
    "DescribeGroups",
    "ListGroups",
    "SaslHandshake",
    "ApiVersions",
    "CreateTopics",
    "DeleteTopics",
    "DeleteRecords",
    "InitProducerId",
    "OffsetForLeaderEpoch",
    "AddPartitionsToTxn",
    "AddOffsetsToTxn",
    "EndTxn",
    "WriteTxnMarkers",
    "TxnOffsetCommit",
    "DescribeAcls",
    "CreateAcls",
    "DeleteAcls",
    "DescribeConfigs",
    "AlterConfigs",
    "AlterReplicaLogDirs",
    "DescribeLogDirs",
    "SaslAuthenticate",
    "CreatePartitions",
    "CreateDelegationToken",
    "RenewDelegationToken",
    "ExpireDelegationToken",
    "DescribeDelegationToken",
    "DeleteGroups",
    "ElectLeaders",
    "IncrementalAlterConfigs",
    "AlterPartitionReassignments",
    "ListPartitionReassignments",
    "OffsetDelete",
    "DescribeClientQuotas",
    "AlterClientQuotas",
    "DescribeUserScramCredentials",
    "AlterUserScramCredentials",
    "Vote",
    "BeginQuorumEpoch",
    "EndQuorumEpoch",
    "DescribeQuorum",
    "AlterPartition",
    "UpdateFeatures",
    "Envelope",
    "FetchSnapshot",
    "DescribeCluster",
    "DescribeProducers",
    "BrokerRegistration",
    "BrokerHeartbeat",
    "UnregisterBroker",
    "DescribeTransactions",
    "ListTransactions",
    "AllocateProducerIds",
    "ConsumerGroupHeartbeat",
    "ConsumerGroupDescribe",
    "ControllerRegistration",
    "GetTelemetrySubscriptions",
    "PushTelemetry",
    "AssignReplicasToDirs",
    "ListClientMetricsResources",
    "DescribeTopicPartitions",
];

const BUCKETS: usize = 96;
const WINDOW: Duration = Duration::from_secs(60);
const MARK_EVERY: Duration = Duration::from_secs(10);
const KEEP: Duration = Duration::from_secs(300);

/// Upper bound in microseconds of bucket `i`: 2^(i/4 + 3).
fn bucket_upper_us(i: usize) -> f64 {
    2f64.powf(i as f64 / 4.0 + 3.0)
}

fn bucket_of(us: u64) -> usize {
    if us <= 8 {
        return 0;
    }
    let i = (((us as f64).log2() - 3.0) * 4.0).ceil() as usize;
    i.min(BUCKETS - 1)
}

#[derive(Clone)]
struct Mark {
    at: Instant,
    count: u64,
    sum_us: u64,
    buckets: Vec<u64>,
}

/// Counters of one request type.
pub(crate) struct RequestMetrics {
    count: AtomicU64,
    errors: AtomicU64,
    sum_us: AtomicU64,
    buckets: Vec<AtomicU64>,
    marks: Mutex<VecDeque<Mark>>,
}

/// What the registry reports for one request type.
pub(crate) struct RequestStats {
    pub(crate) count: u64,
    pub(crate) errors: u64,
    pub(crate) window_mean_ms: f64,
    pub(crate) window_p99_ms: f64,
}

impl RequestMetrics {
    pub(crate) fn new() -> Self {
        Self {
            count: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            marks: Mutex::new(VecDeque::new()),
        }
    }

    /// Hot path: a few relaxed atomic adds.
    pub(crate) fn record(&self, elapsed: Duration, error: bool) {
        let us = elapsed.as_micros().min(u64::MAX as u128) as u64;
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
        self.buckets[bucket_of(us)].fetch_add(1, Relaxed);
        if error {
            self.errors.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    fn now_mark(&self, at: Instant) -> Mark {
        Mark {
            at,
            count: self.count.load(Relaxed),
            sum_us: self.sum_us.load(Relaxed),
            buckets: self.buckets.iter().map(|b| b.load(Relaxed)).collect(),
        }
    }

    /// Reads the counters and the windowed mean and p99 (read path only).
    pub(crate) fn stats(&self, now: Instant) -> RequestStats {
        let cur = self.now_mark(now);
        let mut marks = self.marks.lock().unwrap_or_else(|p| p.into_inner());
        let base = marks
            .iter()
            .rev()
            .find(|m| now.saturating_duration_since(m.at) >= WINDOW)
            .or_else(|| marks.front())
            .cloned();
        if marks
            .back()
            .is_none_or(|m| now.saturating_duration_since(m.at) >= MARK_EVERY)
        {
            marks.push_back(cur.clone());
        }
        // Keep one mark older than the window as the baseline.
        while marks.len() > 2 && now.saturating_duration_since(marks[1].at) >= KEEP.max(WINDOW) {
            marks.pop_front();
        }
        drop(marks);
        let (count, sum_us, buckets) = match &base {
            Some(b) => (
                cur.count - b.count.min(cur.count),
                cur.sum_us - b.sum_us.min(cur.sum_us),
                cur.buckets
                    .iter()
                    .zip(&b.buckets)
                    .map(|(c, b)| c - b.min(c))
                    .collect::<Vec<_>>(),
            ),
            None => (cur.count, cur.sum_us, cur.buckets.clone()),
        };
        // A window with nothing in it (right after the first mark) falls
        // back to everything since start.
        let (count, sum_us, buckets) = if count == 0 {
            (cur.count, cur.sum_us, cur.buckets.clone())
        } else {
            (count, sum_us, buckets)
        };
        let mean = if count == 0 {
            0.0
        } else {
            sum_us as f64 / count as f64 / 1000.0
        };
        RequestStats {
            count: cur.count,
            errors: self.errors.load(Relaxed),
            window_mean_ms: mean,
            window_p99_ms: quantile_ms(&buckets, count, 0.99),
        }
    }
}

/// The upper bound of the bucket holding the q-quantile, in milliseconds.
fn quantile_ms(buckets: &[u64], count: u64, q: f64) -> f64 {
    if count == 0 {
        return 0.0;
    }
    let rank = (q * count as f64).ceil() as u64;
    let mut seen = 0;
    for (i, n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return bucket_upper_us(i) / 1000.0;
        }
    }
    bucket_upper_us(BUCKETS - 1) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_names_sit_at_their_kafka_api_keys() {
        for (key, name) in [
            (0, "Produce"),
            (1, "FetchConsumer"),
            (3, "Metadata"),
            (18, "ApiVersions"),
            (19, "CreateTopics"),
            (37, "CreatePartitions"),
            (44, "IncrementalAlterConfigs"),
            (60, "DescribeCluster"),
            (75, "DescribeTopicPartitions"),
        ] {
            assert_eq!(API_NAMES[key], name);
        }
    }

    #[test]
    fn buckets_cover_the_range_monotonically() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(8), 0);
        let mut last = 0;
        for us in [9, 10, 100, 1_000, 10_000, 1_000_000, 100_000_000] {
            let b = bucket_of(us);
            assert!(b >= last);
            assert!(bucket_upper_us(b) >= us as f64, "{us} µs above its bucket");
            assert!(
                b == 0 || bucket_upper_us(b - 1) < us as f64,
                "{us} µs in too high a bucket"
            );
            last = b;
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn mean_and_p99_come_from_what_was_recorded() {
        let m = RequestMetrics::new();
        for _ in 0..990 {
            m.record(Duration::from_millis(2), false);
        }
        for _ in 0..10 {
            m.record(Duration::from_millis(200), true);
        }
        let s = m.stats(Instant::now());
        assert_eq!((s.count, s.errors), (1000, 10));
        assert!(
            (s.window_mean_ms - 3.98).abs() < 1e-9,
            "{}",
            s.window_mean_ms
        );
        // p99 falls in the 2 ms bucket (rank 990), within one bucket's width.
        assert!(
            s.window_p99_ms >= 2.0 && s.window_p99_ms < 2.0 * 1.19,
            "{}",
            s.window_p99_ms
        );
    }

    #[test]
    fn the_window_forgets_requests_older_than_a_minute() {
        let m = RequestMetrics::new();
        let t0 = Instant::now();
        for _ in 0..100 {
            m.record(Duration::from_millis(100), false);
        }
        m.stats(t0); // first mark
        for _ in 0..100 {
            m.record(Duration::from_millis(1), false);
        }
        let s = m.stats(t0 + Duration::from_secs(61));
        assert_eq!(s.count, 200);
        assert!(
            (s.window_mean_ms - 1.0).abs() < 1e-9,
            "{}",
            s.window_mean_ms
        );
    }
}
