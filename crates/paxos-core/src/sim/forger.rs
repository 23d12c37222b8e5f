//! The forger: someone who can pass for a member (it holds the cluster's secret, or none is set)
//! and now and then sends one member or several a message in another member's name, with a
//! ballot no honest member uses: at or near the last round there is, near the cap
//! ([`MAX_ROUND`]), or just over a step ([`MAX_ROUND_STEP`]) above the highest round its
//! targets have seen, all of which they drop. One such prepare used to halt a cluster for good;
//! the liveness checker is what shows that it no longer does. Sometimes the ballot is exactly a
//! step up, which the member that has seen the highest round takes: the cluster must then climb
//! to it.
//!
//! It forges the read messages too: read acks at those ballots, with plausible and extreme
//! round numbers, which no leader's round matches; read-index asks, which a leader answers
//! (they only cost it places under its cap of reads); and read-index answers and refusals for
//! reads the target never made, at plausible and impossible indexes. An answer naming a read the
//! target is waiting on, in the name of the leader it asked, would be that leader lying: a
//! Byzantine member, like an accept at the live ballot, since the answer carries no ballot to
//! refuse it by. Now and then the sender is a stranger, a member number past the list, whom
//! every member drops.

use super::cluster::Cluster;
use crate::message::{Entry, MAX_ROUND, MAX_SLOT};
use crate::node::MAX_ROUND_STEP;
use crate::rng::Rng;
use crate::{Ballot, LogValue, MemberId, Message, RequestId};

/// A message to deliver to each of `to` as if `from` had sent it.
#[derive(Debug)]
pub struct Forgery {
    pub from: MemberId,
    pub to: Vec<MemberId>,
    pub message: Message,
}

/// Draws a forgery aimed at one or all of the members that are up, in the name of another.
pub fn draw(rng: &mut Rng, cluster: &mut Cluster) -> Option<Forgery> {
    let size = cluster.size();
    let from = match rng.chance(0.1) {
        true => size + rng.below(3) as usize,
        false => rng.below(size as u64) as usize,
    };
    // A member drops what seems to come from itself.
    let targets: Vec<MemberId> = cluster.up().into_iter().filter(|&m| m != from).collect();
    if targets.is_empty() {
        return None;
    }
    let to = if rng.chance(0.5) {
        vec![rng.pick(&targets)]
    } else {
        targets
    };
    let highest = to
        .iter()
        .map(|&m| cluster.node(m).expect("up").status().ballot.round)
        .max()
        .expect("a target");
    let round = rng.pick(&[
        u64::MAX,
        u64::MAX - 1,
        MAX_ROUND + 1,
        MAX_ROUND,
        MAX_ROUND - 1,
        highest + MAX_ROUND_STEP + 1,
        highest + MAX_ROUND_STEP,
    ]);
    // A forged value that a member took would be a Byzantine member's doing, which Paxos does
    // not survive; one that members refuse must not reach anyone's log.
    let taken = round == highest + MAX_ROUND_STEP;
    // Prepares, accepts and commits carry their sender's own ballot; a nack carries whatever
    // its sender promised, and a promise its recipient's ballot.
    let owned = Ballot {
        round,
        member: from,
    };
    let other = Ballot {
        round,
        member: rng.below(size as u64) as usize,
    };
    let slot = rng.between(1, 50);
    // Incarnation 0 is no member's (each counts from the time of day), so the target never
    // made this read; `n` is one a member's counter reaches, or not.
    let read = RequestId {
        member: rng.below(size as u64) as usize,
        incarnation: 0,
        n: rng.pick(&[1, 2, 40, u64::MAX]),
    };
    let message = match rng.below(9) {
        0 => Message::Prepare {
            ballot: owned,
            from_slot: slot,
        },
        1 => Message::Accept {
            ballot: owned,
            entries: (!taken)
                .then_some(Entry {
                    slot,
                    value: LogValue::Noop,
                })
                .into_iter()
                .collect(),
            commit: slot,
        },
        2 => Message::Commit {
            ballot: owned,
            commit: slot,
            read: 0,
        },
        3 => Message::Nack { ballot: other },
        5 => Message::ReadAck {
            ballot: other,
            read: rng.pick(&[0, 1, 2, 3, u64::MAX]),
        },
        6 => Message::ReadIndex { id: read },
        7 => Message::ReadIndexOk {
            id: read,
            index: rng.pick(&[0, slot, MAX_SLOT, MAX_SLOT + 1, u64::MAX]),
        },
        8 => Message::ReadIndexRefused { id: read },
        _ => Message::Promise {
            ballot: other,
            accepted: Vec::new(),
            decided: Vec::new(),
            snapshot: None,
        },
    };
    Some(Forgery { from, to, message })
}
