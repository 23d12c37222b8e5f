//! What a node tells about itself: its role and progress, and counters.

use crate::log::{Ballot, MemberId, Slot};

/// What a member is doing right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    Candidate,
    Leader,
}

/// What a member is doing, for `GET /status` and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub role: Role,
    /// The member this one believes leads, itself included.
    pub leader: Option<MemberId>,
    /// The highest ballot this member has promised or seen in use: a follower that only ever
    /// heard the leader's heartbeats reports the leader's ballot, not the zero it promised.
    pub ballot: Ballot,
    /// Every slot up to here is decided, known to this member, and applied to its store. A
    /// member applies each slot in the same step that it learns the slot and all before it are
    /// decided, so there is no separate "applied index" to report: the runtimes show this one
    /// under both names, as the status contract asks.
    pub commit_index: Slot,
    /// The highest commit index this member has heard a leader announce, or its own if that is
    /// higher: `known_commit - commit_index` is how many decided slots it still has to learn.
    pub known_commit: Slot,
}

/// Counters for `/metrics`; they only ever grow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Elections this member ran, a candidate running again at the same ballot included.
    pub elections_started: u64,
    pub elections_won: u64,
    pub slots_proposed: u64,
    pub slots_decided: u64,
    pub requests_forwarded: u64,
    /// Forwarded requests dropped by a member that was no longer in a position to propose them;
    /// their clients get a `503` at the origin.
    pub requests_dropped: u64,
    /// Own requests sent again to a new leader.
    pub requests_resent: u64,
    pub catch_up_requests: u64,
    /// Times this member replaced its log file by a snapshot and what followed it.
    pub compactions: u64,
    /// Snapshots sent to members that asked for slots compacted away.
    pub snapshots_sent: u64,
    /// Snapshots taken from other members in place of the slots they stand for.
    pub snapshots_installed: u64,
    /// Messages dropped for their ballot: one that names no member, one past [`MAX_ROUND`](crate::log::MAX_ROUND) or
    /// more than [`MAX_ROUND_STEP`](super::MAX_ROUND_STEP) above the highest round this member has seen, or a promise
    /// reporting an acceptance above the ballot it promises.
    pub ballots_refused: u64,
    /// Messages dropped because their sender cannot vouch for them: a prepare, accept or commit
    /// from another member than the ballot's owner, and decided entries or a snapshot from a
    /// member this member is not waiting on a catch-up answer from (a late duplicate of an
    /// answer already taken is one of those).
    pub messages_unvouched: u64,
    /// Own clients' linearizable reads answered, each after a read round confirmed its index.
    pub reads_linearizable: u64,
    /// Own clients' serializable reads, answered at once from the member's own store.
    pub reads_serializable: u64,
    /// Read rounds this member began as leader; each confirms every read that waited for it.
    pub read_rounds: u64,
    /// Reads this member refused as leader because `max_reads_waiting` were held already: its
    /// own clients' (answered `503` at once) and followers' asks (answered `read_index_refused`).
    pub reads_refused: u64,
}
