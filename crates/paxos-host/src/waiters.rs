//! The driver's table of client requests waiting for their answers.
//!
//! [`paxos_core::Node::submit`] returns a [`RequestId`]; the answer comes back in a later
//! [`paxos_core::Ready`] under that id. The table maps ids to whatever the runtime uses to wake
//! the waiting client (a promise on threads, a oneshot sender on tokio), and forgets entries past
//! their deadline, whose clients have already been answered `503`.

use std::collections::HashMap;
use std::time::Instant;

use paxos_core::RequestId;

/// Waiting clients by request id, generic over the runtime's way of answering them.
#[derive(Debug)]
pub struct Waiters<T> {
    waiting: HashMap<RequestId, (T, Instant)>,
}

impl<T> Default for Waiters<T> {
    fn default() -> Self {
        Waiters {
            waiting: HashMap::new(),
        }
    }
}

impl<T> Waiters<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Remembers who waits for `id`, until `deadline`.
    pub fn insert(&mut self, id: RequestId, waiter: T, deadline: Instant) {
        self.waiting.insert(id, (waiter, deadline));
    }

    /// Takes the waiter for `id`, if it is still there.
    pub fn take(&mut self, id: RequestId) -> Option<T> {
        self.waiting.remove(&id).map(|(waiter, _)| waiter)
    }

    /// Drops every waiter whose deadline has passed and returns how many there were. Dropping is
    /// enough: each runtime's waiter type wakes its client when dropped unresolved.
    pub fn expire(&mut self, now: Instant) -> usize {
        let before = self.waiting.len();
        self.waiting.retain(|_, (_, deadline)| *deadline > now);
        before - self.waiting.len()
    }

    /// Takes every waiter, at shutdown.
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.waiting.drain().map(|(_, (waiter, _))| waiter)
    }

    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}
