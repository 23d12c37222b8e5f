//! Reads: `get`s answered without a log slot, as etcd's ReadIndex does.
//!
//! A read changes nothing, so it need not be ordered among the writes; it only has to see every
//! write that completed before it began. The leader's commit index covers all of those, provided
//! the leader still leads: a newer leader may have decided more. So the leader takes its commit
//! index as the *read index*, then confirms it still leads by a *read round*: it sends its
//! `Commit` with a round number, and every follower that has promised no higher ballot answers
//! [`Message::ReadAck`]. Once a majority (the leader counts itself) acknowledged a round that
//! began after the read arrived, no other leader can have decided anything before that point:
//! its election needed a promise from one of those members, made after the acknowledgement. The
//! read is then answered from the store, which is applied up to the read index at the leader.
//! One round covers every read that arrived before it began, so reads cost a round trip of small
//! messages each, not a slot, an fsync and an `Accept` with the value.
//!
//! A new leader serves no read until it has committed a slot of its own ballot: the last of the
//! open slots it re-proposed on taking office, or else the first slot it proposes. Before that
//! its commit index may lack a value a previous leader got decided. A leader with reads waiting
//! and nothing of its own proposed proposes a no-op at once, so the first read waits one
//! round of accepts and no longer. (Proposing the no-op on taking office instead would cost a
//! slot per election, and shift every slot of every walkthrough and test by one.)
//!
//! A follower asks the leader it knows for a read index ([`Message::ReadIndex`]); the leader
//! answers ([`Message::ReadIndexOk`]) once a round confirms it, and the follower answers its
//! client once it has applied up to that index. A read whose leader changes, or whose answer is
//! overdue, is asked again; it is given up at the request timeout, as a write is.
//!
//! A leader holds at most `max_reads_waiting` reads (its own and followers' asks, waiting for a
//! round or in the one in flight). A read past that is refused at once: the leader's own client
//! is answered [`Answer::Overloaded`], a follower that asked is sent
//! [`Message::ReadIndexRefused`] and answers its client so. A round that cannot be confirmed (no
//! majority answers) would otherwise let followers' asks, sent again every election timeout,
//! pile up without end.
//!
//! A `get` with `"consistency": "serializable"` skips all of this: the member answers it from its
//! own store at once, and the answer may be stale.
//!
//! The invariant this module keeps: a linearizable read is answered only from a store applied up
//! to a read index confirmed by a round of the leader's that began after the read reached it.

use std::collections::BTreeMap;

use super::Node;
use super::proposer::State;
use crate::Time;
use crate::command::{Answer, Command};
use crate::log::{Ballot, Entry, LogValue, MemberId, RequestId, Slot};
use crate::message::Message;

/// This member's linearizable reads, and its read rounds while it leads.
#[derive(Debug, Default)]
pub(super) struct Reads {
    /// This incarnation's own clients' reads, until they are answered or given up.
    own: BTreeMap<RequestId, OwnRead>,
    /// The read rounds of this member's current leadership, if it leads.
    leading: Option<Leading>,
}

#[derive(Debug)]
struct OwnRead {
    key: String,
    give_up_at: Time,
    stage: Stage,
}

/// Where one of this member's reads stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Waiting for a leader to ask: a candidate, or a follower that knows of none, holds it.
    Unasked,
    /// This member leads, and the read waits on one of its rounds.
    AtLeader,
    /// The leader `to` was asked at `sent_at`.
    Asked { to: MemberId, sent_at: Time },
    /// Its read index is known: it is answered once the store is applied that far.
    Indexed(Slot),
}

/// Whose read a leader's round confirms.
#[derive(Clone, Copy, Debug)]
enum Reader {
    Own(RequestId),
    /// A follower's, by the id it asked with.
    Peer(MemberId, RequestId),
}

/// A leader's read rounds.
#[derive(Debug)]
struct Leading {
    ballot: Ballot,
    /// No read is served before the commit index reaches this slot of the leader's own ballot;
    /// `None` until the leader proposes one.
    ready_at: Option<Slot>,
    /// The number of the last round begun; rounds count from 1 in each leadership.
    last_round: u64,
    /// Reads that arrived since the round in flight began: they wait for the next one.
    waiting: Vec<Reader>,
    round: Option<Round>,
}

impl Leading {
    /// How many reads the leadership holds: waiting for a round, or in the one in flight.
    fn held(&self) -> usize {
        self.waiting.len() + self.round.as_ref().map_or(0, |r| r.readers.len())
    }
}

/// A read round in flight.
#[derive(Debug)]
struct Round {
    n: u64,
    /// The commit index when the round began, which every read in it takes.
    index: Slot,
    /// Bit `m` is set once member `m` acknowledged.
    acks: u64,
    readers: Vec<Reader>,
}

impl Reads {
    /// Starts the read rounds of a leadership at `ballot`. Reads this member had asked another
    /// leader for are asked here.
    pub(super) fn lead(&mut self, ballot: Ballot) {
        self.leading = Some(Leading {
            ballot,
            ready_at: None,
            last_round: 0,
            waiting: Vec::new(),
            round: None,
        });
        self.ask_again();
    }

    /// The leader at `ballot` proposed slots up to `last`: the first time, reads wait for that
    /// slot.
    pub(super) fn proposed(&mut self, ballot: Ballot, last: Slot) {
        if let Some(leading) = self.leading_at(ballot) {
            leading.ready_at.get_or_insert(last);
        }
    }

    /// Ends the leadership: the rounds are lost, own reads go to the next leader, and followers'
    /// reads are left to their askers, which ask again.
    pub(super) fn stop_leading(&mut self) {
        if self.leading.take().is_some() {
            for read in self.own.values_mut() {
                if read.stage == Stage::AtLeader {
                    read.stage = Stage::Unasked;
                }
            }
        }
    }

    /// A new leader is known: the reads asked of another are asked again, since it may have
    /// failed or stepped down holding them.
    pub(super) fn ask_again(&mut self) {
        for read in self.own.values_mut() {
            if matches!(read.stage, Stage::Asked { .. }) {
                read.stage = Stage::Unasked;
            }
        }
    }

    /// The round in flight, for the leader's `Commit` to carry; 0 when there is none.
    pub(super) fn round_in_flight(&self) -> u64 {
        self.leading
            .as_ref()
            .and_then(|l| l.round.as_ref())
            .map_or(0, |r| r.n)
    }

    /// When an unanswered ask is next due to go again.
    pub(super) fn next_retry(&self, retry: Time) -> Option<Time> {
        self.own
            .values()
            .filter_map(|read| match read.stage {
                Stage::Asked { sent_at, .. } => Some(sent_at + retry),
                _ => None,
            })
            .min()
    }

    /// Asks again the reads whose answer has waited `retry`: the ask or its answer may be lost.
    pub(super) fn retry_overdue(&mut self, now: Time, retry: Time) {
        for read in self.own.values_mut() {
            if let Stage::Asked { sent_at, .. } = read.stage
                && now >= sent_at + retry
            {
                read.stage = Stage::Unasked;
            }
        }
    }

    /// Forgets the reads whose clients have been answered `503` by now.
    pub(super) fn give_up_on_expired(&mut self, now: Time) {
        self.own.retain(|_, read| read.give_up_at > now);
    }

    /// How many of this member's reads wait for an answer.
    #[cfg(test)]
    pub(super) fn unanswered(&self) -> usize {
        self.own.len()
    }

    /// The leadership's rounds, if this member leads at `ballot`.
    fn leading_at(&mut self, ballot: Ballot) -> Option<&mut Leading> {
        self.leading.as_mut().filter(|l| l.ballot == ballot)
    }
}

impl Node {
    /// Takes a client's `get` as read `id`: a serializable one is answered at once, a
    /// linearizable one waits for a read index.
    pub(super) fn submit_read(&mut self, id: RequestId, command: Command) {
        let key = command.op.key().to_owned();
        if command.is_serializable_read() {
            self.stats.reads_serializable += 1;
            let answer = self.learner.kv.read(self.learner.commit_index, &key);
            self.reply(id, answer);
            return;
        }
        let read = OwnRead {
            key,
            give_up_at: self.now + self.tuning.request_timeout,
            stage: Stage::Unasked,
        };
        self.reads.own.insert(id, read);
    }

    /// At the end of a turn: own reads go to a round (at the leader) or to the leader (at a
    /// follower), a round begins if reads wait for one, and reads whose index is applied are
    /// answered.
    pub(super) fn advance_reads(&mut self) {
        let leader = match self.proposer.state {
            State::Leader { .. } => Some(self.me),
            State::Follower => self.proposer.leader,
            State::Candidate { .. } => None,
        };
        if let Some(leader) = leader {
            let (mut asks, mut refused) = (Vec::new(), Vec::new());
            for (&id, read) in &mut self.reads.own {
                if read.stage != Stage::Unasked {
                    continue;
                }
                if leader == self.me {
                    if let Some(leading) = &mut self.reads.leading {
                        if leading.held() >= self.tuning.max_reads_waiting {
                            refused.push(id);
                            continue;
                        }
                        leading.waiting.push(Reader::Own(id));
                        read.stage = Stage::AtLeader;
                    }
                } else {
                    read.stage = Stage::Asked {
                        to: leader,
                        sent_at: self.now,
                    };
                    asks.push(id);
                }
            }
            for id in asks {
                self.send(leader, Message::ReadIndex { id });
            }
            for id in refused {
                self.stats.reads_refused += 1;
                self.refuse_own_read(id);
            }
        }
        self.begin_read_round();
        self.answer_applied_reads();
    }

    /// Begins a read round if reads wait for one, none is in flight, and this leader has
    /// committed a slot of its own ballot.
    fn begin_read_round(&mut self) {
        let State::Leader { ballot, .. } = self.proposer.state else {
            return;
        };
        let Some(leading) = self.reads.leading_at(ballot) else {
            return;
        };
        if leading.round.is_some() || leading.waiting.is_empty() {
            return;
        }
        if leading.ready_at.is_none() {
            self.propose_noop();
        }
        // With one member the no-op is decided already.
        let commit = self.learner.commit_index;
        let me = self.me;
        let Some(leading) = self.reads.leading_at(ballot) else {
            return;
        };
        if leading.ready_at.is_none_or(|ready_at| commit < ready_at) {
            return;
        }
        leading.last_round += 1;
        let n = leading.last_round;
        leading.round = Some(Round {
            n,
            index: commit,
            acks: 1 << me,
            readers: std::mem::take(&mut leading.waiting),
        });
        self.stats.read_rounds += 1;
        if self.reads_unconfirmed() {
            // Sabotage: the round is taken for confirmed without asking anyone.
            self.confirm_read_round(ballot);
            return;
        }
        self.broadcast(Message::Commit {
            ballot,
            commit,
            read: n,
        });
        self.proposer.commit_announced = commit;
        // With one member, its own acknowledgement is a majority.
        self.on_read_ack(me, ballot, n);
    }

    /// `ReadAck(ballot, read)`: one more member acknowledged this leader's round.
    pub(super) fn on_read_ack(&mut self, from: MemberId, ballot: Ballot, read: u64) {
        let majority = self.majority();
        let Some(round) = self
            .reads
            .leading_at(ballot)
            .and_then(|l| l.round.as_mut())
            .filter(|r| r.n == read)
        else {
            return;
        };
        round.acks |= 1 << from;
        if round.acks.count_ones() as usize >= majority {
            self.confirm_read_round(ballot);
            // Reads that arrived meanwhile go in the next round at once, not at the heartbeat.
            self.begin_read_round();
        }
    }

    /// The round in flight is confirmed: every read in it has the round's read index.
    fn confirm_read_round(&mut self, ballot: Ballot) {
        let Some(round) = self.reads.leading_at(ballot).and_then(|l| l.round.take()) else {
            return;
        };
        for reader in round.readers {
            match reader {
                Reader::Own(id) => {
                    if let Some(read) = self.reads.own.get_mut(&id) {
                        read.stage = Stage::Indexed(round.index);
                    }
                }
                Reader::Peer(to, id) => {
                    let index = round.index;
                    self.send(to, Message::ReadIndexOk { id, index });
                }
            }
        }
    }

    /// `ReadIndex(id)`: a follower asks for a read index. Only a leader gives one; elsewhere the
    /// ask is dropped, and the follower asks the next leader it learns of.
    /// Past `max_reads_waiting` it is refused, so that the asker's client hears at once.
    pub(super) fn on_read_index(&mut self, from: MemberId, id: RequestId) {
        let State::Leader { ballot, .. } = self.proposer.state else {
            return;
        };
        let cap = self.tuning.max_reads_waiting;
        let Some(leading) = self.reads.leading_at(ballot) else {
            return;
        };
        if leading.held() < cap {
            leading.waiting.push(Reader::Peer(from, id));
            return;
        }
        self.stats.reads_refused += 1;
        self.send(from, Message::ReadIndexRefused { id });
    }

    /// `ReadIndexRefused(id)`: the leader asked holds too many reads to take read `id`. Its
    /// client is told to retry; asking another leader would only move the queue.
    pub(super) fn on_read_index_refused(&mut self, from: MemberId, id: RequestId) {
        let asked = self.reads.own.get(&id).map(|read| read.stage);
        if matches!(asked, Some(Stage::Asked { to, .. }) if to == from) {
            self.refuse_own_read(id);
        }
    }

    /// Answers own read `id` that it was refused, and forgets it.
    fn refuse_own_read(&mut self, id: RequestId) {
        self.reads.own.remove(&id);
        let error = format!(
            "the leader holds {} reads already; the command was not run, retry later",
            self.tuning.max_reads_waiting
        );
        self.reply(id, Answer::Overloaded { error });
    }

    /// `ReadIndexOk(id, index)`: the leader asked gives read `id` its index. The member learns
    /// of that commit index too, and catches up if it is behind it.
    pub(super) fn on_read_index_ok(&mut self, from: MemberId, id: RequestId, index: Slot) {
        let Some(read) = self.reads.own.get_mut(&id) else {
            return;
        };
        if !matches!(read.stage, Stage::Asked { to, .. } if to == from) {
            return;
        }
        read.stage = Stage::Indexed(index);
        self.learner.known_commit = self.learner.known_commit.max(index);
        if self.learner.commit_index < index && self.learner.catch_up.is_none() {
            self.request_catch_up();
        }
    }

    /// Answers the reads whose read index the store is applied up to.
    fn answer_applied_reads(&mut self) {
        let commit = self.learner.commit_index;
        let applied: Vec<RequestId> = self
            .reads
            .own
            .iter()
            .filter(|(_, read)| matches!(read.stage, Stage::Indexed(index) if index <= commit))
            .map(|(&id, _)| id)
            .collect();
        for id in applied {
            let read = self.reads.own.remove(&id).expect("listed above");
            self.stats.reads_linearizable += 1;
            let answer = self.learner.kv.read(commit, &read.key);
            self.reply(id, answer);
        }
    }

    /// Proposes a no-op in the next slot: a leader with reads waiting and no slot of its own
    /// ballot proposed gets one this way, rather than wait for a write.
    fn propose_noop(&mut self) {
        let State::Leader { next_slot, .. } = &mut self.proposer.state else {
            return;
        };
        let slot = *next_slot;
        *next_slot += 1;
        self.propose(vec![Entry {
            slot,
            value: LogValue::Noop,
        }]);
    }

    /// How long an ask waits for its answer before it goes again.
    pub(super) fn read_retry(&self) -> Time {
        self.tuning.election_timeout
    }
}
