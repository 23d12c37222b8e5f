//! Promises: a value one thread sets once and other threads wait for.
//!
//! This is Python's `concurrent.futures.Future`, which the seed talk uses for "found myself":
//! request handlers block on it until discovery resolves it. [`pending`] makes the one-waiter
//! kind each client request waits on until the driver answers it. Both are a mutex and a
//! condition variable; what they add is that nobody touches either directly.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use paxos_host::waiters::Resolve;

/// A value set once, waited for by any number of threads.
#[derive(Debug)]
pub struct Promise<T> {
    inner: Arc<Inner<T>>,
}

#[derive(Debug)]
struct Inner<T> {
    state: Mutex<State<T>>,
    resolved: Condvar,
}

#[derive(Debug)]
enum State<T> {
    Waiting,
    Resolved(T),
    /// The resolving side went away without a value.
    Abandoned,
}

impl<T> Clone for Promise<T> {
    fn clone(&self) -> Self {
        Promise {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> Default for Promise<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Promise<T> {
    pub fn new() -> Self {
        Promise {
            inner: Arc::new(Inner {
                state: Mutex::new(State::Waiting),
                resolved: Condvar::new(),
            }),
        }
    }

    /// Sets the value and wakes every waiter; returns false (and drops `value`) if the promise
    /// was already resolved.
    pub fn resolve(&self, value: T) -> bool {
        self.inner.settle(State::Resolved(value))
    }

    fn abandon(&self) {
        self.inner.settle(State::Abandoned);
    }
}

impl<T: Clone> Promise<T> {
    /// The value, if it is set.
    pub fn get(&self) -> Option<T> {
        match &*self.inner.lock() {
            State::Resolved(value) => Some(value.clone()),
            _ => None,
        }
    }

    /// Blocks until the value is set; `None` if the promise was abandoned.
    pub fn wait(&self) -> Option<T> {
        let state = self.inner.lock();
        let state = self
            .inner
            .resolved
            .wait_while(state, |s| matches!(s, State::Waiting))
            .unwrap_or_else(PoisonError::into_inner);
        state.value()
    }

    /// Blocks until the value is set or `timeout` passes; `None` on timeout or abandonment.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<T> {
        self.wait_deadline(Instant::now() + timeout)
    }

    /// Blocks until the value is set or `deadline` passes.
    pub fn wait_deadline(&self, deadline: Instant) -> Option<T> {
        let mut state = self.inner.lock();
        while matches!(*state, State::Waiting) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            // Spurious wakeups are fine: the loop checks the state and the time again.
            state = self
                .inner
                .resolved
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.value()
    }
}

impl<T> Inner<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // The state is replaced in one assignment, so a panic cannot leave it half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn settle(&self, outcome: State<T>) -> bool {
        let mut state = self.lock();
        if !matches!(*state, State::Waiting) {
            return false;
        }
        *state = outcome;
        drop(state);
        self.resolved.notify_all();
        true
    }
}

impl<T: Clone> State<T> {
    fn value(&self) -> Option<T> {
        match self {
            State::Resolved(value) => Some(value.clone()),
            _ => None,
        }
    }
}

/// A promise with one waiter: the driver holds the [`Resolver`], a client request's handler
/// thread the [`Pending`].
pub fn pending<T>() -> (Resolver<T>, Pending<T>) {
    let promise = Promise::new();
    (Resolver(promise.clone()), Pending(promise))
}

/// Resolves a [`Pending`]. Dropping it unresolved wakes the waiter with `None` at once, so a
/// driver that forgets a request (it expired, or the server is stopping) never leaves a thread
/// waiting for nothing.
#[derive(Debug)]
pub struct Resolver<T>(Promise<T>);

impl<T> Resolve<T> for Resolver<T> {
    fn resolve(self, value: T) {
        self.0.resolve(value);
    }
}

impl<T> Drop for Resolver<T> {
    fn drop(&mut self) {
        self.0.abandon();
    }
}

/// Waits for a [`Resolver`].
#[derive(Debug)]
pub struct Pending<T>(Promise<T>);

impl<T: Clone> Pending<T> {
    /// The value, or `None` if `deadline` passed or the resolver was dropped first.
    pub fn wait_deadline(self, deadline: Instant) -> Option<T> {
        self.0.wait_deadline(deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    #[test]
    fn resolves_once_for_every_waiter() {
        let promise = Promise::new();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let promise = promise.clone();
                thread::spawn(move || promise.wait())
            })
            .collect();
        assert!(promise.resolve(7));
        assert!(!promise.resolve(8));
        for waiter in waiters {
            assert_eq!(waiter.join().unwrap(), Some(7));
        }
        assert_eq!(promise.get(), Some(7));
    }

    #[test]
    fn times_out_and_wakes_on_a_dropped_resolver() {
        let promise: Promise<u8> = Promise::new();
        assert_eq!(promise.wait_timeout(Duration::from_millis(10)), None);
        let (resolver, waiting) = pending::<u8>();
        let later = Instant::now() + Duration::from_secs(60);
        let waiter = thread::spawn(move || waiting.wait_deadline(later));
        drop(resolver);
        assert_eq!(waiter.join().unwrap(), None);
        let (resolver, waiting) = pending();
        resolver.resolve(5);
        assert_eq!(waiting.wait_deadline(Instant::now()), Some(5));
    }
}
