//! The core of Twin Paxos: Multi-Paxos, self-discovery and the replicated key-value store, with
//! no I/O.
//!
//! Twin Paxos runs this one core under two runtimes, `paxos-threaded` (std threads) and
//! `paxos-async` (tokio), to compare them on a real system. Everything that is not the runtime's
//! business lives here, once: the protocol, the state machine, the record format of the data dir,
//! and the wire types. The core opens no socket or file, starts no thread, and never reads a
//! clock. Time comes in as an argument ([`Time`], a [`Duration`] since an epoch of the caller's
//! choosing), randomness as a seed, and every effect goes out as data for the runtime to carry out.
//!
//! # Layout
//!
//! - [`node`]: one Multi-Paxos member, [`Node`], with each role's state in its own module.
//! - [`log`]: the names everything is built from: members, ballots, slots, requests, log entries.
//! - [`message`]: the peer messages (JSON on the wire), one per rule.
//! - [`storage`]: the durable record format, its checksums and replay.
//! - [`snapshot`]: the applied state as of a slot, which compaction keeps in place of the log.
//! - [`applied`]: which requests the log applied, so that one decided twice applies once.
//! - [`discovery`]: the self-discovery machine (which config entry am I?).
//! - [`command`]: client commands and answers, with the parser both servers use.
//! - [`kv`]: the key-value state machine with exactly-once `client_id`/`seq` bookkeeping.
//! - [`check`] (tests, docs, and the `check` feature): operation histories and the
//!   linearizability checker that judges them, shared by the simulator and the nemesis runner.
//! - [`sim`] (tests and docs only): the deterministic simulator, an in-memory cluster on
//!   simulated time with faults and checkers, and [`sim::hand::Hand`], the harness that drives
//!   nodes message by message.
//! - [`rng`] (tests, docs, and the `check` feature; private otherwise): the seeded generator
//!   behind the election jitter, the simulator and the nemesis runner.
//! - `src/walkthrough.rs` (tests): Paxos message by message, as tests written to be read: one
//!   value decided, a minority's value proposed again, two candidates, a follower that must ask.
//!
//! # Vocabulary
//!
//! One word per idea, here and in the code:
//!
//! - *Member*: one server of the cluster, named by its [`MemberId`], its position in the
//!   config's `servers` list. *Incarnation*: one start of a member.
//! - *Slot*: a position in the replicated log. *Ballot*: `(round, member)`, what a candidate
//!   prepares and a leader proposes at.
//! - *Role*: follower, candidate or leader ([`Role`]).
//! - *Promise*: an acceptor's word, in phase 1, never to accept below a ballot. *Accept*: the
//!   leader's request, in phase 2, to take a value for a slot; *accepted*: the acceptor's answer,
//!   and the fact it records.
//! - *Decided*: accepted by a majority at one ballot, and so final. Paxos papers say *chosen*;
//!   this crate says decided everywhere ([`Message::Decided`], [`Record::Decided`],
//!   [`Stats::slots_decided`]).
//! - *Learn*: come to know that a slot is decided: from a majority's acceptances (the leader),
//!   from the leader's commit index at the ballot a member accepted, or from decided entries or a
//!   snapshot sent by the member asked.
//! - *Apply*: run decided requests against the store, in slot order.
//! - *Commit index*: every slot up to it is decided, learned and applied on this member; a
//!   member applies slots as soon as it learns them, so it has no separate applied index. The
//!   leader announces its commit index in [`Message::Commit`]; "commit" names nothing else.
//! - *Snapshot*: the applied state as of a slot ([`Snapshot`]). A member *makes* one, *installs*
//!   one in place of its state, and *learns* one from another member in place of slots it lacks.
//!   *Compaction*: replacing the log file by a snapshot and what follows it.
//! - *Ready*: what a turn of inputs asks the runtime to do ([`Ready`]). The runtime *carries it
//!   out*: persist, then send and reply.
//! - *Request*: a client command on its way through the log, named by a [`RequestId`] (a read
//!   takes one too, though it never enters the log). *Answer*:
//!   what its client gets back. *Outcome*: whether and how a request completed, which may be
//!   unknown (the request timed out).
//!
//! # The algorithm
//!
//! Members keep a log of slots `1, 2, 3, …`; each slot decides one client command (or a no-op)
//! by Paxos, and every member applies decided slots in order to its copy of the key-value store.
//! Ballots are `(round, member)` pairs, ordered by round then member, so no two members share one.
//!
//! *Phase 1, once per leadership.* A member whose election timer expires (it heard no leader for
//! `election_timeout`, plus random jitter so that candidates rarely collide) picks a ballot above
//! any it has seen (or, if it is still a candidate that heard of nothing higher, keeps its
//! ballot) and sends `Prepare(ballot, from_slot)`, where `from_slot` is the first slot it
//! does not know to be decided. An acceptor whose promise is not higher promises the ballot,
//! persists the promise, and answers `Promise` with every value it accepted (and every value it
//! knows decided) from `from_slot` on; otherwise it answers `Nack` with its higher promise. With
//! promises from a majority the candidate leads: for every open slot up to the highest one
//! reported, it re-proposes the value accepted at the highest ballot, or a no-op where none was.
//! One phase 1 covers all future slots, which is what makes this *Multi*-Paxos.
//!
//! *Why majorities.* Any two majorities of the same members share at least one member. So a
//! value decided in a slot (accepted by a majority at some ballot) was accepted by at least one
//! member of every majority that promises a later ballot, and that member reports it in its
//! promise. The new leader re-proposes the value accepted at the highest ballot it hears of,
//! which is that value or one a leader could only have proposed after learning of it the same
//! way; so a later ballot never decides another value in that slot. A minority, on its own,
//! can neither decide nor elect, which is why a cluster of `2f + 1` members survives `f`
//! failures and no more.
//!
//! *Phase 2, per slot.* The leader gives each client command the next slot and sends
//! `Accept(ballot, entries, commit)` to every member, batching all commands that arrived together
//! into one message. An acceptor accepts unless it promised a higher ballot, persists the
//! acceptance, and answers `Accepted`. A slot accepted by a majority (the leader counts itself)
//! is decided; the leader applies it, answers the client, and announces its new commit index with
//! `Commit`, which doubles as the heartbeat. A follower marks a slot decided when the commit index
//! covers it and it accepted that slot at the same ballot; any slot it cannot vouch for that way
//! it fetches with `CatchUp`, which any member answers from its decided log.
//!
//! *Clients.* Every member takes client commands. A follower forwards them to the leader it
//! knows; each request carries the id of the member and incarnation that received it, so when
//! that member applies the slot holding it, it answers the waiting client. Until then the member
//! sends the request again to every new leader it learns of, because a leader that fails takes
//! the requests it had not yet proposed with it; a request decided twice that way applies once. A
//! request whose fate is unknown (its leader failed) is answered by the runtime's request timeout,
//! as Jepsen's `:info`.
//!
//! *Reads.* A `get` takes no slot (etcd's ReadIndex). The leader takes its commit index as the
//! read index and confirms that it still leads by a *read round*: a `Commit` carrying a round
//! number, which every follower that promised no higher ballot answers with
//! [`Message::ReadAck`]. A majority's acknowledgements of a round that began after the read
//! arrived mean no newer leader decided anything before then, so the read is answered from the
//! store, applied up to the read index. One round serves every read that arrived before it
//! began. A new leader serves no read until it has committed a slot of its own ballot (a no-op if
//! it has nothing else to propose), since until then its commit index may miss a value decided
//! by an earlier leader. A follower asks the leader for a read index ([`Message::ReadIndex`]) and
//! answers once it has applied that far. That keeps every answer linearizable; a `get` with
//! [`Consistency::Serializable`] is answered from the member's own store at once, and may be
//! stale.
//!
//! *Durability.* Promises, acceptances and decided values leave the core as [`storage::Record`]s. The
//! runtime must make them durable before it sends the messages or replies of the same [`Ready`],
//! so nothing is ever said that a crash could take back.
//!
//! *Bounded ballots.* A member drops a message whose ballot round is past
//! [`MAX_ROUND`](message::MAX_ROUND) (`2^63 - 1`) or more than
//! [`MAX_ROUND_STEP`](node::MAX_ROUND_STEP) (`2^20`) above the highest round it has seen, so that
//! no forged or garbled ballot leaves the cluster without one to outbid it. The arithmetic:
//!
//! - Honest rounds grow by one per leader change or collision of candidates, never per timeout,
//!   so they stay far below the step.
//! - A forger that passes for a member raises a member's round by at most `2^20` per message it
//!   gets taken; exhausting the round space takes `2^43` (about 8.8 × 10^12) such messages, one
//!   after another. Short of that, an election outbids every ballot a member holds, and each
//!   forged ballot taken costs the cluster an election or two (the second when the forged
//!   ballot names a higher member than the next candidate).
//! - A member whose round is more than a step below the others' (away while they went through
//!   more than `2^20` elections, or handed a ballot a few steps up by a forger) drops what they
//!   say, but the nacks its own elections draw name a ballot one step up each time: it rejoins
//!   after at most `ceil(gap / 2^20)` elections of its own, with no restart.
//! - A data dir written before ballots were bounded may hold one past the cap; the member refuses
//!   to start from it ([`storage::ReplayError::BallotPastMaxRound`]).
//!
//! # What is trusted
//!
//! The cluster's secret proves that a sender is a member; the members are assumed to fail only
//! by crashing, never to lie. A message's sender is whoever the envelope names, so anyone who
//! holds the secret (anyone at all, where none is set) can speak for any member. The core
//! checks what is cheap to check, so that such a sender cannot do it with one stray message:
//!
//! - no ballot past the cap or more than a step above what the recipient has seen (above);
//! - a prepare, an accept or a commit (a read round with it) only from the ballot's owner;
//! - a read index only from the member asked for it;
//! - decided entries and snapshots only in answer to a catch-up request, from the member asked,
//!   and those in a promise only from a promise of the candidate's current ballot;
//! - no promise reporting an acceptance above its own ballot, no slot past
//!   [`MAX_SLOT`](message::MAX_SLOT) or too far past the commit index
//!   ([`MAX_SLOT_GAP`](node::MAX_SLOT_GAP)).
//!
//! What a holder of the secret can still do, in another member's name:
//!
//! - split the members' data: accept and commit messages as the current leader, at its ballot,
//!   with values of its choosing; acceptances a leader counts toward a majority that no member
//!   made; a promise reporting made-up accepted values, which the new leader re-proposes; decided
//!   entries or a snapshot of its choosing in answer to a catch-up request it sees go out (or
//!   guesses);
//! - write what it likes, as forwarded requests; one that takes the id of a real request makes
//!   the members skip the real one as already applied, and answer it with the forged one's
//!   outcome;
//! - keep the cluster from making progress: nacks that depose every leader, prepares a step up
//!   that cost an election or two each, and with `2^43` of those the round space; forwarded
//!   requests that crowd out the clients';
//! - read every value, with catch-up requests, which any member answers;
//! - make a leader answer reads it should not: acknowledgements of its read rounds that no
//!   member made, or a read index too low, in the leader's name, to a member waiting on one.
//!
//! # Driving a node
//!
//! A runtime's loop, here for a cluster of one member so that it needs no peers: the member elects
//! itself when its election timer fires, and then decides the client's command on its own.
//!
//! ```
//! use std::time::Duration;
//!
//! use paxos_core::{Answer, Command, Durable, Node, NodeConfig, Op, To, Tuning, storage};
//!
//! let config = NodeConfig {
//!     me: 0,
//!     members: 1,
//!     tuning: Tuning::default(),
//!     seed: 7,                  // for the election-timeout jitter
//!     incarnation: 1_000_000,   // a runtime passes the time of day
//! };
//! let mut now = Duration::ZERO; // since an epoch of the runtime's choosing
//! // A runtime passes what `storage::replay` read back from its log file.
//! let mut node = Node::new(config, Durable::default(), now);
//! let mut log_file: Vec<u8> = Vec::new();
//!
//! let command = Command::new(Op::Put { key: "x".into(), value: "1".into() });
//! let id = node.submit(now, command);
//! let mut answer = None;
//! while answer.is_none() {
//!     // Feed whatever happened since the last turn, in any number:
//!     //   node.submit(now, command)                 a client request; returns its RequestId
//!     //   node.handle_message(now, from, message)   a peer message
//!     //   node.handle_timeout(now)                  once now >= node.poll_timeout()
//!     if now >= node.poll_timeout() {
//!         node.handle_timeout(now);
//!     }
//!     // Then carry out what the turn asks, in this order:
//!     let ready = node.take_ready();
//!     // 1. Make the records durable (write and fsync), replacing the file after a compaction.
//!     if ready.rewrite {
//!         log_file.clear();
//!     }
//!     log_file.extend(storage::encode_all(&ready.persist));
//!     // 2. Send the messages; a `To::Peers` one goes to every other member, encoded once.
//!     for (to, message) in ready.messages {
//!         match to {
//!             To::Member(member) => unreachable!("no peer to send {message:?} to: {member}"),
//!             To::Peers => unreachable!("a member alone broadcasts nothing"),
//!         }
//!     }
//!     // 3. Answer the clients.
//!     for (request, outcome) in ready.replies {
//!         assert_eq!(request, id);
//!         answer = Some(outcome);
//!     }
//!     // Wait for the next input; here there is none but the timer.
//!     now = now.max(node.poll_timeout());
//! }
//! assert!(matches!(answer, Some(Answer::Done { .. })));
//! assert_eq!(node.status().commit_index, 1);
//! assert!(storage::replay(&log_file).is_ok());
//! ```
//!
//! Feeding several inputs before one `take_ready` is what batches commands under load.

pub mod applied;
#[cfg(any(test, doc, feature = "check"))]
pub mod check;
pub mod command;
pub mod discovery;
pub mod kv;
pub mod log;
pub mod message;
pub mod node;
#[cfg(any(test, doc, feature = "check"))]
pub mod rng;
#[cfg(not(any(test, doc, feature = "check")))]
mod rng;
pub mod snapshot;
pub mod storage;

#[cfg(any(test, doc))]
pub mod sim;
#[cfg(test)]
mod walkthrough;

use std::time::Duration;

pub use command::{Answer, Command, Consistency, Op, Value};
pub use discovery::Discovery;
pub use message::{
    Ballot, Envelope, LogValue, MemberId, Membership, Message, Request, RequestId, Slot,
};
pub use node::{Node, NodeConfig, Ready, Role, Stats, Status, To, Tuning};
pub use snapshot::Snapshot;
pub use storage::{Durable, Record};

/// A point in time: the time since an epoch the caller picked (the runtimes use their start).
pub type Time = Duration;
