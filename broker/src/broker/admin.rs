//! Metadata and the admin APIs: CreateTopics, DeleteTopics,
//! CreatePartitions, InitProducerId (configs are in [`super::configs`]).

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest,
    CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse, InitProducerIdRequest,
    InitProducerIdResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::configs::CONFIG_SOURCE_DEFAULT;
use super::topic::valid_topic_name;
use super::{code, open_partition, storage_error, Advertised, Broker};
use crate::storage::Engine;

pub(super) fn s(v: impl Into<String>) -> StrBytes {
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
                        if let Some(t) = self.find_topic(&name).await {
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
        let topic = self.existing_topic(name).await?;
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
        self.put_topic(name, topic.replaced(topic.config.clone(), partitions))
            .await?;
        tracing::info!(topic = name, partitions = count, "added partitions");
        Ok(())
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
