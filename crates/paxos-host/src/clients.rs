//! Everyone a driver owes an answer: commands waiting for their slot, and watches waiting for a
//! key to change.
//!
//! Both drivers keep one [`Clients`] beside their node, generic over the runtime's two kinds of
//! reply handle, and call [`Clients::settle`] after every batch: it answers the commands the
//! batch decided, the watches whose keys it changed, and whoever ran out of time.

use std::time::Instant;

use paxos_core::{Answer, LogValue, Node, RequestId, Slot};

use crate::waiters::{Resolve, Waiters};
use crate::watches::{Seen, Watch, Watches};

/// See the module docs.
#[derive(Debug)]
pub struct Clients<R, W> {
    pub commands: Waiters<R>,
    pub watches: Watches<W>,
    /// The commit index the watches were last brought up to.
    watched: Slot,
}

impl<R, W> Default for Clients<R, W> {
    fn default() -> Self {
        Clients {
            commands: Waiters::new(),
            watches: Watches::default(),
            watched: 0,
        }
    }
}

impl<R: Resolve<Answer>, W: Resolve<Seen>> Clients<R, W> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers `watch` at once if its key changed after its index, or keeps it.
    pub fn watch(&mut self, node: &Node, watch: Watch, reply: W) {
        let applied = node.status().commit_index;
        self.watches.insert(node.store(), applied, watch, reply);
    }

    /// After a batch: answers the commands in `replies`, the watches of every key changed since
    /// the last call (all of them, to be sure, when the slots in between are not all still in
    /// memory, as after a snapshot), and everyone whose deadline has passed.
    pub fn settle(&mut self, node: &Node, replies: Vec<(RequestId, Answer)>, now: Instant) {
        self.commands.answer(replies, now);
        let applied = node.status().commit_index;
        if !self.watches.is_empty() && applied > self.watched {
            let slots = node.decided().range(self.watched + 1..=applied);
            let known = slots.clone().count() as Slot == applied - self.watched;
            if known {
                let keys = slots.filter_map(|(_, value)| match value {
                    LogValue::Request(request) => Some(request.command.op.key()),
                    LogValue::Noop => None,
                });
                self.watches.changed(node.store(), applied, keys);
            } else {
                self.watches.recheck_all(node.store(), applied);
            }
        }
        self.watched = applied;
        // A watch that ran out of time is answered "unchanged", which is no failure: no log line.
        self.watches.expire(now, applied);
    }

    /// When the driver must look again even if nothing happens: the next watch's deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.watches.next_deadline()
    }

    /// Drops every waiting command and watch, at shutdown: each client is woken with no answer.
    pub fn drain(&mut self) {
        self.commands.drain().for_each(drop);
        self.watches.drain().for_each(drop);
    }
}
