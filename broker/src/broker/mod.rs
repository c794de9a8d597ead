//! The broker's request handling, independent of sockets: a decoded
//! [`Request`] in, a typed response out, over any storage [`Engine`].

mod admin;
pub(crate) mod configs;
mod fetch;
mod groups;
mod produce;
pub(crate) mod producers;
mod records;
#[cfg(test)]
mod tests;
pub mod topic;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, RequestKind, ResponseKind};
use tokio::sync::{watch, Mutex, RwLock};
use wharf_exporters::MetricsRegistry;

use self::producers::Producers;
use self::topic::{Partition, Topic, TopicConfig, TopicRecord};
use crate::group::Coordinator;
use crate::protocol::versions::SUPPORTED;
use crate::protocol::Request;
use crate::storage::{Engine, StorageError};

/// Kafka error codes used by the handlers.
pub(crate) mod code {
    pub(crate) const NONE: i16 = 0;
    pub(crate) const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub(crate) const CORRUPT_MESSAGE: i16 = 2;
    pub(crate) const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub(crate) const MESSAGE_TOO_LARGE: i16 = 10;
    pub(crate) const INVALID_TOPIC_EXCEPTION: i16 = 17;
    pub(crate) const UNSUPPORTED_VERSION: i16 = 35;
    pub(crate) const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub(crate) const INVALID_PARTITIONS: i16 = 37;
    pub(crate) const INVALID_REPLICATION_FACTOR: i16 = 38;
    pub(crate) const INVALID_CONFIG: i16 = 40;
    pub(crate) const INVALID_REQUEST: i16 = 42;
    pub(crate) const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
    pub(crate) const KAFKA_STORAGE_ERROR: i16 = 56;
    pub(crate) const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
}

/// When appended batches are fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlushPolicy {
    /// Before answering a produce with acks=all (the default): what
    /// acks=all acknowledges survives a crash of the machine, not only of
    /// the process. Batches written with acks=0/1 reach the OS before the
    /// answer and survive `kill -9`.
    AcksAll,
    /// Before answering every produce, whatever its acks.
    Always,
    /// Never explicitly; the OS writes back in its own time.
    Never,
}

/// Broker-wide settings.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// This broker's node id.
    pub node_id: i32,
    /// Cluster id reported in Metadata.
    pub cluster_id: String,
    /// Create unknown topics on Metadata and Produce.
    pub auto_create_topics: bool,
    /// Partitions of auto-created topics and of CreateTopics asking for -1.
    pub default_partitions: i32,
    /// Defaults for new topics.
    pub topic_defaults: TopicConfig,
    /// fsync policy.
    pub flush: FlushPolicy,
    /// How long a new group waits for more members before its first rebalance.
    pub group_initial_rebalance_delay_ms: u64,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            node_id: 0,
            cluster_id: "wharf".to_string(),
            auto_create_topics: true,
            default_partitions: 1,
            topic_defaults: TopicConfig::default(),
            flush: FlushPolicy::AcksAll,
            group_initial_rebalance_delay_ms: 3000,
        }
    }
}

/// Where the client reached us, to advertise back in Metadata and
/// FindCoordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertised {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: i32,
}

type TopicMap<L> = BTreeMap<String, Arc<Topic<L>>>;

const TOPICS_STATE: &str = "topics";

/// The broker: topics, partitions, groups, over one storage engine.
pub struct Broker<E: Engine> {
    pub(crate) config: BrokerConfig,
    pub(crate) engine: E,
    pub(crate) topics: RwLock<TopicMap<E::Log>>,
    /// Bumped after every append; long-polling fetches wait on it.
    pub(crate) appended: watch::Sender<u64>,
    pub(crate) groups: Coordinator<E>,
    next_producer_id: AtomicI64,
    metadata_lock: Mutex<()>,
    /// Counters and gauges served by the telemetry (always counted; served
    /// only when `[telemetry]` is configured).
    pub(crate) metrics: MetricsRegistry,
    /// Where audit records go, once telemetry is started.
    pub(crate) audit: OnceLock<crate::telemetry::AuditHook>,
}

impl<E: Engine + Clone> Broker<E> {
    /// Opens the broker over `engine`, recovering topics, logs and
    /// committed offsets.
    pub async fn open(config: BrokerConfig, engine: E) -> Result<Arc<Broker<E>>, StorageError> {
        let metrics = MetricsRegistry::new(config.cluster_id.clone(), config.node_id);
        Self::open_with_metrics(config, engine, metrics).await
    }

    /// [`Broker::open`], counting into `metrics` (the telemetry's registry).
    pub async fn open_with_metrics(
        config: BrokerConfig,
        engine: E,
        metrics: MetricsRegistry,
    ) -> Result<Arc<Broker<E>>, StorageError> {
        let mut topics = TopicMap::new();
        for rec in engine.read_state(TOPICS_STATE).await? {
            let rec: TopicRecord =
                serde_json::from_slice(&rec).map_err(|e| StorageError::Corrupt {
                    path: TOPICS_STATE.to_string(),
                    reason: e.to_string(),
                })?;
            let mut partitions = Vec::new();
            for p in 0..rec.partitions {
                partitions.push(open_partition(&engine, &rec.name, p, &rec.config).await?);
            }
            tracing::info!(topic = %rec.name, partitions = rec.partitions, "recovered topic");
            topics.insert(
                rec.name.clone(),
                Arc::new(Topic {
                    id: rec.id,
                    config: rec.config,
                    partitions,
                    metrics: metrics.topic(&rec.name),
                }),
            );
        }
        let groups =
            Coordinator::open(engine.clone(), config.group_initial_rebalance_delay_ms).await?;
        let now_us = crate::now_ms() * 1000;
        Ok(Arc::new(Broker {
            config,
            engine,
            topics: RwLock::new(topics),
            appended: watch::channel(0).0,
            groups,
            next_producer_id: AtomicI64::new(now_us),
            metadata_lock: Mutex::new(()),
            metrics,
            audit: OnceLock::new(),
        }))
    }
}

pub(crate) async fn open_partition<E: Engine>(
    engine: &E,
    topic: &str,
    partition: i32,
    config: &TopicConfig,
) -> Result<Arc<Mutex<Partition<E::Log>>>, StorageError> {
    use crate::storage::PartitionLog;
    let log = engine
        .open_log(topic, partition, config.log_policy())
        .await?;
    let producers = Producers::rebuild(&log.headers());
    Ok(Arc::new(Mutex::new(Partition { log, producers })))
}

impl<E: Engine> Broker<E> {
    /// Answers one request; `None` for a produce with acks=0, which gets no response.
    pub async fn handle(&self, request: Request, advertised: &Advertised) -> Option<ResponseKind> {
        let version = request.version();
        let client_id = request
            .header
            .client_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default();
        Some(match request.body {
            RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(api_versions(code::NONE)),
            RequestKind::Metadata(r) => {
                ResponseKind::Metadata(self.metadata(r, version, advertised).await)
            }
            RequestKind::Produce(r) => {
                return self.produce(r, version).await.map(ResponseKind::Produce)
            }
            RequestKind::Fetch(r) => ResponseKind::Fetch(self.fetch(r, version).await),
            RequestKind::ListOffsets(r) => {
                ResponseKind::ListOffsets(self.list_offsets(r, version).await)
            }
            RequestKind::CreateTopics(r) => {
                ResponseKind::CreateTopics(self.create_topics(r, version).await)
            }
            RequestKind::DeleteTopics(r) => {
                ResponseKind::DeleteTopics(self.delete_topics(r, version).await)
            }
            RequestKind::CreatePartitions(r) => {
                ResponseKind::CreatePartitions(self.create_partitions(r).await)
            }
            RequestKind::DescribeConfigs(r) => {
                ResponseKind::DescribeConfigs(self.describe_configs(r, version).await)
            }
            RequestKind::AlterConfigs(r) => ResponseKind::AlterConfigs(self.alter_configs(r).await),
            RequestKind::IncrementalAlterConfigs(r) => {
                ResponseKind::IncrementalAlterConfigs(self.incremental_alter_configs(r).await)
            }
            RequestKind::DeleteRecords(r) => {
                ResponseKind::DeleteRecords(self.delete_records(r).await)
            }
            RequestKind::DeleteGroups(r) => ResponseKind::DeleteGroups(self.delete_groups(r).await),
            RequestKind::InitProducerId(r) => {
                ResponseKind::InitProducerId(self.init_producer_id(r))
            }
            RequestKind::FindCoordinator(r) => {
                ResponseKind::FindCoordinator(self.find_coordinator(r, version, advertised))
            }
            RequestKind::JoinGroup(r) => {
                ResponseKind::JoinGroup(self.groups.join(r, version, &client_id).await)
            }
            RequestKind::SyncGroup(r) => ResponseKind::SyncGroup(self.groups.sync(r).await),
            RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(self.groups.heartbeat(r)),
            RequestKind::LeaveGroup(r) => ResponseKind::LeaveGroup(self.groups.leave(r, version)),
            RequestKind::OffsetCommit(r) => ResponseKind::OffsetCommit(self.offset_commit(r).await),
            RequestKind::OffsetFetch(r) => {
                ResponseKind::OffsetFetch(self.offset_fetch(r, version).await)
            }
            RequestKind::DescribeGroups(r) => ResponseKind::DescribeGroups(self.groups.describe(r)),
            RequestKind::ListGroups(r) => ResponseKind::ListGroups(self.groups.list(r)),
            _ => return None,
        })
    }

    /// Hands out a fresh producer id for idempotent producers.
    pub(crate) fn new_producer_id(&self) -> i64 {
        self.next_producer_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn notify_append(&self) {
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Topic `name`, if it exists.
    pub(crate) async fn find_topic(&self, name: &str) -> Option<Arc<Topic<E::Log>>> {
        self.topics.read().await.get(name).cloned()
    }

    /// Looks a topic up, creating it when auto-creation allows.
    pub(crate) async fn topic_or_create(
        &self,
        name: &str,
        create: bool,
    ) -> Result<Option<Arc<Topic<E::Log>>>, i16> {
        if let Some(t) = self.find_topic(name).await {
            return Ok(Some(t));
        }
        if !(create && self.config.auto_create_topics) {
            return Ok(None);
        }
        match self
            .create_topic(
                name,
                self.config.default_partitions,
                self.config.topic_defaults.clone(),
            )
            .await
        {
            Ok(()) | Err(code::TOPIC_ALREADY_EXISTS) => Ok(self.find_topic(name).await),
            Err(e) => Err(e),
        }
    }

    /// Creates a topic and persists the metadata; returns a Kafka error code on refusal.
    pub(crate) async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        config: TopicConfig,
    ) -> Result<(), i16> {
        if !topic::valid_topic_name(name) {
            return Err(code::INVALID_TOPIC_EXCEPTION);
        }
        if partitions < 1 {
            return Err(code::INVALID_PARTITIONS);
        }
        let _guard = self.metadata_lock.lock().await;
        if self.topics.read().await.contains_key(name) {
            return Err(code::TOPIC_ALREADY_EXISTS);
        }
        let mut parts = Vec::new();
        for p in 0..partitions {
            parts.push(
                open_partition(&self.engine, name, p, &config)
                    .await
                    .map_err(|e| storage_error(&e))?,
            );
        }
        let topic = Topic {
            id: uuid::Uuid::new_v4(),
            config,
            partitions: parts,
            metrics: self.metrics.topic(name),
        };
        self.put_topic(name, topic).await.map_err(|(e, _)| e)?;
        tracing::info!(topic = name, partitions, "created topic");
        Ok(())
    }

    /// Topic `name`, or UNKNOWN_TOPIC_OR_PARTITION naming it. Callers
    /// about to replace it hold the metadata lock.
    pub(crate) async fn existing_topic(
        &self,
        name: &str,
    ) -> Result<Arc<Topic<E::Log>>, (i16, String)> {
        self.find_topic(name).await.ok_or_else(|| {
            (
                code::UNKNOWN_TOPIC_OR_PARTITION,
                format!("topic `{name}` does not exist"),
            )
        })
    }

    /// Persists the topic metadata with `name` set to `topic`, then makes
    /// it visible. The caller holds the metadata lock.
    pub(crate) async fn put_topic(
        &self,
        name: &str,
        topic: Topic<E::Log>,
    ) -> Result<(), (i16, String)> {
        let mut map = self.topics.read().await.clone();
        map.insert(name.to_string(), Arc::new(topic));
        self.save_topics(&map)
            .await
            .map_err(|e| (e, format!("cannot save the metadata of topic `{name}`")))?;
        *self.topics.write().await = map;
        Ok(())
    }

    /// Every topic with its name, as it is now.
    pub(crate) async fn topic_list(&self) -> Vec<(String, Arc<Topic<E::Log>>)> {
        self.topics
            .read()
            .await
            .iter()
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect()
    }

    pub(crate) async fn save_topics(&self, map: &TopicMap<E::Log>) -> Result<(), i16> {
        let records: Vec<Bytes> = map
            .iter()
            .map(|(name, t)| {
                Bytes::from(serde_json::to_vec(&t.record(name)).expect("topic records serialize"))
            })
            .collect();
        self.engine
            .write_state(TOPICS_STATE, &records)
            .await
            .map_err(|e| storage_error(&e))
    }

    /// Applies every topic's retention; called periodically by the server.
    pub async fn apply_retention(&self) {
        use crate::storage::PartitionLog;
        let topics = self.topic_list().await;
        let now = crate::now_ms();
        for (name, topic) in topics {
            let policy = topic.config.log_policy();
            for (i, p) in topic.partitions.iter().enumerate() {
                match p.lock().await.log.apply_retention(&policy, now).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(topic = %name, partition = i, segments = n, "retention deleted segments")
                    }
                    Err(e) => {
                        tracing::error!(topic = %name, partition = i, error = %e, "retention failed")
                    }
                }
            }
        }
    }

    /// Flushes every partition (used at shutdown).
    pub async fn flush_all(&self) {
        use crate::storage::PartitionLog;
        let topics: Vec<Arc<Topic<E::Log>>> = self.topics.read().await.values().cloned().collect();
        for topic in topics {
            for p in &topic.partitions {
                if let Err(e) = p.lock().await.log.flush().await {
                    tracing::error!(error = %e, "flush failed");
                }
            }
        }
    }

    /// Expires group members whose session timed out; called periodically.
    pub fn tick_groups(&self) {
        self.groups.tick();
    }
}

pub(crate) fn storage_error(e: &StorageError) -> i16 {
    tracing::error!(error = %e, "storage error");
    code::KAFKA_STORAGE_ERROR
}

/// The ApiVersions body: every implemented API and its range.
pub fn api_versions(error_code: i16) -> ApiVersionsResponse {
    let mut r = ApiVersionsResponse::default();
    r.error_code = error_code;
    r.api_keys = SUPPORTED
        .iter()
        .map(|(key, min, max)| {
            let mut v = ApiVersion::default();
            v.api_key = *key as i16;
            v.min_version = *min;
            v.max_version = *max;
            v
        })
        .collect();
    r
}

/// True for the API keys whose requests mutate cluster state (for audit).
pub fn is_admin(api: ApiKey) -> bool {
    matches!(
        api,
        ApiKey::CreateTopics
            | ApiKey::DeleteTopics
            | ApiKey::CreatePartitions
            | ApiKey::AlterConfigs
            | ApiKey::IncrementalAlterConfigs
            | ApiKey::DeleteRecords
            | ApiKey::DeleteGroups
    )
}
