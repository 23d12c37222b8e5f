//! One Multi-Paxos member: acceptor, learner, and (when elected) leader, as a state machine.
//!
//! The rules, each one match arm of [`Node::handle_message`] or a step of
//! [`Node::handle_timeout`], are summarised in the crate documentation. The invariants that make
//! them safe:
//!
//! - An acceptor never accepts below the ballot it promised, and every promise and acceptance is
//!   in [`Ready::persist`] of the same `Ready` as the message that reports it, so it is durable
//!   before anyone can rely on it.
//! - A leader proposes at most one value per slot per ballot, and after phase 1 it proposes, for
//!   each open slot, the value accepted at the highest ballot among a majority's promises. That is
//!   what keeps a decided value decided through leader changes.
//! - A follower marks a slot decided only when the leader's commit covers it *and* the follower
//!   accepted that slot at the leader's own ballot, so it never takes an older value for the
//!   decided one. Otherwise it asks for the decided entry ([`Message::CatchUp`]).
//! - A member that compacted slots away ([`compaction`]) never reports them as open: where it
//!   would have to report them, it sends its whole applied state instead.

mod batches;
mod compaction;

use std::collections::{BTreeMap, HashSet, VecDeque, btree_map};
use std::mem;

use self::batches::batches;
use crate::applied::AppliedRequests;
use crate::command::{Answer, Command};
use crate::kv::KvStore;
use crate::message::{
    AcceptedEntry, Ballot, Entry, LogValue, MAX_ROUND, MAX_SLOT, MemberId, Message, Request,
    RequestId, Slot,
};
use crate::rng::Rng;
use crate::snapshot::Snapshot;
use crate::storage::{Durable, Record};
use crate::{Ready, Time, To, Tuning};

/// How far past its commit index a member accepts a slot. A leader proposes at most its
/// in-flight window past its own commit index, so only a member far behind meets a slot past
/// this; it refuses it until it has caught up, and the rest of the cluster goes on. (A leader
/// accepts its own proposals wherever they are; a promise may have reported one twice as far.) The bound is
/// what keeps a forged or garbled slot number (up to `u64::MAX`) from making a new leader fill
/// every slot up to it. Decided values are learned up to twice as far, since an acceptor's
/// decided values run ahead of its commit index by at most its acceptances.
pub const MAX_SLOT_GAP: Slot = 1 << 16;

/// How far above the highest round it has seen a member takes a ballot. It drops a message with
/// a ballot further up, and one past [`MAX_ROUND`], and counts it in [`Stats::ballots_refused`]:
/// otherwise one forged `Prepare` at round `u64::MAX` would make every member promise, durably, a
/// ballot that no election can outbid.
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

/// What a member is doing right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    Candidate,
    Leader,
}

/// A snapshot for `GET /status` and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub role: Role,
    /// The member this one believes leads, itself included.
    pub leader: Option<MemberId>,
    /// The highest ballot this member has promised or seen in use: a follower that only ever
    /// heard the leader's heartbeats reports the leader's ballot, not the zero it promised.
    pub ballot: Ballot,
    /// Every slot up to here is decided and known to this member.
    pub commit_index: Slot,
    /// Every slot up to here is applied to the key-value store.
    pub applied_index: Slot,
}

/// Counters for `/metrics`; they only ever grow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Elections this member ran, a candidate running again at the same ballot included.
    pub elections_started: u64,
    pub elections_won: u64,
    pub slots_proposed: u64,
    pub slots_decided: u64,
    pub requests_forwarded: u64,
    /// Forwarded requests dropped by a member that was no longer in a position to propose them;
    /// their clients get a `503` at the origin.
    pub requests_dropped: u64,
    /// Own requests sent again to a new leader.
    pub requests_resent: u64,
    pub catch_up_requests: u64,
    /// Times this member replaced its log file by a snapshot and what followed it.
    pub compactions: u64,
    /// Snapshots sent to members that asked for slots compacted away.
    pub snapshots_sent: u64,
    /// Snapshots taken from other members in place of the slots they stand for.
    pub snapshots_installed: u64,
    /// Messages dropped for their ballot: one that names no member, one past [`MAX_ROUND`] or
    /// more than [`MAX_ROUND_STEP`] above the highest round this member has seen, or a promise
    /// reporting an acceptance above the ballot it promises.
    pub ballots_refused: u64,
    /// Messages dropped because their sender cannot vouch for them: a prepare, accept or commit
    /// from another member than the ballot's owner, and decided entries or a snapshot from a
    /// member this member is not waiting on a catch-up answer from (a late duplicate of an
    /// answer already taken is one of those).
    pub messages_unvouched: u64,
}

/// The catch-up request a member waits on an answer to. It asks for every slot past its commit
/// index, so an answer's entries below that are ones it has, and are passed over.
#[derive(Clone, Copy, Debug)]
struct CatchUp {
    /// The member asked: the only one whose answer is taken.
    to: MemberId,
    sent_at: Time,
}

/// A value the leader proposed and the members that accepted it. The value itself is in the
/// leader's `accepted`, at its ballot, until it is decided: the leader accepts everything it
/// proposes.
#[derive(Debug)]
struct Proposal {
    /// The value's [`LogValue::wire_size`], counted in the leader's in-flight bytes.
    size: usize,
    /// Bit `m` is set once member `m` accepted.
    acks: u64,
    sent_at: Time,
}

#[derive(Debug)]
enum State {
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
        /// The bytes of the proposals' values, held under [`Tuning::max_in_flight_bytes`].
        in_flight_bytes: usize,
        heartbeat_at: Time,
    },
}

/// A Multi-Paxos member. See the [crate documentation](crate) for how to drive it.
#[derive(Debug)]
pub struct Node {
    me: MemberId,
    members: usize,
    tuning: Tuning,
    rng: Rng,
    incarnation: u64,
    next_request: u64,
    now: Time,

    // Acceptor.
    promised: Ballot,
    /// The highest ballot seen anywhere, so a new election outbids it rather than being refused.
    highest_seen: Ballot,
    /// Accepted but not (known to be) decided values.
    accepted: BTreeMap<Slot, (Ballot, LogValue)>,

    // Learner.
    /// Decided values from `log_start` on; the slots before it were compacted away.
    decided: BTreeMap<Slot, LogValue>,
    /// The bytes of the values in `decided`, held under [`Tuning::max_decided_bytes`].
    decided_bytes: usize,
    /// The first slot whose decided value this member still holds, if it is decided.
    log_start: Slot,
    /// The slot of the snapshot at the head of the log file: it grows from there.
    snapshot_slot: Slot,
    /// Set when the log file should be replaced by a fresh snapshot at the next `take_ready`.
    compact_due: bool,
    /// The bytes of values appended to the log file since it was last replaced, held under
    /// [`Tuning::snapshot_bytes`].
    log_bytes: usize,
    /// Every slot up to here is decided and applied.
    commit: Slot,
    /// The highest commit index any leader announced to us.
    known_commit: Slot,
    catch_up: Option<CatchUp>,
    kv: KvStore,
    /// The requests applied so far, so that a request decided in two slots applies once.
    applied: AppliedRequests,

    // Proposer.
    state: State,
    leader: Option<MemberId>,
    election_deadline: Time,
    /// Client requests waiting to be proposed (at the leader) or forwarded (elsewhere).
    waiting: VecDeque<Request>,
    /// This incarnation's own requests that are not applied yet, with the time to give up on
    /// each: they are sent again to every new leader, since the old one may have lost them.
    unanswered: BTreeMap<RequestId, (Request, Time)>,
    commit_announced: Slot,

    ready: Ready,
    stats: Stats,

    /// Every value this incarnation learned, compacted or not, for the simulator's agreement
    /// check.
    #[cfg(test)]
    learned: BTreeMap<Slot, LogValue>,
    /// Test-only sabotage: an acceptor that ignores its promises, to show the checkers catch it.
    #[cfg(test)]
    pub(crate) ignore_promises: bool,
}

impl Node {
    /// Starts member `me` of `members`, from what it persisted before (`Durable::default()` for a
    /// new member). `seed` feeds the election-timeout jitter. `incarnation` tells this start
    /// from earlier ones so that request ids never repeat: the node uses it, or one more than the
    /// highest incarnation it recorded if that is higher, and records the one it uses. Pass the
    /// time of day (the runtimes pass microseconds since the Unix epoch), so that starts grow even
    /// across a lost data dir.
    ///
    /// Panics if `durable` holds a promise past [`MAX_ROUND`], which
    /// [`storage::replay`](crate::storage::replay) refuses to return.
    pub fn new(
        me: MemberId,
        members: usize,
        tuning: Tuning,
        seed: u64,
        incarnation: u64,
        durable: Durable,
        now: Time,
    ) -> Node {
        assert!(me < members && members <= 64, "member {me} of {members}");
        assert!(
            durable.promised.round <= MAX_ROUND,
            "promised {} past MAX_ROUND; storage::replay refuses such a log",
            durable.promised
        );
        let incarnation = incarnation.max(durable.incarnation + 1);
        // At least these values are in the log file since its snapshot.
        let log_bytes = durable
            .accepted
            .values()
            .map(|(_, value)| value)
            .chain(durable.decided.values())
            .map(LogValue::wire_size)
            .sum();
        let compact_due = log_bytes >= tuning.snapshot_bytes;
        let mut node = Node {
            me,
            members,
            tuning,
            rng: Rng::new(seed),
            incarnation,
            next_request: 0,
            now,
            promised: durable.promised,
            highest_seen: durable.promised,
            accepted: durable.accepted,
            decided: BTreeMap::new(),
            decided_bytes: 0,
            log_start: 1,
            snapshot_slot: 0,
            compact_due,
            log_bytes,
            commit: 0,
            known_commit: 0,
            catch_up: None,
            kv: KvStore::new(),
            applied: AppliedRequests::default(),
            state: State::Follower,
            leader: None,
            election_deadline: now,
            waiting: VecDeque::new(),
            unanswered: BTreeMap::new(),
            commit_announced: 0,
            ready: Ready::default(),
            stats: Stats::default(),
            #[cfg(test)]
            learned: BTreeMap::new(),
            #[cfg(test)]
            ignore_promises: false,
        };
        node.election_deadline = now + node.election_timeout();
        node.ready.persist.push(Record::Incarnation { incarnation });
        if let Some(snapshot) = durable.snapshot {
            node.snapshot_slot = snapshot.slot;
            node.install(*snapshot);
        }
        for (slot, value) in durable.decided {
            node.learn(slot, value, false);
        }
        node.apply_decided();
        // Replies for requests of an earlier incarnation have nobody to go to.
        node.ready.replies.clear();
        node
    }

    // ---------------------------------------------------------------- inputs

    /// Takes a client command and returns the id its answer will carry in [`Ready::replies`].
    pub fn submit(&mut self, now: Time, command: Command) -> RequestId {
        self.now = now;
        self.next_request += 1;
        let id = RequestId {
            member: self.me,
            incarnation: self.incarnation,
            n: self.next_request,
        };
        let give_up_at = now + self.tuning.request_timeout;
        let mut request = Request {
            id,
            floor: 0,
            command,
        };
        self.unanswered.insert(id, (request.clone(), give_up_at));
        request.floor = self.floor();
        self.waiting.push_back(request);
        id
    }

    /// Takes one message from member `from`.
    pub fn handle_message(&mut self, now: Time, from: MemberId, message: Message) {
        self.now = now;
        if from >= self.members || from == self.me {
            return;
        }
        if message.highest_slot() > MAX_SLOT {
            return;
        }
        if message
            .ballot()
            .is_some_and(|ballot| !self.takes_ballot(ballot))
        {
            self.stats.ballots_refused += 1;
            return;
        }
        // Only a ballot's owner prepares, proposes and commits at it: taking these from anyone
        // else would let one member speak for another's leadership.
        if let Message::Prepare { ballot, .. }
        | Message::Accept { ballot, .. }
        | Message::Commit { ballot, .. } = &message
            && ballot.member != from
        {
            self.stats.messages_unvouched += 1;
            return;
        }
        // An acceptor accepts at most the ballot it promises, so a promise that reports an
        // acceptance above its own ballot is forged or garbled, and the reported ballot would
        // outrank the values every honest acceptor reports for that slot.
        if let Message::Promise {
            ballot, accepted, ..
        } = &message
            && accepted.iter().any(|entry| entry.ballot > *ballot)
        {
            self.stats.ballots_refused += 1;
            return;
        }
        if let Message::Prepare { ballot, .. }
        | Message::Accept { ballot, .. }
        | Message::Commit { ballot, .. }
        | Message::Nack { ballot } = &message
        {
            self.highest_seen = self.highest_seen.max(*ballot);
        }
        match message {
            Message::Prepare { ballot, from_slot } => self.on_prepare(from, ballot, from_slot),
            Message::Promise {
                ballot,
                accepted,
                decided,
                snapshot,
            } => self.on_promise(from, ballot, accepted, decided, snapshot),
            Message::Accept {
                ballot,
                entries,
                commit,
            } => self.on_accept(from, ballot, entries, commit),
            Message::Accepted { ballot, slots } => self.on_accepted(from, ballot, &slots),
            Message::Nack { ballot } => self.on_nack(ballot),
            Message::Commit { ballot, commit } => self.on_commit(from, ballot, commit),
            Message::CatchUp { from_slot } => self.on_catch_up(from, from_slot),
            Message::Decided { entries, commit } => self.on_decided(from, entries, commit),
            Message::Forward { requests } => self.on_forward(requests),
            Message::Snapshot { snapshot } => self.on_snapshot(from, *snapshot),
        }
    }

    /// Runs whatever timers are due: heartbeats and retransmissions at the leader, elections
    /// elsewhere.
    pub fn handle_timeout(&mut self, now: Time) {
        self.now = now;
        self.give_up_on_expired();
        if let State::Leader { heartbeat_at, .. } = self.state {
            if now >= heartbeat_at {
                self.heartbeat();
            }
        } else if now >= self.election_deadline {
            self.start_election();
        }
        if self
            .catch_up
            .is_some_and(|c| now >= c.sent_at + self.tuning.heartbeat_interval)
        {
            self.catch_up = None;
            self.request_catch_up();
        }
    }

    // --------------------------------------------------------------- outputs

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Time {
        let timer = match self.state {
            State::Leader { heartbeat_at, .. } => heartbeat_at,
            _ => self.election_deadline,
        };
        match self.catch_up {
            Some(c) => timer.min(c.sent_at + self.tuning.heartbeat_interval),
            None => timer,
        }
    }

    /// Everything the node wants done since the last call: persist first, then send and reply.
    pub fn take_ready(&mut self) -> Ready {
        self.flush();
        if self.compact_due {
            self.compact();
        }
        mem::take(&mut self.ready)
    }

    pub fn status(&self) -> Status {
        let (role, leader) = match self.state {
            State::Follower => (Role::Follower, self.leader),
            State::Candidate { .. } => (Role::Candidate, None),
            State::Leader { .. } => (Role::Leader, Some(self.me)),
        };
        Status {
            role,
            leader,
            ballot: self.promised.max(self.highest_seen),
            commit_index: self.commit,
            applied_index: self.commit,
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The replicated store as applied so far. Reading it directly is not linearizable; clients
    /// read through the log.
    pub fn store(&self) -> &KvStore {
        &self.kv
    }

    /// The decided values this member still holds: the slots since its last compaction, and a
    /// few before, kept to catch up members slightly behind.
    pub fn decided(&self) -> &BTreeMap<Slot, LogValue> {
        &self.decided
    }

    /// Every value this incarnation learned, including those compacted away since.
    #[cfg(test)]
    pub(crate) fn learned(&self) -> &BTreeMap<Slot, LogValue> {
        &self.learned
    }

    // -------------------------------------------------------------- acceptor

    fn on_prepare(&mut self, from: MemberId, ballot: Ballot, from_slot: Slot) {
        if ballot < self.promised && !self.sabotaged() {
            self.nack(from, ballot);
            return;
        }
        if ballot > self.promised {
            self.promise(ballot);
        }
        // A candidate with a higher ballot is under way: give it time before competing.
        if !matches!(self.state, State::Follower) || self.leader.is_some() {
            self.step_down(None);
        }
        self.election_deadline = self.now + self.election_timeout();
        let (accepted, decided, snapshot) = self.report_from(from_slot);
        let promise = Message::Promise {
            ballot,
            accepted,
            decided,
            snapshot,
        };
        self.send(from, promise);
    }

    fn on_accept(&mut self, from: MemberId, ballot: Ballot, entries: Vec<Entry>, commit: Slot) {
        if ballot < self.promised && !self.sabotaged() {
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

    fn on_commit(&mut self, from: MemberId, ballot: Ballot, commit: Slot) {
        if ballot < self.promised {
            self.nack(from, ballot);
            return;
        }
        self.follow(ballot);
        self.learn_commit(ballot, commit);
    }

    /// Records a promise of `ballot`.
    fn promise(&mut self, ballot: Ballot) {
        self.promised = ballot;
        self.ready.persist.push(Record::Promise { ballot });
    }

    /// Records the acceptance of `value` for `slot` at `ballot`, unless the slot is decided
    /// already (then the leader's value is the decided one, and there is nothing to record).
    /// Returns whether the leader may count this member for the slot: not for a slot more than
    /// [`MAX_SLOT_GAP`] past the commit index, which this member refuses until it catches up.
    fn accept(&mut self, slot: Slot, ballot: Ballot, value: LogValue) -> bool {
        if slot <= self.commit || self.decided.contains_key(&slot) {
            return true;
        }
        if slot > self.commit.saturating_add(MAX_SLOT_GAP) {
            return false;
        }
        self.record_acceptance(slot, ballot, value);
        true
    }

    fn record_acceptance(&mut self, slot: Slot, ballot: Ballot, value: LogValue) {
        self.promised = self.promised.max(ballot);
        let size = value.wire_size();
        let record = Record::Accept {
            slot,
            ballot,
            value: value.clone(),
        };
        self.persist_value(record, size);
        self.accepted.insert(slot, (ballot, value));
    }

    /// What this acceptor knows from `from_slot` on, for a promise. Slots it compacted away go
    /// as its state instead, and decided values from there on.
    fn report_from(
        &self,
        from_slot: Slot,
    ) -> (Vec<AcceptedEntry>, Vec<Entry>, Option<Box<Snapshot>>) {
        let snapshot = (from_slot < self.log_start).then(|| Box::new(self.snapshot()));
        let from_slot = if snapshot.is_some() {
            self.commit + 1
        } else {
            from_slot
        };
        let accepted = self
            .accepted
            .range(from_slot..)
            .map(|(&slot, (ballot, value))| AcceptedEntry {
                slot,
                ballot: *ballot,
                value: value.clone(),
            })
            .collect();
        let decided = self
            .decided
            .range(from_slot..)
            .map(|(&slot, value)| Entry {
                slot,
                value: value.clone(),
            })
            .collect();
        (accepted, decided, snapshot)
    }

    // --------------------------------------------------------------- learner

    /// Marks the slots the leader at `ballot` says are decided, where this member holds the
    /// value accepted at that very ballot; asks for the rest.
    fn learn_commit(&mut self, ballot: Ballot, commit: Slot) {
        self.known_commit = self.known_commit.max(commit);
        // A half-open range, because an inclusive `commit + 1..=commit` (a heartbeat that brings
        // nothing new, the common case) has its start past its end, and `BTreeMap::range`
        // panics on that.
        let learnable: Vec<Slot> = self
            .accepted
            .range(self.commit + 1..commit.max(self.commit).saturating_add(1))
            .filter(|(_, (accepted_at, _))| *accepted_at == ballot)
            .map(|(&slot, _)| slot)
            .collect();
        for slot in learnable {
            self.learn_accepted(slot, ballot);
        }
        self.apply_decided();
        if self.commit < self.known_commit && self.catch_up.is_none() {
            self.request_catch_up();
        }
    }

    fn request_catch_up(&mut self) {
        let Some(leader) = self.leader.filter(|&l| l != self.me) else {
            return;
        };
        if self.commit >= self.known_commit {
            return;
        }
        self.stats.catch_up_requests += 1;
        self.catch_up = Some(CatchUp {
            to: leader,
            sent_at: self.now,
        });
        let from_slot = self.commit + 1;
        self.send(leader, Message::CatchUp { from_slot });
    }

    fn on_catch_up(&mut self, from: MemberId, from_slot: Slot) {
        if from_slot < self.log_start && from_slot <= self.commit {
            self.stats.snapshots_sent += 1;
            let snapshot = Box::new(self.snapshot());
            self.send(from, Message::Snapshot { snapshot });
            return;
        }
        let entries: Vec<Entry> = self
            .decided
            .range(from_slot..)
            .take(self.tuning.catch_up_batch)
            .map(|(&slot, value)| Entry {
                slot,
                value: value.clone(),
            })
            .collect();
        let commit = self.commit;
        let max_bytes = self.tuning.max_batch_bytes;
        // Only the first batch: the member asks again for the next.
        if let Some(entries) = batches(entries, usize::MAX, max_bytes, |e| e.value.wire_size())
            .into_iter()
            .next()
        {
            self.send(from, Message::Decided { entries, commit });
        }
    }

    fn on_decided(&mut self, from: MemberId, entries: Vec<Entry>, commit: Slot) {
        // A leader learns decisions only from its own quorum. An answer to a catch-up it asked
        // for as a follower can arrive after it was elected and report a slot decided by a newer
        // leader it has not heard of yet, with another value than the one it proposed there. If
        // it counted that slot in its commit index, a follower that accepted its own value in
        // that slot would take the next commit at its ballot to mean that value was decided.
        if matches!(self.state, State::Leader { .. }) {
            return;
        }
        if !self.asked(from) {
            self.stats.messages_unvouched += 1;
            return;
        }
        let before = self.commit;
        for Entry { slot, value } in entries {
            self.learn(slot, value, true);
        }
        self.apply_decided();
        self.known_commit = self.known_commit.max(commit);
        // An answer that moved the commit index on asks for the next batch now rather than
        // after the retry interval. A stale or duplicated answer asks for nothing: if every
        // answer begot a request, each duplicate would start one more stream of requests and
        // answers, and the streams would multiply without bound. Losses are covered by the
        // retry timer, which stays armed.
        if self.commit > before {
            self.catch_up = None;
            if self.commit < self.known_commit && self.leader == Some(from) {
                self.request_catch_up();
            }
        }
    }

    /// Records that `value` is decided for `slot`. A slot far past the commit index comes from
    /// no honest member (see [`MAX_SLOT_GAP`]) and is ignored, which costs nothing but the
    /// learning: a new leader would fill every slot up to the highest one it knows.
    fn learn(&mut self, slot: Slot, value: LogValue, persist: bool) {
        if slot <= self.commit || self.decided.contains_key(&slot) {
            return;
        }
        if slot > self.commit.saturating_add(2 * MAX_SLOT_GAP) {
            return;
        }
        if persist {
            let size = value.wire_size();
            let record = Record::Decide {
                slot,
                value: value.clone(),
            };
            self.persist_value(record, size);
        }
        self.decide(slot, value);
    }

    /// Records that the value this member accepted for `slot` at `ballot` is decided, if it
    /// still holds that acceptance. The record names the acceptance, which is in the log file
    /// already, rather than write the value a second time.
    fn learn_accepted(&mut self, slot: Slot, ballot: Ballot) {
        let btree_map::Entry::Occupied(acceptance) = self.accepted.entry(slot) else {
            return;
        };
        if acceptance.get().0 != ballot {
            return;
        }
        let (_, value) = acceptance.remove();
        self.ready
            .persist
            .push(Record::DecideAccepted { slot, ballot });
        self.decide(slot, value);
    }

    /// Moves a slot's value among the decided ones, out of the acceptances and proposals.
    fn decide(&mut self, slot: Slot, value: LogValue) {
        self.accepted.remove(&slot);
        if let State::Leader {
            proposals,
            in_flight_bytes,
            ..
        } = &mut self.state
            && let Some(proposal) = proposals.remove(&slot)
        {
            *in_flight_bytes -= proposal.size;
        }
        #[cfg(test)]
        self.learned.insert(slot, value.clone());
        self.decided_bytes += value.wire_size();
        self.decided.insert(slot, value);
        self.stats.slots_decided += 1;
    }

    /// Applies decided slots in order, and answers the requests this incarnation is waiting on.
    fn apply_decided(&mut self) {
        while let Some(value) = self.decided.get(&(self.commit + 1)) {
            self.commit += 1;
            let LogValue::Request(request) = value else {
                continue;
            };
            // One request can be decided in two slots (see `applied`). It must take effect once:
            // the client sent it once.
            if !self.applied.admit(request) {
                continue;
            }
            let answer: Answer = self.kv.apply(self.commit, &request.command);
            let id = request.id;
            self.applied.record(id, answer.clone());
            if id.member == self.me && id.incarnation == self.incarnation {
                self.unanswered.remove(&id);
                self.ready.replies.push((id, answer));
            }
        }
        self.outgrow_a_newer_self();
        self.trim_decided();
        if self.commit >= self.snapshot_slot + self.tuning.snapshot_every {
            self.compact_due = true;
        }
    }

    /// Makes sure this incarnation is newer than any of this member's that the log has seen.
    /// Incarnations grow by the time of day, or from the one recorded, so this happens only when
    /// a member lost its data dir and its clock went back: the log then holds requests from a
    /// newer-looking incarnation, and every request of this one would be skipped as old.
    fn outgrow_a_newer_self(&mut self) {
        let Some(newest) = self.applied.newest_incarnation(self.me) else {
            return;
        };
        if newest > self.incarnation {
            self.incarnation = newest + 1;
            let incarnation = self.incarnation;
            self.ready.persist.push(Record::Incarnation { incarnation });
        }
    }

    // -------------------------------------------------------------- proposer

    fn start_election(&mut self) {
        self.election_deadline = self.now + self.election_timeout();
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
        } = self.state
        {
            self.stats.elections_started += 1;
            self.broadcast(Message::Prepare { ballot, from_slot });
            return;
        }
        // Someone may have used the last round a member takes: then no ballot outbids it, and
        // this member can only follow.
        let round = self.promised.max(self.highest_seen).round + 1;
        if round > MAX_ROUND {
            return;
        }
        self.stats.elections_started += 1;
        let ballot = Ballot {
            round,
            member: self.me,
        };
        self.promise(ballot);
        self.leader = None;
        let from_slot = self.commit + 1;
        let (accepted, decided, snapshot) = self.report_from(from_slot);
        self.state = State::Candidate {
            ballot,
            from_slot,
            promised_by: 0,
            accepted: BTreeMap::new(),
        };
        self.broadcast(Message::Prepare { ballot, from_slot });
        // The candidate is one of the acceptors it needs.
        self.on_promise(self.me, ballot, accepted, decided, snapshot);
    }

    fn on_promise(
        &mut self,
        from: MemberId,
        ballot: Ballot,
        accepted: Vec<AcceptedEntry>,
        decided: Vec<Entry>,
        snapshot: Option<Box<Snapshot>>,
    ) {
        let majority = self.majority();
        let State::Candidate {
            ballot: mine,
            promised_by,
            accepted: best,
            ..
        } = &mut self.state
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
        let base = snapshot.as_ref().map_or(0, |s| s.slot).max(self.commit);
        let limit = base.saturating_add(2 * MAX_SLOT_GAP);
        if accepted.iter().any(|e| e.slot > limit) {
            return;
        }
        *promised_by |= 1 << from;
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
            self.take_snapshot(*snapshot);
        }
        for Entry { slot, value } in decided {
            self.learn(slot, value, true);
        }
        self.apply_decided();
        if won {
            self.become_leader();
        }
    }

    /// Phase 1 succeeded: re-propose every open slot a majority reported, fill holes with no-ops,
    /// and start taking client requests.
    fn become_leader(&mut self) {
        let State::Candidate {
            ballot, accepted, ..
        } = mem::replace(&mut self.state, State::Follower)
        else {
            return;
        };
        self.stats.elections_won += 1;
        let last_known = accepted
            .keys()
            .chain(self.decided.keys())
            .copied()
            .max()
            .unwrap_or(0);
        let mut accepted = accepted;
        self.state = State::Leader {
            ballot,
            next_slot: last_known.max(self.commit) + 1,
            proposals: BTreeMap::new(),
            in_flight_bytes: 0,
            heartbeat_at: self.now,
        };
        self.leader = Some(self.me);
        self.resend_unanswered();
        // From the commit index, not from where phase 1 started: a promise may have carried a
        // snapshot far ahead of that, and every slot below it is decided.
        let reproposals: Vec<Entry> = (self.commit + 1..=last_known)
            .filter(|slot| !self.decided.contains_key(slot))
            .map(|slot| Entry {
                slot,
                value: accepted.remove(&slot).map_or(LogValue::Noop, |(_, v)| v),
            })
            .collect();
        self.propose(reproposals);
    }

    /// Proposes entries at the leader's ballot: accept them locally, send them to everyone.
    fn propose(&mut self, entries: Vec<Entry>) {
        let State::Leader { ballot, .. } = self.state else {
            return;
        };
        if entries.is_empty() {
            return;
        }
        self.stats.slots_proposed += entries.len() as u64;
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
        } = &mut self.state
        {
            for entry in &entries {
                let proposal = Proposal {
                    size: entry.value.wire_size(),
                    acks: 0,
                    sent_at: now,
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
                commit: self.commit,
            };
            self.broadcast(accept);
        }
        // With one member, its own acceptance is a majority.
        self.count_acks(self.me, ballot, &own);
    }

    fn on_accepted(&mut self, from: MemberId, ballot: Ballot, slots: &[Slot]) {
        self.count_acks(from, ballot, slots);
    }

    fn count_acks(&mut self, from: MemberId, ballot: Ballot, slots: &[Slot]) {
        let majority = self.majority();
        let State::Leader {
            ballot: mine,
            proposals,
            ..
        } = &mut self.state
        else {
            return;
        };
        if ballot != *mine {
            return;
        }
        let mut chosen = Vec::new();
        for slot in slots {
            if let Some(proposal) = proposals.get_mut(slot) {
                proposal.acks |= 1 << from;
                if proposal.acks.count_ones() as usize >= majority {
                    chosen.push(*slot);
                }
            }
        }
        for slot in chosen {
            self.learn_accepted(slot, ballot);
        }
        self.apply_decided();
    }

    fn on_nack(&mut self, ballot: Ballot) {
        let mine = match self.state {
            State::Candidate { ballot, .. } | State::Leader { ballot, .. } => ballot,
            State::Follower => return,
        };
        if ballot > mine {
            self.step_down(None);
        }
    }

    fn on_forward(&mut self, requests: Vec<Request>) {
        match self.state {
            State::Leader { .. } | State::Candidate { .. } => self.waiting.extend(requests),
            // Re-forwarding could bounce requests between members that disagree on the leader;
            // dropping them leaves their origin to answer 503 at its request timeout.
            State::Follower => self.stats.requests_dropped += requests.len() as u64,
        }
    }

    /// Follows the leader of `ballot`, stepping down if this member led or ran at a lower one.
    fn follow(&mut self, ballot: Ballot) {
        let mine = match self.state {
            State::Candidate { ballot, .. } | State::Leader { ballot, .. } => Some(ballot),
            State::Follower => None,
        };
        if mine.is_some_and(|mine| mine < ballot) || mine.is_none() {
            let new_leader = self.leader != Some(ballot.member);
            if mine.is_some() {
                self.step_down(Some(ballot.member));
            }
            self.leader = Some(ballot.member);
            self.election_deadline = self.now + self.election_timeout();
            if new_leader {
                self.resend_unanswered();
            }
        }
    }

    /// Queues this member's unanswered requests again for the leader it just learned of. The
    /// old leader may have died or stepped down holding them unproposed; if it did propose one,
    /// the request is decided twice and [`apply_decided`](Self::apply_decided) applies it once.
    fn resend_unanswered(&mut self) {
        let queued: HashSet<RequestId> = self.waiting.iter().map(|r| r.id).collect();
        // The copies carry today's floor, which lets the log forget more of this incarnation.
        let floor = self.floor();
        let again: Vec<Request> = self
            .unanswered
            .iter()
            .filter(|(id, _)| !queued.contains(id))
            .map(|(_, (request, _))| Request {
                floor,
                ..request.clone()
            })
            .collect();
        self.stats.requests_resent += again.len() as u64;
        self.waiting.extend(again);
    }

    /// Forgets the own requests whose clients have been answered `503` by now.
    fn give_up_on_expired(&mut self) {
        let now = self.now;
        let before = self.unanswered.len();
        self.unanswered
            .retain(|_, (_, give_up_at)| *give_up_at > now);
        if self.unanswered.len() < before {
            let unanswered = &self.unanswered;
            let me = self.me;
            self.waiting
                .retain(|r| r.id.member != me || unanswered.contains_key(&r.id));
        }
    }

    fn step_down(&mut self, leader: Option<MemberId>) {
        if let State::Leader { proposals, .. } = mem::replace(&mut self.state, State::Follower) {
            // Undecided proposals stay accepted here; the next leader re-proposes or overrides
            // them. Requests not yet proposed go on to the next leader.
            drop(proposals);
        }
        self.leader = leader;
        self.election_deadline = self.now + self.election_timeout();
    }

    fn heartbeat(&mut self) {
        let State::Leader {
            ballot,
            proposals,
            heartbeat_at,
            ..
        } = &mut self.state
        else {
            return;
        };
        let ballot = *ballot;
        *heartbeat_at = self.now + self.tuning.heartbeat_interval;
        // Re-send proposals that a member has not acknowledged for a whole interval: the first
        // Accept or its answer may have been lost.
        let stale = self.now.saturating_sub(self.tuning.heartbeat_interval);
        let mut resend: Vec<Vec<Entry>> = vec![Vec::new(); self.members];
        let mut resend_bytes = vec![0; self.members];
        let (max_count, max_bytes) = (self.tuning.max_batch, self.tuning.max_batch_bytes);
        let me = self.me;
        for (&slot, proposal) in proposals.iter_mut().filter(|(_, p)| p.sent_at <= stale) {
            let Some((_, value)) = self.accepted.get(&slot) else {
                continue;
            };
            proposal.sent_at = self.now;
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
        let commit = self.commit;
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
        self.broadcast(Message::Commit { ballot, commit });
        self.commit_announced = commit;
    }

    /// Turns waiting requests into proposals (at the leader) or forwards (elsewhere), and tells
    /// followers about new decisions.
    fn flush(&mut self) {
        match &self.state {
            State::Leader {
                next_slot,
                proposals,
                in_flight_bytes,
                ..
            } => {
                let room = self.tuning.max_in_flight.saturating_sub(proposals.len());
                // Past the byte budget only while nothing is in flight, so that one value larger
                // than the budget still goes, alone.
                let mut bytes = *in_flight_bytes;
                let mut take = 0;
                for request in self.waiting.iter().take(room) {
                    let size = LogValue::wire_size_of(request);
                    if bytes > 0 && bytes + size > self.tuning.max_in_flight_bytes {
                        break;
                    }
                    bytes += size;
                    take += 1;
                }
                let first = *next_slot;
                let entries: Vec<Entry> = self
                    .waiting
                    .drain(..take)
                    .zip(first..)
                    .map(|(request, slot)| Entry {
                        slot,
                        value: LogValue::Request(request),
                    })
                    .collect();
                if let State::Leader { next_slot, .. } = &mut self.state {
                    *next_slot += entries.len() as Slot;
                }
                self.propose(entries);
            }
            State::Follower => {
                if let Some(leader) = self.leader.filter(|&l| l != self.me) {
                    let (own, foreign): (Vec<Request>, Vec<Request>) =
                        self.waiting.drain(..).partition(|r| r.id.member == self.me);
                    self.stats.requests_dropped += foreign.len() as u64;
                    self.stats.requests_forwarded += own.len() as u64;
                    let (max_count, max_bytes) =
                        (self.tuning.max_batch, self.tuning.max_batch_bytes);
                    for requests in batches(own, max_count, max_bytes, LogValue::wire_size_of) {
                        self.send(leader, Message::Forward { requests });
                    }
                }
            }
            State::Candidate { .. } => {}
        }
        if let State::Leader { ballot, .. } = self.state
            && self.commit > self.commit_announced
        {
            self.commit_announced = self.commit;
            let commit = self.commit;
            self.broadcast(Message::Commit { ballot, commit });
        }
    }

    // --------------------------------------------------------------- helpers

    /// The lowest number among this incarnation's unanswered requests (they are kept in id
    /// order), or the next number if none is: everything below it is answered or given up.
    fn floor(&self) -> u64 {
        self.unanswered
            .keys()
            .next()
            .map_or(self.next_request + 1, |id| id.n)
    }

    fn majority(&self) -> usize {
        self.members / 2 + 1
    }

    fn election_timeout(&mut self) -> Time {
        let base = self.tuning.election_timeout;
        let jitter_ms = self.rng.below(base.as_millis().max(1) as u64);
        base + Time::from_millis(jitter_ms)
    }

    /// Whether decided entries or a snapshot from `from` answer the catch-up request this
    /// member waits on. Decided values are final, but anyone can claim a value is decided; only
    /// the member asked, which the asker believes leads, vouches for them.
    fn asked(&self, from: MemberId) -> bool {
        self.catch_up.is_some_and(|c| c.to == from)
    }

    /// Whether a message at `ballot` may be taken. A ballot names the member that owns it; one
    /// that names no member of the config is forged or garbled, and following it would make a
    /// leader of nobody. So is one past [`MAX_ROUND`] or far above every round this member has
    /// seen (see [`MAX_ROUND_STEP`]): promising it would leave elections nothing to outbid it
    /// with.
    fn takes_ballot(&self, ballot: Ballot) -> bool {
        let highest = self.promised.max(self.highest_seen).round;
        ballot.member < self.members
            && ballot.round <= MAX_ROUND
            && ballot.round <= highest.saturating_add(MAX_ROUND_STEP)
    }

    /// Tells `to` that this member promised a higher ballot than `refused`, the one `to` used.
    /// Where the promise is a step or more above `refused`, `to` would drop it (it has seen
    /// nothing higher than `refused`), and a member far behind would never learn how far it is;
    /// so the nack names the ballot just under a step above `refused` instead. That is still
    /// true (this member promised at least as much), `to` takes it, and its next election, one
    /// round up, is exactly a step above `refused`, which the members `to` ran with still take.
    fn nack(&mut self, to: MemberId, refused: Ballot) {
        let rung = Ballot {
            round: refused.round + (MAX_ROUND_STEP - 1),
            member: self.promised.member,
        };
        let ballot = self.promised.min(rung);
        self.send(to, Message::Nack { ballot });
    }

    /// Queues a record holding a value of `size` bytes, and has the log file compacted once
    /// such records have grown it by [`Tuning::snapshot_bytes`].
    fn persist_value(&mut self, record: Record, size: usize) {
        self.ready.persist.push(record);
        self.log_bytes += size;
        if self.log_bytes >= self.tuning.snapshot_bytes {
            self.compact_due = true;
        }
    }

    fn send(&mut self, to: MemberId, message: Message) {
        self.ready.messages.push((To::Member(to), message));
    }

    fn broadcast(&mut self, message: Message) {
        if self.members > 1 {
            self.ready.messages.push((To::Peers, message));
        }
    }

    #[cfg(test)]
    fn sabotaged(&self) -> bool {
        self.ignore_promises
    }

    #[cfg(not(test))]
    fn sabotaged(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
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
                    Node::new(
                        m,
                        n,
                        tuning.clone(),
                        m as u64,
                        m as u64,
                        durable,
                        Time::ZERO,
                    )
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
        fn flush(&mut self, m: MemberId) -> Vec<(RequestId, Answer)> {
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
            self.flush(to);
            delivered
        }

        fn elect(&mut self, m: MemberId, voters: &[MemberId]) {
            self.now += Duration::from_secs(10);
            let now = self.now;
            self.nodes[m].handle_timeout(now);
            self.flush(m);
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
            Record::Accept { value, .. } | Record::Decide { value, .. } => value.wire_size(),
            Record::Promise { .. }
            | Record::DecideAccepted { .. }
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
        h.flush(0);
        assert_eq!(h.deliver(0, 1, "commit"), 1);
        assert_eq!(h.deliver(0, 2, "commit"), 1);
        assert_eq!(h.nodes[1].status().leader, Some(0));
        let id = h.nodes[1].submit(h.now, append("x"));
        h.flush(1);
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
        h.flush(2);
        assert_eq!(h.deliver(2, 1, "commit"), 1);
        assert_eq!(h.nodes[1].stats().requests_resent, 1);
        assert_eq!(h.deliver(1, 2, "forward"), 1);
        h.deliver(2, 1, "accept");
        h.deliver(1, 2, "accepted");
        h.flush(2);
        h.deliver(2, 1, "commit");
        let list = Value::List(vec!["x".into()]);
        assert_eq!(h.nodes[1].store().peek("k"), Some(&list));
        // The request is answered (the reply left with that delivery's flush), so node 1 no
        // longer holds it for resending.
        assert!(!h.nodes[1].unanswered.contains_key(&id));
    }

    /// A promise reporting an acceptance far past where the candidate stands is dropped, not
    /// obeyed: leading from it would mean a no-op in every slot up to it.
    #[test]
    fn a_promise_from_far_away_is_dropped() {
        let mut h = Hand::new(3);
        h.now += Duration::from_secs(10);
        let now = h.now;
        h.nodes[0].handle_timeout(now);
        h.flush(0);
        let State::Candidate { ballot, .. } = h.nodes[0].state else {
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
        let State::Leader { next_slot, .. } = h.nodes[0].state else {
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
        h.flush(m);
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
        h.flush(1);
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
            h.flush(0);
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
        h.flush(0);
        h.deliver(0, 1, "accept");
        h.deliver(1, 0, "accepted");
        h.flush(0);
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
        assert!(h.nodes[2].accepted.is_empty());
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
            h.flush(0);
            for f in [1, 2] {
                assert_eq!(h.deliver(0, f, "accept"), 1);
                h.deliver(f, 0, "accepted");
            }
            h.flush(0);
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
        h.flush(0);
        for f in [1, 2] {
            h.deliver(0, f, "accept");
            h.deliver(f, 0, "accepted");
        }
        h.flush(0);
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
                    .any(|r| matches!(r, Record::DecideAccepted { slot: 1, .. }))
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
        h.flush(0);
        for f in [1, 2] {
            h.deliver(0, f, "accept");
            h.deliver(f, 0, "accepted");
        }
        assert_eq!(h.nodes[0].status().commit_index, 1);
        // Node 3 missed the accept, hears the commit and asks node 0 to catch it up; that request
        // is delayed.
        h.flush(0);
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
        h.flush(3);
        h.deliver(3, 4, "accept");
        h.wire
            .retain(|(f, t, m)| (*f, *t, m.kind()) == (3, 0, "catch_up"));
        // Node 2 leads at a yet higher ballot with nodes 0 and 1, and decides `w` in slot 2.
        h.elect(2, &[0, 1]);
        h.nodes[2].submit(h.now, append("w"));
        h.flush(2);
        for f in [0, 1] {
            h.deliver(2, f, "accept");
            h.deliver(f, 2, "accepted");
        }
        h.flush(2);
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
        h.flush(3);
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
}
