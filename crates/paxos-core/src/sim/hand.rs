//! The in-memory harness for tests that drive nodes message by message: [`Hand`].
//!
//! Where the simulator runs whole clusters on random schedules, a test with a `Hand` is the
//! network: every message a node sends is held on the wire until the test delivers it, so the
//! test says exactly who hears what, in which order. The node's own tests use it, and so does
//! the walkthrough of the protocol (`src/walkthrough.rs`).

use std::time::Duration;

use crate::log::{Ballot, MemberId, RequestId};
use crate::{Answer, Durable, Message, Node, NodeConfig, Record, Role, Time, To, Tuning};

/// Any number of nodes driven by hand: every message is held until the test delivers it.
#[derive(Debug)]
pub struct Hand {
    pub nodes: Vec<Node>,
    /// Undelivered messages: (from, to, message).
    pub wire: Vec<(MemberId, MemberId, Message)>,
    pub now: Time,
    /// Per node, its log file: the records it persisted since it was last replaced.
    pub logs: Vec<Vec<Record>>,
    /// Per node, the answers its clients got, in order.
    pub answered: Vec<Vec<(RequestId, Answer)>>,
    /// Per node, the bytes of values appended to its log file since it was last replaced.
    pub appended: Vec<usize>,
    /// The most any node had appended that way.
    pub most_appended: usize,
}

impl Hand {
    /// `n` new members.
    pub fn new(n: usize) -> Hand {
        Hand::restarted(vec![Durable::default(); n])
    }

    /// One node per durable state, started from it.
    pub fn restarted(durables: Vec<Durable>) -> Hand {
        Hand::start(durables, Tuning::default())
    }

    /// `n` new members with these knobs.
    pub fn tuned(n: usize, tuning: Tuning) -> Hand {
        Hand::start(vec![Durable::default(); n], tuning)
    }

    /// Each member gets its own seed, and starts as its first incarnation (one past the zero
    /// that a new data dir records), so that the request ids of two runs are alike.
    pub fn start(durables: Vec<Durable>, tuning: Tuning) -> Hand {
        let n = durables.len();
        let nodes = durables
            .into_iter()
            .enumerate()
            .map(|(m, durable)| {
                let config = NodeConfig {
                    me: m,
                    members: n,
                    tuning: tuning.clone(),
                    seed: m as u64,
                    incarnation: 1,
                };
                Node::new(config, durable, Time::ZERO)
            })
            .collect();
        Hand {
            nodes,
            wire: Vec::new(),
            now: Time::ZERO,
            logs: vec![Vec::new(); n],
            answered: vec![Vec::new(); n],
            appended: vec![0; n],
            most_appended: 0,
        }
    }

    /// Carries out node `m`'s `Ready` as a runtime would: its records go to its log file (all
    /// of it replaced when the node compacted), its messages onto the wire, and its answers to
    /// [`answered`](Self::answered). Returns those answers.
    pub fn carry_out(&mut self, m: MemberId) -> Vec<(RequestId, Answer)> {
        let ready = self.nodes[m].take_ready();
        if ready.rewrite {
            self.appended[m] = 0;
            self.logs[m].clear();
        } else {
            self.appended[m] += ready.persist.iter().map(value_bytes).sum::<usize>();
            self.most_appended = self.most_appended.max(self.appended[m]);
        }
        self.logs[m].extend(ready.persist);
        let n = self.nodes.len();
        for (to, msg) in ready.messages {
            match to {
                To::Member(to) => self.wire.push((m, to, msg)),
                To::Peers => {
                    let peers = (0..n).filter(|&p| p != m);
                    self.wire.extend(peers.map(|p| (m, p, msg.clone())));
                }
            }
        }
        self.answered[m].extend(ready.replies.iter().cloned());
        ready.replies
    }

    /// Delivers every held message from `from` to `to` whose kind is `kind` (see
    /// [`Message::kind`]), a millisecond later, and carries out `to`'s `Ready`. Returns how many
    /// it delivered.
    pub fn deliver(&mut self, from: MemberId, to: MemberId, kind: &str) -> usize {
        self.now += Duration::from_millis(1);
        let (now, mut delivered) = (self.now, 0);
        let mut i = 0;
        while i < self.wire.len() {
            let (f, t, msg) = &self.wire[i];
            if *f == from && *t == to && msg.kind() == kind {
                let (_, _, msg) = self.wire.remove(i);
                self.nodes[to].handle_message(now, from, msg);
                delivered += 1;
            } else {
                i += 1;
            }
        }
        self.carry_out(to);
        delivered
    }

    /// Makes `m` leader: its election timer fires, and `voters` promise.
    pub fn elect(&mut self, m: MemberId, voters: &[MemberId]) {
        self.now += Duration::from_secs(10);
        let now = self.now;
        self.nodes[m].handle_timeout(now);
        self.carry_out(m);
        for &v in voters {
            assert_eq!(self.deliver(m, v, "prepare"), 1);
            assert_eq!(self.deliver(v, m, "promise"), 1);
        }
        assert_eq!(self.nodes[m].status().role, Role::Leader);
    }

    /// Loses every held message from `from`, as if it had crashed before they left.
    pub fn drop_all(&mut self, from: MemberId) {
        self.wire.retain(|(f, _, _)| *f != from);
    }

    /// Fires node `m`'s election timer, and returns the ballot it runs at, if it runs.
    pub fn time_out(&mut self, m: MemberId) -> Option<Ballot> {
        self.now += Duration::from_secs(10);
        let now = self.now;
        let before = self.nodes[m].stats().elections_started;
        self.nodes[m].handle_timeout(now);
        self.carry_out(m);
        let started = self.nodes[m].stats().elections_started > before;
        started.then(|| self.nodes[m].status().ballot)
    }
}

/// The bytes of values a record holds.
pub fn value_bytes(record: &Record) -> usize {
    match record {
        Record::Accepted { value, .. } | Record::Decided { value, .. } => value.wire_size(),
        Record::Promise { .. }
        | Record::DecidedAccepted { .. }
        | Record::Snapshot { .. }
        | Record::Incarnation { .. } => 0,
    }
}
