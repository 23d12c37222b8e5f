//! The acceptor: the member's vote in every ballot.
//!
//! An acceptor answers a candidate's `Prepare(ballot)` with a promise never to accept below
//! `ballot`, reporting what it accepted before, and a leader's `Accept(ballot, value)` by
//! accepting, unless it promised a higher ballot; either way it answers a lower ballot with a
//! `Nack`. A value is decided once a majority of acceptors accepted it at one ballot. Any two
//! majorities share a member, and that member's promise is what tells a later leader of the
//! value, which it then proposes instead of its own: so a decided value stays decided.
//!
//! The invariant this module keeps: an acceptor never accepts below the ballot it promised,
//! and every promise and acceptance is in [`Ready::persist`](super::Ready::persist) of the same
//! `Ready` as the message that reports it, so it is durable before anyone can rely on it.

use std::collections::BTreeMap;

use super::Node;
use crate::log::{AcceptedEntry, Ballot, Entry, LogValue, MAX_ROUND, MemberId, Slot};
use crate::message::Message;
use crate::snapshot::Snapshot;
use crate::storage::Record;

/// How far past its commit index a member accepts a slot. A leader proposes at most its
/// in-flight window past its own commit index, so only a member far behind meets a slot past
/// this; it refuses it until it has caught up, and the rest of the cluster goes on. (A leader
/// accepts its own proposals wherever they are; a promise may have reported one twice as far.)
/// The bound is what keeps a forged or garbled slot number (up to `u64::MAX`) from making a new
/// leader fill every slot up to it. Decided values are learned up to twice as far, since an
/// acceptor's decided values run ahead of its commit index by at most its acceptances.
pub const MAX_SLOT_GAP: Slot = 1 << 16;

/// How far above the highest round it has seen a member takes a ballot. It drops a message with
/// a ballot further up, and one past [`MAX_ROUND`], and counts it in
/// [`Stats::ballots_refused`](super::Stats::ballots_refused): otherwise one forged `Prepare` at
/// round `u64::MAX` would make every member promise, durably, a ballot that no election can
/// outbid.
///
/// Honest rounds grow slowly, so they never come near the step. An election takes the highest
/// round its candidate has seen plus one, and a candidate whose election timed out with no news
/// of a higher ballot runs again at the same ballot; so a member cut off for hours comes back
/// with the round it left with, and only leader changes and colliding candidates raise the
/// cluster's round, by one each. Should the others still have gone through more than 2^20
/// (about a million) of them while a member was away, it rejoins anyway: a member refusing a
/// ballot far below its own answers with a ballot just under this step above the refused one
/// (see `nack`), so the laggard climbs one step per election of its own, at most
/// `ceil(gap / 2^20)` elections in all, restarted or not.
///
/// What it costs a forger: a member takes a forged ballot only this step above what it has
/// seen, so bringing it from round 0 to [`MAX_ROUND`], where no election can outbid it any more,
/// takes `ceil((2^63 - 1) / 2^20) = 2^43` (about 8.8 × 10^12) forged messages taken one after
/// another; at 100,000 a second, almost three years. Short of that, each forged ballot it takes
/// costs the cluster an election or two.
pub const MAX_ROUND_STEP: u64 = 1 << 20;

/// What the member promised and accepted.
#[derive(Debug)]
pub(super) struct Acceptor {
    /// No ballot below this one is accepted.
    pub(super) promised: Ballot,
    /// The highest ballot seen anywhere, so a new election outbids it rather than being refused.
    pub(super) highest_seen: Ballot,
    /// Accepted values not (yet known to be) decided: the slot's latest acceptance.
    pub(super) accepted: BTreeMap<Slot, (Ballot, LogValue)>,
}

impl Acceptor {
    /// The acceptor as the member left it: its promise and acceptances, replayed.
    pub(super) fn new(promised: Ballot, accepted: BTreeMap<Slot, (Ballot, LogValue)>) -> Self {
        assert!(
            promised.round <= MAX_ROUND,
            "promised {promised} past MAX_ROUND; storage::replay refuses such a log"
        );
        Acceptor {
            promised,
            highest_seen: promised,
            accepted,
        }
    }

    /// The highest ballot this member promised or saw in use.
    pub(super) fn highest(&self) -> Ballot {
        self.promised.max(self.highest_seen)
    }

    /// Whether a message at `ballot` may be taken. A ballot names the member that owns it; one
    /// that names no member of the config is forged or garbled, and following it would make a
    /// leader of nobody. So is one past [`MAX_ROUND`] or far above every round this member has
    /// seen (see [`MAX_ROUND_STEP`]): promising it would leave elections nothing to outbid it
    /// with.
    pub(super) fn takes_ballot(&self, ballot: Ballot, members: usize) -> bool {
        let highest = self.highest().round;
        ballot.member < members
            && ballot.round <= MAX_ROUND
            && ballot.round <= highest.saturating_add(MAX_ROUND_STEP)
    }
}

impl Node {
    /// Phase 1b: `Prepare(ballot, from_slot)`.
    pub(super) fn on_prepare(&mut self, from: MemberId, ballot: Ballot, from_slot: Slot) {
        if ballot < self.acceptor.promised && !self.sabotaged() {
            self.nack(from, ballot);
            return;
        }
        if ballot > self.acceptor.promised {
            self.promise(ballot);
        }
        // A candidate with a higher ballot is under way: give it time before competing.
        self.make_way();
        let (accepted, decided, snapshot) = self.report_from(from_slot);
        let promise = Message::Promise {
            ballot,
            accepted,
            decided,
            snapshot,
        };
        self.send(from, promise);
    }

    /// Phase 2b: `Accept(ballot, entries, commit)`.
    pub(super) fn on_accept(
        &mut self,
        from: MemberId,
        ballot: Ballot,
        entries: Vec<Entry>,
        commit: Slot,
    ) {
        if ballot < self.acceptor.promised && !self.sabotaged() {
            self.nack(from, ballot);
            return;
        }
        self.follow(ballot);
        let mut slots = Vec::with_capacity(entries.len());
        for Entry { slot, value } in entries {
            if self.accept(slot, ballot, value) {
                slots.push(slot);
            }
        }
        self.send(from, Message::Accepted { ballot, slots });
        self.learn_commit(ballot, commit);
    }

    /// Records a promise of `ballot`.
    pub(super) fn promise(&mut self, ballot: Ballot) {
        self.acceptor.promised = ballot;
        self.persist(Record::Promise { ballot });
    }

    /// Records the acceptance of `value` for `slot` at `ballot`, unless the slot is decided
    /// already (then the leader's value is the decided one, and there is nothing to record).
    /// Returns whether the leader may count this member for the slot: not for a slot more than
    /// [`MAX_SLOT_GAP`] past the commit index, which this member refuses until it catches up.
    fn accept(&mut self, slot: Slot, ballot: Ballot, value: LogValue) -> bool {
        let commit_index = self.learner.commit_index;
        if slot <= commit_index || self.learner.decided.contains_key(&slot) {
            return true;
        }
        if slot > commit_index.saturating_add(MAX_SLOT_GAP) {
            return false;
        }
        self.record_acceptance(slot, ballot, value);
        true
    }

    /// Accepts `value` for `slot` at `ballot`, durably.
    pub(super) fn record_acceptance(&mut self, slot: Slot, ballot: Ballot, value: LogValue) {
        self.acceptor.promised = self.acceptor.promised.max(ballot);
        let size = value.wire_size();
        let record = Record::Accepted {
            slot,
            ballot,
            value: value.clone(),
        };
        self.persist_value(record, size);
        self.acceptor.accepted.insert(slot, (ballot, value));
    }

    /// What this acceptor knows from `from_slot` on, for a promise. Slots it compacted away go
    /// as its state instead, and decided values from there on: a member that compacted slots
    /// away never reports them as open.
    pub(super) fn report_from(
        &self,
        from_slot: Slot,
    ) -> (Vec<AcceptedEntry>, Vec<Entry>, Option<Box<Snapshot>>) {
        let snapshot = (from_slot < self.learner.log_start).then(|| Box::new(self.make_snapshot()));
        let from_slot = if snapshot.is_some() {
            self.learner.commit_index + 1
        } else {
            from_slot
        };
        let accepted = self
            .acceptor
            .accepted
            .range(from_slot..)
            .map(|(&slot, (ballot, value))| AcceptedEntry {
                slot,
                ballot: *ballot,
                value: value.clone(),
            })
            .collect();
        let decided = self
            .learner
            .decided
            .range(from_slot..)
            .map(|(&slot, value)| Entry {
                slot,
                value: value.clone(),
            })
            .collect();
        (accepted, decided, snapshot)
    }

    /// Tells `to` that this member promised a higher ballot than `refused`, the one `to` used.
    /// Where the promise is a step or more above `refused`, `to` would drop it (it has seen
    /// nothing higher than `refused`), and a member far behind would never learn how far it is;
    /// so the nack names the ballot just under a step above `refused` instead. That is still
    /// true (this member promised at least as much), `to` takes it, and its next election, one
    /// round up, is exactly a step above `refused`, which the members `to` ran with still take.
    pub(super) fn nack(&mut self, to: MemberId, refused: Ballot) {
        let rung = Ballot {
            round: refused.round + (MAX_ROUND_STEP - 1),
            member: self.acceptor.promised.member,
        };
        let ballot = self.acceptor.promised.min(rung);
        self.send(to, Message::Nack { ballot });
    }
}
