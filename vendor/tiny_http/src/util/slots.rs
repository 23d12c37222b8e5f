//! Twin Paxos patch: a bound on the connections served at once, and the list of them that a
//! stopping server closes.

use std::collections::HashMap;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::connection::Connection;

/// How often a wait for a free slot looks at the server's close flag.
const CLOSE_POLL: Duration = Duration::from_millis(100);

/// Counts open connections against a bound, and knows each one's socket and phase.
#[derive(Debug)]
pub(crate) struct Slots {
    open: Mutex<Open>,
    freed: Condvar,
    bound: Option<usize>,
    /// Set once when the server stops: no connection starts another request.
    closing: AtomicBool,
}

#[derive(Debug, Default)]
struct Open {
    /// Slots taken, whether or not their connection is attached yet.
    count: usize,
    next_id: u64,
    attached: HashMap<u64, Arc<Phase>>,
}

/// One connection's place; freed when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    slots: Arc<Slots>,
    id: u64,
}

/// Where a connection is between requests, shared by its thread and the server that stops it.
///
/// Its thread marks it idle while it waits for a request head and reads it, and busy once the
/// head is whole; a stopping server closes idle connections at once and lets busy ones finish
/// the request they are in. Both sides change the phase by compare-and-swap, and both the phase
/// and the server's `closing` flag are `SeqCst`, so either the thread sees the flag before it
/// waits or the server sees the connection idle and shuts its socket: none is left waiting.
#[derive(Debug)]
pub(crate) struct Phase {
    state: AtomicU8,
    socket: Arc<Connection>,
    slots: Arc<Slots>,
}

const BUSY: u8 = 0;
const IDLE: u8 = 1;
const CLOSED: u8 = 2;

impl Slots {
    pub(crate) fn new(bound: Option<usize>) -> Arc<Slots> {
        Arc::new(Slots {
            open: Mutex::new(Open::default()),
            freed: Condvar::new(),
            bound,
            closing: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        // Every change to `Open` is whole before the lock is released, so a panic elsewhere
        // cannot leave it half-written.
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits for a free slot, or returns `None` once `closing` is set or the server stops.
    pub(crate) fn acquire(self: &Arc<Self>, closing: &AtomicBool) -> Option<Slot> {
        let mut open = self.lock();
        loop {
            if closing.load(Ordering::Relaxed) || self.closing.load(Ordering::SeqCst) {
                return None;
            }
            if !self.bound.is_some_and(|bound| open.count >= bound) {
                break;
            }
            open = self
                .freed
                .wait_timeout(open, CLOSE_POLL)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        open.count += 1;
        open.next_id += 1;
        Some(Slot {
            slots: Arc::clone(self),
            id: open.next_id,
        })
    }

    /// Connections open now.
    pub(crate) fn open(&self) -> usize {
        self.lock().count
    }

    /// Stops every connection from starting another request, and closes the idle ones now.
    pub(crate) fn close_idle(&self) {
        self.closing.store(true, Ordering::SeqCst);
        let phases: Vec<Arc<Phase>> = self.lock().attached.values().cloned().collect();
        for phase in phases {
            let idle = phase
                .state
                .compare_exchange(IDLE, CLOSED, Ordering::SeqCst, Ordering::SeqCst);
            if idle.is_ok() {
                phase.socket.shutdown(Shutdown::Both).ok();
            }
        }
        // An accept thread waiting for a slot stops waiting.
        self.freed.notify_all();
    }

    /// Shuts every open connection's socket, busy or not: whatever its thread waits for on it
    /// fails at once.
    pub(crate) fn close_all(&self) {
        self.closing.store(true, Ordering::SeqCst);
        let phases: Vec<Arc<Phase>> = self.lock().attached.values().cloned().collect();
        for phase in phases {
            phase.state.store(CLOSED, Ordering::SeqCst);
            phase.socket.shutdown(Shutdown::Both).ok();
        }
    }

    /// Waits until no connection is open or `deadline` passes; returns how many are still open.
    pub(crate) fn wait_closed(&self, deadline: Instant) -> usize {
        let mut open = self.lock();
        while open.count > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            open = self
                .freed
                .wait_timeout(open, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        open.count
    }
}

impl Slot {
    /// Enters the accepted connection's socket in the list a stopping server closes; the
    /// returned phase is its thread's to keep.
    pub(crate) fn attach(&self, socket: Arc<Connection>) -> Arc<Phase> {
        let phase = Arc::new(Phase {
            state: AtomicU8::new(BUSY),
            socket,
            slots: Arc::clone(&self.slots),
        });
        self.slots
            .lock()
            .attached
            .insert(self.id, Arc::clone(&phase));
        phase
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.lock();
        open.count -= 1;
        open.attached.remove(&self.id);
        drop(open);
        // Both the accept thread (waiting for a slot) and a stopping server (waiting for none
        // to be left) wait on this.
        self.slots.freed.notify_all();
    }
}

impl Phase {
    /// Whether the server stops: the connection must start no other request.
    pub(crate) fn closing(&self) -> bool {
        self.slots.closing.load(Ordering::SeqCst)
    }

    /// Marks the connection idle before its thread reads the next head; false if it must close
    /// instead.
    pub(crate) fn to_idle(&self) -> bool {
        let idle = self
            .state
            .compare_exchange(BUSY, IDLE, Ordering::SeqCst, Ordering::SeqCst);
        if idle.is_err() || !self.closing() {
            return idle.is_ok();
        }
        // The server stops: whichever of the two closes it, the connection ends.
        let _ = self
            .state
            .compare_exchange(IDLE, CLOSED, Ordering::SeqCst, Ordering::SeqCst);
        false
    }

    /// Marks the connection busy once a head has been read; false if a stopping server closed it
    /// first.
    pub(crate) fn to_busy(&self) -> bool {
        self.state
            .compare_exchange(IDLE, BUSY, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    fn socket() -> (Arc<Connection>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (Arc::new(Connection::from(server)), client)
    }

    #[test]
    fn idle_connections_close_busy_ones_finish() {
        let slots = Slots::new(Some(2));
        let never = AtomicBool::new(false);
        let (a, b) = (slots.acquire(&never).unwrap(), slots.acquire(&never).unwrap());
        let ((idle_socket, _c1), (busy_socket, _c2)) = (socket(), socket());
        let (idle, busy) = (a.attach(idle_socket), b.attach(busy_socket));
        assert!(idle.to_idle());
        slots.close_idle();
        // The idle one was closed under its thread; the busy one may finish its request, but
        // may not wait for another.
        assert!(!idle.to_busy());
        assert!(busy.closing());
        assert!(!busy.to_idle());
        assert_eq!(slots.open(), 2);
        assert!(slots.acquire(&never).is_none(), "a closing server takes no slot");
        let soon = Instant::now() + Duration::from_millis(10);
        assert_eq!(slots.wait_closed(soon), 2);
        drop((a, b));
        assert_eq!(slots.wait_closed(Instant::now()), 0);
    }
}
