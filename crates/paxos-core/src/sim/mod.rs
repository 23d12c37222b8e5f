//! The deterministic simulator: whole clusters of [`Node`](crate::Node)s on simulated time, with
//! a hostile network, crashes and concurrent clients, judged by checkers after every run.
//!
//! Like quinn-proto's in-memory `Pair`, the simulator is possible because the core does no I/O:
//! the simulator is the runtime. It carries messages, writes `Ready::persist` to an in-memory
//! "disk" before sending anything of the same `Ready`, and decides what time it is. Everything
//! random (the cluster's shape, delays, losses, crashes, the workload, the nodes' own seeds) is
//! drawn from one [`Rng`](crate::rng::Rng) seeded per run, and nothing reads a clock, so a seed
//! replays exactly.
//!
//! # What a run does
//!
//! See [`run`] for the phases. The faults, each drawn per seed:
//!
//! - 3 or 5 members, with timeouts, batch sizes and in-flight limits drawn from wide ranges.
//! - Messages lost, duplicated, delayed at random (hence reordered), a few held very long.
//! - A forger that passes for a member: now and then it sends one member or all a prepare,
//!   accept, commit, nack, promise or read message in another's name (or a stranger's), at a
//!   ballot no honest member uses (see [`forger`]).
//! - Partitions that heal by themselves: one member cut off, a split in two, a member that can
//!   only send or only receive, or a random mesh of broken links.
//! - Crashes at any time, which lose the node's memory and whatever it had not yet carried out;
//!   crashes while writing a `Ready`, after all, some or part of its records reached the disk but
//!   before any of its messages or answers left; restarts from the disk with a new incarnation.
//! - Clients, plain and exactly-once (`client_id`/`seq`, retried on another member after a
//!   timeout), doing `append`, `get`, `put`, `cas` and `delete` against random members; a tenth
//!   of the `get`s are serializable.
//!
//! # The checkers
//!
//! - Agreement: no slot decided with two values, across members and their earlier incarnations.
//! - Linearizability of every key's history ([`crate::check::linearizability`]), linearizable
//!   `get`s included: they take no slot, but are recorded from submit to answer like any command.
//! - Serializable `get`s ([`serializable`]): stale or not, each answer is what the decided log
//!   gives its key at the answer's index, that index is decided, and the key held that value
//!   at the modification index answered.
//!
//! The checkers are shown to catch what they are for: `sabotaged_acceptors_are_caught` and
//! `sabotaged_reads_are_caught` run nodes with one rule broken ([`cluster::Sabotage`]).
//! - Exactly-once: in the final state, every acknowledged append once, no append twice, nothing
//!   that was never appended.
//! - Liveness: after healing, every exactly-once command and every final read completes within
//!   [`run::LIVENESS_BOUND`] of simulated time, and the members converge to the same store. Once
//!   messages from before the healing can no longer arrive, a command with no election from
//!   shortly before it to the end of the run must be answered on its first attempt, plain or not.
//!
//! # Running it
//!
//! `cargo test -p paxos-core` runs the test `seeded_runs` over `PAXOS_SIM_RUNS` seeds (default 1000)
//! from `PAXOS_SIM_SEED` (default [`DEFAULT_SEED`]). A failure names its seed and prints the
//! one-line command that replays it; `PAXOS_SIM_TRACE=1` on that command prints every step.

pub mod chaos;
pub mod checks;
pub mod client;
pub mod cluster;
pub mod config;
pub mod driving;
pub mod forger;
pub mod hand;
pub mod network;
pub mod queue;
pub mod report;
pub mod run;
pub mod runtime;
pub mod serializable;
pub mod trace;

use std::sync::Mutex;

use self::cluster::Sabotage;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The first seed when `PAXOS_SIM_SEED` is not set.
pub const DEFAULT_SEED: u64 = 0x7a_c0de;

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a non-negative integer, not {text:?}")),
        Err(_) => default,
    }
}

fn replay_recipe(seed: u64) -> String {
    format!(
        "replay: PAXOS_SIM_SEED={seed} PAXOS_SIM_RUNS=1 cargo test -p paxos-core --release \
         sim::seeded_runs -- --nocapture"
    )
}

/// What a batch of runs found.
#[derive(Debug, Default)]
struct Tally {
    runs: u64,
    failures: Vec<report::Failure>,
    ops: u64,
    unknown: u64,
    retries: u64,
    crashes: u64,
    elections: u64,
    catch_ups: u64,
    compactions: u64,
    snapshots_installed: u64,
    forgeries: u64,
    ballots_refused: u64,
    unvouched: u64,
    messages: u64,
}

/// Runs seeds `first..first + runs` on every core, stopping early once a failure that
/// `stops` picks out is found.
fn run_seeds(
    first: u64,
    runs: u64,
    sabotage: Sabotage,
    stops: &(dyn Fn(&report::Failure) -> bool + Sync),
) -> Tally {
    let next = AtomicU64::new(first);
    let stop = AtomicBool::new(false);
    let outcome = Mutex::new(Tally::default());
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(runs as usize);
    std::thread::scope(|scope| {
        for _ in 0..workers.max(1) {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= first + runs {
                        break;
                    }
                    // A node that panics is a bug like any other; report it with its seed.
                    let result = std::panic::catch_unwind(|| run::run(seed, sabotage))
                        .unwrap_or_else(|panic| Err(report::Failure::panicked(seed, panic)));
                    let mut outcome = outcome.lock().unwrap();
                    outcome.runs += 1;
                    match result {
                        Ok(report) => {
                            outcome.ops += report.ops as u64;
                            outcome.unknown += report.unknown as u64;
                            outcome.retries += report.retries;
                            outcome.crashes += u64::from(report.crashes);
                            outcome.elections += report.elections_won;
                            outcome.catch_ups += report.catch_ups;
                            outcome.compactions += report.compactions;
                            outcome.snapshots_installed += report.snapshots_installed;
                            outcome.forgeries += report.forgeries;
                            outcome.ballots_refused += report.ballots_refused;
                            outcome.unvouched += report.unvouched;
                            outcome.messages += report.messages;
                        }
                        Err(failure) => {
                            if stops(&failure) {
                                stop.store(true, Ordering::Relaxed);
                            }
                            outcome.failures.push(failure);
                        }
                    }
                }
            });
        }
    });
    let mut outcome = outcome.into_inner().unwrap();
    outcome.failures.sort_by_key(|f| f.seed);
    outcome
}

/// The simulator over many seeds; see the module documentation for the knobs.
#[test]
fn seeded_runs() {
    let runs = env_u64("PAXOS_SIM_RUNS", 1000);
    let first = env_u64("PAXOS_SIM_SEED", DEFAULT_SEED);
    // No wall clock here, not even for a runs-per-second figure: the core never reads one. The
    // test harness's own "finished in N s" line gives the rate.
    let outcome = run_seeds(first, runs, Sabotage::None, &|_| true);
    println!(
        "simulated {} runs (seeds {first}..{})",
        outcome.runs,
        first + runs
    );
    println!(
        "  {} client operations ({} with unknown outcome, {} retries), {} crashes, {} elections \
         won, {} catch-up requests, {} compactions, {} snapshots taken from others, {} forged \
         messages, {} messages refused for their ballot, {} unvouched ones dropped, {} messages",
        outcome.ops,
        outcome.unknown,
        outcome.retries,
        outcome.crashes,
        outcome.elections,
        outcome.catch_ups,
        outcome.compactions,
        outcome.snapshots_installed,
        outcome.forgeries,
        outcome.ballots_refused,
        outcome.unvouched,
        outcome.messages,
    );
    if let Some(failure) = outcome.failures.first() {
        let others: Vec<u64> = outcome.failures[1..].iter().map(|f| f.seed).collect();
        panic!(
            "{}{}",
            failure.describe(&replay_recipe(failure.seed)),
            if others.is_empty() {
                String::new()
            } else {
                format!("\n  also failed: {others:?}")
            }
        );
    }
}

/// The checkers must catch an acceptor that ignores its promises, a classic Paxos bug: it lets
/// an old leader get a value decided in a slot that a newer leader already filled differently.
/// Only a safety checker's finding counts: a broken run may also panic, stall or lose commands,
/// but catching that would not show that the agreement and linearizability checkers work.
#[test]
fn sabotaged_acceptors_are_caught() {
    let unsafe_run = |failure: &report::Failure| {
        failure
            .violations
            .iter()
            .any(|v| v.starts_with("agreement:") || v.starts_with("linearizability:"))
    };
    caught(
        Sabotage::Acceptors,
        "acceptors that ignore their promises",
        &unsafe_run,
    );
}

/// The linearizability checker must catch a leader that serves reads without a read round: cut
/// off by a partition, a deposed leader that has not heard of its successor answers from a store
/// that misses the successor's writes. Only the linearizability checker's finding counts: the
/// log itself stays correct, so agreement has nothing to find.
#[test]
fn sabotaged_reads_are_caught() {
    let stale = |failure: &report::Failure| {
        failure
            .violations
            .iter()
            .any(|v| v.starts_with("linearizability:"))
    };
    caught(Sabotage::Reads, "leaders that read without a round", &stale);
}

/// Runs up to 200 seeds with `sabotage` until one fails as `unsafe_run` picks out.
fn caught(sabotage: Sabotage, what: &str, unsafe_run: &(dyn Fn(&report::Failure) -> bool + Sync)) {
    const SEEDS: u64 = 200;
    let first = DEFAULT_SEED;
    let outcome = run_seeds(first, SEEDS, sabotage, unsafe_run);
    let Some(failure) = outcome.failures.iter().find(|f| unsafe_run(f)) else {
        let other: Vec<String> = outcome
            .failures
            .iter()
            .map(|f| format!("seed {}: {}", f.seed, f.violations.join("; ")))
            .collect();
        panic!("{SEEDS} runs of {what} found no safety violation; other failures: {other:#?}");
    };
    println!(
        "{what} were caught by seed {} (after {} runs): {}",
        failure.seed,
        outcome.runs,
        failure.violations.join("; ")
    );
}

/// The same seed gives the same run, step for step.
#[test]
fn a_seed_replays_exactly() {
    for seed in [1, 2, DEFAULT_SEED] {
        let first = run::run(seed, Sabotage::None).map_err(|f| f.describe(&replay_recipe(f.seed)));
        let again = run::run(seed, Sabotage::None).map_err(|f| f.describe(&replay_recipe(f.seed)));
        assert_eq!(first, again, "seed {seed}");
    }
}
