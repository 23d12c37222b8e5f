//! What every fuzz target shares: how many cases a run tries, and where failures are kept.
//!
//! A plain `cargo test` (and so `just test`) runs each property with the target's own small
//! number of cases, which keeps the whole bounded pass to seconds. `just fuzz CASES` sets
//! `PROPTEST_CASES`, which overrides every target's number, for long runs.
//!
//! A failing case is saved next to its target, in `tests/fuzz_<target>.proptest-regressions`,
//! and replayed first on every later run. Those files are committed: a failure one person's long
//! run found keeps being checked by everyone's `cargo test` after the bug is fixed.

use proptest::test_runner::{Config, FileFailurePersistence};

/// The proptest config of a target whose bounded pass tries `cases` cases per property.
pub fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        // The default looks for a `lib.rs` above the test file to put a `proptest-regressions`
        // directory beside; integration tests have none, so name the file outright.
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    }
}
