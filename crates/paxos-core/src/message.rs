//! What members say to each other, and what the log holds.
//!
//! Every message is one-way: a runtime delivers it in an HTTP request (`POST /paxos/messages`,
//! see [`Envelope`]) and the answer to it, if any, travels as another message. That keeps the core free of
//! request/response pairing and lets the simulator lose, duplicate and reorder messages freely.

use serde::{Deserialize, Serialize};

use crate::command::{Command, Op};
use crate::snapshot::Snapshot;

/// A member's position in the config's `servers` list. Every member is given the same list (see
/// [`Membership`]), so an index names the same member everywhere; it is also the tie-breaker that
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

/// The version of the peer protocol this build speaks. A member drops messages from another
/// version (and logs why) rather than misreading them.
pub const PROTOCOL_VERSION: u32 = 3;

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

/// The peer messages, one per Paxos rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Phase 1a: "promise me `ballot`, and tell me what you accepted from `from_slot` on".
    Prepare { ballot: Ballot, from_slot: Slot },
    /// Phase 1b: the promise, with every accepted value and every decided value at or after the
    /// candidate's `from_slot`. An acceptor that compacted slots at or after `from_slot` away
    /// sends its state instead of them: the candidate must not take those slots for open.
    Promise {
        ballot: Ballot,
        accepted: Vec<AcceptedEntry>,
        decided: Vec<Entry>,
        snapshot: Option<Box<Snapshot>>,
    },
    /// Phase 2a, batched: "accept these values at `ballot`". Also carries the leader's commit
    /// index, so followers learn decisions without an extra message under load.
    Accept {
        ballot: Ballot,
        entries: Vec<Entry>,
        commit: Slot,
    },
    /// Phase 2b: "I accepted these slots at `ballot`", sent after the acceptance is durable.
    Accepted { ballot: Ballot, slots: Vec<Slot> },
    /// "I have promised a higher ballot than yours": the sender of a stale prepare or accept
    /// learns it lost leadership.
    Nack { ballot: Ballot },
    /// The leader's heartbeat and decision notice: every slot up to `commit` is decided, and the
    /// value decided in each is the one proposed at `ballot` (or decided earlier).
    Commit { ballot: Ballot, commit: Slot },
    /// A lagging member asks for decided entries from `from_slot` on.
    CatchUp { from_slot: Slot },
    /// Decided entries, the answer to [`Message::CatchUp`]. A member takes them only from the
    /// member it asked.
    Decided { entries: Vec<Entry>, commit: Slot },
    /// A follower hands client requests to the leader it knows.
    Forward { requests: Vec<Request> },
    /// The answer to a [`Message::CatchUp`] for slots the sender compacted away: its whole
    /// state as of its commit index. Like decided entries, it is taken only from the member
    /// asked.
    Snapshot { snapshot: Box<Snapshot> },
}

impl Message {
    /// The highest slot number the message names, commit indexes included (0 if none).
    pub fn highest_slot(&self) -> Slot {
        let entries = |e: &[Entry]| e.iter().map(|e| e.slot).max().unwrap_or(0);
        match self {
            Message::Prepare { from_slot, .. } | Message::CatchUp { from_slot } => *from_slot,
            Message::Promise {
                accepted,
                decided,
                snapshot,
                ..
            } => accepted
                .iter()
                .map(|e| e.slot)
                .chain(snapshot.as_ref().map(|s| s.slot))
                .max()
                .unwrap_or(0)
                .max(entries(decided)),
            Message::Accept {
                entries: e, commit, ..
            }
            | Message::Decided { entries: e, commit } => entries(e).max(*commit),
            Message::Accepted { slots, .. } => slots.iter().copied().max().unwrap_or(0),
            Message::Commit { commit, .. } => *commit,
            Message::Nack { .. } | Message::Forward { .. } => 0,
            Message::Snapshot { snapshot } => snapshot.slot,
        }
    }

    /// The ballot the message is about, if any: the sender's own for a prepare, an accept, a
    /// commit or a nack, the recipient's for the promise or acceptance that answers it.
    pub fn ballot(&self) -> Option<Ballot> {
        match self {
            Message::Prepare { ballot, .. }
            | Message::Promise { ballot, .. }
            | Message::Accept { ballot, .. }
            | Message::Accepted { ballot, .. }
            | Message::Nack { ballot }
            | Message::Commit { ballot, .. } => Some(*ballot),
            Message::CatchUp { .. }
            | Message::Decided { .. }
            | Message::Forward { .. }
            | Message::Snapshot { .. } => None,
        }
    }

    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Prepare { .. } => "prepare",
            Message::Promise { .. } => "promise",
            Message::Accept { .. } => "accept",
            Message::Accepted { .. } => "accepted",
            Message::Nack { .. } => "nack",
            Message::Commit { .. } => "commit",
            Message::CatchUp { .. } => "catch_up",
            Message::Decided { .. } => "decided",
            Message::Forward { .. } => "forward",
            Message::Snapshot { .. } => "snapshot",
        }
    }
}

/// Which member list a member runs under. Members name each other by position in their config's
/// `servers` list, so two members started with different lists (a typo, a stale file) would count
/// quorums over different sets and could break agreement. Every envelope carries its sender's
/// membership, and a member refuses envelopes whose membership is not its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Membership {
    /// The configuration number. It is 0 until membership change exists, which will raise it.
    pub epoch: u64,
    /// A 64-bit FNV-1a hash of the `servers` entries, in order, as written.
    pub fingerprint: u64,
}

impl Membership {
    /// The membership of a cluster whose config lists `servers`, in this order.
    pub fn of<S: AsRef<str>>(servers: &[S]) -> Membership {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut hash = OFFSET;
        for server in servers {
            // The separator keeps `["a:1b", ...]` and `["a:1", "b..."]` apart.
            for byte in server.as_ref().bytes().chain([0]) {
                hash = (hash ^ u64::from(byte)).wrapping_mul(PRIME);
            }
        }
        Membership {
            epoch: 0,
            fingerprint: hash,
        }
    }
}

impl std::fmt::Display for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{:016x}", self.epoch, self.fingerprint)
    }
}

/// What one `POST /paxos/messages` carries: every message the sender had queued for this peer,
/// who sent them, the cluster and member list they belong to, and which protocol version they
/// speak. Sending a queue in one request is what keeps the number of HTTP round trips low under
/// load.
///
/// The messages' type is a parameter only so that a sender can put messages it has already
/// encoded (to cut envelopes by size) into the same layout; everyone else uses the default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope<M = Message> {
    pub version: u32,
    /// The sender's cluster name (the config's `cluster`). A member refuses envelopes from
    /// another cluster: the secret proves a sender knows it, not that it is one of ours, so a
    /// message recorded in one cluster could otherwise be replayed into another that shares it.
    pub cluster: String,
    /// The sender's member list; see [`Membership`].
    pub membership: Membership,
    pub from: MemberId,
    pub messages: Vec<M>,
}

impl<M> Envelope<M> {
    pub fn new(cluster: &str, membership: Membership, from: MemberId, messages: Vec<M>) -> Self {
        Envelope {
            version: PROTOCOL_VERSION,
            cluster: cluster.to_owned(),
            membership,
            from,
            messages,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_tells_lists_apart() {
        let list = ["a:1", "b:2", "c:3"];
        assert_eq!(
            Membership::of(&list),
            Membership::of(&list.map(String::from))
        );
        assert_ne!(
            Membership::of(&list),
            Membership::of(&["a:1", "c:3", "b:2"])
        );
        assert_ne!(Membership::of(&list), Membership::of(&["a:1", "b:2"]));
        assert_ne!(
            Membership::of(&["a:1b", "c"]),
            Membership::of(&["a:1", "bc"])
        );
        assert_eq!(Membership::of(&list).epoch, 0);
        let shown = Membership::of(&list).to_string();
        assert!(shown.starts_with("0:") && shown.len() == 18, "{shown}");
    }
}
