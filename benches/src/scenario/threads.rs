//! Where a request's time goes: each member's threads, grouped by what they do, with their
//! context switches and CPU time per answered request over one closed-loop cell (read by
//! [`super::throughput`] over its `put` cell from clients on every member).
//!
//! Threads are told apart from the bench side, by `/proc/<pid>/task/<tid>/comm` and the order
//! they were started in, since the servers name only some of theirs:
//!
//! - threaded: `driver`, `peer-N` (the peer senders), `probe`, `ctrl-c` (the signal thread) and
//!   (variants) `http` are named; every other thread bears the name of the process. Of those,
//!   the first (thread id = process id) is `main`, which does discovery and then waits for
//!   shutdown; the next is tiny_http's accept thread, which rouille starts before anything else;
//!   the rest are tiny_http's connection threads, each of which reads, handles, waits for and
//!   answers its connection's requests (clients' and peers' posts alike).
//! - async: every runtime thread is `tokio-rt-worker`, blocking or not. tokio starts its workers
//!   when the runtime is built, one per CPU the process may use, before any other, so the first
//!   that many are the workers (which run every task: connections, the driver, the peer
//!   senders) and any later ones are the blocking pool's, where the driver's `fsync`s run.
//!   `main` only waits in `block_on` for `run`, which does discovery and then waits for shutdown.
//!
//! A thread that ends inside the window takes its counts with it; the table says how many did.

use std::collections::BTreeMap;

use paxos_tests::Runtime;
use serde::Serialize;

use crate::load::{LoadResult, Window};
use crate::procfs::{self, ThreadSample};

/// One group of threads of one role's members.
#[derive(Clone, Debug, Serialize)]
pub struct ThreadGroup {
    pub group: &'static str,
    /// `leader` or `followers` (both followers together).
    pub role: &'static str,
    /// Threads of the group alive at the end of the window (summed over the role's members).
    pub threads: usize,
    /// Sleeps: each is a hand-off to another thread (or a wait for the disk or the network).
    pub voluntary_switches: u64,
    /// Preemptions: CPU contention, which the machine's other load adds to.
    pub involuntary_switches: u64,
    pub cpu_seconds: f64,
}

/// One server's threads over the counted window of a cell.
#[derive(Clone, Debug, Serialize)]
pub struct ThreadTable {
    pub runtime: &'static str,
    pub clients: usize,
    /// Requests answered in the window(s), the denominator of every "per request".
    pub requests: u64,
    pub groups: Vec<ThreadGroup>,
    /// Threads alive at the start of a window and gone at its end, whose counts are lost.
    pub ended_in_window: usize,
}

impl ThreadTable {
    /// Adds another window's counts (rounds of the same cell).
    pub fn merge(&mut self, other: &ThreadTable) {
        self.requests += other.requests;
        self.ended_in_window += other.ended_in_window;
        for theirs in &other.groups {
            match self
                .groups
                .iter_mut()
                .find(|g| g.group == theirs.group && g.role == theirs.role)
            {
                Some(ours) => {
                    ours.threads = ours.threads.max(theirs.threads);
                    ours.voluntary_switches += theirs.voluntary_switches;
                    ours.involuntary_switches += theirs.involuntary_switches;
                    ours.cpu_seconds += theirs.cpu_seconds;
                }
                None => self.groups.push(theirs.clone()),
            }
        }
        self.groups.sort_by_key(|g| (group_rank(g.group), g.role));
    }

    /// Voluntary context switches (sleeps) per answered request of a group (`role` `None`:
    /// both roles).
    pub fn sleeps_per_request(&self, group: &str, role: Option<&str>) -> f64 {
        self.sum(group, role, |g| g.voluntary_switches as f64) / self.requests.max(1) as f64
    }

    /// Involuntary context switches (preemptions) per answered request of a group.
    pub fn preemptions_per_request(&self, group: &str, role: Option<&str>) -> f64 {
        self.sum(group, role, |g| g.involuntary_switches as f64) / self.requests.max(1) as f64
    }

    /// CPU microseconds per answered request of a group (`role` `None`: both roles).
    pub fn cpu_us_per_request(&self, group: &str, role: Option<&str>) -> f64 {
        self.sum(group, role, |g| g.cpu_seconds * 1e6) / self.requests.max(1) as f64
    }

    /// Threads of a group in one role.
    pub fn count(&self, group: &str, role: &str) -> usize {
        self.groups
            .iter()
            .filter(|g| g.group == group && g.role == role)
            .map(|g| g.threads)
            .sum()
    }

    /// The groups, in the order the report lists them.
    pub fn group_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.groups.iter().map(|g| g.group).collect();
        names.sort_by_key(|g| group_rank(g));
        names.dedup();
        names
    }

    fn sum(&self, group: &str, role: Option<&str>, f: impl Fn(&ThreadGroup) -> f64) -> f64 {
        self.groups
            .iter()
            .filter(|g| (group == "all" || g.group == group) && role.is_none_or(|r| g.role == r))
            .map(f)
            .sum()
    }
}

pub const MAIN: &str = "main";
pub const ACCEPT: &str = "accept (tiny_http)";
pub const CONNECTIONS: &str = "connection threads (tiny_http)";
pub const DRIVER: &str = "driver";
pub const PEERS: &str = "peer senders";
pub const WORKERS: &str = "tokio workers";
pub const BLOCKING: &str = "tokio blocking pool";
pub const SIGNALS: &str = "signal thread (ctrlc)";

/// Where a group sits in the table: the request's path first.
fn group_rank(group: &str) -> usize {
    [
        CONNECTIONS,
        WORKERS,
        DRIVER,
        BLOCKING,
        PEERS,
        ACCEPT,
        MAIN,
        SIGNALS,
    ]
    .iter()
    .position(|g| *g == group)
    .unwrap_or(usize::MAX)
}

/// Reads every member's threads when the window opens and when it closes.
#[derive(Debug)]
pub struct ThreadWindow<'a> {
    /// Process ids by member index.
    pids: &'a [u32],
    leader: usize,
    before: Vec<Vec<ThreadSample>>,
    after: Vec<Vec<ThreadSample>>,
}

impl<'a> ThreadWindow<'a> {
    pub fn new(pids: &'a [u32], leader: usize) -> ThreadWindow<'a> {
        ThreadWindow {
            pids,
            leader,
            before: Vec::new(),
            after: Vec::new(),
        }
    }

    /// The table of what each group spent in the window, for `result`'s answered requests.
    pub fn table(&self, runtime: Runtime, clients: usize, result: &LoadResult) -> ThreadTable {
        let mut groups: BTreeMap<(&'static str, &'static str), ThreadGroup> = BTreeMap::new();
        let mut ended = 0;
        for (member, (&pid, (before, after))) in self
            .pids
            .iter()
            .zip(self.before.iter().zip(&self.after))
            .enumerate()
        {
            let role = if member == self.leader {
                "leader"
            } else {
                "followers"
            };
            let names = classify(runtime, pid, after);
            ended += before
                .iter()
                .filter(|b| !after.iter().any(|a| a.tid == b.tid))
                .count();
            for (thread, group) in after.iter().zip(names) {
                let (sleeps, preemptions, cpu) = match before.iter().find(|b| b.tid == thread.tid) {
                    Some(b) => (
                        thread
                            .voluntary_switches
                            .saturating_sub(b.voluntary_switches),
                        thread
                            .involuntary_switches
                            .saturating_sub(b.involuntary_switches),
                        thread.cpu_seconds - b.cpu_seconds,
                    ),
                    // Started inside the window: everything it did, it did in the window.
                    None => (
                        thread.voluntary_switches,
                        thread.involuntary_switches,
                        thread.cpu_seconds,
                    ),
                };
                let entry = groups.entry((group, role)).or_insert(ThreadGroup {
                    group,
                    role,
                    threads: 0,
                    voluntary_switches: 0,
                    involuntary_switches: 0,
                    cpu_seconds: 0.0,
                });
                entry.threads += 1;
                entry.voluntary_switches += sleeps;
                entry.involuntary_switches += preemptions;
                entry.cpu_seconds += cpu;
            }
        }
        let mut groups: Vec<ThreadGroup> = groups.into_values().collect();
        groups.sort_by_key(|g| (group_rank(g.group), g.role));
        ThreadTable {
            runtime: runtime.name(),
            clients,
            requests: result.ok,
            groups,
            ended_in_window: ended,
        }
    }
}

impl Window for ThreadWindow<'_> {
    fn open(&mut self) {
        self.before = self.pids.iter().map(|&p| procfs::threads(p)).collect();
    }

    fn close(&mut self) {
        self.after = self.pids.iter().map(|&p| procfs::threads(p)).collect();
    }
}

/// The group of each of a process's threads (`threads` sorted by thread id), as the module
/// docs describe.
pub fn classify(runtime: Runtime, pid: u32, threads: &[ThreadSample]) -> Vec<&'static str> {
    let main_name = threads
        .iter()
        .find(|t| t.tid == pid)
        .map(|t| t.name.clone())
        .unwrap_or_default();
    let workers = procfs::allowed_cpus(pid).unwrap_or(1);
    let mut unnamed_seen = 0;
    let mut tokio_seen = 0;
    threads
        .iter()
        .map(|t| {
            if t.tid == pid {
                return MAIN;
            }
            match runtime {
                Runtime::Threaded => match t.name.as_str() {
                    "driver" => DRIVER,
                    name if name.starts_with("peer-") => PEERS,
                    "probe" => "discovery probes",
                    "http" => "dispatch loop (variants)",
                    "ctrl-c" => SIGNALS,
                    name if name == main_name => {
                        unnamed_seen += 1;
                        if unnamed_seen == 1 {
                            ACCEPT
                        } else {
                            CONNECTIONS
                        }
                    }
                    _ => "other",
                },
                Runtime::Async => match t.name.as_str() {
                    name if name.starts_with("tokio-") => {
                        tokio_seen += 1;
                        if tokio_seen <= workers {
                            WORKERS
                        } else {
                            BLOCKING
                        }
                    }
                    _ => "other",
                },
            }
        })
        .collect()
}
