//! The clients and their workload.
//!
//! Each client runs one operation at a time against a member it picks at random. Plain clients
//! send commands without an exactly-once identity: when one times out they record the outcome as
//! unknown and move on. Session clients number their commands (`client_id`, `seq`): when one
//! times out, or the member holding it crashes, they send the very same command to another member,
//! until one attempt is answered. Probes are the final reads: one per member, reading every key
//! once the cluster has healed.
//!
//! A tenth of the `get`s are serializable: answered from the member's own store, and passed over
//! by the linearizability checker, since they may be stale.
//!
//! Appended values are unique (`c<client>.<n>`), which is what lets the checkers tell a lost or
//! duplicated append from a legitimate one. The register key takes `put`, `cas`, `get` and
//! `delete`; a `cas` usually expects the last value its client saw there, so that some succeed.

use crate::rng::Rng;
use crate::{Answer, Command, Consistency, MemberId, Op, RequestId, Value};

/// The keys that hold lists (`append` and `get`).
pub const LIST_KEYS: [&str; 2] = ["x", "y"];
/// The key that holds a string (`put`, `cas`, `delete`, `get`).
pub const REGISTER_KEY: &str = "r";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Plain,
    Session {
        client_id: String,
        next_seq: u64,
    },
    /// Reads every key from one member, once.
    Probe {
        member: MemberId,
        keys: Vec<String>,
    },
}

/// The operation a client is waiting on.
#[derive(Clone, Debug)]
pub struct Current {
    /// Its index in the history.
    pub op: usize,
    pub command: Command,
    /// Names the current attempt, so a late timeout of an earlier attempt is ignored.
    pub attempt: u64,
    /// The member and request id of the current attempt, once submitted.
    pub request: Option<RequestId>,
}

#[derive(Debug)]
pub struct Client {
    pub index: usize,
    pub kind: Kind,
    pub current: Option<Current>,
    /// A stopped client starts no new operation.
    pub stopped: bool,
    written: u64,
    /// The last value this client saw in the register, for its next `cas`.
    last_register: Option<String>,
}

impl Client {
    pub fn new(index: usize, kind: Kind) -> Client {
        Client {
            index,
            kind,
            current: None,
            stopped: false,
            written: 0,
            last_register: None,
        }
    }

    pub fn is_session(&self) -> bool {
        matches!(self.kind, Kind::Session { .. })
    }

    /// Whether this client has nothing under way and will start nothing more.
    pub fn is_done(&self) -> bool {
        self.current.is_none() && (self.stopped || self.probe_done())
    }

    fn probe_done(&self) -> bool {
        matches!(&self.kind, Kind::Probe { keys, .. } if keys.is_empty())
    }

    /// The member a probe must ask, or `None` for a client that may ask anyone.
    pub fn fixed_member(&self) -> Option<MemberId> {
        match self.kind {
            Kind::Probe { member, .. } => Some(member),
            _ => None,
        }
    }

    /// Draws the next command, or `None` when a probe has read everything.
    pub fn next_command(&mut self, rng: &mut Rng) -> Option<Command> {
        let op = match &mut self.kind {
            Kind::Probe { keys, .. } => {
                let key = keys.pop()?;
                return Some(Command::new(Op::Get { key }));
            }
            _ => self.draw_op(rng),
        };
        let mut command = Command::new(op);
        // Some reads ask for no more than the member's own store. The linearizability checker
        // passes over them; they are here so that the other checks see them answered under every
        // fault.
        if !command.op.is_write() && rng.chance(0.1) {
            command.consistency = Consistency::Serializable;
        }
        if let Kind::Session {
            client_id,
            next_seq,
        } = &mut self.kind
        {
            command.client_id = Some(client_id.clone());
            command.seq = Some(*next_seq);
            *next_seq += 1;
        }
        Some(command)
    }

    fn draw_op(&mut self, rng: &mut Rng) -> Op {
        self.written += 1;
        let fresh = format!("c{}.{}", self.index, self.written);
        if rng.chance(0.7) {
            let key = rng.pick(&LIST_KEYS).to_string();
            if rng.chance(0.75) {
                Op::Append { key, value: fresh }
            } else {
                Op::Get { key }
            }
        } else {
            let key = REGISTER_KEY.to_owned();
            match rng.below(10) {
                0..=2 => Op::Put { key, value: fresh },
                3..=6 => {
                    let expected = if rng.chance(0.8) {
                        self.last_register.clone()
                    } else {
                        None
                    };
                    Op::Cas {
                        key,
                        expected,
                        value: fresh,
                    }
                }
                7..=8 => Op::Get { key },
                _ => Op::Delete { key },
            }
        }
    }

    /// Notes what an answer says about the register, for the next `cas`.
    pub fn observe(&mut self, command: &Command, answer: &Answer) {
        if command.op.key() != REGISTER_KEY {
            return;
        }
        let value = match answer {
            Answer::Done { value, .. } | Answer::Mismatch { value, .. } => value,
            Answer::Rejected { .. } | Answer::Overloaded { .. } => return,
        };
        self.last_register = match value {
            Some(Value::Str(s)) => Some(s.clone()),
            _ => None,
        };
    }
}
