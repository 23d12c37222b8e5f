//! The node's own tests, driven message by message with the [`Hand`] harness. The tests of what
//! a forger or a garbled message cannot do are in `hostile.rs`, and those of reads in `reads.rs`.

mod hostile;
mod reads;

use std::time::Duration;

use super::*;
use crate::log::{Ballot, Request};
use crate::sim::hand::{Hand, value_bytes};
use crate::{Op, Value, storage};

pub(super) fn append(value: &str) -> Command {
    Command::new(Op::Append {
        key: "k".into(),
        value: value.into(),
    })
}

pub(super) fn promised(round: u64, member: MemberId) -> Durable {
    Durable {
        promised: Ballot { round, member },
        ..Durable::default()
    }
}

pub(super) fn put(value: &str) -> LogValue {
    LogValue::Request(Request {
        id: RequestId {
            member: 1,
            incarnation: 1,
            n: 1,
        },
        floor: 0,
        command: Command::new(Op::Put {
            key: "k".into(),
            value: value.into(),
        }),
    })
}

/// A follower's request that its leader never proposed (the leader died holding it) goes
/// again to the next leader, and is answered.
#[test]
fn a_request_lost_with_its_leader_is_sent_to_the_next_one() {
    let mut h = Hand::new(3);
    h.elect(0, &[1]);
    // Node 0's first heartbeat tells the others it leads.
    let now = h.now;
    h.nodes[0].handle_timeout(now);
    h.carry_out(0);
    assert_eq!(h.deliver(0, 1, "commit"), 1);
    assert_eq!(h.deliver(0, 2, "commit"), 1);
    assert_eq!(h.nodes[1].status().leader, Some(0));
    let id = h.nodes[1].submit(h.now, append("x"));
    h.carry_out(1);
    // Node 0 dies: the forward and everything it sent are lost.
    h.wire.clear();
    h.elect(2, &[1]);
    assert_eq!(
        h.nodes[1].stats().requests_resent,
        0,
        "node 1 has not heard node 2 yet"
    );
    let now = h.now;
    h.nodes[2].handle_timeout(now);
    h.carry_out(2);
    assert_eq!(h.deliver(2, 1, "commit"), 1);
    assert_eq!(h.nodes[1].stats().requests_resent, 1);
    assert_eq!(h.deliver(1, 2, "forward"), 1);
    h.deliver(2, 1, "accept");
    h.deliver(1, 2, "accepted");
    h.carry_out(2);
    h.deliver(2, 1, "commit");
    let list = Value::List(vec!["x".into()]);
    assert_eq!(h.nodes[1].store().peek("k"), Some(&list));
    // The request is answered (the reply left when that delivery's Ready was carried out), so node 1 no
    // longer holds it for resending.
    assert!(!h.nodes[1].requests.unanswered.contains_key(&id));
}

/// A member that does not accept is sent the value again after one heartbeat interval, then
/// after twice as long each time, up to an election timeout: a slow follower is not sent a large
/// value every heartbeat, and a lost accept is still repaired.
#[test]
fn unacknowledged_accepts_are_resent_ever_less_often() {
    let mut h = Hand::new(3);
    h.elect(0, &[1, 2]);
    h.nodes[0].submit(h.now, append("x"));
    h.carry_out(0);
    // Neither follower answers: record when each accept to node 1 leaves, for ten seconds.
    let mut sent = Vec::new();
    let end = h.now + Duration::from_secs(10);
    while h.now < end {
        h.now += Duration::from_millis(1);
        let now = h.now;
        h.nodes[0].handle_timeout(now);
        h.carry_out(0);
        let accepts = h
            .wire
            .iter()
            .filter(|(_, t, m)| *t == 1 && m.kind() == "accept");
        sent.extend(accepts.map(|_| now));
        h.wire.clear();
    }
    let gaps: Vec<u128> = sent.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect();
    let tuning = Tuning::default();
    let (first, last) = (tuning.heartbeat_interval, tuning.election_timeout);
    let mut expected = vec![];
    let mut gap = first;
    while expected.len() < gaps.len() {
        expected.push(gap.as_millis());
        gap = (gap * 2).min(last);
    }
    assert_eq!(gaps, expected, "the gaps between re-sent accepts, in ms");
    assert!(gaps.len() >= 8, "{} re-sends in ten seconds", gaps.len());
}

/// Puts `count` values of `size` bytes through a leader and two followers, and returns the
/// most bytes of values any of them appended to its log file between two compactions, and
/// the most it held in its decided values.
fn large_values(tuning: Tuning, count: usize, size: usize) -> (usize, usize) {
    let mut h = Hand::tuned(3, tuning);
    h.elect(0, &[1, 2]);
    let mut most_decided = 0;
    for i in 0..count {
        let value = "v".repeat(size);
        h.nodes[0].submit(
            h.now,
            Command::new(Op::Put {
                key: format!("k{i}"),
                value,
            }),
        );
        h.carry_out(0);
        for f in [1, 2] {
            assert_eq!(h.deliver(0, f, "accept"), 1);
            h.deliver(f, 0, "accepted");
        }
        h.carry_out(0);
        for f in [1, 2] {
            h.deliver(0, f, "commit");
        }
        for node in &h.nodes {
            assert_eq!(node.status().commit_index, i as Slot + 1);
            let held: usize = node.decided().values().map(LogValue::wire_size).sum();
            most_decided = most_decided.max(held);
        }
    }
    (h.most_appended, most_decided)
}

/// Large values: the values a member keeps in memory stay within `max_decided_bytes`, and
/// those it appends to its log file between compactions within `snapshot_bytes`, whatever
/// the slot counts allow. With the default budgets, the same run goes past both.
#[test]
fn large_values_stay_within_the_byte_budgets() {
    let (log_budget, memory_budget) = (1 << 20, 512 << 10);
    let tuning = Tuning {
        snapshot_bytes: log_budget,
        max_decided_bytes: memory_budget,
        ..Tuning::default()
    };
    let (appended, decided) = large_values(tuning, 40, 100 << 10);
    assert!(appended < log_budget, "{appended} bytes appended");
    assert!(
        decided <= memory_budget,
        "{decided} bytes decided in memory"
    );
    let (appended, decided) = large_values(Tuning::default(), 40, 100 << 10);
    assert!(appended > log_budget && decided > memory_budget);
}

/// A member that learns a decision it accepted writes the value once, in its acceptance:
/// the decision names the acceptance. Followers wrote every value twice.
#[test]
fn a_decided_value_is_written_once() {
    let mut h = Hand::new(3);
    h.elect(0, &[1, 2]);
    h.nodes[0].submit(h.now, append("x"));
    h.carry_out(0);
    for f in [1, 2] {
        h.deliver(0, f, "accept");
        h.deliver(f, 0, "accepted");
    }
    h.carry_out(0);
    for f in [1, 2] {
        h.deliver(0, f, "commit");
    }
    for m in 0..3 {
        let log = &h.logs[m];
        let decided = h.nodes[m]
            .decided()
            .get(&1)
            .expect("slot 1 decided")
            .clone();
        let holding = log.iter().filter(|r| value_bytes(r) > 0).count();
        assert_eq!(
            holding, 1,
            "node {m} wrote the value {holding} times: {log:?}"
        );
        assert!(
            log.iter()
                .any(|r| matches!(r, Record::DecidedAccepted { slot: 1, .. }))
        );
        let replayed = storage::replay(&storage::encode_all(log)).unwrap().state;
        assert_eq!(replayed.decided.get(&1), Some(&decided), "node {m}");
    }
}

/// A leader that hears, from an old catch-up answer, that a slot it proposed in was decided
/// by a newer leader, must not then tell its followers that the slot is decided at its own
/// ballot: a follower that accepted the leader's value there would take that for decided.
#[test]
fn a_stale_catch_up_answer_does_not_make_a_leader_announce_the_wrong_value() {
    let mut h = Hand::new(5);
    // Node 0 leads and decides slot 1 with nodes 1 and 2.
    h.elect(0, &[1, 2]);
    h.nodes[0].submit(h.now, append("a"));
    h.carry_out(0);
    for f in [1, 2] {
        h.deliver(0, f, "accept");
        h.deliver(f, 0, "accepted");
    }
    assert_eq!(h.nodes[0].status().commit_index, 1);
    // Node 3 missed the accept, hears the commit and asks node 0 to catch it up; that request
    // is delayed.
    h.carry_out(0);
    h.deliver(0, 3, "commit");
    assert!(
        h.wire
            .iter()
            .any(|(f, t, m)| (*f, *t, m.kind()) == (3, 0, "catch_up"))
    );
    h.wire
        .retain(|(f, t, m)| (*f, *t, m.kind()) == (3, 0, "catch_up"));
    // Node 3 leads at a higher ballot with nodes 4 and 1, and gets its value `v` accepted in
    // slot 2 by node 4 only.
    h.elect(3, &[4, 1]);
    h.deliver(3, 2, "prepare");
    h.nodes[3].submit(h.now, append("v"));
    h.carry_out(3);
    h.deliver(3, 4, "accept");
    h.wire
        .retain(|(f, t, m)| (*f, *t, m.kind()) == (3, 0, "catch_up"));
    // Node 2 leads at a yet higher ballot with nodes 0 and 1, and decides `w` in slot 2.
    h.elect(2, &[0, 1]);
    h.nodes[2].submit(h.now, append("w"));
    h.carry_out(2);
    for f in [0, 1] {
        h.deliver(2, f, "accept");
        h.deliver(f, 2, "accepted");
    }
    h.carry_out(2);
    h.deliver(2, 0, "commit");
    let w = h.nodes[0]
        .decided()
        .get(&2)
        .cloned()
        .expect("node 0 learned slot 2");
    h.drop_all(2);
    // Now node 3's old catch-up request reaches node 0, and the answer reaches node 3, which
    // still believes it leads.
    h.deliver(3, 0, "catch_up");
    h.deliver(0, 3, "decided");
    h.carry_out(3);
    h.deliver(3, 4, "commit");
    h.deliver(3, 4, "accept");
    for m in [3, 4] {
        if let Some(decided) = h.nodes[m].decided().get(&2) {
            assert_eq!(
                decided, &w,
                "node {m} decided another value in slot 2 than node 2"
            );
        }
    }
}
