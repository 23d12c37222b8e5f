//! What members say to each other: one message per Paxos rule, and the envelope that carries
//! them. The log's own types (slots, ballots, entries) are in [`crate::log`].
//!
//! Every message is one-way: a runtime delivers it in an HTTP request (`POST /paxos/messages`,
//! see [`Envelope`]) and the answer to it, if any, travels as another message. That keeps the core free of
//! request/response pairing and lets the simulator lose, duplicate and reorder messages freely.

use serde::{Deserialize, Serialize};

use crate::snapshot::Snapshot;

// The log's types used to live here; callers still find them under `message::`.
pub use crate::log::{
    AcceptedEntry, Ballot, Entry, LogValue, MAX_ROUND, MAX_SLOT, MemberId, Request, RequestId, Slot,
};

/// The version of the peer protocol this build speaks. A member drops messages from another
/// version (and logs why) rather than misreading them.
pub const PROTOCOL_VERSION: u32 = 5;

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
    /// value decided in each is the one proposed at `ballot` (or decided earlier). A non-zero
    /// `read` names the leader's read round in flight: the follower answers [`Message::ReadAck`].
    Commit {
        ballot: Ballot,
        commit: Slot,
        #[serde(default, skip_serializing_if = "is_zero")]
        read: u64,
    },
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
    /// "I had promised no ballot above `ballot` when your commit with read round `read` came":
    /// with a majority of these, the leader knows it still led after the round began.
    ReadAck { ballot: Ballot, read: u64 },
    /// A follower asks the leader it knows for a read index for its client's read `id`.
    ReadIndex { id: RequestId },
    /// The leader's answer to [`Message::ReadIndex`]: once the asker has applied up to `index`,
    /// its store reflects every write that completed before the read reached the leader.
    ReadIndexOk { id: RequestId, index: Slot },
    /// The leader's other answer to [`Message::ReadIndex`]: it holds `max_reads_waiting` reads
    /// already and will not take read `id`; the asker tells its client to retry.
    ReadIndexRefused { id: RequestId },
}

fn is_zero(n: &u64) -> bool {
    *n == 0
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
            Message::Commit { commit, .. } | Message::ReadIndexOk { index: commit, .. } => *commit,
            Message::Nack { .. }
            | Message::Forward { .. }
            | Message::ReadAck { .. }
            | Message::ReadIndex { .. }
            | Message::ReadIndexRefused { .. } => 0,
            Message::Snapshot { snapshot } => snapshot.slot,
        }
    }

    /// The ballot the message is about, if any: the sender's own for a prepare, an accept, a
    /// commit or a nack, the recipient's for the promise, acceptance or read ack that answers it.
    pub fn ballot(&self) -> Option<Ballot> {
        match self {
            Message::Prepare { ballot, .. }
            | Message::Promise { ballot, .. }
            | Message::Accept { ballot, .. }
            | Message::Accepted { ballot, .. }
            | Message::Nack { ballot }
            | Message::Commit { ballot, .. }
            | Message::ReadAck { ballot, .. } => Some(*ballot),
            Message::CatchUp { .. }
            | Message::ReadIndex { .. }
            | Message::ReadIndexOk { .. }
            | Message::ReadIndexRefused { .. }
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
            Message::ReadAck { .. } => "read_ack",
            Message::ReadIndex { .. } => "read_index",
            Message::ReadIndexOk { .. } => "read_index_ok",
            Message::ReadIndexRefused { .. } => "read_index_refused",
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
