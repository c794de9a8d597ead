//! FindCoordinator, OffsetCommit, OffsetFetch and DeleteGroups: the
//! group APIs that touch committed offsets (membership lives in
//! [`crate::group`]).

use std::collections::BTreeMap;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::find_coordinator_response::Coordinator as CoordinatorEntry;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DeleteGroupsRequest, DeleteGroupsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::{storage_error, Advertised, Broker};
use crate::storage::Engine;

impl<E: Engine> Broker<E> {
    pub(crate) fn find_coordinator(
        &self,
        req: FindCoordinatorRequest,
        version: i16,
        adv: &Advertised,
    ) -> FindCoordinatorResponse {
        let mut r = FindCoordinatorResponse::default();
        if version >= 4 {
            for key in req.coordinator_keys {
                let mut c = CoordinatorEntry::default();
                c.key = key;
                c.node_id = BrokerId(self.config.node_id);
                c.host = StrBytes::from_string(adv.host.clone());
                c.port = adv.port;
                r.coordinators.push(c);
            }
        } else {
            r.node_id = BrokerId(self.config.node_id);
            r.host = StrBytes::from_string(adv.host.clone());
            r.port = adv.port;
        }
        r
    }

    pub(crate) async fn offset_commit(&self, req: OffsetCommitRequest) -> OffsetCommitResponse {
        let group = req.group_id.0.to_string();
        let check = self.groups.check_commit(
            &group,
            req.member_id.as_str(),
            req.generation_id_or_member_epoch,
        );
        let mut commits = Vec::new();
        let mut resp = OffsetCommitResponse::default();
        for t in &req.topics {
            let mut tr = OffsetCommitResponseTopic::default();
            tr.name = t.name.clone();
            for p in &t.partitions {
                let mut pr = OffsetCommitResponsePartition::default();
                pr.partition_index = p.partition_index;
                pr.error_code = check;
                if check == 0 {
                    commits.push((
                        t.name.0.to_string(),
                        p.partition_index,
                        p.committed_offset,
                        p.committed_metadata.as_ref().map(|m| m.to_string()),
                    ));
                }
                tr.partitions.push(pr);
            }
            resp.topics.push(tr);
        }
        if check == 0 && !commits.is_empty() {
            if let Err(e) = self.groups.offsets.commit(&group, commits).await {
                let code = storage_error(&e);
                for tr in &mut resp.topics {
                    for pr in &mut tr.partitions {
                        pr.error_code = code;
                    }
                }
            }
        }
        resp
    }

    pub(crate) async fn offset_fetch(
        &self,
        req: OffsetFetchRequest,
        _version: i16,
    ) -> OffsetFetchResponse {
        let group = req.group_id.0.to_string();
        let wanted: Vec<(String, Vec<i32>)> = match req.topics {
            Some(topics) => topics
                .into_iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes))
                .collect(),
            None => {
                let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                for (t, p) in self.groups.offsets.partitions_of(&group) {
                    by_topic.entry(t).or_default().push(p);
                }
                by_topic.into_iter().collect()
            }
        };
        let mut resp = OffsetFetchResponse::default();
        for (topic, partitions) in wanted {
            let mut tr = OffsetFetchResponseTopic::default();
            tr.name = TopicName(StrBytes::from_string(topic.clone()));
            for p in partitions {
                let mut pr = OffsetFetchResponsePartition::default();
                pr.partition_index = p;
                pr.committed_leader_epoch = -1;
                match self.groups.offsets.get(&group, &topic, p) {
                    Some((o, m)) => {
                        pr.committed_offset = o;
                        pr.metadata = Some(StrBytes::from_string(m.unwrap_or_default()));
                    }
                    None => {
                        pr.committed_offset = -1;
                        pr.metadata = Some(StrBytes::default());
                    }
                }
                tr.partitions.push(pr);
            }
            resp.topics.push(tr);
        }
        resp
    }

    pub(crate) async fn delete_groups(&self, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
        let mut resp = DeleteGroupsResponse::default();
        for group in req.groups_names {
            let mut r = DeletableGroupResult::default();
            r.error_code = match self.groups.delete(group.0.as_str()).await {
                Ok(code) => code,
                Err(e) => {
                    tracing::error!(group = %group.0, error = %e, "delete group failed");
                    storage_error(&e)
                }
            };
            r.group_id = group;
            resp.results.push(r);
        }
        resp
    }
}
