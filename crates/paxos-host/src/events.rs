//! What a driver's channel carries, and how each event reaches the node.
//!
//! Both drivers own a [`Node`] and take events from a channel; they differ only in how they wait
//! for the next one (a blocking `recv_timeout` or a `select!`) and in the type of the handle
//! that wakes a waiting client, `R`. Feeding an event to the node is the same in both, so it is
//! written here once.

use std::time::Instant;

use paxos_core::{Command, Envelope, Node, Time};

use crate::Waiters;

/// One thing that happened to a server, for its driver.
#[derive(Debug)]
pub enum Event<R> {
    /// A client command; `reply` wakes the handler that waits for the answer.
    Submit {
        command: Command,
        reply: R,
        deadline: Instant,
    },
    /// Messages from a peer, already authenticated and parsed.
    Peer(Envelope),
    /// Flush what is pending and end.
    Stop,
}

impl<R> Event<R> {
    /// Feeds the event to `node` at `now`, remembering a client's `reply` in `waiters` until its
    /// answer or deadline; true if the event asks the driver to stop.
    pub fn feed(self, node: &mut Node, waiters: &mut Waiters<R>, now: Time) -> bool {
        match self {
            Event::Submit {
                command,
                reply,
                deadline,
            } => {
                let id = node.submit(now, command);
                waiters.insert(id, reply, deadline);
            }
            Event::Peer(envelope) => {
                for message in envelope.messages {
                    node.handle_message(now, envelope.from, message);
                }
            }
            Event::Stop => return true,
        }
        false
    }
}
