//! Peer senders: one task per peer, each with its own queue, posting batches over its link.
//!
//! The driver must never wait on the network, so it only pushes messages onto a peer's queue.
//! The peer's task sleeps until something is queued, takes everything queued, and posts it as
//! few envelopes as possible over a kept-alive connection. While a post is in flight new messages
//! pile up in the queue and go out together in the next one, which is how batching adapts to a
//! slow peer. A failed post is counted and dropped: Paxos tolerates lost messages.

use std::sync::Arc;
use std::time::Instant;

use paxos_core::{MemberId, Message, To};
use paxos_host::peer::{self, MAX_DRAIN, Outgoing, POST_TIMEOUT};
use paxos_host::routing::Route;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use crate::Shared;
use crate::link::Link;

/// The queues of every peer, indexed by member; `None` at this server's own index.
#[derive(Debug)]
pub struct Peers {
    queues: Vec<Option<mpsc::UnboundedSender<Arc<Outgoing>>>>,
    tasks: TaskTracker,
}

impl Peers {
    /// Starts one sender task for every member but `me`.
    pub fn start(shared: &Arc<Shared>, me: MemberId) -> Peers {
        let mut queues = Vec::new();
        let tasks = TaskTracker::new();
        for member in 0..shared.config.servers.len() {
            if member == me {
                queues.push(None);
                continue;
            }
            let server = shared.config.peer_address(member);
            let (queue, inbox) = mpsc::unbounded_channel();
            queues.push(Some(queue));
            let sender = Sender {
                shared: Arc::clone(shared),
                link: Link::new(shared, server, POST_TIMEOUT),
                me,
                server: server.to_owned(),
            };
            tasks.spawn(sender.run(inbox));
        }
        tasks.close();
        Peers { queues, tasks }
    }

    /// Queues messages for their peers; never blocks.
    pub fn send(&self, messages: Vec<(To, Message)>) {
        for (to, message) in messages {
            let outgoing = Outgoing::new(message);
            for member in peer::recipients(to, self.queues.len()) {
                if let Some(Some(queue)) = self.queues.get(member) {
                    // It fails only once the sender task has ended (its queue dropped, or it
                    // panicked): then nobody is left to post the message, and Paxos copes.
                    let _ = queue.send(Arc::clone(&outgoing));
                }
            }
        }
    }

    /// Closes the queues and waits for the senders, each of which posts what is still queued
    /// (each post bounded by the post timeout) and then sees its queue closed.
    pub async fn stop(self) {
        drop(self.queues);
        self.tasks.wait().await;
    }
}

/// One peer's sender.
struct Sender {
    shared: Arc<Shared>,
    link: Link,
    me: MemberId,
    server: String,
}

impl Sender {
    async fn run(self, mut inbox: mpsc::UnboundedReceiver<Arc<Outgoing>>) {
        let Sender {
            shared,
            mut link,
            me,
            server,
        } = self;
        let authorization = peer::authorization(shared.config.secret.as_deref());
        let (route, authorization) = (Route::PaxosMessages, authorization.as_deref());
        let mut messages = Vec::new();
        // Sleeps until a message is queued, then takes every other one already there.
        while inbox.recv_many(&mut messages, MAX_DRAIN).await > 0 {
            for body in peer::envelopes(&shared.config, me, &messages) {
                let started = Instant::now();
                let posted = link.post(route, body.json, authorization).await;
                peer::posted(
                    &shared.metrics,
                    &server,
                    body.messages,
                    started.elapsed(),
                    posted,
                );
            }
            messages.clear();
        }
    }
}
