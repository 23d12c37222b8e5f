//! Strategies for the core's wire and log types, kept small on purpose: ballots, slots, member
//! ids and keys come from short ranges, so that random messages often hit the slots and ballots
//! a node is using, and member ids and slots reach just past the ends of a small cluster's range.
//!
//! [`message`] has one strategy per [`Message`] variant. A new variant belongs in [`variant`]
//! too, whose `match` stops compiling until it is added; the node fuzzer checks that [`message`]
//! makes every variant.

use paxos_core::Snapshot;
use paxos_core::applied::AppliedRequests;
use paxos_core::kv::KvStore;
use paxos_core::message::{AcceptedEntry, Entry, MAX_ROUND};
use paxos_core::node::MAX_ROUND_STEP;
use paxos_core::storage::Record;
use paxos_core::{
    Ballot, Command, Consistency, LogValue, MemberId, Message, Op, Request, RequestId, Slot,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::ValueTree;

/// Member ids of clusters of up to five, and two past the end.
pub fn member() -> impl Strategy<Value = MemberId> {
    0usize..7
}

/// Which slot numbers to draw.
#[derive(Clone, Copy, Debug)]
pub enum Slots {
    /// Near the start of the log, and a little past where a short run gets.
    Small,
    /// Those, and any `u64`, the largest included.
    Any,
}

pub fn slot(slots: Slots) -> BoxedStrategy<Slot> {
    match slots {
        Slots::Small => prop_oneof![8 => 0u64..12, 1 => 12u64..64].boxed(),
        Slots::Any => prop_oneof![
            8 => slot(Slots::Small),
            1 => Just(u64::MAX),
            1 => any::<u64>(),
        ]
        .boxed(),
    }
}

/// Rounds a member may hold: mostly small ones, which the node's own rounds meet, and those at
/// the edges of what a member takes: a whole step above round 0, and the cap and just under it.
fn held_round() -> impl Strategy<Value = u64> {
    prop_oneof![
        12 => 0u64..5,
        1 => Just(MAX_ROUND_STEP),
        1 => Just(MAX_ROUND - 1),
        1 => Just(MAX_ROUND),
    ]
}

/// A ballot a member may hold, as its log records do.
pub fn held_ballot() -> impl Strategy<Value = Ballot> {
    (held_round(), member()).prop_map(|(round, member)| Ballot { round, member })
}

/// Any ballot a message may carry: those a member may hold, and rounds no member takes from
/// a member that has seen nothing: just past a step, just past the cap, and the last one.
pub fn ballot() -> impl Strategy<Value = Ballot> {
    let round = prop_oneof![
        15 => held_round(),
        1 => Just(MAX_ROUND_STEP + 1),
        1 => Just(MAX_ROUND + 1),
        1 => Just(u64::MAX),
    ];
    (round, member()).prop_map(|(round, member)| Ballot { round, member })
}

pub fn command() -> impl Strategy<Value = Command> {
    let key = || prop_oneof![Just("a".to_owned()), Just("b".to_owned()), "\\PC{0,4}"];
    let value = || prop_oneof![Just("x".to_owned()), Just("y".to_owned()), "\\PC{0,4}"];
    let op = prop_oneof![
        key().prop_map(|key| Op::Get { key }),
        (key(), value()).prop_map(|(key, value)| Op::Put { key, value }),
        key().prop_map(|key| Op::Delete { key }),
        (key(), proptest::option::of(value()), value()).prop_map(|(key, expected, value)| {
            Op::Cas {
                key,
                expected,
                value,
            }
        }),
        (key(), value()).prop_map(|(key, value)| Op::Append { key, value }),
    ];
    let identity = proptest::option::of((prop_oneof![Just("c1"), Just("c2")], 0u64..4));
    (op, identity, any::<bool>()).prop_map(|(op, identity, stale)| Command {
        consistency: match stale && !op.is_write() {
            true => Consistency::Serializable,
            false => Consistency::Linearizable,
        },
        op,
        client_id: identity.map(|(client, _)| client.to_owned()),
        seq: identity.map(|(_, seq)| seq),
    })
}

pub fn request() -> impl Strategy<Value = Request> {
    (member(), 0u64..3, 0u64..6, 0u64..6, command()).prop_map(
        |(member, incarnation, n, floor, command)| Request {
            id: RequestId {
                member,
                incarnation,
                n,
            },
            floor,
            command,
        },
    )
}

pub fn log_value() -> impl Strategy<Value = LogValue> {
    prop_oneof![
        1 => Just(LogValue::Noop),
        3 => request().prop_map(LogValue::Request),
    ]
}

pub fn entry(slots: Slots) -> impl Strategy<Value = Entry> {
    (slot(slots), log_value()).prop_map(|(slot, value)| Entry { slot, value })
}

pub fn accepted_entry(slots: Slots) -> impl Strategy<Value = AcceptedEntry> {
    (slot(slots), ballot(), log_value()).prop_map(|(slot, ballot, value)| AcceptedEntry {
        slot,
        ballot,
        value,
    })
}

/// A state some member could have reached: a few requests applied in order.
pub fn snapshot(slots: Slots) -> impl Strategy<Value = Snapshot> {
    (slot(slots), vec(request(), 0..4)).prop_map(|(slot, requests)| {
        let mut kv = KvStore::new();
        let mut applied = AppliedRequests::default();
        for (index, request) in (1..).zip(&requests) {
            if applied.admit(request) {
                kv.apply(index, &request.command);
            }
        }
        Snapshot { slot, kv, applied }
    })
}

/// Any message, each variant about as likely as the others.
pub fn message(slots: Slots) -> impl Strategy<Value = Message> {
    prop_oneof![
        (ballot(), slot(slots))
            .prop_map(|(ballot, from_slot)| Message::Prepare { ballot, from_slot }),
        (
            ballot(),
            vec(accepted_entry(slots), 0..4),
            vec(entry(slots), 0..3),
            proptest::option::weighted(0.2, snapshot(slots).prop_map(Box::new)),
        )
            .prop_map(|(ballot, accepted, decided, snapshot)| Message::Promise {
                ballot,
                accepted,
                decided,
                snapshot,
            }),
        (ballot(), vec(entry(slots), 0..4), slot(slots)).prop_map(|(ballot, entries, commit)| {
            Message::Accept {
                ballot,
                entries,
                commit,
            }
        }),
        (ballot(), vec(slot(slots), 0..4))
            .prop_map(|(ballot, slots)| Message::Accepted { ballot, slots }),
        ballot().prop_map(|ballot| Message::Nack { ballot }),
        (ballot(), slot(slots), prop_oneof![Just(0u64), 1u64..4]).prop_map(
            |(ballot, commit, read)| Message::Commit {
                ballot,
                commit,
                read
            }
        ),
        slot(slots).prop_map(|from_slot| Message::CatchUp { from_slot }),
        (vec(entry(slots), 0..4), slot(slots))
            .prop_map(|(entries, commit)| Message::Decided { entries, commit }),
        vec(request(), 0..3).prop_map(|requests| Message::Forward { requests }),
        snapshot(slots).prop_map(|snapshot| Message::Snapshot {
            snapshot: Box::new(snapshot)
        }),
        (ballot(), 0u64..4).prop_map(|(ballot, read)| Message::ReadAck { ballot, read }),
        request_id().prop_map(|id| Message::ReadIndex { id }),
        (request_id(), slot(slots)).prop_map(|(id, index)| Message::ReadIndexOk { id, index }),
        request_id().prop_map(|id| Message::ReadIndexRefused { id }),
    ]
}

fn request_id() -> impl Strategy<Value = RequestId> {
    (member(), 0u64..3, 0u64..6).prop_map(|(member, incarnation, n)| RequestId {
        member,
        incarnation,
        n,
    })
}

/// A record as a member writes it: its ballots are ones it may hold.
pub fn record(slots: Slots) -> impl Strategy<Value = Record> {
    prop_oneof![
        held_ballot().prop_map(|ballot| Record::Promise { ballot }),
        (slot(slots), held_ballot(), log_value()).prop_map(|(slot, ballot, value)| {
            Record::Accepted {
                slot,
                ballot,
                value,
            }
        }),
        (slot(slots), log_value()).prop_map(|(slot, value)| Record::Decided { slot, value }),
        (slot(slots), held_ballot())
            .prop_map(|(slot, ballot)| Record::DecidedAccepted { slot, ballot }),
        snapshot(slots).prop_map(|snapshot| Record::Snapshot {
            snapshot: Box::new(snapshot)
        }),
        any::<u64>().prop_map(|incarnation| Record::Incarnation { incarnation }),
    ]
}

/// How many variants [`Record`] has; [`record_kind`] numbers them.
pub const RECORD_KINDS: usize = 6;

/// Numbers `record`'s variant, as [`variant`] does messages.
pub fn record_kind(record: &Record) -> usize {
    match record {
        Record::Promise { .. } => 0,
        Record::Accepted { .. } => 1,
        Record::Decided { .. } => 2,
        Record::Snapshot { .. } => 3,
        Record::Incarnation { .. } => 4,
        Record::DecidedAccepted { .. } => 5,
    }
}

/// How many variants [`Message`] has; [`variant`] numbers them.
pub const VARIANTS: usize = 14;

/// Numbers `message`'s variant, `0..VARIANTS`. The `match` is exhaustive, so a new variant stops
/// this from compiling until it is numbered here (and [`VARIANTS`] raised); the node fuzzer then
/// fails until [`message`] makes it too.
pub fn variant(message: &Message) -> usize {
    match message {
        Message::Prepare { .. } => 0,
        Message::Promise { .. } => 1,
        Message::Accept { .. } => 2,
        Message::Accepted { .. } => 3,
        Message::Nack { .. } => 4,
        Message::Commit { .. } => 5,
        Message::CatchUp { .. } => 6,
        Message::Decided { .. } => 7,
        Message::Forward { .. } => 8,
        Message::Snapshot { .. } => 9,
        Message::ReadAck { .. } => 10,
        Message::ReadIndex { .. } => 11,
        Message::ReadIndexOk { .. } => 12,
        Message::ReadIndexRefused { .. } => 13,
    }
}

/// Panics unless `strategy` makes each of `kinds` kinds of value (as `kind` numbers them) within
/// a thousand draws: a strategy that forgot a variant would fuzz without it, silently.
pub fn assert_makes_every_kind<T: std::fmt::Debug>(
    strategy: impl Strategy<Value = T>,
    kinds: usize,
    kind: impl Fn(&T) -> usize,
) {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut seen = vec![false; kinds];
    for _ in 0..1000 {
        let value = strategy.new_tree(&mut runner).expect("a value").current();
        seen[kind(&value)] = true;
    }
    let missing: Vec<usize> = (0..kinds).filter(|&k| !seen[k]).collect();
    assert!(
        missing.is_empty(),
        "the strategy never made kinds {missing:?}"
    );
}
