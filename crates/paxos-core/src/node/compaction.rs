//! Log compaction: replacing the slots behind the commit index by a snapshot of the state they
//! built, on disk and in memory, and learning such snapshots from other members.
//!
//! Every [`Tuning::snapshot_every`](crate::Tuning::snapshot_every) applied slots, or sooner once
//! the values it appended since weigh [`Tuning::snapshot_bytes`](crate::Tuning::snapshot_bytes),
//! a node asks its runtime to replace its log file by a handful of records that say all the old
//! file did: its incarnation and promise, a [`Snapshot`] of the store and of the applied-requests
//! table at the commit index, and the acceptances and decisions after it. That bounds the file by
//! the size of the store plus one interval's slots and bytes, however many writes the cluster
//! takes and however large their values.
//!
//! In memory, the node keeps the last [`Tuning::catch_up_batch`](crate::Tuning::catch_up_batch)
//! decided values behind the commit index, as far as they fit in
//! [`Tuning::max_decided_bytes`](crate::Tuning::max_decided_bytes), so that a member a little
//! behind catches up with entries. A member that asks for anything older gets the snapshot
//! instead, and so does a candidate whose phase 1 starts before the oldest value kept: those
//! slots are decided, and a promise must not let it take them for open ones.

use std::mem;

use super::Node;
use super::proposer::State;
use super::tuning::Tuning;
use crate::log::{LogValue, MemberId, Slot};
use crate::snapshot::Snapshot;
use crate::storage::{Durable, Record};

/// How far the log file has grown since it was last replaced.
#[derive(Debug)]
pub(super) struct LogFile {
    /// The slot of the snapshot at the head of the log file: it grows from there.
    pub(super) snapshot_slot: Slot,
    /// Set when the log file should be replaced by a fresh snapshot at the next `take_ready`.
    pub(super) compact_due: bool,
    /// The bytes of values appended to the log file since it was last replaced, held under
    /// [`Tuning::snapshot_bytes`].
    pub(super) appended_bytes: usize,
}

impl LogFile {
    /// The log file a member restarts from holds at least the values it replayed.
    pub(super) fn replayed(durable: &Durable, tuning: &Tuning) -> Self {
        let appended_bytes = durable
            .accepted
            .values()
            .map(|(_, value)| value)
            .chain(durable.decided.values())
            .map(LogValue::wire_size)
            .sum();
        LogFile {
            snapshot_slot: 0,
            compact_due: appended_bytes >= tuning.snapshot_bytes,
            appended_bytes,
        }
    }
}

impl Node {
    /// Queues a record holding a value of `size` bytes, and has the log file compacted once
    /// such records have grown it by [`Tuning::snapshot_bytes`].
    pub(super) fn persist_value(&mut self, record: Record, size: usize) {
        self.persist(record);
        self.log_file.appended_bytes += size;
        if self.log_file.appended_bytes >= self.tuning.snapshot_bytes {
            self.log_file.compact_due = true;
        }
    }

    /// The applied state as of the commit index.
    pub(super) fn make_snapshot(&self) -> Snapshot {
        Snapshot {
            slot: self.learner.commit_index,
            kv: self.learner.kv.clone(),
            applied: self.learner.applied.clone(),
        }
    }

    /// The records that replace the log file: a snapshot and what follows it. They say all that
    /// the records queued for appending say, so [`Node::take_ready`] puts them in their place.
    pub(super) fn compact(&mut self) -> Vec<Record> {
        let commit_index = self.learner.commit_index;
        self.log_file = LogFile {
            snapshot_slot: commit_index,
            compact_due: false,
            appended_bytes: 0,
        };
        self.stats.compactions += 1;
        let mut records = vec![
            Record::Incarnation {
                incarnation: self.requests.incarnation,
            },
            Record::Promise {
                ballot: self.acceptor.promised,
            },
            Record::Snapshot {
                snapshot: Box::new(self.make_snapshot()),
            },
        ];
        records.extend(self.acceptor.accepted.range(commit_index + 1..).map(
            |(&slot, (ballot, value))| Record::Accepted {
                slot,
                ballot: *ballot,
                value: value.clone(),
            },
        ));
        records.extend(
            self.learner
                .decided
                .range(commit_index + 1..)
                .map(|(&slot, value)| Record::Decided {
                    slot,
                    value: value.clone(),
                }),
        );
        records
    }

    /// `Snapshot(snapshot)`: the answer to this member's catch-up request, for slots the member
    /// asked had compacted away.
    pub(super) fn on_snapshot(&mut self, from: MemberId, snapshot: Snapshot) {
        // Like decided entries, a leader learns only from its own quorum, and anyone else only
        // from the member it asked (see `on_decided`).
        if matches!(self.proposer.state, State::Leader { .. }) {
            return;
        }
        if !self.learner.asked(from) {
            self.stats.messages_unvouched += 1;
            return;
        }
        let before = self.learner.commit_index;
        self.learn_snapshot(snapshot);
        let commit_index = self.learner.commit_index;
        if commit_index > before && commit_index < self.learner.known_commit {
            self.request_catch_up();
        }
    }

    /// Learns another member's state in place of the slots up to its slot, if that is ahead of
    /// this member, and compacts so that the log file says so too.
    pub(super) fn learn_snapshot(&mut self, snapshot: Snapshot) {
        if snapshot.slot <= self.learner.commit_index {
            return;
        }
        self.stats.snapshots_installed += 1;
        self.learner.known_commit = self.learner.known_commit.max(snapshot.slot);
        self.learner.catch_up = None;
        self.install_snapshot(snapshot);
        self.log_file.compact_due = true;
        self.answer_from_snapshot();
        self.apply_decided();
    }

    /// Answers this incarnation's requests that the snapshot applied: their answers are in its
    /// applied-requests table, which keeps them until their origin has them (within a budget).
    /// One applied without an answer kept is not sent again; its client's request times out.
    fn answer_from_snapshot(&mut self) {
        let applied = &self.learner.applied;
        let found: Vec<_> = self
            .requests
            .unanswered
            .keys()
            .filter_map(|&id| Some((id, applied.outcome(id)?.cloned())))
            .collect();
        for (id, answer) in found {
            self.requests.forget(id);
            if let Some(answer) = answer {
                self.reply(id, answer);
            }
        }
    }

    /// Makes `snapshot` the applied state, dropping every slot it stands for.
    pub(super) fn install_snapshot(&mut self, snapshot: Snapshot) {
        let learner = &mut self.learner;
        learner.commit_index = snapshot.slot;
        learner.known_commit = learner.known_commit.max(snapshot.slot);
        learner.kv = snapshot.kv;
        // A snapshot written before modification indexes existed stands for changes up to its
        // slot that it does not date.
        learner.kv.assume_changed_by(snapshot.slot);
        learner.applied = snapshot.applied;
        self.acceptor.accepted = self.acceptor.accepted.split_off(&(snapshot.slot + 1));
        self.forget_before(snapshot.slot + 1);
    }

    /// Forgets the applied values beyond the newest `catch_up_batch` and beyond
    /// `max_decided_bytes`: they are in the store and on disk, and a member that asks for them
    /// gets the snapshot instead. Values not applied yet stay, whatever their size, since the
    /// store needs them once the slots before them are decided.
    pub(super) fn trim_decided(&mut self) {
        let commit_index = self.learner.commit_index;
        let by_count = commit_index.saturating_sub(self.tuning.catch_up_batch as Slot) + 1;
        self.forget_before(by_count);
        while self.learner.decided_bytes > self.tuning.max_decided_bytes
            && let Some((&oldest, _)) = self.learner.decided.first_key_value()
            && oldest <= commit_index
        {
            self.forget_before(oldest + 1);
        }
    }

    fn forget_before(&mut self, slot: Slot) {
        let learner = &mut self.learner;
        let kept = learner.decided.split_off(&slot);
        let forgotten = mem::replace(&mut learner.decided, kept);
        learner.decided_bytes -= forgotten.values().map(LogValue::wire_size).sum::<usize>();
        learner.log_start = learner.log_start.max(slot);
    }
}
