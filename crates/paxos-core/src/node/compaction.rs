//! Log compaction: replacing the slots behind the commit index by a snapshot of the state they
//! built, on disk and in memory, and taking such snapshots from other members.
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
//! behind catches up with entries. A member that asks for anything older gets the snapshot instead, and so does a
//! candidate whose phase 1 starts before the oldest value kept: those slots are decided, and a
//! promise must not let it take them for open ones.

use super::{Node, State};
use std::mem;

use crate::message::{LogValue, MemberId, Slot};
use crate::snapshot::Snapshot;
use crate::storage::Record;

impl Node {
    /// The applied state as of the commit index.
    pub(super) fn snapshot(&self) -> Snapshot {
        Snapshot {
            slot: self.commit,
            kv: self.kv.clone(),
            applied: self.applied.clone(),
        }
    }

    /// Replaces the log file by a snapshot and what follows it.
    pub(super) fn compact(&mut self) {
        self.compact_due = false;
        self.stats.compactions += 1;
        self.snapshot_slot = self.commit;
        self.log_bytes = 0;
        let mut records = vec![
            Record::Incarnation {
                incarnation: self.incarnation,
            },
            Record::Promise {
                ballot: self.promised,
            },
            Record::Snapshot {
                snapshot: Box::new(self.snapshot()),
            },
        ];
        records.extend(
            self.accepted
                .range(self.commit + 1..)
                .map(|(&slot, (ballot, value))| Record::Accept {
                    slot,
                    ballot: *ballot,
                    value: value.clone(),
                }),
        );
        records.extend(self.decided.range(self.commit + 1..).map(|(&slot, value)| {
            Record::Decide {
                slot,
                value: value.clone(),
            }
        }));
        // Whatever was queued for appending is in these records too.
        self.ready.persist = records;
        self.ready.rewrite = true;
    }

    /// Takes another member's state in place of the slots up to its slot, if that is ahead of
    /// this member, and compacts so that the log file says so too.
    pub(super) fn take_snapshot(&mut self, snapshot: Snapshot) {
        if snapshot.slot <= self.commit {
            return;
        }
        self.stats.snapshots_installed += 1;
        self.known_commit = self.known_commit.max(snapshot.slot);
        self.catch_up = None;
        self.install(snapshot);
        self.compact_due = true;
        self.answer_from_snapshot();
        self.apply_decided();
    }

    /// Answers this incarnation's requests that the snapshot applied: their answers are in its
    /// applied-requests table, which keeps them until their origin has them (within a budget).
    /// One applied without an answer kept is not sent again; its client's request times out.
    fn answer_from_snapshot(&mut self) {
        let applied: Vec<_> = self
            .unanswered
            .keys()
            .filter_map(|&id| Some((id, self.applied.outcome(id)?.cloned())))
            .collect();
        for (id, answer) in applied {
            self.unanswered.remove(&id);
            self.waiting.retain(|r| r.id != id);
            if let Some(answer) = answer {
                self.ready.replies.push((id, answer));
            }
        }
    }

    /// Makes `snapshot` the applied state, dropping every slot it stands for.
    pub(super) fn install(&mut self, snapshot: Snapshot) {
        self.commit = snapshot.slot;
        self.known_commit = self.known_commit.max(snapshot.slot);
        self.kv = snapshot.kv;
        // A snapshot written before modification indexes existed stands for changes up to its
        // slot that it does not date.
        self.kv.assume_changed_by(snapshot.slot);
        self.applied = snapshot.applied;
        self.accepted = self.accepted.split_off(&(snapshot.slot + 1));
        self.forget_before(snapshot.slot + 1);
    }

    /// Forgets the applied values beyond the newest `catch_up_batch` and beyond
    /// `max_decided_bytes`: they are in the store and on disk, and a member that asks for them
    /// gets the snapshot instead. Values not applied yet stay, whatever their size, since the
    /// store needs them once the slots before them are decided.
    pub(super) fn trim_decided(&mut self) {
        let by_count = self
            .commit
            .saturating_sub(self.tuning.catch_up_batch as Slot)
            + 1;
        self.forget_before(by_count);
        while self.decided_bytes > self.tuning.max_decided_bytes
            && let Some((&oldest, _)) = self.decided.first_key_value()
            && oldest <= self.commit
        {
            self.forget_before(oldest + 1);
        }
    }

    fn forget_before(&mut self, slot: Slot) {
        let kept = self.decided.split_off(&slot);
        let forgotten = mem::replace(&mut self.decided, kept);
        self.decided_bytes -= forgotten.values().map(LogValue::wire_size).sum::<usize>();
        self.log_start = self.log_start.max(slot);
    }

    /// Takes the snapshot another member sent in answer to this one's catch-up request.
    pub(super) fn on_snapshot(&mut self, from: MemberId, snapshot: Snapshot) {
        // Like decided entries, a leader learns only from its own quorum, and anyone else only
        // from the member it asked (see `on_decided`).
        if matches!(self.state, State::Leader { .. }) {
            return;
        }
        if !self.asked(from) {
            self.stats.messages_unvouched += 1;
            return;
        }
        let before = self.commit;
        self.take_snapshot(snapshot);
        if self.commit > before && self.commit < self.known_commit {
            self.request_catch_up();
        }
    }
}
