//! The learner: what the member knows to be decided, and the store it applies it to.
//!
//! A member learns a slot's decided value in one of three ways: it is the leader and counted a
//! majority's acceptances (see the proposer); the leader's commit index covers a slot it
//! accepted at the leader's own ballot; or a member it asked answers with decided entries or a
//! snapshot. It then applies decided slots in order, and answers the requests this incarnation
//! is waiting on.
//!
//! The invariant this module keeps: a follower learns a slot from a commit index only when the
//! commit covers it *and* it accepted that slot at the ballot of the leader announcing it, so it
//! never takes an older value for the decided one. A slot it cannot vouch for that way it asks
//! for ([`Message::CatchUp`]), and only the member asked is believed.

use std::collections::{BTreeMap, btree_map};

use super::Node;
use super::batches::batches;
use super::proposer::State;
use crate::Time;
use crate::applied::AppliedRequests;
use crate::command::Answer;
use crate::kv::KvStore;
use crate::log::{Ballot, Entry, LogValue, MemberId, Slot};
use crate::message::Message;
use crate::storage::Record;

/// What the member knows to be decided, and what it built from it.
#[derive(Debug)]
pub(super) struct Learner {
    /// Decided values from `log_start` on; the slots before it were compacted away.
    pub(super) decided: BTreeMap<Slot, LogValue>,
    /// The bytes of the values in `decided`, held under
    /// [`Tuning::max_decided_bytes`](super::Tuning::max_decided_bytes).
    pub(super) decided_bytes: usize,
    /// The first slot whose decided value this member still holds, if it is decided.
    pub(super) log_start: Slot,
    /// Every slot up to here is decided, learned and applied.
    pub(super) commit_index: Slot,
    /// The highest commit index any leader announced to us.
    pub(super) known_commit: Slot,
    /// The catch-up request this member waits on an answer to, if any.
    pub(super) catch_up: Option<CatchUp>,
    pub(super) kv: KvStore,
    /// The requests applied so far, so that a request decided in two slots applies once.
    pub(super) applied: AppliedRequests,
    /// Every value this incarnation learned, compacted or not, for the simulator's agreement
    /// check.
    #[cfg(any(test, doc))]
    pub(super) learned: BTreeMap<Slot, LogValue>,
}

impl Default for Learner {
    fn default() -> Self {
        Learner {
            decided: BTreeMap::new(),
            decided_bytes: 0,
            log_start: 1,
            commit_index: 0,
            known_commit: 0,
            catch_up: None,
            kv: KvStore::new(),
            applied: AppliedRequests::default(),
            #[cfg(any(test, doc))]
            learned: BTreeMap::new(),
        }
    }
}

/// The catch-up request a member waits on an answer to. It asks for every slot past its commit
/// index, so an answer's entries below that are ones it has, and are passed over.
#[derive(Clone, Copy, Debug)]
pub(super) struct CatchUp {
    /// The member asked: the only one whose answer is taken.
    pub(super) to: MemberId,
    pub(super) sent_at: Time,
}

impl Learner {
    /// Whether decided entries or a snapshot from `from` answer the catch-up request this
    /// member waits on. Decided values are final, but anyone can claim a value is decided; only
    /// the member asked, which the asker believes leads, vouches for them.
    pub(super) fn asked(&self, from: MemberId) -> bool {
        self.catch_up.is_some_and(|c| c.to == from)
    }

    /// Whether the catch-up request has waited `retry` for its answer: it is sent again then.
    pub(super) fn catch_up_overdue(&self, now: Time, retry: Time) -> bool {
        self.catch_up.is_some_and(|c| now >= c.sent_at + retry)
    }
}

impl Node {
    /// `Commit(ballot, commit, read)`: the leader's heartbeat and commit index, and its read
    /// round in flight if `read` is not 0.
    pub(super) fn on_commit(&mut self, from: MemberId, ballot: Ballot, commit: Slot, read: u64) {
        if ballot < self.acceptor.promised {
            self.nack(from, ballot);
            return;
        }
        // This member has promised no higher ballot, so no newer leader has its promise yet:
        // that is what the leader's read round asks (see `reads`).
        if read != 0 {
            self.send(from, Message::ReadAck { ballot, read });
        }
        self.follow(ballot);
        self.learn_commit(ballot, commit);
    }

    /// Learns the slots the leader at `ballot` says are decided, where this member holds the
    /// value accepted at that very ballot; asks for the rest.
    pub(super) fn learn_commit(&mut self, ballot: Ballot, commit: Slot) {
        let commit_index = self.learner.commit_index;
        self.learner.known_commit = self.learner.known_commit.max(commit);
        // A half-open range, because an inclusive `commit + 1..=commit` (a heartbeat that brings
        // nothing new, the common case) has its start past its end, and `BTreeMap::range`
        // panics on that.
        let learnable: Vec<Slot> = self
            .acceptor
            .accepted
            .range(commit_index + 1..commit.max(commit_index).saturating_add(1))
            .filter(|(_, (accepted_at, _))| *accepted_at == ballot)
            .map(|(&slot, _)| slot)
            .collect();
        for slot in learnable {
            self.learn_accepted(slot, ballot);
        }
        self.apply_decided();
        if self.learner.commit_index < self.learner.known_commit && self.learner.catch_up.is_none()
        {
            self.request_catch_up();
        }
    }

    /// Asks the leader for the decided slots past this member's commit index.
    pub(super) fn request_catch_up(&mut self) {
        let Some(leader) = self.proposer.leader.filter(|&l| l != self.me) else {
            return;
        };
        if self.learner.commit_index >= self.learner.known_commit {
            return;
        }
        self.stats.catch_up_requests += 1;
        self.learner.catch_up = Some(CatchUp {
            to: leader,
            sent_at: self.now,
        });
        let from_slot = self.learner.commit_index + 1;
        self.send(leader, Message::CatchUp { from_slot });
    }

    /// `CatchUp(from_slot)`: answers with the decided entries from there, one batch of them,
    /// or with a snapshot where those slots were compacted away.
    pub(super) fn on_catch_up(&mut self, from: MemberId, from_slot: Slot) {
        if from_slot < self.learner.log_start && from_slot <= self.learner.commit_index {
            self.stats.snapshots_sent += 1;
            let snapshot = Box::new(self.make_snapshot());
            self.send(from, Message::Snapshot { snapshot });
            return;
        }
        let entries: Vec<Entry> = self
            .learner
            .decided
            .range(from_slot..)
            .take(self.tuning.catch_up_batch)
            .map(|(&slot, value)| Entry {
                slot,
                value: value.clone(),
            })
            .collect();
        let commit = self.learner.commit_index;
        let max_bytes = self.tuning.max_batch_bytes;
        // Only the first batch: the member asks again for the next.
        if let Some(entries) = batches(entries, usize::MAX, max_bytes, |e| e.value.wire_size())
            .into_iter()
            .next()
        {
            self.send(from, Message::Decided { entries, commit });
        }
    }

    /// `Decided(entries, commit)`: the answer to this member's catch-up request.
    pub(super) fn on_decided(&mut self, from: MemberId, entries: Vec<Entry>, commit: Slot) {
        // A leader learns decisions only from its own quorum. An answer to a catch-up it asked
        // for as a follower can arrive after it was elected and report a slot decided by a newer
        // leader it has not heard of yet, with another value than the one it proposed there. If
        // it counted that slot in its commit index, a follower that accepted its own value in
        // that slot would take the next commit at its ballot to mean that value was decided.
        if matches!(self.proposer.state, State::Leader { .. }) {
            return;
        }
        if !self.learner.asked(from) {
            self.stats.messages_unvouched += 1;
            return;
        }
        let before = self.learner.commit_index;
        for Entry { slot, value } in entries {
            self.learn(slot, value);
        }
        self.apply_decided();
        self.learner.known_commit = self.learner.known_commit.max(commit);
        // An answer that moved the commit index on asks for the next batch now rather than
        // after the retry interval. A stale or duplicated answer asks for nothing: if every
        // answer begot a request, each duplicate would start one more stream of requests and
        // answers, and the streams would multiply without bound. Losses are covered by the
        // retry timer, which stays armed.
        if self.learner.commit_index > before {
            self.learner.catch_up = None;
            if self.learner.commit_index < self.learner.known_commit
                && self.proposer.leader == Some(from)
            {
                self.request_catch_up();
            }
        }
    }

    /// Learns that `value` is decided for `slot` from another member, and records it. A slot
    /// far past the commit index comes from no honest member (see
    /// [`MAX_SLOT_GAP`](super::MAX_SLOT_GAP)) and is ignored, which costs nothing but the
    /// learning: a new leader would fill every slot up to the highest one it knows.
    pub(super) fn learn(&mut self, slot: Slot, value: LogValue) {
        if self.learnable(slot) {
            let size = value.wire_size();
            let record = Record::Decided {
                slot,
                value: value.clone(),
            };
            self.persist_value(record, size);
            self.decide(slot, value);
        }
    }

    /// Learns a decided value read back from the log file at start-up: it is on disk already.
    pub(super) fn learn_from_disk(&mut self, slot: Slot, value: LogValue) {
        if self.learnable(slot) {
            self.decide(slot, value);
        }
    }

    /// Whether `slot` is one to learn: not known already, and not implausibly far ahead.
    fn learnable(&self, slot: Slot) -> bool {
        let commit_index = self.learner.commit_index;
        slot > commit_index
            && !self.learner.decided.contains_key(&slot)
            && slot <= commit_index.saturating_add(2 * super::MAX_SLOT_GAP)
    }

    /// Learns that the value this member accepted for `slot` at `ballot` is decided, if it
    /// still holds that acceptance. The record names the acceptance, which is in the log file
    /// already, rather than write the value a second time.
    pub(super) fn learn_accepted(&mut self, slot: Slot, ballot: Ballot) {
        let btree_map::Entry::Occupied(acceptance) = self.acceptor.accepted.entry(slot) else {
            return;
        };
        if acceptance.get().0 != ballot {
            return;
        }
        let (_, value) = acceptance.remove();
        self.persist(Record::DecidedAccepted { slot, ballot });
        self.decide(slot, value);
    }

    /// Moves a slot's value among the decided ones, out of the acceptances and proposals.
    fn decide(&mut self, slot: Slot, value: LogValue) {
        self.acceptor.accepted.remove(&slot);
        self.proposer.forget_proposal(slot);
        #[cfg(any(test, doc))]
        self.learner.learned.insert(slot, value.clone());
        self.learner.decided_bytes += value.wire_size();
        self.learner.decided.insert(slot, value);
        self.stats.slots_decided += 1;
    }

    /// Applies decided slots in order, and answers the requests this incarnation is waiting on.
    pub(super) fn apply_decided(&mut self) {
        while let Some(value) = self.learner.decided.get(&(self.learner.commit_index + 1)) {
            self.learner.commit_index += 1;
            let LogValue::Request(request) = value else {
                continue;
            };
            // One request can be decided in two slots (see `applied`). It must take effect once:
            // the client sent it once.
            if !self.learner.applied.admit(request) {
                continue;
            }
            let index = self.learner.commit_index;
            let answer: Answer = self.learner.kv.apply(index, &request.command);
            let id = request.id;
            self.learner.applied.record(id, answer.clone());
            if self.requests.answered(self.me, id) {
                self.reply(id, answer);
            }
        }
        self.outgrow_a_newer_self();
        self.trim_decided();
        if self.learner.commit_index >= self.log_file.snapshot_slot + self.tuning.snapshot_every {
            self.log_file.compact_due = true;
        }
    }

    /// Makes sure this incarnation is newer than any of this member's that the log has seen.
    /// Incarnations grow by the time of day, or from the one recorded, so this happens only when
    /// a member lost its data dir and its clock went back: the log then holds requests from a
    /// newer-looking incarnation, and every request of this one would be skipped as old.
    fn outgrow_a_newer_self(&mut self) {
        let Some(newest) = self.learner.applied.newest_incarnation(self.me) else {
            return;
        };
        if newest > self.requests.incarnation {
            self.requests.incarnation = newest + 1;
            let incarnation = self.requests.incarnation;
            self.persist(Record::Incarnation { incarnation });
        }
    }
}
