//! The group coordinator (classic protocol): JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup, DescribeGroups, ListGroups, DeleteGroups, and the committed
//! offsets, which are persisted as records of a state file and replayed
//! on start.

mod offsets;
mod state;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DescribeGroupsRequest, DescribeGroupsResponse, GroupId, HeartbeatRequest, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::oneshot;

pub(crate) use self::offsets::Offsets;
use self::state::{Group, Member, State};
use crate::storage::{Engine, StorageError};

pub(crate) const ILLEGAL_GENERATION: i16 = 22;
pub(crate) const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
pub(crate) const INVALID_GROUP_ID: i16 = 24;
pub(crate) const UNKNOWN_MEMBER_ID: i16 = 25;
pub(crate) const INVALID_SESSION_TIMEOUT: i16 = 26;
pub(crate) const REBALANCE_IN_PROGRESS: i16 = 27;
pub(crate) const NON_EMPTY_GROUP: i16 = 68;
pub(crate) const GROUP_ID_NOT_FOUND: i16 = 69;
pub(crate) const MEMBER_ID_REQUIRED: i16 = 79;

const MIN_SESSION_TIMEOUT_MS: i32 = 1000;
const MAX_SESSION_TIMEOUT_MS: i32 = 30 * 60 * 1000;

/// The coordinator of every group on this broker.
pub struct Coordinator<E: Engine> {
    groups: Mutex<HashMap<String, Group>>,
    pub(crate) offsets: Offsets<E>,
    initial_delay: Duration,
}

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

impl<E: Engine> Coordinator<E> {
    pub(crate) async fn open(
        engine: E,
        initial_delay_ms: u64,
    ) -> Result<Coordinator<E>, StorageError> {
        Ok(Coordinator {
            groups: Mutex::new(HashMap::new()),
            offsets: Offsets::open(engine).await?,
            initial_delay: Duration::from_millis(initial_delay_ms),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Group>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) async fn join(
        &self,
        req: JoinGroupRequest,
        version: i16,
        client_id: &str,
    ) -> JoinGroupResponse {
        let error = |code: i16, member_id: String| {
            let mut r = JoinGroupResponse::default();
            r.error_code = code;
            r.generation_id = -1;
            r.member_id = s(member_id);
            r
        };
        if req.group_id.0.is_empty() {
            return error(INVALID_GROUP_ID, String::new());
        }
        if !(MIN_SESSION_TIMEOUT_MS..=MAX_SESSION_TIMEOUT_MS).contains(&req.session_timeout_ms) {
            return error(INVALID_SESSION_TIMEOUT, req.member_id.to_string());
        }
        let rebalance_timeout = Duration::from_millis(
            if version >= 1 {
                req.rebalance_timeout_ms
            } else {
                req.session_timeout_ms
            }
            .max(0) as u64,
        );
        let now = Instant::now();
        let (rx, member_id) = {
            let mut groups = self.lock();
            let group = groups
                .entry(req.group_id.0.to_string())
                .or_insert_with(Group::new);
            if !group.members.is_empty()
                && (group.protocol_type.as_ref() != Some(&req.protocol_type)
                    || !req.protocols.iter().any(|p| {
                        group
                            .members
                            .values()
                            .all(|m| m.protocols.iter().any(|(n, _)| *n == p.name))
                    }))
            {
                return error(INCONSISTENT_GROUP_PROTOCOL, req.member_id.to_string());
            }
            let member_id = if req.member_id.is_empty() {
                let id = format!("{client_id}-{}", uuid::Uuid::new_v4());
                if version >= 4 {
                    group.pending.insert(id.clone());
                    return error(MEMBER_ID_REQUIRED, id);
                }
                id
            } else {
                let id = req.member_id.to_string();
                if !group.members.contains_key(&id) && !group.pending.remove(&id) {
                    return error(UNKNOWN_MEMBER_ID, id);
                }
                id
            };
            let (tx, rx) = oneshot::channel();
            let protocols = req
                .protocols
                .iter()
                .map(|p| (p.name.clone(), p.metadata.clone()))
                .collect();
            let member = group
                .members
                .entry(member_id.clone())
                .or_insert_with(|| Member {
                    client_id: client_id.to_string(),
                    client_host: String::new(),
                    group_instance_id: req.group_instance_id.clone(),
                    session_timeout: Duration::ZERO,
                    rebalance_timeout,
                    protocols: Vec::new(),
                    assignment: Default::default(),
                    last_seen: now,
                    join_waiter: None,
                    sync_waiter: None,
                });
            member.protocols = protocols;
            member.session_timeout = Duration::from_millis(req.session_timeout_ms as u64);
            member.rebalance_timeout = rebalance_timeout;
            member.last_seen = now;
            member.join_waiter = Some(tx);
            group.protocol_type = Some(req.protocol_type.clone());
            group.prepare_rebalance(now, self.initial_delay);
            group.maybe_complete_join(now);
            (rx, member_id)
        };
        match tokio::time::timeout(
            rebalance_timeout + self.initial_delay + Duration::from_secs(5),
            rx,
        )
        .await
        {
            Ok(Ok(resp)) => resp,
            _ => error(REBALANCE_IN_PROGRESS, member_id),
        }
    }

    pub(crate) async fn sync(&self, req: SyncGroupRequest) -> SyncGroupResponse {
        let error = |code: i16| {
            let mut r = SyncGroupResponse::default();
            r.error_code = code;
            r
        };
        let member_id = req.member_id.to_string();
        let rx = {
            let mut groups = self.lock();
            let Some(group) = groups.get_mut(req.group_id.0.as_str()) else {
                return error(UNKNOWN_MEMBER_ID);
            };
            if !group.members.contains_key(&member_id) {
                return error(UNKNOWN_MEMBER_ID);
            }
            if req.generation_id != group.generation {
                return error(ILLEGAL_GENERATION);
            }
            match group.state {
                State::Empty | State::PreparingRebalance => return error(REBALANCE_IN_PROGRESS),
                State::Stable => {
                    let m = group.members.get_mut(&member_id).expect("checked above");
                    m.last_seen = Instant::now();
                    let mut r = SyncGroupResponse::default();
                    r.protocol_type = group.protocol_type.clone();
                    r.protocol_name = group.protocol_name.clone();
                    r.assignment = m.assignment.clone();
                    return r;
                }
                State::CompletingRebalance => {}
            }
            let (tx, rx) = oneshot::channel();
            let m = group.members.get_mut(&member_id).expect("checked above");
            m.last_seen = Instant::now();
            m.sync_waiter = Some(tx);
            if group.leader.as_deref() == Some(member_id.as_str()) {
                let assignments = req
                    .assignments
                    .iter()
                    .map(|a| (a.member_id.to_string(), a.assignment.clone()))
                    .collect();
                group.complete_sync(assignments);
            }
            rx
        };
        match tokio::time::timeout(Duration::from_secs(300), rx).await {
            Ok(Ok(resp)) => resp,
            _ => error(REBALANCE_IN_PROGRESS),
        }
    }

    pub(crate) fn heartbeat(&self, req: HeartbeatRequest) -> HeartbeatResponse {
        let mut r = HeartbeatResponse::default();
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(req.group_id.0.as_str()) else {
            r.error_code = UNKNOWN_MEMBER_ID;
            return r;
        };
        let Some(m) = group.members.get_mut(req.member_id.as_str()) else {
            r.error_code = UNKNOWN_MEMBER_ID;
            return r;
        };
        m.last_seen = Instant::now();
        r.error_code = if req.generation_id != group.generation {
            ILLEGAL_GENERATION
        } else if group.state == State::PreparingRebalance {
            REBALANCE_IN_PROGRESS
        } else {
            0
        };
        r
    }

    pub(crate) fn leave(&self, req: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
        let mut r = LeaveGroupResponse::default();
        let ids: Vec<String> = if version >= 3 {
            req.members
                .iter()
                .map(|m| m.member_id.to_string())
                .collect()
        } else {
            vec![req.member_id.to_string()]
        };
        let mut groups = self.lock();
        let now = Instant::now();
        let group = groups.get_mut(req.group_id.0.as_str());
        let Some(group) = group else {
            r.error_code = UNKNOWN_MEMBER_ID;
            return r;
        };
        for id in ids {
            let known = group.members.contains_key(&id);
            if known {
                tracing::info!(group = %req.group_id.0, member = %id, "member left group");
                group.remove_member(&id, now, self.initial_delay);
            }
            if version >= 3 {
                let mut mr = MemberResponse::default();
                mr.member_id = s(id);
                mr.error_code = if known { 0 } else { UNKNOWN_MEMBER_ID };
                r.members.push(mr);
            } else if !known {
                r.error_code = UNKNOWN_MEMBER_ID;
            }
        }
        r
    }

    /// Deletes an empty group and its committed offsets (DeleteGroups);
    /// the Kafka error code when it has members or is unknown.
    pub(crate) async fn delete(&self, group: &str) -> Result<i16, StorageError> {
        if group.is_empty() {
            return Ok(INVALID_GROUP_ID);
        }
        let has_offsets = self.offsets.groups().contains(group);
        {
            let mut groups = self.lock();
            match groups.get(group) {
                Some(g) if !g.members.is_empty() => return Ok(NON_EMPTY_GROUP),
                Some(_) => {
                    groups.remove(group);
                }
                None if !has_offsets => return Ok(GROUP_ID_NOT_FOUND),
                None => {}
            }
        }
        if has_offsets {
            self.offsets.delete_group(group).await?;
        }
        tracing::info!(group, "deleted group");
        Ok(0)
    }

    /// Expires dead members and completes rebalances whose deadline passed.
    pub(crate) fn tick(&self) {
        let now = Instant::now();
        let mut groups = self.lock();
        for (name, group) in groups.iter_mut() {
            for id in group.expired_members(now) {
                tracing::info!(group = %name, member = %id, "member session expired");
                group.remove_member(&id, now, self.initial_delay);
            }
            group.maybe_complete_join(now);
        }
    }

    /// Whether `member_id` of `generation` may commit offsets for `group`.
    pub(crate) fn check_commit(&self, group: &str, member_id: &str, generation: i32) -> i16 {
        if generation < 0 && member_id.is_empty() {
            return 0;
        }
        let groups = self.lock();
        match groups.get(group) {
            None => 0,
            Some(g) if g.members.is_empty() && generation < 0 => 0,
            Some(g) if !g.members.contains_key(member_id) => UNKNOWN_MEMBER_ID,
            Some(g) if g.generation != generation => ILLEGAL_GENERATION,
            // As in Kafka: members of the current generation may commit while
            // a rebalance is being prepared (that is when they hand
            // partitions back), not while assignments are being handed out.
            Some(g) if g.state == State::CompletingRebalance => REBALANCE_IN_PROGRESS,
            Some(_) => 0,
        }
    }

    pub(crate) fn describe(&self, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
        let mut r = DescribeGroupsResponse::default();
        let groups = self.lock();
        for id in req.groups {
            let mut d = DescribedGroup::default();
            d.group_id = id.clone();
            match groups.get(id.0.as_str()) {
                None => d.group_state = s("Dead"),
                Some(g) => {
                    d.group_state = s(g.state.name());
                    d.protocol_type = g.protocol_type.clone().unwrap_or_default();
                    d.protocol_data = g.protocol_name.clone().unwrap_or_default();
                    for (mid, m) in &g.members {
                        let mut dm = DescribedGroupMember::default();
                        dm.member_id = s(mid.clone());
                        dm.group_instance_id = m.group_instance_id.clone();
                        dm.client_id = s(m.client_id.clone());
                        dm.client_host = s(m.client_host.clone());
                        dm.member_metadata = m
                            .protocols
                            .iter()
                            .find(|(n, _)| Some(n) == g.protocol_name.as_ref())
                            .map(|(_, md)| md.clone())
                            .unwrap_or_default();
                        dm.member_assignment = m.assignment.clone();
                        d.members.push(dm);
                    }
                }
            }
            r.groups.push(d);
        }
        r
    }

    pub(crate) fn list(&self, req: ListGroupsRequest) -> ListGroupsResponse {
        let mut r = ListGroupsResponse::default();
        let groups = self.lock();
        let mut names: Vec<&String> = groups.keys().collect();
        for name in self.offsets.groups() {
            if !groups.contains_key(&name) {
                let mut lg = ListedGroup::default();
                lg.group_id = GroupId(s(name));
                lg.protocol_type = s("consumer");
                lg.group_state = s("Empty");
                if req.states_filter.is_empty()
                    || req.states_filter.iter().any(|f| f.as_str() == "Empty")
                {
                    r.groups.push(lg);
                }
            }
        }
        names.sort();
        for name in names {
            let g = &groups[name];
            if !req.states_filter.is_empty()
                && !req
                    .states_filter
                    .iter()
                    .any(|f| f.as_str() == g.state.name())
            {
                continue;
            }
            let mut lg = ListedGroup::default();
            lg.group_id = GroupId(s(name.clone()));
            lg.protocol_type = g.protocol_type.clone().unwrap_or_default();
            lg.group_state = s(g.state.name());
            r.groups.push(lg);
        }
        r
    }
}
