//! The node's own tests, driven message by message.
use std::time::Duration;

use super::proposer::State;
use super::*;
use crate::log::{AcceptedEntry, Ballot, Entry, MAX_ROUND, Request};
use crate::snapshot::Snapshot;
use crate::{Op, Value, storage};

/// Five nodes driven by hand: every message is held until the test delivers it.
struct Hand {
    nodes: Vec<Node>,
    /// Undelivered messages: (from, to, message).
    wire: Vec<(MemberId, MemberId, Message)>,
    now: Time,
    /// Per node, its log file: the records it persisted since it was last replaced.
    logs: Vec<Vec<Record>>,
    /// Per node, the bytes of values appended to its log file since it was last replaced.
    appended: Vec<usize>,
    /// The most any node had appended that way.
    most_appended: usize,
}

impl Hand {
    fn new(n: usize) -> Hand {
        Hand::restarted(vec![Durable::default(); n])
    }

    /// One node per durable state, started from it.
    fn restarted(durables: Vec<Durable>) -> Hand {
        Hand::start(durables, Tuning::default())
    }

    fn tuned(n: usize, tuning: Tuning) -> Hand {
        Hand::start(vec![Durable::default(); n], tuning)
    }

    fn start(durables: Vec<Durable>, tuning: Tuning) -> Hand {
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
                    incarnation: m as u64,
                };
                Node::new(config, durable, Time::ZERO)
            })
            .collect();
        Hand {
            nodes,
            wire: Vec::new(),
            now: Time::ZERO,
            logs: vec![Vec::new(); n],
            appended: vec![0; n],
            most_appended: 0,
        }
    }

    /// Collects what node `m` wants to send.
    fn carry_out(&mut self, m: MemberId) -> Vec<(RequestId, Answer)> {
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
        ready.replies
    }

    /// Delivers every held message from `from` to `to` whose kind is `kind`.
    fn deliver(&mut self, from: MemberId, to: MemberId, kind: &str) -> usize {
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

    fn elect(&mut self, m: MemberId, voters: &[MemberId]) {
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

    fn drop_all(&mut self, from: MemberId) {
        self.wire.retain(|(f, _, _)| *f != from);
    }
}

fn value_bytes(record: &Record) -> usize {
    match record {
        Record::Accepted { value, .. } | Record::Decided { value, .. } => value.wire_size(),
        Record::Promise { .. }
        | Record::DecidedAccepted { .. }
        | Record::Snapshot { .. }
        | Record::Incarnation { .. } => 0,
    }
}

fn append(value: &str) -> Command {
    Command::new(Op::Append {
        key: "k".into(),
        value: value.into(),
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

fn promised(round: u64, member: MemberId) -> Durable {
    Durable {
        promised: Ballot { round, member },
        ..Durable::default()
    }
}

/// Fires node `m`'s election timer, and returns the ballot it runs at, if it runs.
fn time_out(h: &mut Hand, m: MemberId) -> Option<Ballot> {
    h.now += Duration::from_secs(10);
    let now = h.now;
    let before = h.nodes[m].stats().elections_started;
    h.nodes[m].handle_timeout(now);
    h.carry_out(m);
    let started = h.nodes[m].stats().elections_started > before;
    started.then(|| h.nodes[m].status().ballot)
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
    let ballot = time_out(&mut h, 1).expect("node 1 runs");
    assert_eq!(ballot.round, MAX_ROUND_STEP + 1);
    // Node 2 hears of the step from its owner first; it would not take a ballot two steps
    // above what it has seen.
    h.nodes[2].handle_message(
        now,
        0,
        Message::Commit {
            ballot: step,
            commit: 0,
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
    let ballot = time_out(&mut h, 0).expect("node 0 runs");
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
    assert_eq!(time_out(&mut h, 0), None);
    assert!(h.wire.is_empty());
}

/// A candidate that hears nothing runs again at the same ballot, so a member cut off for
/// hours does not come back a round per timeout ahead; after a restart it takes a new round,
/// since it may have led at the old one.
#[test]
fn a_candidate_that_hears_nothing_runs_again_at_the_same_ballot() {
    let mut h = Hand::new(3);
    let first = time_out(&mut h, 0).expect("node 0 runs");
    for _ in 0..5 {
        h.wire.clear();
        assert_eq!(time_out(&mut h, 0), Some(first));
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
    let again = time_out(&mut h, 0).expect("node 0 runs");
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
        time_out(&mut h, 2).expect("node 2 runs");
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
    let ballot = time_out(&mut h, 0).expect("node 0 runs");
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
    let ballot = time_out(&mut h, 0).expect("node 0 runs");
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

fn put(value: &str) -> LogValue {
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
    h.nodes[2].handle_message(now, 1, Message::Commit { ballot, commit: 1 });
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
    let ballot = time_out(&mut h, 0).expect("node 0 runs");
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
