//! Fuzzing the core's state machine, [`Node`], through its public API only: a member of a small
//! cluster, started from a fuzzed durable state, is fed arbitrary sequences of peer messages
//! (every variant, from any member id, itself and strangers included), answers that fit what it
//! is doing (promises and acceptances at its current ballot), timeouts, client commands, and
//! crashes that lose whatever it had not persisted yet.
//!
//! No sequence may panic it, and after every step:
//!
//! - the ballot it reports never decreases, and the promise it persisted never does either,
//!   even across a restart; no acceptance is persisted below the persisted promise;
//! - its commit index (which is also its applied index) never decreases, and after a restart it
//!   is back at least where it was when its last `Ready` was persisted;
//! - a slot's decided value never changes once decided (and persisted, across a restart);
//! - every `Accepted` it sends for a slot comes with that slot's acceptance at that ballot
//!   persisted in the same `Ready` or an earlier one, or with the slot's decision persisted;
//! - it sends messages only to other members of its config (and broadcasts only when it has
//!   peers), and answers each of its client requests at most once;
//! - the ballot it reports never passes `MAX_ROUND`, nor climbs more than `MAX_ROUND_STEP` in
//!   one input, whatever ballots it is sent: those near the top of the range, and those a step
//!   and a step and one above its own.
//!
//! At the end of every run it must still be elected past every ballot it took: it runs at a
//! higher one, and a majority's promises make it lead. Only a ballot at the cap, which its
//! durable state may hold, leaves it no round to run at.

mod fuzz_support;
#[path = "fuzz_support/wire.rs"]
#[allow(dead_code)]
// The node gets small slots only (see `step`), and its records are fuzzed elsewhere.
mod wire;

use wire::Slots;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use paxos_core::message::{AcceptedEntry, Entry, MAX_ROUND};
use paxos_core::node::MAX_ROUND_STEP;
use paxos_core::storage::{self, Record};
use paxos_core::{
    Ballot, Command, LogValue, MemberId, Message, Node, NodeConfig, Ready, RequestId, Role, Slot,
    Time, To, Tuning,
};
use proptest::collection::vec;
use proptest::prelude::*;

/// One input to the node.
#[derive(Clone, Debug)]
enum Step {
    /// Any message, from any member id.
    Message {
        from: MemberId,
        message: Message,
    },
    /// A promise for the ballot the node reports, as an acceptor would answer its prepare.
    Promise {
        from: MemberId,
        accepted: Vec<AcceptedEntry>,
        decided: Vec<Entry>,
    },
    /// An acceptance at the ballot the node reports, as a follower would answer its accept.
    Accepted {
        from: MemberId,
        slots: Vec<Slot>,
    },
    /// A message whose ballot (if it has one) is `by` rounds above the one the node reports.
    Above {
        from: MemberId,
        message: Message,
        by: u64,
    },
    Timeout,
    Submit(Command),
    /// A crash and a restart from what the node persisted.
    Restart,
}

/// A step, after `advance` of time, then maybe a `take_ready` (several steps before one
/// `take_ready` are how a runtime batches).
#[derive(Clone, Debug)]
struct Input {
    advance: Duration,
    step: Step,
    take: bool,
}

/// Slots are mostly small, so that runs reach commits and elections, and sometimes any `u64`: a
/// promise or an acceptance far past the commit index must neither panic nor make a new leader
/// fill every slot up to it (`MAX_SLOT_GAP`).
fn step() -> impl Strategy<Value = Step> {
    let from = || prop_oneof![4 => 0usize..5, 1 => wire::member()];
    prop_oneof![
        6 => (from(), wire::message(Slots::Any)).prop_map(|(from, message)| Step::Message { from, message }),
        2 => (from(), vec(wire::accepted_entry(Slots::Any), 0..3), vec(wire::entry(Slots::Any), 0..2))
            .prop_map(|(from, accepted, decided)| Step::Promise { from, accepted, decided }),
        2 => (from(), vec(0u64..12, 0..4)).prop_map(|(from, slots)| Step::Accepted { from, slots }),
        // A whole step above, which the node takes, or one round more, which it drops.
        2 => (from(), wire::message(Slots::Small), prop_oneof![Just(MAX_ROUND_STEP), Just(MAX_ROUND_STEP + 1)])
            .prop_map(|(from, message, by)| Step::Above { from, message, by }),
        3 => Just(Step::Timeout),
        3 => wire::command().prop_map(Step::Submit),
        1 => Just(Step::Restart),
    ]
}

fn input() -> impl Strategy<Value = Input> {
    let advance = prop_oneof![
        Just(Duration::ZERO),
        (0u64..3000).prop_map(Duration::from_millis),
    ];
    (advance, step(), prop::bool::weighted(0.7)).prop_map(|(advance, step, take)| Input {
        advance,
        step,
        take,
    })
}

/// The cluster and the member, the durable state it starts from, and what happens to it.
#[derive(Clone, Debug)]
struct Scenario {
    members: usize,
    me: MemberId,
    seed: u64,
    log: Vec<Record>,
    inputs: Vec<Input>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (1usize..=5)
        .prop_flat_map(|members| {
            (
                Just(members),
                0..members,
                any::<u64>(),
                prop_oneof![3 => Just(Vec::new()), 1 => vec(wire::record(Slots::Small), 0..6)],
                vec(input(), 0..80),
            )
        })
        .prop_map(|(members, me, seed, log, inputs)| Scenario {
            members,
            me,
            seed,
            log,
            inputs,
        })
}

/// The incarnation the node starts with, above the few the strategies put in request ids: a
/// forged request with the node's own incarnation would pass for one of its clients'.
const INCARNATION: u64 = 1000;

/// Small batches and frequent compaction, so short runs reach the paths long ones would.
fn tuning() -> Tuning {
    Tuning {
        max_batch: 3,
        max_in_flight: 5,
        catch_up_batch: 3,
        snapshot_every: 4,
        ..Tuning::default()
    }
}

/// The node, what it persisted, and what the checks remember of it.
struct Harness {
    members: usize,
    me: MemberId,
    seed: u64,
    now: Time,
    node: Node,
    /// The log file: every persisted record, restarted by a rewrite.
    log: Vec<u8>,
    /// The ballot the node last reported.
    ballot: Ballot,
    /// The highest ballot the node persisted a promise of.
    promised: Ballot,
    /// Every (slot, ballot) acceptance the node persisted.
    accepted: HashSet<(Slot, Ballot)>,
    commit: Slot,
    /// The commit index when the last `Ready` was persisted: a restart must get back there.
    durable_commit: Slot,
    /// Every value the node has decided per slot, and those decisions that it persisted.
    decided: BTreeMap<Slot, LogValue>,
    durable_decided: BTreeMap<Slot, LogValue>,
    submitted: HashSet<RequestId>,
    answered: HashSet<RequestId>,
}

impl Harness {
    fn start(scenario: &Scenario) -> Result<Harness, TestCaseError> {
        let log = storage::encode_all(&scenario.log);
        let durable = storage::replay(&log).expect("whole frames replay").state;
        let promised = durable.promised;
        let accepted = durable
            .accepted
            .iter()
            .map(|(&slot, &(ballot, _))| (slot, ballot))
            .collect();
        let node = Node::new(
            NodeConfig {
                me: scenario.me,
                members: scenario.members,
                tuning: tuning(),
                seed: scenario.seed,
                incarnation: INCARNATION,
            },
            durable,
            Time::ZERO,
        );
        let mut harness = Harness {
            members: scenario.members,
            me: scenario.me,
            seed: scenario.seed,
            now: Time::ZERO,
            node,
            log,
            ballot: promised,
            promised,
            accepted,
            commit: 0,
            durable_commit: 0,
            decided: BTreeMap::new(),
            durable_decided: BTreeMap::new(),
            submitted: HashSet::new(),
            answered: HashSet::new(),
        };
        harness.check_status()?;
        harness.take()?;
        Ok(harness)
    }

    fn run(&mut self, input: &Input) -> Result<(), TestCaseError> {
        self.now += input.advance;
        let now = self.now;
        let ballot = self.node.status().ballot;
        match &input.step {
            Step::Message { from, message } => {
                self.node.handle_message(now, *from, message.clone());
            }
            Step::Promise {
                from,
                accepted,
                decided,
            } => {
                let promise = Message::Promise {
                    ballot,
                    accepted: accepted.clone(),
                    decided: decided.clone(),
                    snapshot: None,
                };
                self.node.handle_message(now, *from, promise);
            }
            Step::Accepted { from, slots } => {
                let slots = slots.clone();
                self.node
                    .handle_message(now, *from, Message::Accepted { ballot, slots });
            }
            Step::Above { from, message, by } => {
                let message = with_round(message.clone(), ballot.round.saturating_add(*by));
                self.node.handle_message(now, *from, message);
            }
            Step::Timeout => self.node.handle_timeout(now),
            Step::Submit(command) => {
                let id = self.node.submit(now, command.clone());
                prop_assert!(self.submitted.insert(id), "request id {:?} reused", id);
            }
            Step::Restart => return self.restart(),
        }
        self.check_status()?;
        if input.take {
            self.take()?;
        }
        Ok(())
    }

    /// Checks what `status` and `decided` say against what they said before.
    fn check_status(&mut self) -> Result<(), TestCaseError> {
        let status = self.node.status();
        prop_assert!(
            status.ballot >= self.ballot,
            "ballot went from {} to {}",
            self.ballot,
            status.ballot
        );
        prop_assert!(status.ballot >= self.promised);
        prop_assert!(
            status.ballot.round <= MAX_ROUND
                && status.ballot.round <= self.ballot.round.saturating_add(MAX_ROUND_STEP),
            "ballot went from {} to {}",
            self.ballot,
            status.ballot
        );
        prop_assert!(status.commit_index >= self.commit, "commit index decreased");
        self.ballot = status.ballot;
        self.commit = status.commit_index;
        for (&slot, value) in self.node.decided() {
            let first = self.decided.entry(slot).or_insert_with(|| value.clone());
            prop_assert_eq!(&*first, value, "slot {} changed its decided value", slot);
        }
        Ok(())
    }

    /// Takes the `Ready`, checks it, and "persists" it.
    fn take(&mut self) -> Result<(), TestCaseError> {
        let ready: Ready = self.node.take_ready();
        if ready.rewrite {
            self.log.clear();
        }
        self.log.extend(storage::encode_all(&ready.persist));
        for record in &ready.persist {
            match record {
                Record::Promise { ballot } => {
                    prop_assert!(
                        *ballot >= self.promised,
                        "promised {} after {}",
                        ballot,
                        self.promised
                    );
                    self.promised = *ballot;
                }
                Record::Accepted { slot, ballot, .. } => {
                    // A rewrite restates old acceptances, which may be below today's promise.
                    if !ready.rewrite {
                        prop_assert!(
                            *ballot >= self.promised,
                            "accepted slot {} at {} after promising {}",
                            slot,
                            ballot,
                            self.promised
                        );
                        self.promised = *ballot;
                    }
                    self.accepted.insert((*slot, *ballot));
                }
                Record::Decided { slot, value } => {
                    let first = self.decided.entry(*slot).or_insert_with(|| value.clone());
                    prop_assert_eq!(&*first, value, "slot {} persisted another value", slot);
                }
                // It names an acceptance the log holds; its value is checked as decided.
                Record::DecidedAccepted { slot, ballot } => prop_assert!(
                    self.accepted.contains(&(*slot, *ballot)),
                    "decided slot {} as accepted at {}, which it never persisted",
                    slot,
                    ballot
                ),
                Record::Snapshot { .. } | Record::Incarnation { .. } => {}
            }
        }
        for (to, message) in &ready.messages {
            match *to {
                To::Member(to) => prop_assert!(
                    to < self.members && to != self.me,
                    "{} sent to member {}",
                    message.kind(),
                    to
                ),
                To::Peers => prop_assert!(self.members > 1, "{} sent to no peer", message.kind()),
            }
            if let Message::Accepted { ballot, slots } = message {
                for slot in slots {
                    // A member acknowledges a slot it knows decided without recording an
                    // acceptance: its decision is durable, and a leader re-proposing that slot
                    // must still hear from a majority.
                    let decided = *slot <= self.commit || self.decided.contains_key(slot);
                    prop_assert!(
                        decided || self.accepted.contains(&(*slot, *ballot)),
                        "sent accepted for slot {} at {} without persisting the acceptance",
                        slot,
                        ballot
                    );
                }
            }
        }
        for (id, _) in &ready.replies {
            prop_assert!(
                self.submitted.contains(id),
                "answered {:?}, never submitted",
                id
            );
            prop_assert!(self.answered.insert(*id), "answered {:?} twice", id);
        }
        self.durable_commit = self.commit;
        self.durable_decided = self.decided.clone();
        Ok(())
    }

    /// Checks that the node can still be elected, past every ballot it took: its timers fire
    /// until it runs (a catch-up retry may come first), at a ballot above every one it
    /// reported, and the promises of the other members make it lead. Only a round at the cap
    /// leaves it nothing to run at.
    fn elect(&mut self) -> Result<(), TestCaseError> {
        let before = self.node.status().ballot;
        for _ in 0..100 {
            if self.node.status().role != Role::Follower {
                break;
            }
            self.now = self.now.max(self.node.poll_timeout());
            self.node.handle_timeout(self.now);
            self.check_status()?;
            self.take()?;
        }
        let status = self.node.status();
        if before.round == MAX_ROUND && status.role == Role::Follower {
            return Ok(());
        }
        prop_assert_ne!(status.role, Role::Follower, "never ran past {}", before);
        // A candidate or leader already runs at the highest ballot it knows.
        prop_assert!(
            status.ballot >= before && status.ballot.member == self.me,
            "ran at {} past {}",
            status.ballot,
            before
        );
        let me = self.me;
        for from in (0..self.members).filter(|&m| m != me) {
            if self.node.status().role == Role::Leader {
                break;
            }
            let promise = Message::Promise {
                ballot: status.ballot,
                accepted: Vec::new(),
                decided: Vec::new(),
                snapshot: None,
            };
            self.node.handle_message(self.now, from, promise);
            self.check_status()?;
        }
        prop_assert_eq!(
            self.node.status().role,
            Role::Leader,
            "not elected at {}",
            status.ballot
        );
        self.take()
    }

    /// Crashes the node, losing what it had not persisted, and restarts it from its log.
    fn restart(&mut self) -> Result<(), TestCaseError> {
        let replayed = storage::replay(&self.log);
        let durable = match replayed {
            Ok(replayed) => {
                prop_assert_eq!(replayed.valid_len, self.log.len() as u64);
                replayed.state
            }
            Err(corruption) => {
                return Err(TestCaseError::fail(format!(
                    "the node's own log does not replay: {corruption}"
                )));
            }
        };
        // The node moves past the incarnations its log recorded by itself.
        self.node = Node::new(
            NodeConfig {
                me: self.me,
                members: self.members,
                tuning: tuning(),
                seed: self.seed,
                incarnation: INCARNATION,
            },
            durable,
            self.now,
        );
        let status = self.node.status();
        prop_assert!(
            status.commit_index >= self.durable_commit,
            "restarted at commit index {} after persisting {}",
            status.commit_index,
            self.durable_commit
        );
        // Only what was persisted survives: the ballots the node saw but never promised, and the
        // decisions it had not persisted, are gone.
        self.ballot = status.ballot;
        self.commit = status.commit_index;
        self.decided = self.durable_decided.clone();
        self.check_status()?;
        self.take()
    }
}

/// `message` with its ballot, if it has one, at `round`.
fn with_round(mut message: Message, round: u64) -> Message {
    if let Message::Prepare { ballot, .. }
    | Message::Promise { ballot, .. }
    | Message::Accept { ballot, .. }
    | Message::Accepted { ballot, .. }
    | Message::Nack { ballot }
    | Message::Commit { ballot, .. } = &mut message
    {
        ballot.round = round;
    }
    message
}

proptest! {
    #![proptest_config(fuzz_support::config(256))]

    #[test]
    fn any_inputs_keep_the_invariants(scenario in scenario()) {
        let mut harness = Harness::start(&scenario)?;
        for input in &scenario.inputs {
            harness.run(input)?;
        }
        harness.elect()?;
        harness.restart()?;
    }
}

#[test]
fn every_message_variant_is_fuzzed() {
    wire::assert_makes_every_kind(wire::message(Slots::Small), wire::VARIANTS, wire::variant);
}
