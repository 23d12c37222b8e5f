//! What the calls return, the same for both twins, and the options of a read.

use serde::{Deserialize, Serialize};

use crate::error::Error;

pub use paxos_core::Value;

/// A command that ran: `get`, `put`, `delete`, `append`, or a `cas` that matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Done {
    /// The key's value after the command: what a `get` read, what a `put` or `cas` wrote,
    /// `None` after a `delete` or for an absent key, the whole list after an `append`.
    pub value: Option<Value>,
    /// The log slot the command was decided in.
    pub index: u64,
    /// The key's modification index: the slot that last changed it (`index` itself for a
    /// write; `0` for a key never written). Watch from here to hear of the next change.
    pub modified: u64,
}

/// The answer to a `cas`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cas {
    /// The key held what was expected and now holds the new value.
    Swapped(Done),
    /// The key held something else (or a list, which never matches); nothing changed. Not an
    /// error: the answer is the key's current value, to decide what to try next.
    Mismatch {
        /// What the key holds (`None`: absent).
        value: Option<Value>,
        /// The slot that last changed it.
        modified: u64,
    },
}

impl Cas {
    /// Whether the key now holds the new value.
    pub fn swapped(&self) -> bool {
        matches!(self, Cas::Swapped(_))
    }
}

/// The answer to a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Watch {
    /// The key changed after the index watched from.
    Changed {
        /// Its value now (`None` once deleted); a watch may skip intermediate values.
        value: Option<Value>,
        /// The slot that last changed it.
        modified: u64,
        /// The slot the answering member had applied.
        index: u64,
    },
    /// Nothing changed by the end of the wait: up to slot `index` the key is as it was.
    Unchanged { index: u64 },
}

impl Watch {
    /// Where the next watch after one from `after` starts, so that it misses no change and
    /// reports none twice: `modified` after a change, `index` after none, but never before
    /// `after` (a member that lags behind the one that answered last may answer "unchanged"
    /// through a slot before it).
    pub fn next_after(&self, after: u64) -> u64 {
        match self {
            Watch::Changed { modified, .. } => *modified,
            Watch::Unchanged { index } => (*index).max(after),
        }
    }
}

/// How a read is ordered against writes (the command's `consistency` field, `docs/api.md`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Consistency {
    /// The read sees every write answered before it was sent, whichever member answers: the
    /// leader confirms with a majority that it still leads, without a log slot.
    #[default]
    Linearizable,
    /// Answered from the member's own store at once: fast, and it may miss recent writes.
    Serializable,
}

/// The options of a `get` (`Client::get_with`, on both twins). Build
/// with [`ReadOptions::default`] and the setters: fields will be added.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadOptions {
    pub consistency: Consistency,
}

impl ReadOptions {
    pub fn consistency(mut self, consistency: Consistency) -> ReadOptions {
        self.consistency = consistency;
        self
    }
}

/// One member's `GET /status`: what it believes of the cluster. Not linearizable: it is the
/// member's latest snapshot, not read through the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// This run's random id.
    pub server_id: String,
    /// The member's `servers` entry, `None` until it has found itself.
    #[serde(rename = "self")]
    pub entry: Option<String>,
    /// `"threaded"` or `"async"`.
    pub runtime: String,
    /// The `servers` entry of the member it believes leads.
    pub leader: Option<String>,
    pub ballot: Ballot,
    pub commit_index: u64,
    pub applied_index: u64,
    /// The highest commit index a leader has announced to the member: it lags by this less
    /// `commit_index`.
    pub known_commit_index: u64,
    /// The cluster's `servers` list, as its config has it.
    pub servers: Vec<String>,
    /// The member list's fingerprint, equal on every member given the same list.
    pub membership: String,
    /// `"discovering"`, `"follower"`, `"candidate"` or `"leader"`.
    pub role: String,
}

/// The highest ballot a member promised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ballot {
    pub round: u64,
    /// The index of the member that owns the ballot.
    pub member: u64,
}

/// One member, as `Client::members` found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberStatus {
    /// The member as listed in the client's servers.
    pub server: String,
    /// Its `/status`, or why it gave none.
    pub status: Result<Status, Error>,
}
