//! What a driver's channel carries, and how each event reaches the node.
//!
//! Both drivers own a [`Node`] and take events from a channel; they differ only in how they wait
//! for the next one (a blocking `recv_timeout` or a `select!`) and in the types of the handles
//! that wake a waiting client, `R` for a command's answer and `W` for a watch's. Feeding an event
//! to the node is the same in both, so it is written here once.

use std::time::Instant;

use paxos_core::{Answer, Command, Envelope, Node, Time};

use crate::clients::Clients;
use crate::waiters::Resolve;
use crate::watches::{Seen, Watch};

/// One thing that happened to a server, for its driver.
#[derive(Debug)]
pub enum Event<R, W> {
    /// A client command; `reply` wakes the handler that waits for the answer.
    Submit {
        command: Command,
        reply: R,
        deadline: Instant,
    },
    /// A watch of a key; `reply` wakes the handler that waits for a change.
    Watch { watch: Watch, reply: W },
    /// Messages from a peer, already authenticated and parsed.
    Peer(Envelope),
    /// Flush what is pending and end.
    Stop,
}

impl<R: Resolve<Answer>, W: Resolve<Seen>> Event<R, W> {
    /// Feeds the event to `node` at `now`, remembering a client's `reply` in `clients` until its
    /// answer or deadline; true if the event asks the driver to stop.
    pub fn feed(self, node: &mut Node, clients: &mut Clients<R, W>, now: Time) -> bool {
        match self {
            Event::Submit {
                command,
                reply,
                deadline,
            } => {
                let id = node.submit(now, command);
                clients.commands.insert(id, reply, deadline);
            }
            Event::Watch { watch, reply } => clients.watch(node, watch, reply),
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
