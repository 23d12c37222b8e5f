//! The clients: threads that `append` to list keys and `cas` register keys, each operation to a
//! random member, recording everything they send and see; and [`Watchers`] beside them.
//!
//! Keys come in generations: after every [`OPS_PER_GENERATION`] operations (all clients
//! together) the clients move to fresh keys named after the next generation, so no key's history
//! grows long enough to make the linearizability search or its list states expensive. Every
//! value written is unique in the run (`<client>-<n>`), which is what lets the checks tell who
//! wrote what.
//!
//! The clients numbered from half their count on are exactly-once clients, as a client library
//! would be: each of their appends carries the client's `client_id` (`c<client>`) and its next
//! `seq`, and one whose outcome is unknown (no answer, or `503`) is sent again with the same pair
//! to another member, up to [`MAX_ATTEMPTS`] times in all. That is the traffic that shows whether
//! a command that reached the log through one member, and was then retried through another
//! (perhaps after a leader change), still applies once. The others send plain commands and never
//! retry, as a client without such a library would: their lost answers stay unknown for good,
//! the other case the checks must allow for.
//!
//! A third of the reads of list keys are serializable gets ([`SERIALIZABLE_SHARE`]): they are
//! kept apart from the history, which the linearizability check judges, and checked by
//! [`super::serializable`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use paxos_core::{Answer, Command, Consistency, Op, Value};
use serde_json::Value as Json;

use super::history::{Outcome, Record, Unknown};
use super::rng::Rng;
use super::watchers::{WatchRecord, Watchers};
use crate::http::Client;

/// Keys of each generation that take appends (and reads).
pub const LIST_KEYS: usize = 3;
/// Keys of each generation that take `cas` (and reads).
const REGISTER_KEYS: usize = 2;
/// About 150 operations per key before the clients move on.
pub const OPS_PER_GENERATION: u64 = 150 * (LIST_KEYS + REGISTER_KEYS) as u64;
/// Each client pauses up to this long between operations, so that a run's history stays a size
/// the checker and the post-mortem files handle, and the servers' CPU is left for the faults.
const MAX_THINK_MS: u64 = 10;
/// How many times in all an exactly-once client sends one request before it leaves the outcome
/// unknown: enough to outlast a killed or paused member and usually an election, few enough that
/// a client is not stuck on one request for long (each attempt may take the client's timeout).
pub const MAX_ATTEMPTS: usize = 4;
/// How long an exactly-once client waits before a retry: a client library backs off rather than
/// hammer a cluster that just failed it.
const RETRY_BACKOFF_MS: std::ops::Range<u64> = 50..150;
/// The share of the reads of list keys sent as serializable gets.
const SERIALIZABLE_SHARE: f64 = 1.0 / 3.0;

/// Counts of the operations so far, for the progress line.
#[derive(Debug, Default)]
pub struct Counters {
    pub invoked: AtomicU64,
    pub answered: AtomicU64,
    pub unknown: AtomicU64,
    /// Requests sent again, each retry counted.
    pub retries: AtomicU64,
}

/// The running clients, and the watchers beside them.
#[derive(Debug)]
pub struct Workload {
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    threads: Vec<JoinHandle<(Vec<Record>, Vec<Record>)>>,
    watchers: Watchers,
}

/// What a workload recorded: the history, the serializable gets, and the watches.
#[derive(Debug)]
pub struct Recorded {
    pub records: Vec<Record>,
    pub serializable: Vec<Record>,
    pub watches: Vec<WatchRecord>,
}

impl Workload {
    /// Starts `clients` client threads over the members' `/client-request` URLs; times are
    /// measured from `epoch`, random draws from `seed`.
    pub fn start(
        urls: &[String],
        clients: usize,
        client: &Client,
        seed: u64,
        epoch: Instant,
    ) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let threads = (0..clients)
            .map(|id| {
                let mut session = Session {
                    id,
                    exactly_once: (id >= clients / 2).then(|| format!("c{id}")),
                    seq: 0,
                    urls: urls.to_vec(),
                    client: client.clone(),
                    rng: Rng::stream(seed, 1000 + id as u64),
                    epoch,
                    known: HashMap::new(),
                    written: 0,
                    records: Vec::new(),
                    serializable: Vec::new(),
                };
                let (stop, counters) = (stop.clone(), counters.clone());
                std::thread::Builder::new()
                    .name(format!("client-{id}"))
                    .spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            session.one_op(&counters, &stop);
                        }
                        (session.records, session.serializable)
                    })
                    .expect("spawn a client thread")
            })
            .collect();
        let bases: Vec<String> = urls
            .iter()
            .map(|url| url.trim_end_matches("/client-request").to_owned())
            .collect();
        let watchers = Watchers::start(&bases, client, seed, &counters, &stop);
        Workload {
            stop,
            counters,
            threads,
            watchers,
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Asks every client to stop after its current attempt (a request being retried is left
    /// with its outcome unknown), and every watcher after its current watch, and returns all
    /// their records.
    pub fn stop(self) -> Recorded {
        self.stop.store(true, Ordering::Relaxed);
        let (mut records, mut serializable) = (Vec::new(), Vec::new());
        for thread in self.threads {
            match thread.join() {
                Ok((mine, gets)) => {
                    records.extend(mine);
                    serializable.extend(gets);
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        let watches = self.watchers.stop();
        Recorded {
            records,
            serializable,
            watches,
        }
    }
}

/// One client's state.
#[derive(Debug)]
struct Session {
    id: usize,
    /// The `client_id` of an exactly-once client's appends; `None` for a plain client.
    exactly_once: Option<String>,
    /// The `seq` of the exactly-once client's latest append.
    seq: u64,
    urls: Vec<String>,
    client: Client,
    rng: Rng,
    epoch: Instant,
    /// The last value this client saw in each register, which its next `cas` expects.
    known: HashMap<String, Option<String>>,
    written: u64,
    records: Vec<Record>,
    /// The serializable gets, apart from `records`.
    serializable: Vec<Record>,
}

impl Session {
    fn one_op(&mut self, counters: &Counters, stop: &AtomicBool) {
        let generation = counters.invoked.fetch_add(1, Ordering::Relaxed) / OPS_PER_GENERATION;
        let slot = self.rng.index(LIST_KEYS + REGISTER_KEYS);
        let read = self.rng.chance(0.15);
        let op = if slot < LIST_KEYS {
            let key = format!("g{generation}-list{slot}");
            if read && self.rng.chance(SERIALIZABLE_SHARE) {
                self.serializable_get(key);
                return;
            }
            match read {
                true => Op::Get { key },
                false => Op::Append {
                    key,
                    value: self.fresh_value(),
                },
            }
        } else {
            let key = format!("g{generation}-reg{}", slot - LIST_KEYS);
            match read {
                true => Op::Get { key },
                false => Op::Cas {
                    expected: self.known.get(&key).cloned().flatten(),
                    value: self.fresh_value(),
                    key,
                },
            }
        };
        let command = match (&op, &self.exactly_once) {
            (Op::Append { .. }, Some(client_id)) => {
                self.seq += 1;
                Command {
                    op,
                    client_id: Some(client_id.clone()),
                    seq: Some(self.seq),
                    consistency: Default::default(),
                }
            }
            _ => Command::new(op),
        };
        let member = self.rng.index(self.urls.len());
        let mut record = self.call(member, command);
        while record.command.seq.is_some()
            && record.attempts() < MAX_ATTEMPTS
            && matches!(record.outcome, Outcome::Unknown(_))
            && !stop.load(Ordering::Relaxed)
        {
            counters.retries.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(self.rng.millis(RETRY_BACKOFF_MS));
            let others = self.urls.len() - 1;
            let member = (record.member + 1 + self.rng.index(others)) % self.urls.len();
            let retry = self.call(member, record.command.clone());
            record = record.retried(retry);
        }
        let mut think = self.rng.millis(0..MAX_THINK_MS);
        match &record.outcome {
            Outcome::Answered(answer) => {
                counters.answered.fetch_add(1, Ordering::Relaxed);
                self.learn(&record.command.op, answer);
            }
            outcome => {
                counters.unknown.fetch_add(1, Ordering::Relaxed);
                // A refused or reset connection fails at once; without a pause, a client would
                // fill the history with them while members are down.
                if matches!(outcome, Outcome::Unknown(Unknown::NoAnswer(_))) {
                    think += self.rng.millis(50..150);
                }
            }
        }
        self.records.push(record);
        std::thread::sleep(think);
    }

    /// One serializable get of `key` at a random member, kept apart from the history.
    fn serializable_get(&mut self, key: String) {
        let command = Command {
            consistency: Consistency::Serializable,
            ..Command::new(Op::Get { key })
        };
        let member = self.rng.index(self.urls.len());
        let record = self.call(member, command);
        let mut think = self.rng.millis(0..MAX_THINK_MS);
        // As below: a member down fails at once, and would fill the record.
        if matches!(record.outcome, Outcome::Unknown(Unknown::NoAnswer(_))) {
            think += self.rng.millis(50..150);
        }
        self.serializable.push(record);
        std::thread::sleep(think);
    }

    fn call(&self, member: usize, command: Command) -> Record {
        let url = &self.urls[member];
        call(&self.client, self.id, member, url, command, self.epoch)
    }

    fn fresh_value(&mut self) -> String {
        self.written += 1;
        format!("{}-{}", self.id, self.written)
    }

    /// Remembers what a register holds according to an answer, for the next `cas` on it.
    fn learn(&mut self, op: &Op, answer: &Answer) {
        if matches!(op, Op::Append { .. }) {
            return;
        }
        let value = match answer {
            Answer::Done { value, .. } | Answer::Mismatch { value, .. } => value,
            Answer::Rejected { .. } | Answer::Overloaded { .. } => return,
        };
        let text = match value {
            None => None,
            Some(Value::Str(s)) => Some(s.clone()),
            Some(Value::List(_)) => return,
        };
        self.known.insert(op.key().to_owned(), text);
    }
}

/// Sends one command to one member and records what happened.
pub fn call(
    client: &Client,
    id: usize,
    member: usize,
    url: &str,
    command: Command,
    epoch: Instant,
) -> Record {
    let body: Json = serde_json::to_value(&command).expect("commands serialize");
    let invoke = epoch.elapsed();
    let outcome = Outcome::of(client.send_json(url, &body));
    Record {
        client: id,
        member,
        command,
        invoke,
        complete: epoch.elapsed(),
        outcome,
        earlier: Vec::new(),
    }
}

/// The final reads: what they recorded, each key's value, and the keys nobody answered for.
#[derive(Debug, Default)]
pub struct FinalReads {
    pub records: Vec<Record>,
    pub values: HashMap<String, Option<Value>>,
    pub missing: Vec<String>,
}

/// Reads every key in `keys` through the log, asking members in turn until one answers, for up
/// to `patience` in all; the reads are recorded as client `id`'s.
pub fn final_reads(
    client: &Client,
    urls: &[String],
    keys: &[String],
    id: usize,
    epoch: Instant,
    patience: Duration,
) -> FinalReads {
    let deadline = Instant::now() + patience;
    let mut reads = FinalReads::default();
    for (n, key) in keys.iter().enumerate() {
        for attempt in n.. {
            let member = attempt % urls.len();
            let get = Command::new(Op::Get { key: key.clone() });
            let record = call(client, id, member, &urls[member], get, epoch);
            let value = match &record.outcome {
                Outcome::Answered(Answer::Done { value, .. }) => Some(value.clone()),
                _ => None,
            };
            reads.records.push(record);
            if let Some(value) = value {
                reads.values.insert(key.clone(), value);
                break;
            }
            if Instant::now() >= deadline {
                reads.missing.push(key.clone());
                break;
            }
        }
    }
    reads
}
