//! The forger: someone who can pass for a member (it holds the cluster's secret, or none is set)
//! and now and then sends one member or several a message in another member's name, with a
//! ballot no honest member uses: at or near the last round there is, near the cap
//! ([`MAX_ROUND`]), or just over a step ([`MAX_ROUND_STEP`]) above the highest round its
//! targets have seen, all of which they drop. One such prepare used to halt a cluster for good;
//! the liveness checker is what shows that it no longer does. Sometimes the ballot is exactly a
//! step up, which the member that has seen the highest round takes: the cluster must then climb
//! to it.

use super::cluster::Cluster;
use crate::message::{Entry, MAX_ROUND};
use crate::node::MAX_ROUND_STEP;
use crate::rng::Rng;
use crate::{Ballot, LogValue, MemberId, Message};

/// A message to deliver to each of `to` as if `from` had sent it.
#[derive(Debug)]
pub struct Forgery {
    pub from: MemberId,
    pub to: Vec<MemberId>,
    pub message: Message,
}

/// Draws a forgery aimed at one or all of the members that are up, in the name of another.
pub fn draw(rng: &mut Rng, cluster: &mut Cluster) -> Option<Forgery> {
    let from = rng.below(cluster.size() as u64) as usize;
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
        member: rng.below(cluster.size() as u64) as usize,
    };
    let slot = rng.between(1, 50);
    let message = match rng.below(5) {
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
        _ => Message::Promise {
            ballot: other,
            accepted: Vec::new(),
            decided: Vec::new(),
            snapshot: None,
        },
    };
    Some(Forgery { from, to, message })
}
