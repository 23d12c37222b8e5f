//! Twin Paxos patch: deadlines and a bound on connections.
//!
//! Upstream tiny_http reads each connection on a thread of its own, from a pool that grows
//! without bound, and sets no socket timeouts, so a client that connects and sends nothing (or
//! one byte a second) holds a thread forever, and enough of them exhaust threads or file
//! descriptors. [`Limits`] bounds all of that; the default is upstream's behaviour, no limits.
//!
//! rouille builds its tiny_http server inside `rouille::Server::new` and offers no way to pass
//! options through, so limits are given to [`Limits::around`], which applies them to every
//! server built inside it on the calling thread.

use std::cell::Cell;
use std::time::Duration;

/// What a server allows its connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// How long a connection may take to send a request head, counted from when the server
    /// starts waiting for it: the accept, or the end of the previous response on a keep-alive
    /// connection. The clock is total, not per read, so a client that sends one byte a second
    /// cannot keep it running. Past it the connection is closed without an answer, as hyper
    /// does, since for an idle keep-alive connection an answer would be read as the answer to
    /// the client's next request.
    pub head_timeout: Option<Duration>,
    /// How long a request body may take, counted from the end of its head. A read past it fails
    /// with `ErrorKind::TimedOut`.
    pub body_timeout: Option<Duration>,
    /// How long one write of a response may block on a client that does not read.
    pub write_timeout: Option<Duration>,
    /// The most connections served at once, each on a thread of its own. At the bound the
    /// server stops accepting until a connection closes; new connections wait in the kernel's
    /// listen backlog meanwhile. With `head_timeout` set, a connection that sends nothing closes
    /// within it, so the wait is bounded.
    pub max_connections: Option<usize>,
}

thread_local! {
    static SCOPED: Cell<Limits> = Cell::new(Limits::default());
}

impl Limits {
    /// Runs `build`, and any server it creates on this thread takes these limits.
    pub fn around<T>(self, build: impl FnOnce() -> T) -> T {
        /// Puts the previous limits back even if `build` panics.
        struct Restore(Limits);
        impl Drop for Restore {
            fn drop(&mut self) {
                SCOPED.with(|scoped| scoped.set(self.0));
            }
        }
        let _restore = Restore(SCOPED.with(|scoped| scoped.replace(self)));
        build()
    }

    /// The limits for a server built now on this thread.
    pub(crate) fn current() -> Limits {
        SCOPED.with(Cell::get)
    }
}
