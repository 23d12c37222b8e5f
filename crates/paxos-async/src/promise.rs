//! Promises: a value one task sets once and other tasks wait for.
//!
//! The seed talk's `Future` for "found myself", on tokio: [`Promise`] wraps a
//! `tokio::sync::watch` channel that starts empty and is set once, so any number of request
//! handlers can await it. [`pending`] makes the one-waiter kind each client request awaits until
//! the driver answers it, a `tokio::sync::oneshot`. The channels do the waking; what this file
//! adds is the same names and meanings as the threaded twin's promises.

use std::sync::Arc;
use std::time::Instant;

use paxos_host::waiters::Resolve;
use tokio::sync::{oneshot, watch};

/// A value set once, awaited by any number of tasks.
#[derive(Debug)]
pub struct Promise<T> {
    inner: Arc<watch::Sender<Option<T>>>,
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
            inner: Arc::new(watch::Sender::new(None)),
        }
    }

    /// Sets the value and wakes every waiter; returns false (and drops `value`) if the promise
    /// was already resolved.
    pub fn resolve(&self, value: T) -> bool {
        self.inner.send_if_modified(|state| {
            if state.is_some() {
                return false;
            }
            *state = Some(value);
            true
        })
    }
}

impl<T: Clone> Promise<T> {
    /// The value, if it is set.
    pub fn get(&self) -> Option<T> {
        self.inner.borrow().clone()
    }

    /// Waits until the value is set.
    pub async fn wait(&self) -> Option<T> {
        let mut state = self.inner.subscribe();
        // The sender lives in `self`, so the channel cannot close while this waits.
        let value = state.wait_for(Option::is_some).await.ok()?;
        value.clone()
    }

    /// Waits until the value is set or `deadline` passes.
    pub async fn wait_deadline(&self, deadline: Instant) -> Option<T> {
        tokio::time::timeout_at(deadline.into(), self.wait())
            .await
            .ok()
            .flatten()
    }
}

/// A promise with one waiter: the driver holds the [`Resolver`], a client request's handler
/// task the [`Pending`].
pub fn pending<T>() -> (Resolver<T>, Pending<T>) {
    let (sender, receiver) = oneshot::channel();
    (Resolver(sender), Pending(receiver))
}

/// Resolves a [`Pending`]. Dropping it unresolved wakes the waiter with `None` at once, so a
/// driver that forgets a request (it expired, or the server is stopping) never leaves a task
/// waiting for nothing.
#[derive(Debug)]
pub struct Resolver<T>(oneshot::Sender<T>);

impl<T> Resolve<T> for Resolver<T> {
    fn resolve(self, value: T) {
        // The waiter may have given up already; then nobody needs the value.
        let _ = self.0.send(value);
    }
}

/// Awaits a [`Resolver`].
#[derive(Debug)]
pub struct Pending<T>(oneshot::Receiver<T>);

impl<T> Pending<T> {
    /// The value, or `None` if `deadline` passed or the resolver was dropped first.
    pub async fn wait_deadline(self, deadline: Instant) -> Option<T> {
        tokio::time::timeout_at(deadline.into(), self.0)
            .await
            .ok()?
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn resolves_once_for_every_waiter() {
        let promise = Promise::new();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let promise = promise.clone();
                tokio::spawn(async move { promise.wait().await })
            })
            .collect();
        assert!(promise.resolve(7));
        assert!(!promise.resolve(8));
        for waiter in waiters {
            assert_eq!(waiter.await.unwrap(), Some(7));
        }
        assert_eq!(promise.get(), Some(7));
    }

    #[tokio::test]
    async fn times_out_and_wakes_on_a_dropped_resolver() {
        let promise: Promise<u8> = Promise::new();
        let soon = Instant::now() + Duration::from_millis(10);
        assert_eq!(promise.wait_deadline(soon).await, None);
        let (resolver, waiting) = pending::<u8>();
        let later = Instant::now() + Duration::from_secs(60);
        let waiter = tokio::spawn(async move { waiting.wait_deadline(later).await });
        drop(resolver);
        assert_eq!(waiter.await.unwrap(), None);
        let (resolver, waiting) = pending();
        resolver.resolve(5);
        assert_eq!(waiting.wait_deadline(Instant::now()).await, Some(5));
    }
}
