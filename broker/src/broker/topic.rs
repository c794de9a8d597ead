//! Topics, their per-topic configuration and their partitions.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::producers::Producers;
use crate::storage::{LogPolicy, PartitionLog};

/// Per-topic settings, Kafka config names in comments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    /// `retention.ms` (-1: forever).
    pub retention_ms: i64,
    /// `retention.bytes` (-1: unlimited).
    pub retention_bytes: i64,
    /// `segment.bytes`.
    pub segment_bytes: u64,
    /// `segment.ms`.
    pub segment_ms: i64,
    /// `max.message.bytes`: the largest record batch accepted.
    pub max_message_bytes: i32,
    /// `message.timestamp.type` is `LogAppendTime`.
    pub log_append_time: bool,
}

impl TopicConfig {
    /// The storage policy for this topic's partitions.
    pub fn log_policy(&self) -> LogPolicy {
        LogPolicy {
            segment_bytes: self.segment_bytes,
            segment_ms: self.segment_ms,
            retention_ms: self.retention_ms,
            retention_bytes: self.retention_bytes,
        }
    }

    /// Applies one Kafka topic config; the error names the key or value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let int = |v: &str| {
            v.parse::<i64>()
                .map_err(|_| format!("`{key}` must be an integer, not `{v}`"))
        };
        match key {
            "retention.ms" => self.retention_ms = int(value)?,
            "retention.bytes" => self.retention_bytes = int(value)?,
            "segment.bytes" => {
                self.segment_bytes = u64::try_from(int(value)?)
                    .ok()
                    .filter(|b| *b >= 1024)
                    .ok_or("`segment.bytes` must be at least 1024")?
            }
            "segment.ms" => self.segment_ms = int(value)?.max(1),
            "max.message.bytes" => {
                self.max_message_bytes = i32::try_from(int(value)?)
                    .ok()
                    .filter(|b| *b > 0)
                    .ok_or("`max.message.bytes` must be positive")?
            }
            "message.timestamp.type" => {
                self.log_append_time = match value {
                    "LogAppendTime" => true,
                    "CreateTime" => false,
                    _ => {
                        return Err(
                            "`message.timestamp.type` must be CreateTime or LogAppendTime".into(),
                        )
                    }
                }
            }
            "cleanup.policy" if value == "delete" => {}
            "cleanup.policy" => {
                return Err(format!(
                    "only `cleanup.policy=delete` is supported, not `{value}`"
                ))
            }
            _ => return Err(unknown_key(key)),
        }
        Ok(())
    }

    /// Sets `key` back to its value in `defaults` (IncrementalAlterConfigs
    /// DELETE); the error names an unknown key.
    pub fn reset(&mut self, key: &str, defaults: &TopicConfig) -> Result<(), String> {
        let value = defaults.value(key).ok_or_else(|| unknown_key(key))?;
        self.set(key, &value)
    }

    /// Adds (`append`) or removes the comma-separated `items` to or from
    /// the list config `key` (IncrementalAlterConfigs APPEND and
    /// SUBTRACT). The only list config here is `cleanup.policy`; other
    /// keys are refused with a message naming them.
    pub fn change_list(&mut self, key: &str, items: &str, append: bool) -> Result<(), String> {
        let current = self.value(key).ok_or_else(|| unknown_key(key))?;
        if !LIST_CONFIGS.contains(&key) {
            return Err(format!(
                "`{key}` is not a list config: APPEND and SUBTRACT apply only to {}; use SET",
                LIST_CONFIGS.join(", ")
            ));
        }
        let mut list: Vec<&str> = current.split(',').filter(|v| !v.is_empty()).collect();
        for item in items.split(',').map(str::trim).filter(|v| !v.is_empty()) {
            if append && !list.contains(&item) {
                list.push(item);
            } else if !append {
                list.retain(|v| *v != item);
            }
        }
        self.set(key, &list.join(","))
    }

    /// The current value of `key` as Kafka prints it.
    pub fn value(&self, key: &str) -> Option<String> {
        self.entries()
            .into_iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// Every config as Kafka names and prints it.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        vec![
            ("cleanup.policy", "delete".to_string()),
            ("retention.ms", self.retention_ms.to_string()),
            ("retention.bytes", self.retention_bytes.to_string()),
            ("segment.bytes", self.segment_bytes.to_string()),
            ("segment.ms", self.segment_ms.to_string()),
            ("max.message.bytes", self.max_message_bytes.to_string()),
            (
                "message.timestamp.type",
                if self.log_append_time {
                    "LogAppendTime"
                } else {
                    "CreateTime"
                }
                .to_string(),
            ),
        ]
    }
}

impl Default for TopicConfig {
    fn default() -> Self {
        let policy = LogPolicy::default();
        TopicConfig {
            retention_ms: policy.retention_ms,
            retention_bytes: policy.retention_bytes,
            segment_bytes: policy.segment_bytes,
            segment_ms: policy.segment_ms,
            max_message_bytes: 1024 * 1024 + 12,
            log_append_time: false,
        }
    }
}

/// Per-topic configs Kafka defines as lists.
const LIST_CONFIGS: &[&str] = &["cleanup.policy"];

fn unknown_key(key: &str) -> String {
    format!("unknown or unsupported topic config `{key}`")
}

/// A topic as stored in the broker's metadata state file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TopicRecord {
    pub(crate) name: String,
    pub(crate) id: uuid::Uuid,
    pub(crate) partitions: i32,
    pub(crate) config: TopicConfig,
}

/// One partition: its log and its producers' sequence state.
#[derive(Debug)]
pub(crate) struct Partition<L> {
    pub(crate) log: L,
    pub(crate) producers: Producers,
}

/// A live topic. Replaced as a whole (copy on write) when partitions are added.
#[derive(Debug)]
pub(crate) struct Topic<L> {
    pub(crate) id: uuid::Uuid,
    pub(crate) config: TopicConfig,
    pub(crate) partitions: Vec<Arc<Mutex<Partition<L>>>>,
    /// This topic's throughput counters (looked up once, updated lock-free).
    pub(crate) metrics: Arc<wharf_exporters::registry::TopicMetrics>,
}

impl<L: PartitionLog> Topic<L> {
    /// The same topic (id, counters) with another config and partition list.
    pub(crate) fn replaced(
        &self,
        config: TopicConfig,
        partitions: Vec<Arc<Mutex<Partition<L>>>>,
    ) -> Topic<L> {
        Topic {
            id: self.id,
            config,
            partitions,
            metrics: self.metrics.clone(),
        }
    }

    /// Partition `index`, if the topic has it (negative indexes never match).
    pub(crate) fn partition(&self, index: i32) -> Option<&Arc<Mutex<Partition<L>>>> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }

    pub(crate) fn record(&self, name: &str) -> TopicRecord {
        TopicRecord {
            name: name.to_string(),
            id: self.id,
            partitions: self.partitions.len() as i32,
            config: self.config.clone(),
        }
    }
}

/// Kafka's topic-name rule: 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}
