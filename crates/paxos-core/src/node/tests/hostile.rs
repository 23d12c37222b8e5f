//! What a member refuses: ballots out of bounds, promises and entries no honest member sends,
//! and messages from a member that cannot vouch for them.

use std::time::Duration;

use super::super::proposer::State;
use super::super::*;
use super::{append, promised, put};
use crate::log::{AcceptedEntry, Ballot, Entry, MAX_ROUND};
use crate::sim::hand::Hand;
use crate::snapshot::Snapshot;

/// A promise reporting an acceptance far past where the candidate stands is dropped, not
/// obeyed: leading from it would mean a no-op in every slot up to it.
#[test]
fn a_promise_from_far_away_is_dropped() {
    let mut h = Hand::new(3);
    h.now += Duration::from_secs(10);
    let now = h.now;
    h.nodes[0].handle_timeout(now);
    h.carry_out(0);
    let State::Candidate { ballot, .. } = h.nodes[0].proposer.state else {
        panic!("node 0 is not a candidate");
    };
    let far = AcceptedEntry {
        slot: MAX_SLOT,
        ballot: Ballot::ZERO,
        value: LogValue::Noop,
    };
    let forged = Message::Promise {
        ballot,
        accepted: vec![far],
        decided: Vec::new(),
        snapshot: None,
    };
    h.nodes[0].handle_message(now, 1, forged);
    assert_eq!(h.nodes[0].status().role, Role::Candidate);
    // An honest promise still elects it, and it proposes nothing it was not told of.
    assert_eq!(h.deliver(0, 2, "prepare"), 1);
    assert_eq!(h.deliver(2, 0, "promise"), 1);
    assert_eq!(h.nodes[0].status().role, Role::Leader);
    let State::Leader { next_slot, .. } = h.nodes[0].proposer.state else {
        panic!("node 0 does not lead");
    };
    assert_eq!(next_slot, 1);
}

/// One forged prepare at the last round there is used to halt the cluster for good: every
/// member promised it, durably, and no election could outbid it. Now a member takes no
/// ballot past the cap or more than a step above what it has seen, and counts the refusal.
#[test]
fn a_ballot_far_above_or_past_the_cap_is_refused() {
    let mut h = Hand::new(3);
    let forged = [u64::MAX, MAX_ROUND + 1, MAX_ROUND, MAX_ROUND_STEP + 1];
    for round in forged {
        for message in [
            Message::Prepare {
                ballot: Ballot { round, member: 0 },
                from_slot: 1,
            },
            Message::Nack {
                ballot: Ballot { round, member: 0 },
            },
            Message::Commit {
                ballot: Ballot { round, member: 0 },
                commit: 0,
                read: 0,
            },
        ] {
            let now = h.now;
            h.nodes[1].handle_message(now, 0, message);
        }
    }
    assert_eq!(h.nodes[1].stats().ballots_refused, 3 * forged.len() as u64);
    assert_eq!(h.nodes[1].status().ballot, Ballot::ZERO);
    assert!(
        h.nodes[1]
            .take_ready()
            .persist
            .iter()
            .all(|r| !matches!(r, Record::Promise { .. }))
    );
    // A step up is taken, and an election outbids it.
    let step = Ballot {
        round: MAX_ROUND_STEP,
        member: 0,
    };
    let now = h.now;
    h.nodes[1].handle_message(
        now,
        0,
        Message::Prepare {
            ballot: step,
            from_slot: 1,
        },
    );
    assert_eq!(h.nodes[1].status().ballot, step);
    h.carry_out(1);
    h.wire.clear();
    let ballot = h.time_out(1).expect("node 1 runs");
    assert_eq!(ballot.round, MAX_ROUND_STEP + 1);
    // Node 2 hears of the step from its owner first; it would not take a ballot two steps
    // above what it has seen.
    h.nodes[2].handle_message(
        now,
        0,
        Message::Commit {
            ballot: step,
            commit: 0,
            read: 0,
        },
    );
    assert_eq!(h.deliver(1, 2, "prepare"), 1);
    assert_eq!(h.deliver(2, 1, "promise"), 1);
    assert_eq!(h.nodes[1].status().role, Role::Leader);
}

/// A member holding the highest ballot below the cap can still be outbid; only the cap
/// itself, which takes 2^43 forged messages in a row to reach, leaves no election to run.
#[test]
fn an_election_outbids_every_ballot_below_the_cap() {
    let top = MAX_ROUND - 1;
    let mut h = Hand::restarted(vec![promised(top, 2), promised(top, 2), promised(top, 2)]);
    let ballot = h.time_out(0).expect("node 0 runs");
    assert_eq!(
        ballot,
        Ballot {
            round: MAX_ROUND,
            member: 0
        }
    );
    assert_eq!(h.deliver(0, 1, "prepare"), 1);
    assert_eq!(h.deliver(1, 0, "promise"), 1);
    assert_eq!(h.nodes[0].status().role, Role::Leader);
    let mut h = Hand::restarted(vec![promised(MAX_ROUND, 2), Durable::default()]);
    assert_eq!(h.time_out(0), None);
    assert!(h.wire.is_empty());
}

/// A candidate that hears nothing runs again at the same ballot, so a member cut off for
/// hours does not come back a round per timeout ahead; after a restart it takes a new round,
/// since it may have led at the old one.
#[test]
fn a_candidate_that_hears_nothing_runs_again_at_the_same_ballot() {
    let mut h = Hand::new(3);
    let first = h.time_out(0).expect("node 0 runs");
    for _ in 0..5 {
        h.wire.clear();
        assert_eq!(h.time_out(0), Some(first));
        let prepares = h.wire.iter().filter(|(_, _, m)| m.kind() == "prepare");
        assert_eq!(prepares.count(), 2, "the prepare goes out again");
    }
    assert_eq!(h.nodes[0].stats().elections_started, 6);
    // The promise of the first timeout still counts toward the election.
    assert_eq!(h.deliver(0, 1, "prepare"), 1);
    assert_eq!(h.deliver(1, 0, "promise"), 1);
    assert_eq!(h.nodes[0].status().role, Role::Leader);
    let durable = promised(first.round, 0);
    let mut h = Hand::restarted(vec![durable, Durable::default(), Durable::default()]);
    let again = h.time_out(0).expect("node 0 runs");
    assert_eq!(again.round, first.round + 1);
}

/// A member whose round is many steps below the others' drops all they say, but the nacks
/// its own elections get carry it up a step at a time until it follows the leader.
#[test]
fn a_member_many_steps_behind_climbs_back() {
    let ahead = 5 * MAX_ROUND_STEP + 3;
    let mut h = Hand::restarted(vec![
        promised(ahead, 0),
        promised(ahead, 0),
        Durable::default(),
    ]);
    h.elect(0, &[1]);
    let leader = h.nodes[0].status().ballot;
    let mut elections = 0;
    while h.nodes[2].status().leader != Some(0) {
        let now = h.now;
        h.nodes[0].handle_timeout(now);
        h.carry_out(0);
        h.deliver(0, 2, "commit");
        if h.nodes[2].status().leader == Some(0) {
            break;
        }
        assert!(h.nodes[2].stats().ballots_refused > 0);
        h.time_out(2).expect("node 2 runs");
        elections += 1;
        assert_eq!(h.deliver(2, 0, "prepare"), 1);
        assert_eq!(h.deliver(0, 2, "nack"), 1);
        h.wire.retain(|(_, to, _)| *to != 1);
        assert!(elections <= 6, "node 2 does not climb");
    }
    assert_eq!(elections, 5);
    assert_eq!(
        h.nodes[0].status().ballot,
        leader,
        "node 2 never disturbed the leader"
    );
}

/// An acceptor never accepts above what it promises, so a promise reporting an acceptance
/// above its ballot is forged, and the reported ballot would outrank the honest ones.
#[test]
fn a_promise_reporting_a_higher_acceptance_is_dropped() {
    let mut h = Hand::new(3);
    let ballot = h.time_out(0).expect("node 0 runs");
    let above = AcceptedEntry {
        slot: 1,
        ballot: Ballot {
            round: ballot.round,
            member: 2,
        },
        value: LogValue::Noop,
    };
    let forged = Message::Promise {
        ballot,
        accepted: vec![above],
        decided: Vec::new(),
        snapshot: None,
    };
    let now = h.now;
    h.nodes[0].handle_message(now, 1, forged);
    assert_eq!(h.nodes[0].stats().ballots_refused, 1);
    assert_eq!(h.nodes[0].status().role, Role::Candidate);
}

/// A candidate that takes a snapshot far ahead from a promise re-proposes the open slots
/// after it, not every slot from where its phase 1 started: walking those took forever when
/// the snapshot's slot was 2^40 (found by fuzz_node).
#[test]
fn a_snapshot_far_ahead_in_a_promise_leaves_little_to_propose() {
    let mut h = Hand::new(3);
    let ballot = h.time_out(0).expect("node 0 runs");
    let far = 1 << 40;
    let promise = Message::Promise {
        ballot,
        accepted: vec![AcceptedEntry {
            slot: far + 2,
            ballot,
            value: LogValue::Noop,
        }],
        decided: Vec::new(),
        snapshot: Some(Box::new(Snapshot {
            slot: far,
            ..Snapshot::default()
        })),
    };
    let now = h.now;
    h.nodes[0].handle_message(now, 1, promise);
    assert_eq!(h.nodes[0].status().role, Role::Leader);
    assert_eq!(h.nodes[0].status().commit_index, far);
    assert_eq!(
        h.nodes[0].stats().slots_proposed,
        2,
        "a no-op and the accepted value"
    );
}

/// Leads with node 0, decides slot 1 with node 1, and lets node 2 hear only the commit: it
/// asks node 0 to catch it up. The request is left on the wire.
fn lagging_member() -> Hand {
    let mut h = Hand::new(3);
    h.elect(0, &[1]);
    h.nodes[0].submit(h.now, append("a"));
    h.carry_out(0);
    h.deliver(0, 1, "accept");
    h.deliver(1, 0, "accepted");
    h.carry_out(0);
    assert_eq!(h.deliver(0, 2, "commit"), 1);
    assert_eq!(h.nodes[2].status().commit_index, 0);
    h
}

/// Decided entries are taken only in answer to a catch-up request, from the member asked:
/// anyone else claiming a value decided could split a member's data from the others'.
#[test]
fn decided_entries_are_taken_only_from_the_member_asked() {
    let mut h = lagging_member();
    let forged = || Message::Decided {
        entries: vec![Entry {
            slot: 1,
            value: put("forged"),
        }],
        commit: 1,
    };
    let now = h.now;
    h.nodes[2].handle_message(now, 1, forged());
    assert_eq!(h.nodes[2].stats().messages_unvouched, 1);
    assert_eq!(h.nodes[2].status().commit_index, 0);
    assert_eq!(h.deliver(2, 0, "catch_up"), 1);
    let answer = h
        .wire
        .iter()
        .find(|(f, t, m)| (*f, *t, m.kind()) == (0, 2, "decided"))
        .map(|(_, _, m)| m.clone())
        .expect("node 0 answers");
    assert_eq!(h.deliver(0, 2, "decided"), 1);
    assert_eq!(h.nodes[2].status().commit_index, 1);
    assert_eq!(h.nodes[2].decided(), h.nodes[0].decided());
    // The request is answered: a duplicate of the answer is dropped, and so is a member
    // that asked for nothing.
    h.nodes[2].handle_message(now, 0, answer);
    assert_eq!(h.nodes[2].stats().messages_unvouched, 2);
    h.nodes[1].handle_message(now, 0, forged());
    assert_eq!(h.nodes[1].stats().messages_unvouched, 1);
}

/// Likewise a snapshot: taken from the member asked, and only while the question stands.
#[test]
fn a_snapshot_is_taken_only_from_the_member_asked() {
    let mut h = lagging_member();
    let forged = Snapshot {
        slot: 5,
        ..Snapshot::default()
    };
    let now = h.now;
    h.nodes[2].handle_message(
        now,
        1,
        Message::Snapshot {
            snapshot: Box::new(forged.clone()),
        },
    );
    assert_eq!(h.nodes[2].stats().messages_unvouched, 1);
    assert_eq!(h.nodes[2].status().commit_index, 0);
    h.nodes[2].handle_message(
        now,
        0,
        Message::Snapshot {
            snapshot: Box::new(forged),
        },
    );
    assert_eq!(h.nodes[2].stats().snapshots_installed, 1);
    assert_eq!(h.nodes[2].status().commit_index, 5);
}

/// Only a ballot's owner prepares, proposes and commits at it.
#[test]
fn accepts_and_commits_are_taken_only_from_the_ballot_owner() {
    let mut h = Hand::new(3);
    h.elect(0, &[1]);
    let ballot = h.nodes[0].status().ballot;
    let now = h.now;
    let accept = Message::Accept {
        ballot,
        entries: vec![Entry {
            slot: 1,
            value: put("forged"),
        }],
        commit: 1,
    };
    h.nodes[2].handle_message(now, 1, accept);
    h.nodes[2].handle_message(
        now,
        1,
        Message::Commit {
            ballot,
            commit: 1,
            read: 0,
        },
    );
    h.nodes[2].handle_message(
        now,
        1,
        Message::Prepare {
            ballot,
            from_slot: 1,
        },
    );
    assert_eq!(h.nodes[2].stats().messages_unvouched, 3);
    let ready = h.nodes[2].take_ready();
    assert!(ready.messages.is_empty(), "{:?}", ready.messages);
    assert_eq!(h.nodes[2].status().leader, None);
    assert!(h.nodes[2].acceptor.accepted.is_empty());
}

/// The decided entries and snapshot in a promise are taken only from a promise of the
/// candidate's current ballot, which answers its own prepare.
#[test]
fn a_promise_teaches_only_at_the_current_ballot() {
    let mut h = Hand::new(3);
    let ballot = h.time_out(0).expect("node 0 runs");
    let stale = Ballot {
        round: ballot.round - 1,
        member: 0,
    };
    let promise = |ballot| Message::Promise {
        ballot,
        accepted: Vec::new(),
        decided: vec![Entry {
            slot: 1,
            value: LogValue::Noop,
        }],
        snapshot: None,
    };
    let now = h.now;
    h.nodes[0].handle_message(now, 1, promise(stale));
    assert_eq!(h.nodes[0].status().commit_index, 0);
    h.nodes[0].handle_message(now, 1, promise(ballot));
    assert_eq!(h.nodes[0].status().commit_index, 1);
}
