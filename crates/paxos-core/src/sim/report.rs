//! What a run did when it passed, and what it broke when it failed.

use std::fmt::Write as _;
use std::time::Duration;

/// What a passing run did, for the summary and the determinism test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub members: usize,
    pub ops: usize,
    pub completed: usize,
    pub crashes: u32,
    pub partitions: u32,
    pub messages: u64,
    pub elections_won: u64,
    pub catch_ups: u64,
    pub compactions: u64,
    /// Snapshots members took from others in place of slots.
    pub snapshots_installed: u64,
    /// Forged messages delivered, one per target.
    pub forgeries: u64,
    pub ballots_refused: u64,
    /// Messages dropped because their sender could not vouch for them.
    pub unvouched: u64,
    /// Operations whose outcome stayed unknown.
    pub unknown: usize,
    /// Extra attempts of exactly-once operations.
    pub retries: u64,
    pub steps: u64,
    pub simulated: Duration,
    /// A hash of the whole history and the network's counters.
    pub fingerprint: u64,
}

/// A run that broke something.
#[derive(Debug)]
pub struct Failure {
    pub seed: u64,
    pub violations: Vec<String>,
    pub config: String,
}

impl Failure {
    /// A run that panicked: the panic's message is the violation.
    pub fn panicked(seed: u64, panic: Box<dyn std::any::Any + Send>) -> Failure {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic without a message".to_owned());
        Failure {
            seed,
            violations: vec![format!("panicked: {message}")],
            config: "(see the replay)".to_owned(),
        }
    }

    /// The failure as the test prints it.
    pub fn describe(&self, replay: &str) -> String {
        let mut text = format!("seed {} violated:", self.seed);
        for v in &self.violations {
            let _ = write!(text, "\n  - {v}");
        }
        let _ = write!(text, "\n  config: {}\n  {replay}", self.config);
        text
    }
}
