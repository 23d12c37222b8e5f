//! Stopping: a cancellation token that every task can check and await, set by SIGINT or
//! SIGTERM.
//!
//! On tokio, cancellation comes with the runtime: any `await` can race the token in a
//! `select!`, and dropping a future cancels it at its next `await`. That is the advantage the
//! seed talk grants async: nothing has to check a flag between bounded waits.

use paxos_host::RunError;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Set once when the server should stop; cheap to clone and share.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    cancelled: CancellationToken,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks everything to stop. Calling it again does nothing.
    pub fn cancel(&self) {
        self.cancelled.cancel();
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.is_cancelled()
    }

    /// Waits until the token is cancelled.
    pub async fn cancelled(&self) {
        self.cancelled.cancelled().await;
    }

    /// Cancels the token on SIGINT or SIGTERM, from a task that waits for either signal. It
    /// must be called inside the runtime; tests cancel the token directly.
    pub fn cancel_on_signals(&self) -> Result<(), RunError> {
        let error = |e: std::io::Error| RunError(format!("cannot handle SIGINT and SIGTERM: {e}"));
        let mut interrupt = signal(SignalKind::interrupt()).map_err(error)?;
        let mut terminate = signal(SignalKind::terminate()).map_err(error)?;
        let token = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
                () = token.cancelled() => return,
            }
            token.cancel();
        });
        Ok(())
    }
}
