//! Stopping: a cancellation token that every thread can check and wait on, set by SIGINT or
//! SIGTERM.
//!
//! Threads cannot be cancelled from outside, so each long-running thread either waits on this
//! token, checks it between bounded waits, or is sent a message telling it to stop. That is the
//! price the seed talk names: cancellation is cooperative and hand-written.

use paxos_host::RunError;

use crate::promise::Promise;

/// Set once when the server should stop; cheap to clone and share.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    cancelled: Promise<()>,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks everything to stop. Calling it again does nothing.
    pub fn cancel(&self) {
        self.cancelled.resolve(());
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.get().is_some()
    }

    /// Blocks until the token is cancelled.
    pub fn cancelled(&self) {
        self.cancelled.wait();
    }

    /// Cancels the token on SIGINT or SIGTERM. `ctrlc` runs the handler on a thread of its own
    /// rather than inside the signal handler, so taking a mutex there is safe. It can be set
    /// once per process, which suits `main`; tests cancel the token directly.
    pub fn cancel_on_signals(&self) -> Result<(), RunError> {
        let token = self.clone();
        ctrlc::set_handler(move || token.cancel())
            .map_err(|e| RunError(format!("cannot handle SIGINT and SIGTERM: {e}")))
    }
}
