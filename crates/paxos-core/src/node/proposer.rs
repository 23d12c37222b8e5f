//! The proposer: follower, candidate or leader.
//!
//! A follower whose election timer fires runs for leader: it prepares a ballot above every one
//! it has seen (phase 1), and with promises from a majority it leads. A leader proposes client
//! requests in new slots (phase 2), counts acceptances, and announces its commit index, which
//! doubles as the heartbeat that keeps followers from running. Anyone who hears of a higher
//! ballot steps down and follows it.
//!
//! The invariant this module keeps: a leader proposes at most one value per slot per ballot,
//! and after phase 1 it proposes, for each open slot, the value accepted at the highest ballot
//! among a majority's promises (see [`Node::become_leader`]). Any majority that decided a value
//! shares a member with the majority that promised, so that value is among those reported, at
//! the highest ballot: that is what keeps a decided value decided through leader changes.

use std::collections::BTreeMap;
use std::mem;

use super::Node;
use super::batches::batches;
use crate::Time;
use crate::log::{AcceptedEntry, Ballot, Entry, LogValue, MAX_ROUND, MemberId, Slot};
use crate::message::Message;
use crate::snapshot::Snapshot;

/// The member's role, with what each role keeps.
#[derive(Debug)]
pub(super) enum State {
    Follower,
    Candidate {
        ballot: Ballot,
        from_slot: Slot,
        /// Bit `m` is set once member `m` promised.
        promised_by: u64,
        /// The highest-ballot accepted value per open slot, over the promises so far.
        accepted: BTreeMap<Slot, (Ballot, LogValue)>,
    },
    Leader {
        ballot: Ballot,
        next_slot: Slot,
        proposals: BTreeMap<Slot, Proposal>,
        /// The bytes of the proposals' values, held under
        /// [`Tuning::max_in_flight_bytes`](super::Tuning::max_in_flight_bytes).
        in_flight_bytes: usize,
        heartbeat_at: Time,
    },
}

/// A value the leader proposed and the members that accepted it. The value itself is in the
/// leader's acceptances, at its ballot, until it is decided: the leader accepts everything it
/// proposes.
#[derive(Debug)]
pub(super) struct Proposal {
    /// The value's [`LogValue::wire_size`], counted in the leader's in-flight bytes.
    size: usize,
    /// Bit `m` is set once member `m` accepted.
    acks: u64,
    sent_at: Time,
    /// How long after `sent_at` the leader sends it again to those that have not accepted:
    /// a heartbeat interval at first, doubled on each re-send up to an election timeout. A
    /// member slow to accept a large value is not sent it every heartbeat; the copies would
    /// queue ahead of the heartbeats and depose a leader that is alive.
    resend_after: Time,
}

/// Who leads, as far as this member knows, and when it runs for leader itself.
#[derive(Debug)]
pub(super) struct Proposer {
    pub(super) state: State,
    /// The member this one follows, when it follows one.
    pub(super) leader: Option<MemberId>,
    pub(super) election_deadline: Time,
    /// The commit index the leader last announced.
    pub(super) commit_announced: Slot,
}

impl Proposer {
    /// A follower of nobody yet. The caller sets the election deadline, which needs the node's
    /// random draws.
    pub(super) fn new(now: Time) -> Self {
        Proposer {
            state: State::Follower,
            leader: None,
            election_deadline: now,
            commit_announced: 0,
        }
    }

    /// The ballot this member runs or leads at, if it does.
    fn own_ballot(&self) -> Option<Ballot> {
        match self.state {
            State::Candidate { ballot, .. } | State::Leader { ballot, .. } => Some(ballot),
            State::Follower => None,
        }
    }

    /// Drops the leader's proposal for a slot that is decided now.
    pub(super) fn forget_proposal(&mut self, slot: Slot) {
        if let State::Leader {
            proposals,
            in_flight_bytes,
            ..
        } = &mut self.state
            && let Some(proposal) = proposals.remove(&slot)
        {
            *in_flight_bytes -= proposal.size;
        }
    }
}

impl Node {
    // ------------------------------------------------------------- elections

    /// The election timer fired: run, with a new ballot or the one this candidate has.
    pub(super) fn start_election(&mut self) {
        self.proposer.election_deadline = self.now + self.election_timeout();
        // Still a candidate means that no higher ballot came up since it ran: any message with
        // one makes it step down. Then it runs again at the same ballot, which keeps honest
        // rounds from growing by one per timeout (see `MAX_ROUND_STEP`). That is safe because
        // it never led at that ballot, so it proposed nothing at it: the ballot is new in this
        // incarnation (an election from any other state takes a round above every one it has
        // seen), and it leaves the candidate state only to lead or step down. Its Prepare
        // goes out again as it was, and the promises it already has stay good. After a restart
        // it has no such state and takes a new round, since it may have led at its last one.
        if let State::Candidate {
            ballot, from_slot, ..
        } = self.proposer.state
        {
            self.stats.elections_started += 1;
            self.broadcast(Message::Prepare { ballot, from_slot });
            return;
        }
        // Someone may have used the last round a member takes: then no ballot outbids it, and
        // this member can only follow.
        let round = self.acceptor.highest().round + 1;
        if round > MAX_ROUND {
            return;
        }
        self.stats.elections_started += 1;
        let ballot = Ballot {
            round,
            member: self.me,
        };
        self.promise(ballot);
        self.proposer.leader = None;
        let from_slot = self.learner.commit_index + 1;
        let (accepted, decided, snapshot) = self.report_from(from_slot);
        self.proposer.state = State::Candidate {
            ballot,
            from_slot,
            promised_by: 0,
            accepted: BTreeMap::new(),
        };
        self.broadcast(Message::Prepare { ballot, from_slot });
        // The candidate is one of the acceptors it needs.
        self.on_promise(self.me, ballot, accepted, decided, snapshot);
    }

    /// `Promise(ballot, ...)`: one more acceptor promised this candidate's ballot.
    pub(super) fn on_promise(
        &mut self,
        from: MemberId,
        ballot: Ballot,
        accepted: Vec<AcceptedEntry>,
        decided: Vec<Entry>,
        snapshot: Option<Box<Snapshot>>,
    ) {
        let majority = self.majority();
        let commit_index = self.learner.commit_index;
        let State::Candidate {
            ballot: mine,
            promised_by,
            accepted: best,
            ..
        } = &mut self.proposer.state
        else {
            return;
        };
        if ballot != *mine {
            return;
        }
        // Every acceptor keeps its acceptances within `MAX_SLOT_GAP` of its commit index, and
        // reports its state instead of what it compacted, so an honest promise reports no slot
        // far past where this candidate will stand. One that does is garbled or forged, and
        // leading from it would mean filling every slot up to it with a no-op. Dropping the
        // whole promise is safe, like losing it; dropping a part of it would not be.
        let base = snapshot.as_ref().map_or(0, |s| s.slot).max(commit_index);
        let limit = base.saturating_add(2 * super::MAX_SLOT_GAP);
        if accepted.iter().any(|e| e.slot > limit) {
            return;
        }
        *promised_by |= 1 << from;
        // For each slot, the value accepted at the highest ballot is the only one that may have
        // been decided: keep that one.
        for entry in accepted {
            let newer = best.get(&entry.slot).is_none_or(|(b, _)| *b < entry.ballot);
            if newer {
                best.insert(entry.slot, (entry.ballot, entry.value));
            }
        }
        let won = promised_by.count_ones() as usize >= majority;
        // The acceptor compacted slots this candidate has not applied: its state stands for
        // them, and they are decided, not open.
        if let Some(snapshot) = snapshot {
            self.learn_snapshot(*snapshot);
        }
        for Entry { slot, value } in decided {
            self.learn(slot, value);
        }
        self.apply_decided();
        if won {
            self.become_leader();
        }
    }

    /// Phase 1 succeeded: re-propose every open slot a majority reported, fill holes with no-ops,
    /// and start taking client requests.
    pub(super) fn become_leader(&mut self) {
        let State::Candidate {
            ballot, accepted, ..
        } = mem::replace(&mut self.proposer.state, State::Follower)
        else {
            return;
        };
        self.stats.elections_won += 1;
        let last_known = accepted
            .keys()
            .chain(self.learner.decided.keys())
            .copied()
            .max()
            .unwrap_or(0);
        let mut accepted = accepted;
        self.proposer.state = State::Leader {
            ballot,
            next_slot: last_known.max(self.learner.commit_index) + 1,
            proposals: BTreeMap::new(),
            in_flight_bytes: 0,
            heartbeat_at: self.now,
        };
        self.proposer.leader = Some(self.me);
        self.resend_unanswered();
        // From the commit index, not from where phase 1 started: a promise may have carried a
        // snapshot far ahead of that, and every slot below it is decided.
        let reproposals: Vec<Entry> = (self.learner.commit_index + 1..=last_known)
            .filter(|slot| !self.learner.decided.contains_key(slot))
            .map(|slot| Entry {
                slot,
                value: accepted.remove(&slot).map_or(LogValue::Noop, |(_, v)| v),
            })
            .collect();
        // Before the first proposal, so that the read rounds know which slot of this ballot
        // they wait for (see `reads`).
        self.reads.lead(ballot);
        self.propose(reproposals);
    }

    /// `Nack(ballot)`: an acceptor promised a higher ballot than this member's.
    pub(super) fn on_nack(&mut self, ballot: Ballot) {
        if self.proposer.own_ballot().is_some_and(|mine| ballot > mine) {
            self.step_down(None);
        }
    }

    /// Follows the leader of `ballot`, stepping down if this member led or ran at a lower one.
    pub(super) fn follow(&mut self, ballot: Ballot) {
        let mine = self.proposer.own_ballot();
        if mine.is_some_and(|mine| mine < ballot) || mine.is_none() {
            let new_leader = self.proposer.leader != Some(ballot.member);
            if mine.is_some() {
                self.step_down(Some(ballot.member));
            }
            self.proposer.leader = Some(ballot.member);
            self.proposer.election_deadline = self.now + self.election_timeout();
            if new_leader {
                self.resend_unanswered();
                self.reads.ask_again();
            }
        }
    }

    /// A candidate with a higher ballot is under way: stop leading or running, follow nobody
    /// until it wins, and give it a whole election timeout before competing.
    pub(super) fn make_way(&mut self) {
        if !matches!(self.proposer.state, State::Follower) || self.proposer.leader.is_some() {
            self.step_down(None);
        }
        self.proposer.election_deadline = self.now + self.election_timeout();
    }

    pub(super) fn step_down(&mut self, leader: Option<MemberId>) {
        // Undecided proposals stay accepted here; the next leader re-proposes or overrides
        // them. Requests not yet proposed, and reads not yet confirmed, go on to the next leader.
        self.reads.stop_leading();
        self.proposer.state = State::Follower;
        self.proposer.leader = leader;
        self.proposer.election_deadline = self.now + self.election_timeout();
    }

    /// The wait before running for leader: the configured timeout plus up to as much again,
    /// drawn, so that candidates rarely collide.
    pub(super) fn election_timeout(&mut self) -> Time {
        let base = self.tuning.election_timeout;
        let jitter_ms = self.rng.below(base.as_millis().max(1) as u64);
        base + Time::from_millis(jitter_ms)
    }

    // ------------------------------------------------------------- proposals

    /// Turns waiting requests into proposals in new slots, as many as the in-flight window
    /// and its byte budget allow.
    pub(super) fn propose_waiting(&mut self) {
        let State::Leader {
            next_slot,
            proposals,
            in_flight_bytes,
            ..
        } = &self.proposer.state
        else {
            return;
        };
        let room = self.tuning.max_in_flight.saturating_sub(proposals.len());
        // Past the byte budget only while nothing is in flight, so that one value larger than
        // the budget still goes, alone.
        let mut bytes = *in_flight_bytes;
        let mut take = 0;
        for request in self.requests.waiting.iter().take(room) {
            let size = LogValue::wire_size_of(request);
            if bytes > 0 && bytes + size > self.tuning.max_in_flight_bytes {
                break;
            }
            bytes += size;
            take += 1;
        }
        let first = *next_slot;
        let entries: Vec<Entry> = self
            .requests
            .waiting
            .drain(..take)
            .zip(first..)
            .map(|(request, slot)| Entry {
                slot,
                value: LogValue::Request(request),
            })
            .collect();
        if let State::Leader { next_slot, .. } = &mut self.proposer.state {
            *next_slot += entries.len() as Slot;
        }
        self.propose(entries);
    }

    /// Proposes entries at the leader's ballot: accept them locally, send them to everyone.
    pub(super) fn propose(&mut self, entries: Vec<Entry>) {
        let State::Leader { ballot, .. } = self.proposer.state else {
            return;
        };
        if entries.is_empty() {
            return;
        }
        self.stats.slots_proposed += entries.len() as u64;
        // The entries are in slot order, so the last one is where reads may start: its commit
        // means every slot before it is decided too.
        self.reads.proposed(ballot, entries[entries.len() - 1].slot);
        // The leader is one of the acceptors, and it accepts every slot it proposes in: they
        // are all open, and it keeps their values only there. That includes a slot further than
        // MAX_SLOT_GAP past its commit index, which a promise may report (up to twice as far).
        for entry in &entries {
            self.record_acceptance(entry.slot, ballot, entry.value.clone());
        }
        let own: Vec<Slot> = entries.iter().map(|e| e.slot).collect();
        let now = self.now;
        if let State::Leader {
            proposals,
            in_flight_bytes,
            ..
        } = &mut self.proposer.state
        {
            for entry in &entries {
                let proposal = Proposal {
                    size: entry.value.wire_size(),
                    acks: 0,
                    sent_at: now,
                    resend_after: self.tuning.heartbeat_interval,
                };
                *in_flight_bytes += proposal.size;
                if let Some(replaced) = proposals.insert(entry.slot, proposal) {
                    *in_flight_bytes -= replaced.size;
                }
            }
        }
        let (max_count, max_bytes) = (self.tuning.max_batch, self.tuning.max_batch_bytes);
        for entries in batches(entries, max_count, max_bytes, |e| e.value.wire_size()) {
            let accept = Message::Accept {
                ballot,
                entries,
                commit: self.learner.commit_index,
            };
            self.broadcast(accept);
        }
        // With one member, its own acceptance is a majority.
        self.count_acks(self.me, ballot, &own);
    }

    /// `Accepted(ballot, slots)`: a member accepted these slots of this leader's.
    pub(super) fn on_accepted(&mut self, from: MemberId, ballot: Ballot, slots: &[Slot]) {
        self.count_acks(from, ballot, slots);
    }

    /// Counts `from`'s acceptances; a slot a majority accepted at this ballot is decided.
    fn count_acks(&mut self, from: MemberId, ballot: Ballot, slots: &[Slot]) {
        let majority = self.majority();
        let State::Leader {
            ballot: mine,
            proposals,
            ..
        } = &mut self.proposer.state
        else {
            return;
        };
        if ballot != *mine {
            return;
        }
        let mut decided = Vec::new();
        for slot in slots {
            if let Some(proposal) = proposals.get_mut(slot) {
                proposal.acks |= 1 << from;
                if proposal.acks.count_ones() as usize >= majority {
                    decided.push(*slot);
                }
            }
        }
        for slot in decided {
            self.learn_accepted(slot, ballot);
        }
        self.apply_decided();
    }

    /// The leader's timer: re-send what a member has not acknowledged for a while (the first
    /// `Accept` or its answer may have been lost; see [`Proposal::resend_after`]), and announce
    /// the commit index, which tells the followers the leader is alive.
    pub(super) fn heartbeat(&mut self) {
        let State::Leader {
            ballot,
            proposals,
            heartbeat_at,
            ..
        } = &mut self.proposer.state
        else {
            return;
        };
        let ballot = *ballot;
        *heartbeat_at = self.now + self.tuning.heartbeat_interval;
        let longest_wait = self.tuning.election_timeout;
        let mut resend: Vec<Vec<Entry>> = vec![Vec::new(); self.members];
        let mut resend_bytes = vec![0; self.members];
        let (max_count, max_bytes) = (self.tuning.max_batch, self.tuning.max_batch_bytes);
        let me = self.me;
        let now = self.now;
        for (&slot, proposal) in proposals
            .iter_mut()
            .filter(|(_, p)| p.sent_at + p.resend_after <= now)
        {
            let Some((_, value)) = self.acceptor.accepted.get(&slot) else {
                continue;
            };
            proposal.sent_at = now;
            proposal.resend_after = (proposal.resend_after * 2).min(longest_wait);
            let size = proposal.size;
            for (member, entries) in resend.iter_mut().enumerate() {
                let room = entries.is_empty()
                    || (entries.len() < max_count && resend_bytes[member] + size <= max_bytes);
                if member != me && proposal.acks & (1 << member) == 0 && room {
                    resend_bytes[member] += size;
                    entries.push(Entry {
                        slot,
                        value: value.clone(),
                    });
                }
            }
        }
        let commit = self.learner.commit_index;
        for (member, entries) in resend.into_iter().enumerate() {
            if !entries.is_empty() {
                let accept = Message::Accept {
                    ballot,
                    entries,
                    commit,
                };
                self.send(member, accept);
            }
        }
        // The round in flight goes again with the heartbeat, in case its first commit or an
        // acknowledgement was lost.
        let read = self.reads.round_in_flight();
        self.broadcast(Message::Commit {
            ballot,
            commit,
            read,
        });
        self.proposer.commit_announced = commit;
    }

    /// At the leader, tells the followers about a commit index that moved since it last did.
    pub(super) fn announce_commit_index(&mut self) {
        let commit = self.learner.commit_index;
        if let State::Leader { ballot, .. } = self.proposer.state
            && commit > self.proposer.commit_announced
        {
            self.proposer.commit_announced = commit;
            let read = self.reads.round_in_flight();
            self.broadcast(Message::Commit {
                ballot,
                commit,
                read,
            });
        }
    }
}
