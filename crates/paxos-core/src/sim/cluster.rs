//! The members: each a [`Node`] (while it runs) and its disk (always).
//!
//! A member's disk is the bytes a runtime would have appended to its log file: every `Ready`'s
//! `persist`, framed by [`storage::encode_all`]. A crash drops the node and everything it held
//! in memory, including outputs it had computed but not yet carried out; only the disk survives.
//! A restart replays the disk, truncating a torn tail the way a runtime would, and starts a new
//! node with the time as its incarnation, exactly as a runtime does after `kill -9`. A `Ready`
//! that rewrites the log replaces the disk whole, as a runtime's rename does.

use std::collections::BTreeMap;

use crate::message::{LogValue, Slot};
use crate::rng::Rng;
use crate::{MemberId, Node, NodeConfig, Stats, Time, Tuning, storage};

#[derive(Debug)]
pub struct Member {
    /// `None` while the member is down.
    pub node: Option<Node>,
    pub disk: Vec<u8>,
    /// When the member next carries out its node's `Ready`; set whenever the node took input.
    pub carry_out_at: Option<Time>,
    /// The decided log of each earlier incarnation, as it stood when that incarnation crashed.
    pub past_decided: Vec<BTreeMap<Slot, LogValue>>,
    pub crashes: u32,
    /// The counters of earlier incarnations, added up.
    pub past_stats: Stats,
}

/// A rule broken on purpose, to show that the checkers catch what it lets happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sabotage {
    None,
    /// Acceptors ignore their promises.
    Acceptors,
    /// Leaders serve reads without confirming that they still lead.
    Reads,
}

#[derive(Debug)]
pub struct Cluster {
    pub members: Vec<Member>,
    pub tuning: Tuning,
    /// Which deliberately broken rule every node runs, if any.
    pub sabotage: Sabotage,
}

impl Cluster {
    pub fn new(size: usize, tuning: Tuning, sabotage: Sabotage) -> Cluster {
        let members = (0..size)
            .map(|_| Member {
                node: None,
                disk: Vec::new(),
                carry_out_at: None,
                past_decided: Vec::new(),
                crashes: 0,
                past_stats: Stats::default(),
            })
            .collect();
        Cluster {
            members,
            tuning,
            sabotage,
        }
    }

    pub fn size(&self) -> usize {
        self.members.len()
    }

    pub fn is_up(&self, m: MemberId) -> bool {
        self.members[m].node.is_some()
    }

    pub fn up(&self) -> Vec<MemberId> {
        (0..self.size()).filter(|&m| self.is_up(m)).collect()
    }

    pub fn node(&mut self, m: MemberId) -> Option<&mut Node> {
        self.members[m].node.as_mut()
    }

    /// Starts member `m` from its disk, with a new incarnation.
    pub fn start(&mut self, m: MemberId, rng: &mut Rng, now: Time) -> Result<(), String> {
        let size = self.size();
        let tuning = self.tuning.clone();
        let member = &mut self.members[m];
        assert!(member.node.is_none(), "member {m} is already up");
        let replayed = storage::replay(&member.disk)
            .map_err(|e| format!("member {m} cannot replay its disk: {e}"))?;
        // A runtime truncates a torn tail before appending again.
        member.disk.truncate(replayed.valid_len as usize);
        let seed = rng.next_u64();
        // Runtimes pass the time of day; the node goes past what it recorded if that is later.
        let incarnation = now.as_micros() as u64;
        let config = NodeConfig {
            me: m,
            members: size,
            tuning,
            seed,
            incarnation,
        };
        let mut node = Node::new(config, replayed.state, now);
        node.ignore_promises = self.sabotage == Sabotage::Acceptors;
        node.unconfirmed_reads = self.sabotage == Sabotage::Reads;
        member.node = Some(node);
        // Let the new node say whatever it has to say on the next step.
        member.carry_out_at = Some(now);
        Ok(())
    }

    /// Every member's counters over all its incarnations, added up.
    pub fn stats(&self) -> Stats {
        let mut total = Stats::default();
        for member in &self.members {
            add(&mut total, &member.past_stats);
            if let Some(node) = &member.node {
                add(&mut total, node.stats());
            }
        }
        total
    }

    /// Crashes member `m`: its node and the outputs it had not carried out are gone, its disk stays.
    pub fn crash(&mut self, m: MemberId) {
        let member = &mut self.members[m];
        if let Some(node) = member.node.take() {
            member.past_decided.push(node.learned().clone());
            member.crashes += 1;
            add(&mut member.past_stats, node.stats());
        }
        member.carry_out_at = None;
    }
}

fn add(total: &mut Stats, more: &Stats) {
    total.elections_started += more.elections_started;
    total.elections_won += more.elections_won;
    total.slots_proposed += more.slots_proposed;
    total.slots_decided += more.slots_decided;
    total.requests_forwarded += more.requests_forwarded;
    total.requests_dropped += more.requests_dropped;
    total.catch_up_requests += more.catch_up_requests;
    total.compactions += more.compactions;
    total.snapshots_sent += more.snapshots_sent;
    total.snapshots_installed += more.snapshots_installed;
    total.ballots_refused += more.ballots_refused;
    total.messages_unvouched += more.messages_unvouched;
    total.reads_linearizable += more.reads_linearizable;
    total.reads_serializable += more.reads_serializable;
    total.read_rounds += more.read_rounds;
}
