//! The metrics registry the broker updates on its hot path.
//!
//! Handles ([`TopicMetrics`], [`PartitionMetrics`], [`ListenerMetrics`])
//! are looked up once (a read lock on a map, a write lock the first time a
//! series appears) and then kept by the caller: updating an existing series
//! is a relaxed atomic add or store, no lock. Request metrics are indexed by
//! Kafka API key in a fixed array. Consumer lag, disk usage and the broker
//! gauges change rarely and are set from the broker's own periodic tasks.
//!
//! Reading: [`MetricsRegistry::collect`] returns every series as a
//! [`Sample`] keyed by its [catalog](crate::catalog) row; the Prometheus
//! text ([`prometheus`]) and the metric snapshots ([`snapshot`]) are both
//! built from it.

pub mod emf;
pub mod prometheus;
mod requests;
pub mod snapshot;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::socket::WriterCounters;
use requests::{RequestMetrics, API_NAMES};

/// Per-topic throughput counters; keep the handle and add to it.
#[derive(Debug, Default)]
pub struct TopicMetrics {
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    messages_in: AtomicU64,
    messages_out: AtomicU64,
}

impl TopicMetrics {
    /// A produce of `bytes` bytes holding `messages` records was appended.
    pub fn record_produce(&self, bytes: u64, messages: u64) {
        self.bytes_in.fetch_add(bytes, Relaxed);
        self.messages_in.fetch_add(messages, Relaxed);
    }

    /// A fetch returned `bytes` bytes holding `messages` records.
    pub fn record_fetch(&self, bytes: u64, messages: u64) {
        self.bytes_out.fetch_add(bytes, Relaxed);
        self.messages_out.fetch_add(messages, Relaxed);
    }
}

/// Per-partition log gauges; keep the handle and store into it.
#[derive(Debug, Default)]
pub struct PartitionMetrics {
    log_size: AtomicU64,
    log_end_offset: AtomicI64,
    log_start_offset: AtomicI64,
}

impl PartitionMetrics {
    /// Bytes of the partition's log on disk.
    pub fn set_log_size(&self, bytes: u64) {
        self.log_size.store(bytes, Relaxed);
    }

    /// The partition's log start and end offsets.
    pub fn set_offsets(&self, log_start: i64, log_end: i64) {
        self.log_start_offset.store(log_start, Relaxed);
        self.log_end_offset.store(log_end, Relaxed);
    }
}

/// Connections open on one listener.
#[derive(Debug, Default)]
pub struct ListenerMetrics {
    connections: AtomicI64,
}

impl ListenerMetrics {
    /// A client connected.
    pub fn connection_opened(&self) {
        self.connections.fetch_add(1, Relaxed);
    }

    /// A client's connection closed.
    pub fn connection_closed(&self) {
        self.connections.fetch_sub(1, Relaxed);
    }
}

/// Broker- and cluster-wide gauges the broker sets when they change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerGauge {
    /// Partitions on this broker.
    PartitionCount,
    /// Partitions this broker leads.
    LeaderCount,
    /// Partitions with fewer in-sync replicas than replicas.
    UnderReplicatedPartitions,
    /// Partitions without a leader.
    OfflinePartitionsCount,
    /// 1 if this broker is the active controller.
    ActiveControllerCount,
    /// Topics in the cluster.
    GlobalTopicCount,
    /// Partitions in the cluster.
    GlobalPartitionCount,
}

const GAUGES: [(BrokerGauge, &str); 7] = [
    (BrokerGauge::PartitionCount, "partition_count"),
    (BrokerGauge::LeaderCount, "leader_count"),
    (
        BrokerGauge::UnderReplicatedPartitions,
        "under_replicated_partitions",
    ),
    (BrokerGauge::OfflinePartitionsCount, "offline_partitions"),
    (
        BrokerGauge::ActiveControllerCount,
        "active_controller_count",
    ),
    (BrokerGauge::GlobalTopicCount, "global_topic_count"),
    (BrokerGauge::GlobalPartitionCount, "global_partition_count"),
];

#[derive(Debug, Clone)]
struct Disk {
    mountpoint: String,
    size_bytes: u64,
    avail_bytes: u64,
}

/// One series value, labelled with the label names of its catalog row
/// (Prometheus spelling: `topic`, `partition`, `groupId`, `request`,
/// `listener`, `mountpoint`, `outcome`, `reason`).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The catalog row's key.
    pub key: &'static str,
    /// Label name and value pairs.
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: f64,
}

struct Inner {
    cluster: String,
    broker_id: String,
    started: Instant,
    topics: RwLock<BTreeMap<String, Arc<TopicMetrics>>>,
    /// Totals of topics that were deleted, so broker totals never go down.
    retired: TopicMetrics,
    partitions: RwLock<BTreeMap<(String, i32), Arc<PartitionMetrics>>>,
    listeners: RwLock<BTreeMap<String, Arc<ListenerMetrics>>>,
    requests: Vec<RequestMetrics>,
    gauges: [AtomicI64; GAUGES.len()],
    disk: RwLock<Option<Disk>>,
    lag: RwLock<BTreeMap<(String, String, i32), i64>>,
    writer: RwLock<Option<Arc<WriterCounters>>>,
    tail_cache: RwLock<Option<TailCache>>,
}

/// The broker's cache of recent batches, as last reported.
#[derive(Debug, Clone, Copy)]
struct TailCache {
    hits: u64,
    misses: u64,
    read_ahead: u64,
    held_bytes: u64,
}

/// The broker's metrics; cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct MetricsRegistry {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MetricsRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsRegistry")
            .field("cluster", &self.inner.cluster)
            .field("broker_id", &self.inner.broker_id)
            .finish()
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

fn handle<K: Ord + Clone, V: Default>(map: &RwLock<BTreeMap<K, Arc<V>>>, key: &K) -> Arc<V> {
    if let Some(h) = read(map).get(key) {
        return h.clone();
    }
    write(map).entry(key.clone()).or_default().clone()
}

impl MetricsRegistry {
    /// An empty registry for one broker of one cluster.
    pub fn new(cluster: impl Into<String>, broker_id: impl std::fmt::Display) -> Self {
        Self {
            inner: Arc::new(Inner {
                cluster: cluster.into(),
                broker_id: broker_id.to_string(),
                started: Instant::now(),
                topics: RwLock::default(),
                retired: TopicMetrics::default(),
                partitions: RwLock::default(),
                listeners: RwLock::default(),
                requests: API_NAMES.iter().map(|_| RequestMetrics::new()).collect(),
                gauges: Default::default(),
                disk: RwLock::default(),
                lag: RwLock::default(),
                writer: RwLock::default(),
                tail_cache: RwLock::default(),
            }),
        }
    }

    /// The cluster name given at creation.
    pub fn cluster(&self) -> &str {
        &self.inner.cluster
    }

    /// The broker id given at creation.
    pub fn broker_id(&self) -> &str {
        &self.inner.broker_id
    }

    pub(crate) fn started(&self) -> Instant {
        self.inner.started
    }

    /// The throughput handle of `topic` (created on first use).
    pub fn topic(&self, topic: &str) -> Arc<TopicMetrics> {
        handle(&self.inner.topics, &topic.to_string())
    }

    /// The log gauges of one partition (created on first use).
    pub fn partition(&self, topic: &str, partition: i32) -> Arc<PartitionMetrics> {
        handle(&self.inner.partitions, &(topic.to_string(), partition))
    }

    /// The connection gauge of a listener, e.g. `PLAINTEXT` or `SSL`.
    pub fn listener(&self, name: &str) -> Arc<ListenerMetrics> {
        handle(&self.inner.listeners, &name.to_string())
    }

    /// Forgets a deleted topic's series (its partitions and lag included);
    /// its bytes and messages stay in the broker totals.
    pub fn remove_topic(&self, topic: &str) {
        if let Some(t) = write(&self.inner.topics).remove(topic) {
            let r = &self.inner.retired;
            r.bytes_in.fetch_add(t.bytes_in.load(Relaxed), Relaxed);
            r.bytes_out.fetch_add(t.bytes_out.load(Relaxed), Relaxed);
            r.messages_in
                .fetch_add(t.messages_in.load(Relaxed), Relaxed);
            r.messages_out
                .fetch_add(t.messages_out.load(Relaxed), Relaxed);
        }
        write(&self.inner.partitions).retain(|(t, _), _| t != topic);
        write(&self.inner.lag).retain(|(_, t, _), _| t != topic);
    }

    /// Records one handled request by Kafka API key (hot path, no lock).
    /// Keys Wharf does not know are ignored.
    pub fn record_request(&self, api_key: i16, elapsed: Duration, error: bool) {
        if let Some(m) = usize::try_from(api_key)
            .ok()
            .and_then(|k| self.inner.requests.get(k))
        {
            m.record(elapsed, error);
        }
    }

    /// Sets a broker or cluster gauge.
    pub fn set_gauge(&self, gauge: BrokerGauge, value: i64) {
        if let Some(i) = GAUGES.iter().position(|(g, _)| *g == gauge) {
            self.inner.gauges[i].store(value, Relaxed);
        }
    }

    /// The data log volume's size and free bytes (for `KafkaDataLogsDiskUsed`).
    pub fn set_data_disk(&self, mountpoint: &str, size_bytes: u64, avail_bytes: u64) {
        *write(&self.inner.disk) = Some(Disk {
            mountpoint: mountpoint.to_string(),
            size_bytes,
            avail_bytes,
        });
    }

    /// Measures the volume holding `data_dir` (statvfs) and records its
    /// size and free bytes; call it from a periodic task.
    pub fn refresh_data_disk(&self, data_dir: &std::path::Path) -> Result<(), crate::Error> {
        let st = rustix::fs::statvfs(data_dir).map_err(|e| crate::Error::Disk {
            path: data_dir.to_path_buf(),
            source: e.into(),
        })?;
        // As df counts: blocks reserved for root are neither used nor
        // available to the broker, so they are left out of the size.
        let used = st.f_blocks.saturating_sub(st.f_bfree);
        let size = used.saturating_add(st.f_bavail).saturating_mul(st.f_frsize);
        let avail = st.f_bavail.saturating_mul(st.f_frsize);
        self.set_data_disk(&data_dir.to_string_lossy(), size, avail);
        Ok(())
    }

    /// How many records `group` is behind on one partition.
    pub fn set_consumer_lag(&self, group: &str, topic: &str, partition: i32, lag: i64) {
        write(&self.inner.lag).insert((group.to_string(), topic.to_string(), partition), lag);
    }

    /// Forgets a consumer group's lag (group deleted or empty).
    pub fn remove_consumer_group(&self, group: &str) {
        write(&self.inner.lag).retain(|(g, _, _), _| g != group);
    }

    /// Reports the tail cache's counters: fetched batches served from it
    /// (`hits`), read from the segments during the fetch (`misses`) and
    /// ahead of it (`read_ahead`), and the bytes it holds. Its series
    /// appear once this has been called.
    pub fn set_tail_cache(&self, hits: u64, misses: u64, read_ahead: u64, held_bytes: u64) {
        *write(&self.inner.tail_cache) = Some(TailCache {
            hits,
            misses,
            read_ahead,
            held_bytes,
        });
    }

    /// Reports the telemetry writer's counters with the broker's metrics.
    pub fn attach_writer(&self, counters: Arc<WriterCounters>) {
        *write(&self.inner.writer) = Some(counters);
    }

    /// Every series now. Read path: takes read locks, never blocks writers
    /// of existing series.
    pub fn collect(&self) -> Vec<Sample> {
        let inner = &*self.inner;
        let mut out = Vec::new();
        let mut push = |key, labels: Vec<(&'static str, String)>, value: f64| {
            out.push(Sample { key, labels, value })
        };

        // Throughput, per topic and in total.
        let topics = read(&inner.topics);
        let r = &inner.retired;
        let mut totals = [
            r.bytes_in.load(Relaxed),
            r.bytes_out.load(Relaxed),
            r.messages_in.load(Relaxed),
        ];
        for (name, t) in topics.iter() {
            let v = [
                t.bytes_in.load(Relaxed),
                t.bytes_out.load(Relaxed),
                t.messages_in.load(Relaxed),
            ];
            let l = || vec![("topic", name.clone())];
            push("bytes_in.topic", l(), v[0] as f64);
            push("bytes_out.topic", l(), v[1] as f64);
            push("messages_in.topic", l(), v[2] as f64);
            push(
                "messages_out.topic",
                l(),
                t.messages_out.load(Relaxed) as f64,
            );
            for (t, x) in totals.iter_mut().zip(v) {
                *t += x;
            }
        }
        drop(topics);
        push("bytes_in", vec![], totals[0] as f64);
        push("bytes_out", vec![], totals[1] as f64);
        push("messages_in", vec![], totals[2] as f64);

        // Requests.
        let now = Instant::now();
        for (name, m) in API_NAMES.iter().zip(&inner.requests) {
            if m.count() == 0 {
                continue;
            }
            let s = m.stats(now);
            let l = || vec![("request", name.to_string())];
            push("requests", l(), s.count as f64);
            push("request_errors", l(), s.errors as f64);
            push("request_time.mean", l(), s.window_mean_ms);
            push("request_time.p99", l(), s.window_p99_ms);
            push("request_time.count", l(), s.count as f64);
            match *name {
                "Produce" => push("produce_time.mean", vec![], s.window_mean_ms),
                "FetchConsumer" => push("fetch_consumer_time.mean", vec![], s.window_mean_ms),
                _ => {}
            }
        }

        // Broker and cluster gauges.
        for ((_, key), g) in GAUGES.iter().zip(&inner.gauges) {
            push(key, vec![], g.load(Relaxed) as f64);
        }

        // Connections.
        let mut all = 0;
        for (name, l) in read(&inner.listeners).iter() {
            let n = l.connections.load(Relaxed);
            all += n;
            push(
                "connection_count",
                vec![("listener", name.clone())],
                n as f64,
            );
        }
        push("connection_count.broker", vec![], all as f64);

        // Partition logs.
        for ((topic, p), m) in read(&inner.partitions).iter() {
            let l = || vec![("topic", topic.clone()), ("partition", p.to_string())];
            push("log_size", l(), m.log_size.load(Relaxed) as f64);
            push("log_end_offset", l(), m.log_end_offset.load(Relaxed) as f64);
            push(
                "log_start_offset",
                l(),
                m.log_start_offset.load(Relaxed) as f64,
            );
        }

        // Disk.
        if let Some(d) = read(&inner.disk).clone() {
            let l = || vec![("mountpoint", d.mountpoint.clone())];
            push("disk_avail_bytes", l(), d.avail_bytes as f64);
            push("disk_size_bytes", l(), d.size_bytes as f64);
            let used = if d.size_bytes == 0 {
                0.0
            } else {
                100.0 * (d.size_bytes.saturating_sub(d.avail_bytes)) as f64 / d.size_bytes as f64
            };
            push("disk_used_percent", vec![], used);
        }

        // Consumer lag: per partition, then sum and max per group and topic.
        let lag = read(&inner.lag);
        let mut per_topic: BTreeMap<(&str, &str), (i64, i64)> = BTreeMap::new();
        for ((g, t, p), v) in lag.iter() {
            let v = (*v).max(0);
            push(
                "offset_lag",
                vec![
                    ("groupId", g.clone()),
                    ("topic", t.clone()),
                    ("partition", p.to_string()),
                ],
                v as f64,
            );
            let e = per_topic.entry((g, t)).or_insert((0, 0));
            e.0 += v;
            e.1 = e.1.max(v);
        }
        for ((g, t), (sum, max)) in per_topic {
            let l = || vec![("groupId", g.to_string()), ("topic", t.to_string())];
            push("sum_offset_lag", l(), sum as f64);
            push("max_offset_lag", l(), max as f64);
        }
        drop(lag);

        // The telemetry writer.
        if let Some(c) = read(&inner.writer).clone() {
            let s = c.snapshot();
            for (outcome, v) in [
                ("accepted", s.accepted),
                ("written", s.written),
                ("acked", s.acked),
                ("spooled", s.spooled),
            ] {
                push(
                    "telemetry_lines",
                    vec![("outcome", outcome.into())],
                    v as f64,
                );
            }
            for (reason, v) in [
                ("queue_full", s.dropped_queue_full),
                ("spool_full", s.dropped_spool_full),
                ("spool_error", s.dropped_spool_error),
            ] {
                push(
                    "telemetry_dropped",
                    vec![("reason", reason.into())],
                    v as f64,
                );
            }
            push("telemetry_dropped.broker", vec![], s.dropped() as f64);
            push("telemetry_spool_bytes", vec![], s.spool_bytes as f64);
            push(
                "telemetry_unacked_lines",
                vec![],
                (s.spool_pending.max(s.unacked)) as f64,
            );
            push("telemetry_connected", vec![], s.connected as f64);
        }

        // The tail cache.
        if let Some(c) = *read(&inner.tail_cache) {
            let sources = [
                ("tail_cache", c.hits),
                ("segments", c.misses),
                ("read_ahead", c.read_ahead),
            ];
            for (source, v) in sources {
                push("fetch_batches", vec![("source", source.into())], v as f64);
            }
            push("tail_cache_bytes", vec![], c.held_bytes as f64);
        }
        out
    }
}

#[cfg(test)]
mod tests;
