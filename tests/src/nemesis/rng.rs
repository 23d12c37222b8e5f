//! The runner's seeded random numbers: the core's generator (SplitMix64), so that a seed
//! repeats a run's choices.
//!
//! Every thread that draws gets its own stream ([`Rng::stream`]), derived from the run's seed and
//! a stream number, so no thread's draws depend on another's timing.

pub use paxos_core::rng::Rng;

/// A seed for a run that was not given one: the clock's nanoseconds mixed with the process id.
/// (The core never reads a clock, so this one stays here.)
pub fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    Rng::stream(nanos, u64::from(std::process::id())).next_u64()
}
