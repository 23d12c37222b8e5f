//! Peer senders: one task per peer, each with its own queue, posting batches with reqwest.
//!
//! The driver must never wait on the network, so it only pushes messages onto a peer's queue.
//! The peer's task sleeps until something is queued, takes everything queued, and posts it as
//! few envelopes as possible over a kept-alive connection. While a post is in flight new messages
//! pile up in the queue and go out together in the next one, which is how batching adapts to a
//! slow peer. A failed post is counted and dropped: Paxos tolerates lost messages.

use std::sync::Arc;

use paxos_core::{MemberId, Message};
use paxos_host::peer::{self, CONNECT_TIMEOUT, MAX_DRAIN, POST_TIMEOUT};
use paxos_host::probe;
use paxos_host::{http, log};
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use crate::Shared;

/// The queues of every peer, indexed by member; `None` at this server's own index.
#[derive(Debug)]
pub struct Peers {
    queues: Vec<Option<mpsc::UnboundedSender<Message>>>,
    tasks: TaskTracker,
}

impl Peers {
    /// Starts one sender task for every member but `me`.
    pub fn start(shared: &Arc<Shared>, me: MemberId) -> Peers {
        let client = peer_client();
        let mut queues = Vec::new();
        let tasks = TaskTracker::new();
        for member in 0..shared.config.servers.len() {
            if member == me {
                queues.push(None);
                continue;
            }
            let (queue, inbox) = mpsc::unbounded_channel();
            queues.push(Some(queue));
            let sender = Sender {
                shared: Arc::clone(shared),
                client: client.clone(),
                me,
                server: shared.config.peer_address(member).to_owned(),
            };
            tasks.spawn(sender.run(inbox));
        }
        tasks.close();
        Peers { queues, tasks }
    }

    /// Queues messages for their peers; never blocks.
    pub fn send(&self, messages: Vec<(MemberId, Message)>) {
        for (to, message) in messages {
            if let Some(Some(queue)) = self.queues.get(to) {
                // A sender task only ends when its queue is dropped, so this cannot fail.
                let _ = queue.send(message);
            }
        }
    }

    /// Closes the queues and waits for the senders, each of which finishes its current post
    /// (bounded by the post timeout) and then sees its queue closed.
    pub async fn stop(self) {
        drop(self.queues);
        self.tasks.wait().await;
    }
}

/// One peer's sender.
struct Sender {
    shared: Arc<Shared>,
    client: reqwest::Client,
    me: MemberId,
    server: String,
}

impl Sender {
    async fn run(self, mut inbox: mpsc::UnboundedReceiver<Message>) {
        let url = peer::messages_url(&self.server);
        let authorization = peer::authorization(self.shared.config.secret.as_deref());
        let mut messages = Vec::new();
        // Sleeps until a message is queued, then takes every other one already there.
        while inbox.recv_many(&mut messages, MAX_DRAIN).await > 0 {
            for body in peer::envelopes(&self.shared.config, self.me, std::mem::take(&mut messages))
            {
                let mut request = self
                    .client
                    .post(&url)
                    .header("Content-Type", http::JSON)
                    .body(body.json);
                if let Some(authorization) = &authorization {
                    request = request.header("Authorization", authorization);
                }
                match request.send().await {
                    Ok(response) if response.status().as_u16() == 204 => {
                        self.shared.metrics.peer_sent(body.messages);
                    }
                    Ok(response) => {
                        self.shared.metrics.peer_send_error();
                        let reason = format!("answered HTTP {}", response.status().as_u16());
                        log::peer_send_failed(&self.server, body.messages, reason);
                    }
                    Err(error) => {
                        self.shared.metrics.peer_send_error();
                        log::peer_send_failed(
                            &self.server,
                            body.messages,
                            probe::describe_error(&error),
                        );
                    }
                }
            }
        }
    }
}

/// An HTTP client for peers: short timeouts, kept-alive connections; reqwest takes any status
/// as an answer.
fn peer_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(POST_TIMEOUT)
        .build()
        .expect("a plain HTTP client always builds")
}
