//! Metadata and the admin APIs: CreateTopics, DeleteTopics,
//! CreatePartitions, DescribeConfigs, InitProducerId.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest,
    CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse, DescribeConfigsRequest,
    DescribeConfigsResponse, InitProducerIdRequest, InitProducerIdResponse, MetadataRequest,
    MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::topic::{valid_topic_name, Topic};
use super::{code, open_partition, storage_error, Advertised, Broker};
use crate::storage::Engine;
use std::sync::Arc;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const CONFIG_SOURCE_TOPIC: i8 = 1;
const CONFIG_SOURCE_DEFAULT: i8 = 5;

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

impl<E: Engine> Broker<E> {
    pub(crate) async fn metadata(
        &self,
        req: MetadataRequest,
        version: i16,
        adv: &Advertised,
    ) -> MetadataResponse {
        let mut resp = MetadataResponse::default();
        let mut broker = MetadataResponseBroker::default();
        broker.node_id = BrokerId(self.config.node_id);
        broker.host = s(adv.host.clone());
        broker.port = adv.port;
        resp.brokers.push(broker);
        if version >= 2 {
            resp.cluster_id = Some(s(self.config.cluster_id.clone()));
        }
        resp.controller_id = BrokerId(self.config.node_id);
        let allow_create = version < 4 || req.allow_auto_topic_creation;
        let names: Vec<String> = match req.topics {
            None => self.topics.read().await.keys().cloned().collect(),
            Some(t) if t.is_empty() && version == 0 => {
                self.topics.read().await.keys().cloned().collect()
            }
            Some(t) => t
                .into_iter()
                .filter_map(|t| t.name.map(|n| n.0.to_string()))
                .collect(),
        };
        for name in names {
            let mut tr = MetadataResponseTopic::default();
            tr.name = Some(TopicName(s(name.clone())));
            match self.topic_or_create(&name, allow_create).await {
                Ok(Some(topic)) => {
                    if version >= 10 {
                        tr.topic_id = topic.id;
                    }
                    for i in 0..topic.partitions.len() as i32 {
                        let mut p = MetadataResponsePartition::default();
                        p.partition_index = i;
                        p.leader_id = BrokerId(self.config.node_id);
                        p.leader_epoch = -1;
                        p.replica_nodes = vec![BrokerId(self.config.node_id)];
                        p.isr_nodes = vec![BrokerId(self.config.node_id)];
                        tr.partitions.push(p);
                    }
                }
                Ok(None) => tr.error_code = code::UNKNOWN_TOPIC_OR_PARTITION,
                Err(e) => tr.error_code = e,
            }
            resp.topics.push(tr);
        }
        resp
    }

    pub(crate) async fn create_topics(
        &self,
        req: CreateTopicsRequest,
        version: i16,
    ) -> CreateTopicsResponse {
        let mut resp = CreateTopicsResponse::default();
        for t in req.topics {
            let name = t.name.0.to_string();
            let mut r = CreatableTopicResult::default();
            r.name = t.name.clone();
            let partitions = if t.num_partitions == -1 {
                if t.assignments.is_empty() {
                    self.config.default_partitions
                } else {
                    t.assignments.len() as i32
                }
            } else {
                t.num_partitions
            };
            let mut config = self.config.topic_defaults.clone();
            let mut error: Option<(i16, String)> = None;
            if !(t.replication_factor == -1 || t.replication_factor == 1) {
                error = Some((
                    code::INVALID_REPLICATION_FACTOR,
                    "this broker is a single node: use replication factor 1 or -1".into(),
                ));
            }
            for c in &t.configs {
                if let Some(v) = &c.value {
                    if let Err(m) = config.set(c.name.as_str(), v.as_str()) {
                        error.get_or_insert((code::INVALID_CONFIG, m));
                    }
                }
            }
            if error.is_none() {
                if !valid_topic_name(&name) {
                    error = Some((
                        code::INVALID_TOPIC_EXCEPTION,
                        format!("`{name}` is not a legal topic name"),
                    ));
                } else if self.topics.read().await.contains_key(&name) {
                    error = Some((
                        code::TOPIC_ALREADY_EXISTS,
                        format!("topic `{name}` already exists"),
                    ));
                } else if partitions < 1 {
                    error = Some((
                        code::INVALID_PARTITIONS,
                        "the number of partitions must be at least 1".into(),
                    ));
                } else if !req.validate_only {
                    if let Err(e) = self.create_topic(&name, partitions, config.clone()).await {
                        error = Some((e, format!("cannot create topic `{name}`")));
                    }
                }
            }
            match error {
                Some((e, m)) => {
                    r.error_code = e;
                    r.error_message = Some(s(m));
                }
                None => {
                    if version >= 5 {
                        r.num_partitions = partitions;
                        r.replication_factor = 1;
                        r.configs = Some(
                            config
                                .entries()
                                .into_iter()
                                .map(|(k, v)| {
                                    let mut c = CreatableTopicConfigs::default();
                                    c.name = s(k);
                                    c.value = Some(s(v));
                                    c.config_source = CONFIG_SOURCE_DEFAULT;
                                    c
                                })
                                .collect(),
                        );
                    }
                    if version >= 7 {
                        if let Some(t) = self.topics.read().await.get(&name) {
                            r.topic_id = t.id;
                        }
                    }
                }
            }
            resp.topics.push(r);
        }
        resp
    }

    pub(crate) async fn delete_topics(
        &self,
        req: DeleteTopicsRequest,
        _version: i16,
    ) -> DeleteTopicsResponse {
        let mut resp = DeleteTopicsResponse::default();
        let names: Vec<TopicName> = req
            .topic_names
            .into_iter()
            .chain(req.topics.into_iter().filter_map(|t| t.name))
            .collect();
        for name in names {
            let mut r = DeletableTopicResult::default();
            r.name = Some(name.clone());
            r.error_code = self
                .delete_topic(name.0.as_str())
                .await
                .err()
                .unwrap_or(code::NONE);
            resp.responses.push(r);
        }
        resp
    }

    async fn delete_topic(&self, name: &str) -> Result<(), i16> {
        let _guard = self.metadata_lock.lock().await;
        let mut map = self.topics.read().await.clone();
        if map.remove(name).is_none() {
            return Err(code::UNKNOWN_TOPIC_OR_PARTITION);
        }
        self.save_topics(&map).await?;
        *self.topics.write().await = map;
        self.metrics.remove_topic(name);
        self.engine
            .delete_topic(name)
            .await
            .map_err(|e| storage_error(&e))?;
        tracing::info!(topic = name, "deleted topic");
        Ok(())
    }

    pub(crate) async fn create_partitions(
        &self,
        req: CreatePartitionsRequest,
    ) -> CreatePartitionsResponse {
        let mut resp = CreatePartitionsResponse::default();
        for t in req.topics {
            let mut r = CreatePartitionsTopicResult::default();
            r.name = t.name.clone();
            if let Err((e, m)) = self
                .add_partitions(t.name.0.as_str(), t.count, req.validate_only)
                .await
            {
                r.error_code = e;
                r.error_message = Some(s(m));
            }
            resp.results.push(r);
        }
        resp
    }

    async fn add_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), (i16, String)> {
        let _guard = self.metadata_lock.lock().await;
        let mut map = self.topics.read().await.clone();
        let Some(topic) = map.get(name).cloned() else {
            return Err((
                code::UNKNOWN_TOPIC_OR_PARTITION,
                format!("topic `{name}` does not exist"),
            ));
        };
        let current = topic.partitions.len() as i32;
        if count <= current {
            return Err((
                code::INVALID_PARTITIONS,
                format!("topic `{name}` already has {current} partitions"),
            ));
        }
        if validate_only {
            return Ok(());
        }
        let mut partitions = topic.partitions.clone();
        for p in current..count {
            let part = open_partition(&self.engine, name, p, &topic.config)
                .await
                .map_err(|e| (storage_error(&e), "storage error".to_string()))?;
            partitions.push(part);
        }
        map.insert(
            name.to_string(),
            Arc::new(Topic {
                id: topic.id,
                config: topic.config.clone(),
                partitions,
                metrics: topic.metrics.clone(),
            }),
        );
        self.save_topics(&map)
            .await
            .map_err(|e| (e, "cannot save topic metadata".to_string()))?;
        *self.topics.write().await = map;
        tracing::info!(topic = name, partitions = count, "added partitions");
        Ok(())
    }

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
            let (entries, source): (Vec<(&str, String)>, i8) = match res.resource_type {
                RESOURCE_TOPIC => match self.topics.read().await.get(res.resource_name.as_str()) {
                    Some(t) => (t.config.entries(), CONFIG_SOURCE_TOPIC),
                    None => {
                        r.error_code = code::UNKNOWN_TOPIC_OR_PARTITION;
                        r.error_message =
                            Some(s(format!("topic `{}` does not exist", res.resource_name)));
                        (Vec::new(), 0)
                    }
                },
                RESOURCE_BROKER => {
                    let mut e = self.config.topic_defaults.entries();
                    e.push((
                        "auto.create.topics.enable",
                        self.config.auto_create_topics.to_string(),
                    ));
                    e.push(("num.partitions", self.config.default_partitions.to_string()));
                    (e, CONFIG_SOURCE_DEFAULT)
                }
                _ => {
                    r.error_code = code::INVALID_REQUEST;
                    r.error_message = Some(s("only topic and broker resources are described"));
                    (Vec::new(), 0)
                }
            };
            let wanted = res.configuration_keys.as_ref();
            for (k, v) in entries {
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

    pub(crate) fn init_producer_id(&self, req: InitProducerIdRequest) -> InitProducerIdResponse {
        let mut resp = InitProducerIdResponse::default();
        if req.transactional_id.is_some() {
            resp.error_code = code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
            return resp;
        }
        if req.producer_id.0 >= 0 && req.producer_epoch >= 0 && req.producer_epoch < i16::MAX {
            resp.producer_id = req.producer_id;
            resp.producer_epoch = req.producer_epoch + 1;
        } else {
            resp.producer_id = self.new_producer_id().into();
            resp.producer_epoch = 0;
        }
        resp
    }
}
