//! Twin Paxos patch: a connection's read deadline, shared by the reads of its request heads and
//! bodies.

use std::io::{Error as IoError, ErrorKind, Result as IoResult};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The instant by which the current read of a connection must finish, if any. The connection's
/// thread sets it for each head and each body; whichever thread reads next checks it. Reads of
/// one connection never overlap (the sequential readers hand the socket over), so one deadline
/// per connection is enough.
#[derive(Clone, Debug, Default)]
pub(crate) struct Deadline(Arc<Mutex<Option<Instant>>>);

impl Deadline {
    /// Starts a clock of `timeout` from now, or clears the deadline for `None`.
    pub(crate) fn start(&self, timeout: Option<Duration>) {
        *self.0.lock().unwrap() = timeout.map(|t| Instant::now() + t);
    }

    /// Brings the deadline forward to at most `limit` from now.
    pub(crate) fn shorten(&self, limit: Duration) {
        let mut at = self.0.lock().unwrap();
        let soon = Instant::now() + limit;
        *at = Some(at.map_or(soon, |at| at.min(soon)));
    }

    /// The time left for the next read, or `None` for no deadline; an error once it passed.
    pub(crate) fn remaining(&self) -> IoResult<Option<Duration>> {
        match *self.0.lock().unwrap() {
            None => Ok(None),
            Some(at) => match at.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Ok(Some(left)),
                _ => Err(timed_out()),
            },
        }
    }
}

pub(crate) fn timed_out() -> IoError {
    IoError::new(ErrorKind::TimedOut, "the client did not send in time")
}
