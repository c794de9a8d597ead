//! Topic configs: DescribeConfigs, AlterConfigs and
//! IncrementalAlterConfigs.
//!
//! Only topic resources can be altered; broker configs come from the
//! broker's TOML file and are described read-only. A change is applied
//! under the metadata lock to the current config, persisted with the
//! topic metadata, then handed to the partitions' logs (segment roll
//! policy); retention and produce read the topic's config each time.
//! AlterConfigs replaces a topic's whole set (keys not named go back to
//! the broker's defaults, as in Kafka); IncrementalAlterConfigs changes
//! only the keys named.

use std::collections::HashSet;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};

use kafka_protocol::protocol::StrBytes;

use super::admin::s;
use super::topic::TopicConfig;
use super::{code, Broker};
use crate::storage::{Engine, PartitionLog};

/// Kafka's resource types (`ConfigResource.Type`).
pub(crate) const RESOURCE_TOPIC: i8 = 2;
pub(crate) const RESOURCE_BROKER: i8 = 4;
pub(crate) const RESOURCE_BROKER_LOGGER: i8 = 8;
/// Kafka's config sources (`DescribeConfigsResponse.ConfigSource`).
const CONFIG_SOURCE_TOPIC: i8 = 1;
pub(super) const CONFIG_SOURCE_DEFAULT: i8 = 5;

/// IncrementalAlterConfigs operations (`AlterConfigOp.OpType`).
pub(crate) const OP_SET: i8 = 0;
pub(crate) const OP_DELETE: i8 = 1;
pub(crate) const OP_APPEND: i8 = 2;
pub(crate) const OP_SUBTRACT: i8 = 3;

/// A refused change: Kafka error code and a message naming the problem.
type Refusal = (i16, String);

/// One change to a topic config.
enum Change {
    Set(String, String),
    /// Back to the broker's default.
    Reset(String),
    Append(String, String),
    Subtract(String, String),
}

impl Change {
    fn key(&self) -> &str {
        match self {
            Change::Set(k, _)
            | Change::Reset(k)
            | Change::Append(k, _)
            | Change::Subtract(k, _) => k,
        }
    }

    fn apply(&self, config: &mut TopicConfig, defaults: &TopicConfig) -> Result<(), String> {
        match self {
            Change::Set(k, v) => config.set(k, v),
            Change::Reset(k) => config.reset(k, defaults),
            Change::Append(k, v) => config.change_list(k, v, true),
            Change::Subtract(k, v) => config.change_list(k, v, false),
        }
    }

    /// An IncrementalAlterConfigs entry.
    fn incremental(key: &str, op: i8, value: Option<&str>) -> Result<Change, Refusal> {
        let key = key.to_string();
        let needs_value = |v: Option<&str>| {
            v.map(str::to_string).ok_or_else(|| {
                (
                    code::INVALID_CONFIG,
                    format!("`{key}`: operation {} needs a value", op_name(op)),
                )
            })
        };
        Ok(match op {
            OP_SET => Change::Set(key.clone(), needs_value(value)?),
            OP_DELETE => Change::Reset(key),
            OP_APPEND => Change::Append(key.clone(), needs_value(value)?),
            OP_SUBTRACT => Change::Subtract(key.clone(), needs_value(value)?),
            other => {
                return Err((
                    code::INVALID_REQUEST,
                    format!(
                        "`{key}`: config operation {other} is not SET (0), DELETE (1), \
                         APPEND (2) or SUBTRACT (3)"
                    ),
                ))
            }
        })
    }
}

/// Kafka's name of an IncrementalAlterConfigs operation.
pub(crate) fn op_name(op: i8) -> String {
    match op {
        OP_SET => "SET".into(),
        OP_DELETE => "DELETE".into(),
        OP_APPEND => "APPEND".into(),
        OP_SUBTRACT => "SUBTRACT".into(),
        other => other.to_string(),
    }
}

/// Kafka's name of a config resource type.
pub(crate) fn resource_type_name(t: i8) -> String {
    match t {
        RESOURCE_TOPIC => "TOPIC".into(),
        RESOURCE_BROKER => "BROKER".into(),
        RESOURCE_BROKER_LOGGER => "BROKER_LOGGER".into(),
        other => other.to_string(),
    }
}

/// Resources named more than once in one request (Kafka refuses them all).
fn repeated<'a>(resources: impl Iterator<Item = (i8, &'a str)>) -> HashSet<(i8, String)> {
    let mut seen = HashSet::new();
    let mut twice = HashSet::new();
    for (t, n) in resources {
        if !seen.insert((t, n.to_string())) {
            twice.insert((t, n.to_string()));
        }
    }
    twice
}

/// The response entries of AlterConfigs or IncrementalAlterConfigs
/// (generated types with the same fields) for `(type, name, result)`
/// outcomes.
macro_rules! resource_responses {
    ($entry:ty, $outcomes:expr) => {
        $outcomes
            .into_iter()
            .map(|(resource_type, resource_name, result)| {
                let mut r = <$entry>::default();
                r.resource_type = resource_type;
                r.resource_name = resource_name;
                if let Err((e, m)) = result {
                    r.error_code = e;
                    r.error_message = Some(s(m));
                }
                r
            })
            .collect()
    };
}

impl<E: Engine> Broker<E> {
    pub(crate) async fn describe_configs(
        &self,
        req: DescribeConfigsRequest,
        version: i16,
    ) -> DescribeConfigsResponse {
        let mut resp = DescribeConfigsResponse::default();
        for res in req.resources {
            let mut r = DescribeConfigsResult::default();
            r.resource_type = res.resource_type;
            r.resource_name = res.resource_name.clone();
            let defaults = &self.config.topic_defaults;
            // (name, value, source): a topic's value is its own (TOPIC)
            // unless it equals the broker's default for new topics.
            let entries: Vec<(&str, String, i8)> = match res.resource_type {
                RESOURCE_TOPIC => match self.find_topic(&res.resource_name).await {
                    Some(t) => t
                        .config
                        .entries()
                        .into_iter()
                        .map(|(k, v)| {
                            let source = if defaults.value(k).as_ref() == Some(&v) {
                                CONFIG_SOURCE_DEFAULT
                            } else {
                                CONFIG_SOURCE_TOPIC
                            };
                            (k, v, source)
                        })
                        .collect(),
                    None => {
                        r.error_code = code::UNKNOWN_TOPIC_OR_PARTITION;
                        r.error_message =
                            Some(s(format!("topic `{}` does not exist", res.resource_name)));
                        Vec::new()
                    }
                },
                RESOURCE_BROKER => {
                    let mut e = defaults.entries();
                    e.push((
                        "auto.create.topics.enable",
                        self.config.auto_create_topics.to_string(),
                    ));
                    e.push(("num.partitions", self.config.default_partitions.to_string()));
                    e.into_iter()
                        .map(|(k, v)| (k, v, CONFIG_SOURCE_DEFAULT))
                        .collect()
                }
                _ => {
                    r.error_code = code::INVALID_REQUEST;
                    r.error_message = Some(s("only topic and broker resources are described"));
                    Vec::new()
                }
            };
            let wanted = res.configuration_keys.as_ref();
            for (k, v, source) in entries {
                if wanted.is_some_and(|w| !w.iter().any(|x| x.as_str() == k)) {
                    continue;
                }
                let mut c = DescribeConfigsResourceResult::default();
                c.name = s(k);
                c.value = Some(s(v));
                c.read_only = res.resource_type == RESOURCE_BROKER;
                if version >= 1 {
                    c.config_source = source;
                }
                r.configs.push(c);
            }
            resp.results.push(r);
        }
        resp
    }

    pub(crate) async fn alter_configs(&self, req: AlterConfigsRequest) -> AlterConfigsResponse {
        let resources = req.resources.into_iter().map(|res| {
            let changes = res
                .configs
                .iter()
                .map(|c| {
                    let key = c.name.to_string();
                    Ok(match &c.value {
                        Some(v) => Change::Set(key, v.to_string()),
                        None => Change::Reset(key),
                    })
                })
                .collect();
            (res.resource_type, res.resource_name, changes)
        });
        let outcomes = self
            .alter_all(resources.collect(), true, req.validate_only)
            .await;
        let mut resp = AlterConfigsResponse::default();
        resp.responses = resource_responses!(
            alter_configs_response::AlterConfigsResourceResponse,
            outcomes
        );
        resp
    }

    pub(crate) async fn incremental_alter_configs(
        &self,
        req: IncrementalAlterConfigsRequest,
    ) -> IncrementalAlterConfigsResponse {
        let resources = req.resources.into_iter().map(|res| {
            let changes = res
                .configs
                .iter()
                .map(|c| {
                    Change::incremental(
                        c.name.as_str(),
                        c.config_operation,
                        c.value.as_ref().map(|v| v.as_str()),
                    )
                })
                .collect();
            (res.resource_type, res.resource_name, changes)
        });
        let outcomes = self
            .alter_all(resources.collect(), false, req.validate_only)
            .await;
        let mut resp = IncrementalAlterConfigsResponse::default();
        resp.responses = resource_responses!(
            incremental_alter_configs_response::AlterConfigsResourceResponse,
            outcomes
        );
        resp
    }

    /// Alters each `(type, name, changes)` resource in turn (a resource
    /// named twice is refused, as in Kafka) and returns each outcome.
    async fn alter_all(
        &self,
        resources: Vec<(i8, StrBytes, Result<Vec<Change>, Refusal>)>,
        replace: bool,
        validate_only: bool,
    ) -> Vec<(i8, StrBytes, Result<(), Refusal>)> {
        let twice = repeated(resources.iter().map(|(t, n, _)| (*t, n.as_str())));
        let mut out = Vec::with_capacity(resources.len());
        for (resource_type, name, changes) in resources {
            let result = if twice.contains(&(resource_type, name.to_string())) {
                Err((
                    code::INVALID_REQUEST,
                    format!("resource `{name}` appears more than once in the request"),
                ))
            } else {
                self.alter_resource(resource_type, &name, changes, replace, validate_only)
                    .await
            };
            out.push((resource_type, name, result));
        }
        out
    }

    /// Checks and applies `changes` to one resource: onto the broker's
    /// defaults when `replace` (AlterConfigs), else onto the current
    /// config; nothing is changed when `validate_only`.
    async fn alter_resource(
        &self,
        resource_type: i8,
        name: &str,
        changes: Result<Vec<Change>, Refusal>,
        replace: bool,
        validate_only: bool,
    ) -> Result<(), Refusal> {
        match resource_type {
            RESOURCE_TOPIC => {}
            RESOURCE_BROKER | RESOURCE_BROKER_LOGGER => {
                return Err((
                    code::INVALID_REQUEST,
                    "broker configs cannot be altered at runtime: set them in the broker's \
                     TOML file ([log] holds the defaults for new topics) and restart"
                        .into(),
                ))
            }
            other => {
                return Err((
                    code::INVALID_REQUEST,
                    format!("resource type {other} cannot be altered: only topic (2) configs can"),
                ))
            }
        }
        let changes = changes?;
        let mut keys = HashSet::new();
        if let Some(c) = changes.iter().find(|c| !keys.insert(c.key())) {
            return Err((
                code::INVALID_REQUEST,
                format!("config `{}` appears more than once for `{name}`", c.key()),
            ));
        }
        let defaults = &self.config.topic_defaults;
        self.update_topic_config(name, validate_only, |current| {
            let mut config = if replace {
                defaults.clone()
            } else {
                current.clone()
            };
            for change in &changes {
                change
                    .apply(&mut config, defaults)
                    .map_err(|m| (code::INVALID_CONFIG, m))?;
            }
            Ok(config)
        })
        .await
    }

    /// Replaces topic `name`'s config with what `update` makes of the
    /// current one: persisted with the topic metadata, then given to the
    /// partitions' logs. Nothing changes when `validate_only`.
    pub(crate) async fn update_topic_config(
        &self,
        name: &str,
        validate_only: bool,
        update: impl FnOnce(&TopicConfig) -> Result<TopicConfig, Refusal>,
    ) -> Result<(), Refusal> {
        let _guard = self.metadata_lock.lock().await;
        let topic = self.existing_topic(name).await?;
        let config = update(&topic.config)?;
        if validate_only || config == topic.config {
            return Ok(());
        }
        let changed: Vec<String> = config
            .entries()
            .into_iter()
            .zip(topic.config.entries())
            .filter(|(new, old)| new.1 != old.1)
            .map(|(new, _)| format!("{}={}", new.0, new.1))
            .collect();
        self.put_topic(
            name,
            topic.replaced(config.clone(), topic.partitions.clone()),
        )
        .await?;
        for p in &topic.partitions {
            p.lock().await.log.set_policy(config.log_policy());
        }
        tracing::info!(topic = name, changed = %changed.join(","), "altered topic config");
        Ok(())
    }
}
