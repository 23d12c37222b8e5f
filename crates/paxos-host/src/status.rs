//! The node's state as last published by the driver, for `GET /status` and `GET /metrics`.
//!
//! The driver owns the [`paxos_core::Node`] and nobody else may touch it, so after each batch it
//! copies the few fields the HTTP handlers show into a [`StatusBoard`]. Handlers read the copy
//! under a mutex held for a clone, never the node itself.

use std::sync::{Mutex, MutexGuard, PoisonError};

use paxos_core::{MemberId, Node, Stats, Status};

use crate::{Config, log};

/// What the driver last published.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// This server's index in `servers`, once it has found itself.
    pub me: Option<MemberId>,
    /// The node's status, once the node exists (right after discovery).
    pub node: Option<Status>,
    pub stats: Stats,
    /// How often this member has seen the leader change: a new leader it learned of, itself
    /// included. A count that climbs while nothing fails means leaders flap.
    pub leader_changes: u64,
}

/// The shared, mutex-protected snapshot.
#[derive(Debug, Default)]
pub struct StatusBoard {
    snapshot: Mutex<Snapshot>,
}

impl StatusBoard {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self) -> Snapshot {
        self.lock().clone()
    }

    /// Records that this server is `servers[me]`.
    pub fn found_myself(&self, me: MemberId) {
        self.lock().me = Some(me);
    }

    /// Publishes the node's state; returns the previous status so the caller can log changes.
    pub fn publish(&self, status: Status, stats: &Stats) -> Option<Status> {
        let mut snapshot = self.lock();
        if snapshot.stats != *stats {
            snapshot.stats.clone_from(stats);
        }
        snapshot.node.replace(status)
    }

    /// Publishes the node's state after a batch, and logs what changed (a new leader, a role).
    pub fn update(&self, node: &Node, config: &Config) {
        let status = node.status();
        let old = self.publish(status.clone(), node.stats());
        let old_leader = old.as_ref().and_then(|old| old.leader);
        if status.leader.is_some() && status.leader != old_leader {
            self.lock().leader_changes += 1;
        }
        log::status_changed(old.as_ref(), &status, &config.servers);
    }

    fn lock(&self) -> MutexGuard<'_, Snapshot> {
        // A snapshot is plain data written in one assignment, so a panic elsewhere while the lock
        // was held cannot have left it half-written.
        self.snapshot.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
