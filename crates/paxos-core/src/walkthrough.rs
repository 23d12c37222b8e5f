//! Paxos, message by message: tests written to be read in order.
//!
//! Each test drives a few nodes with the [`Hand`] harness, which holds every message on the wire
//! until the test delivers it, so each step is one message arriving and the node's answer going
//! out. The comments say what just happened and why. Read the crate documentation's "The
//! algorithm" first; these show its rules at work:
//!
//! 1. [`one_value_is_decided`]: phase 1 (`Prepare`, `Promise`), phase 2 (`Accept`,
//!    `Accepted`), and the commit index (`Commit`) that tells the followers.
//! 2. [`a_value_accepted_by_a_minority_is_proposed_again_by_the_next_leader`]: the rule that
//!    makes Paxos safe.
//! 3. [`two_candidates_compete_and_one_steps_down`]: ballots order candidates; `Nack`.
//! 4. [`a_follower_learns_a_slot_only_at_the_ballot_it_accepted`]: why a commit index alone
//!    does not tell a follower which value was decided.

use crate::log::{Ballot, LogValue, MemberId, Request};
use crate::sim::hand::Hand;
use crate::{Answer, Command, Message, Op, Record, Role, Value};

fn put(key: &str, value: &str) -> Command {
    Command::new(Op::Put {
        key: key.into(),
        value: value.into(),
    })
}

/// The command a log value holds, if it holds one.
fn command(value: &LogValue) -> Option<&Command> {
    match value {
        LogValue::Request(Request { command, .. }) => Some(command),
        LogValue::Noop => None,
    }
}

/// The messages of `kind` on the wire from `from` to `to`.
fn held<'a>(h: &'a Hand, from: MemberId, to: MemberId, kind: &str) -> Vec<&'a Message> {
    h.wire
        .iter()
        .filter(|(f, t, m)| (*f, *t, m.kind()) == (from, to, kind))
        .map(|(_, _, m)| m)
        .collect()
}

/// Whether member `m`'s log file holds a record that `is` picks out.
fn logged(h: &Hand, m: MemberId, is: impl Fn(&Record) -> bool) -> bool {
    h.logs[m].iter().any(is)
}

/// The whole life of one value in a cluster of three: elected, proposed, accepted by a
/// majority, decided, applied, answered, and learned by every member.
#[test]
fn one_value_is_decided() {
    let mut h = Hand::new(3);

    // Member 0's election timer fires: it heard from no leader. It becomes a candidate at
    // ballot 1.0 (round 1, member 0), promises that ballot to itself, and sends `Prepare` to
    // the two others.
    let ballot = h.time_out(0).expect("member 0 runs");
    assert_eq!(
        ballot,
        Ballot {
            round: 1,
            member: 0
        }
    );
    assert_eq!(h.nodes[0].status().role, Role::Candidate);
    assert_eq!(held(&h, 0, 1, "prepare").len(), 1);
    assert_eq!(held(&h, 0, 2, "prepare").len(), 1);

    // Member 1 has promised nothing higher, so it promises ballot 1.0: it will accept nothing
    // below it from now on. The promise is in its log file before the `Promise` leaves, so a
    // crash cannot make it forget it said so.
    assert_eq!(h.deliver(0, 1, "prepare"), 1);
    assert!(logged(&h, 1, |r| *r == Record::Promise { ballot }));
    assert_eq!(held(&h, 1, 0, "promise").len(), 1);

    // Member 0 now holds two promises, its own and member 1's: a majority of three. Nothing
    // was accepted anywhere, so it has nothing to propose again, and it leads at ballot 1.0.
    // Member 2's promise is not needed; the prepare to it can stay on the wire.
    assert_eq!(h.deliver(1, 0, "promise"), 1);
    assert_eq!(h.nodes[0].status().role, Role::Leader);

    // A client asks the leader to put x = 1. When the node's turn ends, the request becomes
    // a proposal for slot 1: the leader accepts it itself (durably) and sends `Accept` to
    // the others.
    let id = h.nodes[0].submit(h.now, put("x", "1"));
    h.carry_out(0);
    assert!(logged(&h, 0, |r| matches!(
        r,
        Record::Accepted { slot: 1, .. }
    )));
    let [Message::Accept { entries, .. }] = held(&h, 0, 1, "accept")[..] else {
        panic!("one accept to member 1");
    };
    assert_eq!(entries[0].slot, 1);

    // Member 1 promised ballot 1.0, not higher, so it accepts: it writes the acceptance to
    // its log file, then answers `Accepted`.
    assert_eq!(h.deliver(0, 1, "accept"), 1);
    assert!(logged(
        &h,
        1,
        |r| matches!(r, Record::Accepted { slot: 1, ballot: b, .. } if *b == ballot)
    ));

    // Two of three accepted the value at one ballot: it is decided, and nothing can change
    // that (see the next test for why). The leader learns it, applies it to its store,
    // answers the client, and moves its commit index to 1.
    assert_eq!(h.deliver(1, 0, "accepted"), 1);
    assert_eq!(h.nodes[0].status().commit_index, 1);
    assert_eq!(h.nodes[0].store().peek("x"), Some(&Value::Str("1".into())));
    assert!(matches!(h.answered[0][..], [(answered, Answer::Done { .. })] if answered == id));

    // At the end of that turn the leader announced its new commit index with `Commit`.
    // Member 1 accepted slot 1 at ballot 1.0, the ballot of the leader whose commit covers
    // it, so it knows the value it holds is the decided one: it learns and applies it.
    assert_eq!(h.deliver(0, 1, "commit"), 1);
    assert_eq!(h.nodes[1].status().commit_index, 1);
    assert_eq!(h.nodes[1].store().peek("x"), Some(&Value::Str("1".into())));

    // Member 2 saw neither the prepare nor the accept. The commit tells it slot 1 is decided
    // but not with which value, so it asks the leader with `CatchUp`, and the leader answers
    // with the decided entry itself.
    assert_eq!(h.deliver(0, 2, "commit"), 1);
    assert_eq!(h.nodes[2].status().commit_index, 0);
    assert_eq!(h.deliver(2, 0, "catch_up"), 1);
    assert_eq!(h.deliver(0, 2, "decided"), 1);
    assert_eq!(h.nodes[2].status().commit_index, 1);
    assert_eq!(h.nodes[2].store().peek("x"), Some(&Value::Str("1".into())));
}

/// A leader's value reached only a minority before the leader died. It may have been decided
/// for all anyone knows, so the next leader, which hears of it in a promise, proposes that
/// value in the slot instead of anything of its own.
#[test]
fn a_value_accepted_by_a_minority_is_proposed_again_by_the_next_leader() {
    let mut h = Hand::new(5);

    // Member 0 leads at ballot 1.0 with the promises of members 1 and 2 (three of five).
    h.elect(0, &[1, 2]);
    h.nodes[0].submit(h.now, put("x", "from 0"));
    h.carry_out(0);

    // Its accept for slot 1 reaches member 1 only; then member 0 crashes, and everything it
    // had sent is lost. The value is accepted by members 0 and 1: two of five, a minority.
    assert_eq!(h.deliver(0, 1, "accept"), 1);
    h.drop_all(0);

    // Member 4 runs at ballot 1.4, which is higher than 1.0 (same round, higher member).
    // Members 1, 2 and 3 promise it: with its own, a majority. Member 1's promise reports what
    // it accepted: "from 0" in slot 1 at ballot 1.0.
    h.elect(4, &[1, 2, 3]);

    // Why this matters: had the value been decided, a majority would have accepted it, and
    // any two majorities of five share a member. So every majority that promises a later
    // ballot holds someone who accepted it, and the new leader hears of it. The leader cannot
    // tell a decided value from one that only a minority took, so it treats both alike: for
    // every open slot it proposes the value accepted at the highest ballot reported.
    let [Message::Accept { entries, .. }] = held(&h, 4, 1, "accept")[..] else {
        panic!("one accept to member 1");
    };
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].slot, 1);
    assert_eq!(command(&entries[0].value), Some(&put("x", "from 0")));

    // Its own client's command goes in the next slot.
    h.nodes[4].submit(h.now, put("x", "from 4"));
    h.carry_out(4);
    for m in [1, 2] {
        h.deliver(4, m, "accept");
        h.deliver(m, 4, "accepted");
    }
    assert_eq!(h.nodes[4].status().commit_index, 2);
    assert_eq!(
        command(&h.nodes[4].decided()[&1]),
        Some(&put("x", "from 0"))
    );
    assert_eq!(
        h.nodes[4].store().peek("x"),
        Some(&Value::Str("from 4".into()))
    );
    // Member 0 is down, so its client gets the runtime's request timeout, which says the
    // outcome is unknown: rightly, since the command did take effect.
}

/// Two members run at once. Ballots are ordered, so acceptors side with the higher one, and
/// the lower one learns from a `Nack` that it lost, and steps down.
#[test]
fn two_candidates_compete_and_one_steps_down() {
    let mut h = Hand::new(3);

    // Both election timers fire before either hears of the other: member 0 runs at ballot 1.0
    // and member 1 at ballot 1.1. Ballots are ordered by round, then member, so 1.1 is higher.
    let low = h.time_out(0).expect("member 0 runs");
    let high = h.time_out(1).expect("member 1 runs");
    assert!(low < high);

    // Member 2 hears member 0 first and promises 1.0. Then member 1's prepare arrives with a
    // higher ballot, and it promises that too: a promise only ever goes up.
    assert_eq!(h.deliver(0, 2, "prepare"), 1);
    assert_eq!(h.deliver(1, 2, "prepare"), 1);
    assert_eq!(h.nodes[2].status().ballot, high);

    // Both promises reach their candidates, and each now has a majority: its own promise and
    // member 2's. So for a moment both lead. That is safe: member 2 will accept nothing below
    // 1.1 any more, so member 0 can get nothing decided without it.
    assert_eq!(h.deliver(2, 0, "promise"), 1);
    assert_eq!(h.deliver(2, 1, "promise"), 1);
    assert_eq!(h.nodes[0].status().role, Role::Leader);
    assert_eq!(h.nodes[1].status().role, Role::Leader);

    // Member 0 proposes a client's command at 1.0. Member 2 refuses: it promised 1.1. It
    // answers `Nack` with the ballot it promised, instead of `Accepted`.
    h.nodes[0].submit(h.now, put("x", "late"));
    h.carry_out(0);
    assert_eq!(h.deliver(0, 2, "accept"), 1);
    assert!(held(&h, 2, 0, "accepted").is_empty());
    let [Message::Nack { ballot }] = held(&h, 2, 0, "nack")[..] else {
        panic!("one nack to member 0");
    };
    assert_eq!(*ballot, high);

    // The nack tells member 0 that someone outbid it: it steps down and waits to hear from
    // the new leader. Its command, never decided, goes to that leader once it knows it.
    assert_eq!(h.deliver(2, 0, "nack"), 1);
    assert_eq!(h.nodes[0].status().role, Role::Follower);
    assert_eq!(h.nodes[0].status().commit_index, 0);
}

/// A commit index says which slots are decided, not which values. A follower takes the value
/// it holds for decided only if it accepted it at the very ballot of the leader announcing
/// the commit, since that leader proposed one value per slot. Otherwise it asks.
#[test]
fn a_follower_learns_a_slot_only_at_the_ballot_it_accepted() {
    let mut h = Hand::new(5);

    // Member 0 leads at 1.0 and proposes "old" in slot 1. Only member 3 accepts it before
    // member 0 crashes: a minority (members 0 and 3) holds "old", at ballot 1.0.
    h.elect(0, &[1, 2]);
    h.nodes[0].submit(h.now, put("x", "old"));
    h.carry_out(0);
    assert_eq!(h.deliver(0, 3, "accept"), 1);
    h.drop_all(0);

    // Member 4 leads at 1.4 with members 1 and 2, none of whom accepted anything: so slot 1 is
    // open as far as it knows, and its own client's "new" goes there. Members 1 and 2 accept
    // it, and "new" is decided in slot 1. Member 3 hears none of this.
    h.elect(4, &[1, 2]);
    h.nodes[4].submit(h.now, put("x", "new"));
    h.carry_out(4);
    for m in [1, 2] {
        h.deliver(4, m, "accept");
        h.deliver(m, 4, "accepted");
    }
    assert_eq!(h.nodes[4].status().commit_index, 1);

    // The leader's `Commit` (ballot 1.4, commit index 1) reaches member 3, which holds "old"
    // for slot 1, accepted at 1.0. Taking it for decided would split the members' data. The
    // ballots differ, so member 3 does not: it follows the new leader and asks it for the
    // decided entry instead.
    h.wire
        .retain(|(from, to, m)| !(*from == 4 && *to == 3 && m.kind() == "accept"));
    assert_eq!(h.deliver(4, 3, "commit"), 1);
    assert_eq!(h.nodes[3].status().commit_index, 0);
    assert_eq!(h.nodes[3].status().leader, Some(4));
    assert_eq!(held(&h, 3, 4, "catch_up").len(), 1);

    // The leader answers with what was decided, and member 3 learns "new".
    assert_eq!(h.deliver(3, 4, "catch_up"), 1);
    assert_eq!(h.deliver(4, 3, "decided"), 1);
    assert_eq!(h.nodes[3].status().commit_index, 1);
    assert_eq!(command(&h.nodes[3].decided()[&1]), Some(&put("x", "new")));
}
