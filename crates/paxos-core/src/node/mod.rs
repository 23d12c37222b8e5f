//! One Multi-Paxos member, as a state machine with no I/O: [`Node`].
//!
//! A member plays every role at once, and each role keeps its own state in its own module, the
//! way quinn-proto splits a connection's state:
//!
//! - `acceptor`: the member's vote. What it promised and accepted, and the rules `Prepare`
//!   and `Accept`.
//! - `learner`: what the member knows to be decided, the store it applies it to, and catching
//!   up (`Commit`, `CatchUp`, `Decided`).
//! - `compaction`: the log file's length, and snapshots in place of slots (`Snapshot`).
//! - `proposer`: follower, candidate or leader; elections (`Promise`, `Nack`) and proposals
//!   (`Accepted`), heartbeats.
//! - `requests`: the client requests this member took and has not seen answered yet
//!   (`Forward`).
//! - `reads`: `get`s answered without a log slot, by read index and read rounds (`ReadAck`,
//!   `ReadIndex`, `ReadIndexOk`, `ReadIndexRefused`).
//!
//! [`Node`] owns one of each and keeps the inputs and outputs: [`Node::handle_message`] drops
//! what no honest member would send, then hands each message to its rule in one match arm, and
//! [`Node::take_ready`] says, step by step, what a turn of inputs produced. Each invariant that
//! makes the rules safe is written beside the code that keeps it.
//!
//! The role modules are private, so these docs name their files (`src/node/acceptor.rs`, …)
//! rather than link them; `cargo doc --document-private-items` shows them.

mod acceptor;
mod batches;
mod compaction;
mod learner;
mod proposer;
mod reads;
mod ready;
mod requests;
mod status;
mod tuning;

use std::mem;

use self::acceptor::Acceptor;
use self::compaction::LogFile;
use self::learner::Learner;
use self::proposer::{Proposer, State};
use self::reads::Reads;
use self::requests::Requests;
use crate::Time;
use crate::command::{Answer, Command};
use crate::kv::KvStore;
use crate::log::{LogValue, MAX_SLOT, MemberId, RequestId, Slot};
use crate::message::Message;
use crate::rng::Rng;
use crate::storage::{Durable, Record};

pub use self::acceptor::{MAX_ROUND_STEP, MAX_SLOT_GAP};
pub use self::ready::{Ready, To};
pub use self::status::{Role, Stats, Status};
pub use self::tuning::Tuning;

/// Who a node is and how it runs: what [`Node::new`] needs besides what the member persisted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// This member's index in the config's `servers` list.
    pub me: MemberId,
    /// How many members the list has (at most 64).
    pub members: usize,
    pub tuning: Tuning,
    /// Feeds the election-timeout jitter. Members should get different seeds, so that their
    /// timeouts differ.
    pub seed: u64,
    /// Tells this start from earlier ones, so that request ids never repeat: the node uses it, or
    /// one more than the highest incarnation it recorded if that is higher, and records the one
    /// it uses. Pass the time of day (the runtimes pass microseconds since the Unix epoch), so
    /// that starts grow even across a lost data dir.
    pub incarnation: u64,
}

/// A Multi-Paxos member.
///
/// The contract: feed it inputs ([`submit`](Self::submit), [`handle_message`](
/// Self::handle_message), and [`handle_timeout`](Self::handle_timeout) once the time reaches
/// [`poll_timeout`](Self::poll_timeout)), each with the current time, in any number; then call
/// [`take_ready`](Self::take_ready) and carry out the [`Ready`] in order: make its records durable
/// before sending any of its messages or replies. A node never reads a clock, so the same inputs
/// at the same times give the same outputs. See the [crate documentation](crate) for a loop.
#[derive(Debug)]
pub struct Node {
    me: MemberId,
    members: usize,
    tuning: Tuning,
    rng: Rng,
    /// The time of the input being handled.
    now: Time,

    acceptor: Acceptor,
    learner: Learner,
    log_file: LogFile,
    proposer: Proposer,
    reads: Reads,
    requests: Requests,

    /// What the inputs since the last [`take_ready`](Self::take_ready) asked for. Only
    /// [`persist`](Self::persist), [`send`](Self::send), [`broadcast`](Self::broadcast) and
    /// [`reply`](Self::reply) add to it, and only `take_ready` replaces its records.
    ready: Ready,
    stats: Stats,

    /// Test-only sabotage: an acceptor that ignores its promises, to show the checkers catch it.
    #[cfg(any(test, doc))]
    pub(crate) ignore_promises: bool,
    /// Test-only sabotage: a leader that serves reads without confirming it still leads.
    #[cfg(any(test, doc))]
    pub(crate) unconfirmed_reads: bool,
}

impl Node {
    /// Starts a member from what it persisted before (`Durable::default()` for a new member).
    ///
    /// Panics if `durable` holds a promise past [`MAX_ROUND`](crate::log::MAX_ROUND), which
    /// [`storage::replay`](crate::storage::replay) refuses to return.
    pub fn new(config: NodeConfig, durable: Durable, now: Time) -> Node {
        let NodeConfig {
            me,
            members,
            tuning,
            seed,
            incarnation,
        } = config;
        assert!(me < members && members <= 64, "member {me} of {members}");
        let incarnation = incarnation.max(durable.incarnation + 1);
        let log_file = LogFile::replayed(&durable, &tuning);
        let mut node = Node {
            me,
            members,
            tuning,
            rng: Rng::new(seed),
            now,
            acceptor: Acceptor::new(durable.promised, durable.accepted),
            learner: Learner::default(),
            log_file,
            proposer: Proposer::new(now),
            reads: Reads::default(),
            requests: Requests::new(incarnation),
            ready: Ready::default(),
            stats: Stats::default(),
            #[cfg(any(test, doc))]
            ignore_promises: false,
            #[cfg(any(test, doc))]
            unconfirmed_reads: false,
        };
        node.proposer.election_deadline = now + node.election_timeout();
        node.persist(Record::Incarnation { incarnation });
        if let Some(snapshot) = durable.snapshot {
            node.log_file.snapshot_slot = snapshot.slot;
            node.install_snapshot(*snapshot);
        }
        for (slot, value) in durable.decided {
            node.learn_from_disk(slot, value);
        }
        node.apply_decided();
        // Replies for requests of an earlier incarnation have nobody to go to.
        node.ready.replies.clear();
        node
    }

    // ---------------------------------------------------------------- inputs

    /// Takes a client command and returns the id its answer will carry in [`Ready::replies`].
    /// A write goes through the log; a `get` does not (see `src/node/reads.rs`).
    pub fn submit(&mut self, now: Time, command: Command) -> RequestId {
        self.now = now;
        let me = self.me;
        if !command.op.is_write() {
            let id = self.requests.next_id(me);
            self.submit_read(id, command);
            return id;
        }
        let give_up_at = now + self.tuning.request_timeout;
        self.requests.take(me, command, give_up_at)
    }

    /// Takes one message from member `from`.
    ///
    /// First it drops what no honest member sends (see the crate documentation's "What is
    /// trusted"), then it hands the message to the rule for it: one match arm per rule.
    pub fn handle_message(&mut self, now: Time, from: MemberId, message: Message) {
        self.now = now;
        if !self.admits(from, &message) {
            return;
        }
        match message {
            // Acceptor (phase 1b): promise, or nack a ballot below the promise.
            Message::Prepare { ballot, from_slot } => self.on_prepare(from, ballot, from_slot),
            // Candidate: count the promise, and lead once a majority promised.
            Message::Promise {
                ballot,
                accepted,
                decided,
                snapshot,
            } => self.on_promise(from, ballot, accepted, decided, snapshot),
            // Acceptor (phase 2b): accept, or nack a ballot below the promise.
            Message::Accept {
                ballot,
                entries,
                commit,
            } => self.on_accept(from, ballot, entries, commit),
            // Leader: count the acceptance; a majority decides the slot.
            Message::Accepted { ballot, slots } => self.on_accepted(from, ballot, &slots),
            // Candidate or leader: someone promised a higher ballot; step down.
            Message::Nack { ballot } => self.on_nack(ballot),
            // Learner: the leader's commit index, and the heartbeat.
            Message::Commit {
                ballot,
                commit,
                read,
            } => self.on_commit(from, ballot, commit, read),
            // Learner: a member behind asks for decided entries.
            Message::CatchUp { from_slot } => self.on_catch_up(from, from_slot),
            // Learner: the answer to this member's catch-up request.
            Message::Decided { entries, commit } => self.on_decided(from, entries, commit),
            // Requests: a follower hands this member its clients' requests.
            Message::Forward { requests } => self.on_forward(requests),
            // Learner: a snapshot in answer to a catch-up request for slots compacted away.
            Message::Snapshot { snapshot } => self.on_snapshot(from, *snapshot),
            // Leader: a member acknowledged a read round; a majority confirms its reads.
            Message::ReadAck { ballot, read } => self.on_read_ack(from, ballot, read),
            // Leader: a follower asks for a read index.
            Message::ReadIndex { id } => self.on_read_index(from, id),
            // Reads: the leader's read index for one of this member's reads.
            Message::ReadIndexOk { id, index } => self.on_read_index_ok(from, id, index),
            // Reads: the leader asked holds too many reads to take this one.
            Message::ReadIndexRefused { id } => self.on_read_index_refused(from, id),
        }
    }

    /// Whether a message may be taken at all: from another member, naming no impossible slot
    /// or ballot, and vouched for by its sender. Notes the highest ballot seen on the way, so
    /// that an election outbids it.
    fn admits(&mut self, from: MemberId, message: &Message) -> bool {
        if from >= self.members || from == self.me {
            return false;
        }
        if message.highest_slot() > MAX_SLOT {
            return false;
        }
        if message
            .ballot()
            .is_some_and(|ballot| !self.acceptor.takes_ballot(ballot, self.members))
        {
            self.stats.ballots_refused += 1;
            return false;
        }
        // Only a ballot's owner prepares, proposes and commits at it: taking these from anyone
        // else would let one member speak for another's leadership.
        if let Message::Prepare { ballot, .. }
        | Message::Accept { ballot, .. }
        | Message::Commit { ballot, .. } = message
            && ballot.member != from
        {
            self.stats.messages_unvouched += 1;
            return false;
        }
        // An acceptor accepts at most the ballot it promises, so a promise that reports an
        // acceptance above its own ballot is forged or garbled, and the reported ballot would
        // outrank the values every honest acceptor reports for that slot.
        if let Message::Promise {
            ballot, accepted, ..
        } = message
            && accepted.iter().any(|entry| entry.ballot > *ballot)
        {
            self.stats.ballots_refused += 1;
            return false;
        }
        if let Message::Prepare { ballot, .. }
        | Message::Accept { ballot, .. }
        | Message::Commit { ballot, .. }
        | Message::Nack { ballot } = message
        {
            self.acceptor.highest_seen = self.acceptor.highest_seen.max(*ballot);
        }
        true
    }

    /// Runs whatever timers are due: heartbeats and retransmissions at the leader, elections
    /// elsewhere, a catch-up request whose answer is overdue, and read-index asks likewise.
    pub fn handle_timeout(&mut self, now: Time) {
        self.now = now;
        self.give_up_on_expired();
        if let State::Leader { heartbeat_at, .. } = self.proposer.state {
            if now >= heartbeat_at {
                self.heartbeat();
            }
        } else if now >= self.proposer.election_deadline {
            self.start_election();
        }
        if self
            .learner
            .catch_up_overdue(now, self.tuning.heartbeat_interval)
        {
            self.learner.catch_up = None;
            self.request_catch_up();
        }
        let retry = self.read_retry();
        self.reads.retry_overdue(now, retry);
    }

    // --------------------------------------------------------------- outputs

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Time {
        let timer = match self.proposer.state {
            State::Leader { heartbeat_at, .. } => heartbeat_at,
            _ => self.proposer.election_deadline,
        };
        let timer = match self.learner.catch_up {
            Some(c) => timer.min(c.sent_at + self.tuning.heartbeat_interval),
            None => timer,
        };
        match self.reads.next_retry(self.read_retry()) {
            Some(retry) => timer.min(retry),
            None => timer,
        }
    }

    /// Everything the node wants done since the last call: persist first, then send and reply.
    ///
    /// The inputs queued their own effects as they came (promises, acceptances, answers to
    /// peers, replies to clients). What they left for the end of the turn happens here, so that
    /// every input of a turn goes into one batch:
    pub fn take_ready(&mut self) -> Ready {
        // 1. Client requests that arrived during the turn become proposals at the leader, in as
        //    few `Accept`s as the batch limits allow, or one `Forward` per batch to the leader
        //    elsewhere. A candidate keeps them until it knows whether it leads.
        match self.proposer.state {
            State::Leader { .. } => self.propose_waiting(),
            State::Follower => self.forward_waiting(),
            State::Candidate { .. } => {}
        }
        // 2. Reads go to a read round at the leader or to the leader elsewhere, a round begins
        //    if reads wait for one, and reads whose index is applied are answered.
        self.advance_reads();
        // 3. A leader whose commit index moved tells the followers now rather than at the next
        //    heartbeat, so that they learn and apply without waiting.
        self.announce_commit_index();
        // 4. Once the log file has grown by `snapshot_every` slots or `snapshot_bytes`, the node
        //    asks for it to be replaced by a snapshot and what follows it. Those records say
        //    everything the ones queued for appending did, so they take their place.
        if self.log_file.compact_due {
            self.ready.persist = self.compact();
            self.ready.rewrite = true;
        }
        mem::take(&mut self.ready)
    }

    /// What the member is doing, for `GET /status` and logs.
    pub fn status(&self) -> Status {
        let (role, leader) = match self.proposer.state {
            State::Follower => (Role::Follower, self.proposer.leader),
            State::Candidate { .. } => (Role::Candidate, None),
            State::Leader { .. } => (Role::Leader, Some(self.me)),
        };
        Status {
            role,
            leader,
            ballot: self.acceptor.highest(),
            commit_index: self.learner.commit_index,
            known_commit: self.learner.known_commit.max(self.learner.commit_index),
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The replicated store as applied so far. Reading it directly is not linearizable; clients'
    /// linearizable reads wait for a confirmed read index first (see `src/node/reads.rs`).
    pub fn store(&self) -> &KvStore {
        &self.learner.kv
    }

    /// The decided values this member still holds: the slots since its last compaction, and a
    /// few before, kept to catch up members slightly behind.
    pub fn decided(&self) -> &std::collections::BTreeMap<Slot, LogValue> {
        &self.learner.decided
    }

    /// Every value this incarnation learned, including those compacted away since, for the
    /// simulator's agreement check.
    #[cfg(any(test, doc))]
    pub(crate) fn learned(&self) -> &std::collections::BTreeMap<Slot, LogValue> {
        &self.learner.learned
    }

    // --------------------------------------------------------------- effects

    /// Queues a record, to be durable before anything else of this turn leaves.
    fn persist(&mut self, record: Record) {
        self.ready.persist.push(record);
    }

    fn send(&mut self, to: MemberId, message: Message) {
        self.ready.messages.push((To::Member(to), message));
    }

    fn broadcast(&mut self, message: Message) {
        if self.members > 1 {
            self.ready.messages.push((To::Peers, message));
        }
    }

    /// Answers one of this member's own client requests.
    fn reply(&mut self, id: RequestId, answer: Answer) {
        self.ready.replies.push((id, answer));
    }

    // --------------------------------------------------------------- helpers

    fn majority(&self) -> usize {
        self.members / 2 + 1
    }

    #[cfg(any(test, doc))]
    fn sabotaged(&self) -> bool {
        self.ignore_promises
    }

    #[cfg(not(any(test, doc)))]
    fn sabotaged(&self) -> bool {
        false
    }

    #[cfg(any(test, doc))]
    fn reads_unconfirmed(&self) -> bool {
        self.unconfirmed_reads
    }

    #[cfg(not(any(test, doc)))]
    fn reads_unconfirmed(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests;
