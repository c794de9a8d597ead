//! One consumer group's membership state machine (the classic protocol).
//!
//! ```text
//! Empty ──join──▶ PreparingRebalance ──all joined / deadline──▶ CompletingRebalance
//!   ▲                  ▲      ▲                                      │ leader syncs
//!   └──last leaves─────┘      └──join, leave, session expiry──── Stable ◀┘
//! ```
//!
//! Joins and syncs wait on oneshot channels that are answered when the
//! phase completes; dropping a sender answers REBALANCE_IN_PROGRESS.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupResponse, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::oneshot;

/// Group states, named as Kafka names them in DescribeGroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl State {
    pub(crate) fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
        }
    }
}

#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) group_instance_id: Option<StrBytes>,
    pub(crate) session_timeout: Duration,
    pub(crate) rebalance_timeout: Duration,
    pub(crate) protocols: Vec<(StrBytes, Bytes)>,
    pub(crate) assignment: Bytes,
    pub(crate) last_seen: Instant,
    pub(crate) join_waiter: Option<oneshot::Sender<JoinGroupResponse>>,
    pub(crate) sync_waiter: Option<oneshot::Sender<SyncGroupResponse>>,
}

#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) state: State,
    pub(crate) generation: i32,
    pub(crate) protocol_type: Option<StrBytes>,
    pub(crate) protocol_name: Option<StrBytes>,
    pub(crate) leader: Option<String>,
    pub(crate) members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not joined yet.
    pub(crate) pending: HashSet<String>,
    /// When PreparingRebalance gives up on members that did not rejoin.
    pub(crate) deadline: Instant,
    /// A new group waits this long for more members before its first generation.
    pub(crate) initial_delay_until: Option<Instant>,
}

impl Group {
    pub(crate) fn new() -> Group {
        Group {
            state: State::Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            pending: HashSet::new(),
            deadline: Instant::now(),
            initial_delay_until: None,
        }
    }

    /// Starts (or keeps) a rebalance.
    pub(crate) fn prepare_rebalance(&mut self, now: Instant, initial_delay: Duration) {
        if self.state == State::PreparingRebalance {
            return;
        }
        // Members waiting for their assignment of a generation that is now
        // abandoned get REBALANCE_IN_PROGRESS (their sender is dropped).
        for m in self.members.values_mut() {
            m.sync_waiter = None;
        }
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or(Duration::ZERO);
        self.initial_delay_until = (self.state == State::Empty).then(|| now + initial_delay);
        self.deadline = now + timeout.max(initial_delay);
        self.state = State::PreparingRebalance;
    }

    /// Completes the join phase if every member has rejoined (or the
    /// deadline passed, dropping those that did not).
    pub(crate) fn maybe_complete_join(&mut self, now: Instant) {
        if self.state != State::PreparingRebalance {
            return;
        }
        if self.initial_delay_until.is_some_and(|until| now < until) {
            return;
        }
        let all_joined = self.members.values().all(|m| m.join_waiter.is_some());
        if !all_joined && now < self.deadline {
            return;
        }
        self.members.retain(|_, m| m.join_waiter.is_some());
        self.generation += 1;
        if self.members.is_empty() {
            self.state = State::Empty;
            self.leader = None;
            self.protocol_name = None;
            return;
        }
        self.protocol_name = self.select_protocol();
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.state = State::CompletingRebalance;
        let leader = self.leader.clone().unwrap_or_default();
        let protocol = self.protocol_name.clone();
        let member_list: Vec<JoinGroupResponseMember> = self
            .members
            .iter()
            .map(|(id, m)| {
                let mut jm = JoinGroupResponseMember::default();
                jm.member_id = StrBytes::from_string(id.clone());
                jm.group_instance_id = m.group_instance_id.clone();
                jm.metadata = m
                    .protocols
                    .iter()
                    .find(|(n, _)| Some(n) == protocol.as_ref())
                    .map(|(_, md)| md.clone())
                    .unwrap_or_default();
                jm
            })
            .collect();
        for (id, m) in self.members.iter_mut() {
            m.assignment = Bytes::new();
            m.last_seen = now;
            let mut resp = JoinGroupResponse::default();
            resp.generation_id = self.generation;
            resp.protocol_type = self.protocol_type.clone();
            resp.protocol_name = protocol.clone();
            resp.leader = StrBytes::from_string(leader.clone());
            resp.member_id = StrBytes::from_string(id.clone());
            if *id == leader {
                resp.members = member_list.clone();
            }
            if let Some(tx) = m.join_waiter.take() {
                let _ = tx.send(resp);
            }
        }
    }

    /// The first protocol of the leader's (or first member's) list that every member supports.
    fn select_protocol(&self) -> Option<StrBytes> {
        let first = self.members.values().next()?;
        first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .find(|n| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == *n))
            })
            .cloned()
    }

    /// Removes a member and rebalances the rest.
    pub(crate) fn remove_member(&mut self, id: &str, now: Instant, initial_delay: Duration) {
        if self.members.remove(id).is_none() {
            return;
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
        match self.state {
            State::Stable | State::CompletingRebalance => {
                if self.members.is_empty() {
                    self.state = State::Empty;
                    self.generation += 1;
                } else {
                    self.prepare_rebalance(now, initial_delay);
                }
            }
            State::PreparingRebalance => self.maybe_complete_join(now),
            State::Empty => {}
        }
    }

    /// Members whose session expired (not counting those waiting on a join).
    pub(crate) fn expired_members(&self, now: Instant) -> Vec<String> {
        self.members
            .iter()
            .filter(|(_, m)| {
                m.join_waiter.is_none() && now.duration_since(m.last_seen) > m.session_timeout
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Hands every waiting member its assignment once the leader synced.
    pub(crate) fn complete_sync(&mut self, assignments: Vec<(String, Bytes)>) {
        for (id, a) in assignments {
            if let Some(m) = self.members.get_mut(&id) {
                m.assignment = a;
            }
        }
        self.state = State::Stable;
        for m in self.members.values_mut() {
            if let Some(tx) = m.sync_waiter.take() {
                let mut resp = SyncGroupResponse::default();
                resp.protocol_type = self.protocol_type.clone();
                resp.protocol_name = self.protocol_name.clone();
                resp.assignment = m.assignment.clone();
                let _ = tx.send(resp);
            }
        }
    }
}
