//! Twin Paxos patch: a bound on the connections served at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How often a wait for a free slot looks at the server's close flag.
const CLOSE_POLL: Duration = Duration::from_millis(100);

/// Counts open connections against a bound.
#[derive(Debug)]
pub(crate) struct Slots {
    open: Mutex<usize>,
    freed: Condvar,
    bound: Option<usize>,
}

/// One connection's place; freed when dropped.
#[derive(Debug)]
pub(crate) struct Slot(Arc<Slots>);

impl Slots {
    pub(crate) fn new(bound: Option<usize>) -> Arc<Slots> {
        Arc::new(Slots {
            open: Mutex::new(0),
            freed: Condvar::new(),
            bound,
        })
    }

    /// Waits for a free slot, or returns `None` once `closing` is set.
    pub(crate) fn acquire(self: &Arc<Self>, closing: &AtomicBool) -> Option<Slot> {
        let mut open = self.open.lock().unwrap();
        while self.bound.is_some_and(|bound| *open >= bound) {
            if closing.load(Ordering::Relaxed) {
                return None;
            }
            open = self.freed.wait_timeout(open, CLOSE_POLL).unwrap().0;
        }
        *open += 1;
        Some(Slot(Arc::clone(self)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        *self.0.open.lock().unwrap() -= 1;
        self.0.freed.notify_one();
    }
}
