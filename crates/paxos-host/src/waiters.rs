//! The driver's table of client requests waiting for their answers.
//!
//! [`paxos_core::Node::submit`] returns a [`RequestId`]; the answer comes back in a later
//! [`paxos_core::Ready`] under that id. The table maps ids to whatever the runtime uses to wake
//! the waiting client (a promise on threads, a oneshot sender on tokio), and forgets entries past
//! their deadline, whose clients have already been answered `503`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use paxos_core::{Answer, RequestId};

use crate::log;

/// What wakes a waiting client with its answer: a promise's resolver on threads, a oneshot
/// sender on tokio. Dropping one unresolved must wake its client too (with no answer).
pub trait Resolve<T> {
    fn resolve(self, value: T);
}

/// How often [`Waiters::expire`] looks through the table. Each look costs a pass over every
/// waiting request, and the driver calls it after every batch, which under load is thousands of
/// times a second; a waiter that outlives its deadline by this much costs only memory, since its
/// client has already been answered.
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// Waiting clients by request id, generic over the runtime's way of answering them.
#[derive(Debug)]
pub struct Waiters<T> {
    waiting: HashMap<RequestId, (T, Instant)>,
    next_sweep: Option<Instant>,
}

impl<T> Default for Waiters<T> {
    fn default() -> Self {
        Waiters {
            waiting: HashMap::new(),
            next_sweep: None,
        }
    }
}

impl<T: Resolve<Answer>> Waiters<T> {
    /// Wakes the clients of `replies` with their answers, and drops (so wakes with no answer)
    /// those whose deadline passed, logging how many.
    pub fn answer(&mut self, replies: Vec<(RequestId, Answer)>, now: Instant) {
        for (id, answer) in replies {
            if let Some(waiter) = self.take(id) {
                waiter.resolve(answer);
            }
        }
        let expired = self.expire(now);
        if expired > 0 {
            log::requests_expired(expired);
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

    /// Drops every waiter whose deadline has passed and returns how many there were, looking at
    /// most once a [`SWEEP_INTERVAL`]. Dropping is enough: each runtime's waiter type wakes its
    /// client when dropped unresolved.
    pub fn expire(&mut self, now: Instant) -> usize {
        if self.next_sweep.is_some_and(|at| now < at) {
            return 0;
        }
        self.next_sweep = Some(now + SWEEP_INTERVAL);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> RequestId {
        RequestId {
            member: 0,
            incarnation: 1,
            n,
        }
    }

    #[test]
    fn takes_answers_and_expires_at_most_once_an_interval() {
        let start = Instant::now();
        let mut waiters = Waiters::new();
        waiters.insert(id(1), "a", start + Duration::from_secs(1));
        waiters.insert(id(2), "b", start + Duration::from_secs(5));
        assert_eq!(waiters.take(id(1)), Some("a"));
        assert_eq!(waiters.take(id(1)), None);
        waiters.insert(id(3), "c", start);
        assert_eq!(waiters.expire(start + Duration::from_millis(1)), 1);
        waiters.insert(id(4), "d", start);
        assert_eq!(
            waiters.expire(start + Duration::from_millis(2)),
            0,
            "swept just now"
        );
        assert_eq!(waiters.expire(start + SWEEP_INTERVAL * 2), 1);
        assert_eq!(waiters.drain().collect::<Vec<_>>(), vec!["b"]);
        assert!(waiters.is_empty());
    }
}
