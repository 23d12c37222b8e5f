//! The names the rest of the core is built from: members, ballots, slots, client requests, and
//! the values and entries of the replicated log.
//!
//! This module imports nothing from the crate but the client command it carries, so every other
//! module (the wire messages, the record format, snapshots, the node) can build on it without
//! any of them depending on each other in a circle.

use serde::{Deserialize, Serialize};

use crate::command::{Command, Op};

/// A member's position in the config's `servers` list. Every member is given the same list (see
/// [`Membership`](crate::message::Membership)), so an index names the same member everywhere; it is also the tie-breaker that
/// keeps two members' ballots distinct.
pub type MemberId = usize;

/// A log position. Slot 0 is never used, so "nothing decided yet" is commit index 0.
pub type Slot = u64;

/// No log reaches this slot (at a million slots a second it would take 290,000 years), so a
/// message naming a higher one is garbled or forged, and a member drops it. That leaves room
/// above every slot a member holds for the `+ 1`s and windows of its arithmetic.
pub const MAX_SLOT: Slot = u64::MAX / 2;

/// No honest ballot reaches this round, so a message naming a higher one is garbled or forged,
/// and a member drops it. Members raise rounds by one per election, and a member takes a round
/// at most [`MAX_ROUND_STEP`](crate::node::MAX_ROUND_STEP) above the highest it has seen, so
/// even a forger needs 2^43 messages, one after another, to bring a member here; short of that,
/// every round a member holds is below this one, and an election outbids it with `round + 1`,
/// which neither overflows nor passes the cap.
pub const MAX_ROUND: u64 = u64::MAX / 2;

/// A Paxos ballot, ordered by round and then by member, so no two members ever own the same one.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Ballot {
    pub round: u64,
    pub member: MemberId,
}

impl Ballot {
    /// The ballot below every real one: what a fresh acceptor has promised.
    pub const ZERO: Ballot = Ballot {
        round: 0,
        member: 0,
    };
}

impl std::fmt::Display for Ballot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.round, self.member)
    }
}

/// Names one client request across the cluster: the member that received it, in one run of that
/// member (`incarnation` grows from start to start, so a restarted member never mistakes an old
/// log entry for a request it is waiting on), and a counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RequestId {
    pub member: MemberId,
    pub incarnation: u64,
    pub n: u64,
}

/// A client command on its way into the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub id: RequestId,
    /// Every request of the same incarnation numbered below this one had been answered or given
    /// up when this one was made; see [`AppliedRequests`](crate::applied::AppliedRequests).
    /// Logs written before it existed replay with 0, which says nothing is finished.
    #[serde(default)]
    pub floor: u64,
    pub command: Command,
}

/// What one log slot holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LogValue {
    /// Fills a slot that a new leader found open but empty, so later slots can apply.
    Noop,
    Request(Request),
}

impl LogValue {
    /// Roughly how many bytes the value takes in a message: its strings plus a margin for the
    /// JSON around them. Batches are cut by this so that no message outgrows a peer's body limit.
    pub fn wire_size(&self) -> usize {
        match self {
            LogValue::Noop => FRAMING,
            LogValue::Request(request) => Self::wire_size_of(request),
        }
    }

    /// [`wire_size`](Self::wire_size) of a request before it has a slot.
    pub fn wire_size_of(request: &Request) -> usize {
        let command = &request.command;
        let strings = match &command.op {
            Op::Get { key } | Op::Delete { key } => key.len(),
            Op::Put { key, value } | Op::Append { key, value } => key.len() + value.len(),
            Op::Cas {
                key,
                expected,
                value,
            } => key.len() + expected.as_ref().map_or(0, String::len) + value.len(),
        };
        let client = command.client_id.as_ref().map_or(0, String::len);
        FRAMING + strings + client
    }
}

/// What [`LogValue::wire_size`] adds to a value's strings for the JSON around them.
const FRAMING: usize = 160;

/// A slot and its value, as proposed or decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub slot: Slot,
    pub value: LogValue,
}

/// A value an acceptor accepted, reported in a promise so the new leader can re-propose it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedEntry {
    pub slot: Slot,
    pub ballot: Ballot,
    pub value: LogValue,
}
