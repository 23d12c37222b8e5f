//! The driver: the one task that owns the Paxos node, the data dir and the waiting clients.
//!
//! Everything that happens to the node comes through one channel: client commands, peer
//! messages, and the request to stop. The loop waits for the first event or the node's next
//! timer, then drains whatever else is queued without blocking, so that every command that
//! arrived meanwhile shares one Accept message and one fsync. Then it carries out the node's
//! `Ready` in the order durability demands: persist and fsync first, and only then send messages
//! and answer clients.

use std::sync::Arc;
use std::time::Instant;

use paxos_core::storage::Durable;
use paxos_core::{Answer, MemberId, Node, NodeConfig, Ready};
use paxos_host::clients::Clients;
use paxos_host::data_dir::Opened;
use paxos_host::watches::Seen;
use paxos_host::{Clock, DataDir, RunError, log};
use tokio::sync::mpsc;
use tokio::task::{self, JoinHandle};

use crate::Shared;
use crate::peers::Peers;
use crate::promise::Resolver;

/// The most events one turn takes before it acts, so timers and replies are never starved.
const MAX_EVENTS_PER_TURN: usize = 4096;

/// What the driver's channel carries: client commands with the resolver that wakes their
/// handler, peer messages, and the request to stop.
pub type Event = paxos_host::Event<Resolver<Answer>, Resolver<Seen>>;

/// The running driver task.
#[derive(Debug)]
pub struct Driver {
    task: JoinHandle<Result<(), RunError>>,
}

/// Creates the node for member `me` from the replayed data dir and starts the driver task.
pub fn start(
    shared: Arc<Shared>,
    me: MemberId,
    opened: Opened,
    inbox: mpsc::UnboundedReceiver<Event>,
) -> Driver {
    let Opened {
        data_dir, durable, ..
    } = opened;
    let task =
        tokio::spawn(async move { Loop::new(shared, me, data_dir, durable).run(inbox).await });
    Driver { task }
}

impl Driver {
    /// Tells the driver to flush and end, and waits for it.
    pub async fn stop(self, shared: &Shared) -> Result<(), RunError> {
        // A driver that already ended on an error has dropped its inbox; then there is nobody
        // to tell, and joining returns that error.
        let _ = shared.events.send(Event::Stop);
        self.task
            .await
            .unwrap_or_else(|_| Err(RunError("the driver task panicked".into())))
    }
}

/// The driver's state.
struct Loop {
    shared: Arc<Shared>,
    node: Node,
    /// `None` only while an fsync holds it on the blocking pool.
    data_dir: Option<DataDir>,
    peers: Peers,
    clients: Clients<Resolver<Answer>, Resolver<Seen>>,
    clock: Clock,
}

impl Loop {
    fn new(shared: Arc<Shared>, me: MemberId, data_dir: DataDir, durable: Durable) -> Self {
        let clock = Clock::start();
        let config = &shared.config;
        let node = Node::new(
            NodeConfig {
                me,
                members: config.servers.len(),
                tuning: config.tuning(),
                seed: shared.id.seed(),
                incarnation: paxos_host::incarnation(),
            },
            durable,
            clock.now(),
        );
        Loop {
            node,
            data_dir: Some(data_dir),
            peers: Peers::start(&shared, me),
            shared,
            clients: Clients::new(),
            clock,
        }
    }

    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Event>) -> Result<(), RunError> {
        let mut stopping = false;
        while !stopping {
            let node_timer = self.clock.instant(self.node.poll_timeout());
            let timer = self
                .clients
                .next_deadline()
                .map_or(node_timer, |t| t.min(node_timer));
            let mut events = 0;
            tokio::select! {
                event = inbox.recv() => match event {
                    Some(event) => {
                        stopping |= self.handle(event);
                        events += 1;
                    }
                    None => stopping = true,
                },
                () = tokio::time::sleep_until(timer.into()) => {}
            }
            // Drain without blocking: this is where commands that arrived together get batched.
            while events < MAX_EVENTS_PER_TURN
                && !stopping
                && let Ok(event) = inbox.try_recv()
            {
                stopping |= self.handle(event);
                events += 1;
            }
            let now = self.clock.now();
            if now >= self.node.poll_timeout() {
                self.node.handle_timeout(now);
                events += 1;
            }
            self.shared.metrics.driver_batch(events);
            let ready = self.node.take_ready();
            self.carry_out(ready).await?;
        }
        // Whoever still waits gets `503` now rather than at its deadline.
        self.clients.drain();
        self.peers.stop().await;
        Ok(())
    }

    /// Feeds one event to the node; true if it asks the driver to stop.
    fn handle(&mut self, event: Event) -> bool {
        event.feed(&mut self.node, &mut self.clients, self.clock.now())
    }

    /// Persists, then sends and answers, in that order.
    async fn carry_out(&mut self, ready: Ready) -> Result<(), RunError> {
        let Ready {
            persist,
            rewrite,
            messages,
            replies,
        } = ready;
        if !persist.is_empty() {
            // fsync blocks its thread for milliseconds. On a worker thread that would stall every
            // task scheduled there, so it runs on the blocking pool; this task awaits it, and
            // events that arrive meanwhile queue up to form the next batch.
            let records = persist.len();
            let mut data_dir = self
                .data_dir
                .take()
                .expect("the data dir is back after each fsync");
            let (data_dir, appended) = task::spawn_blocking(move || {
                let appended = data_dir.persist(&persist, rewrite);
                (data_dir, appended)
            })
            .await
            .map_err(|_| RunError("the fsync task panicked".into()))?;
            let path = data_dir.path().to_owned();
            self.data_dir = Some(data_dir);
            match appended {
                Ok(took) => self.shared.metrics.fsync(records, took),
                Err(error) => {
                    log::persist_failed(&path, &error);
                    // Stop first, so the clients this drops are told the server is stopping.
                    self.shared.shutdown.cancel();
                    return Err(RunError(format!(
                        "could not write the log in {}: {error}",
                        path.display()
                    )));
                }
            }
        }
        self.peers.send(messages);
        self.clients.settle(&self.node, replies, Instant::now());
        self.shared.status.update(&self.node, &self.shared.config);
        Ok(())
    }
}
