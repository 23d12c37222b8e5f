//! The benchmark's variants of how this server uses its runtime (`PAXOS_VARIANT`, see
//! [`paxos_host::VARIANT_VAR`]); unset, it runs as designed.
//!
//! As designed, tokio's multi-threaded scheduler runs the tasks on one worker thread per core.
//! The variant runs every task on one thread instead, so the benchmark can show what the
//! scheduler's work stealing buys.

use paxos_host::RunError;
use tokio::runtime::{Builder, Runtime};

/// The variants `PAXOS_VARIANT` may name.
pub const VARIANTS: &[&str] = &[CURRENT_THREAD];
/// The variant that runs every task on one thread, to see what the multi-threaded scheduler buys.
pub const CURRENT_THREAD: &str = "current-thread";

/// The tokio runtime: multi-threaded as designed, or a variant's.
pub fn runtime() -> Result<Runtime, RunError> {
    let mut builder = match paxos_host::variant().as_deref() {
        Some(CURRENT_THREAD) => Builder::new_current_thread(),
        _ => Builder::new_multi_thread(),
    };
    builder
        .enable_all()
        .build()
        .map_err(|error| RunError(format!("cannot start tokio: {error}")))
}
