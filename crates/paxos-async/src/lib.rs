//! The Twin Paxos server on tokio: axum serves HTTP, hyper's client calls peers, and tasks,
//! channels and promises tie them together.
//!
//! Its twin, `paxos-threaded`, is the same server on std threads. The two crates mirror each
//! other file for file and item for item, so `diff` between them shows only what the runtime
//! forces to differ. Everything that is not runtime lives in `paxos-core` (the protocol) and
//! `paxos-host` (config, data dir, HTTP bodies, metrics, log lines).
//!
//! # Layout
//!
//! - `main.rs`: parses the command line and config, binds the listener, calls [`run`], maps the
//!   result to an exit status.
//! - This file: [`run`], which starts and stops everything in order, and [`Shared`], the state
//!   every request handler sees.
//! - [`promise`]: a value set once and awaited, the seed talk's `Future`; used for "found
//!   myself" and for each waiting client request.
//! - [`shutdown`]: the cancellation token, and SIGINT/SIGTERM handling.
//! - [`deadline`]: what each connection may take: head, body and write deadlines.
//! - [`server`]: the HTTP routes on axum.
//! - [`discovery`]: finds which `servers` entry is this server, probing them all concurrently.
//! - [`driver`]: the one task that owns the Paxos node, the data dir and the waiting clients.
//! - [`peers`]: one sender task per peer, posting batched messages over its link.
//! - [`link`]: HTTP to one other member, with hyper's client, for the peers and discovery.
//! - [`variants`]: the benchmark's variant: every task on one thread.
//!
//! # Tasks
//!
//! One accept task and one task per open connection (hyper, at most `max_connections`); the
//! request handlers run inside their connection's task; one driver task, whose fsyncs run on
//! tokio's blocking pool; one sender task per peer, which drives its own connection; short-lived
//! probe tasks during discovery, each driving its own connection; the task that called [`run`],
//! which does discovery and then waits for shutdown; and a signal task. All of them run on the
//! runtime's worker threads, one per core by default. Every task [`run`] starts has ended by the
//! time it returns (probes still out when discovery ends are aborted then).

pub mod deadline;
pub mod discovery;
pub mod driver;
pub mod link;
pub mod peers;
pub mod promise;
pub mod server;
pub mod shutdown;
pub mod variants;

use std::path::Path;
use std::sync::Arc;

use paxos_host::handling::Bodies;
use paxos_host::{
    Config, DataDir, Found, Metrics, RunError, SHUTDOWN_GRACE, ServerId, StatusBoard, Tls, log,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::driver::Event;
use crate::promise::Promise;
pub use crate::shutdown::Shutdown;

/// The name `/status` and `/metrics` give this runtime.
pub const RUNTIME: &str = "async";

/// What every request handler, the discovery loop and the driver share.
#[derive(Debug)]
pub struct Shared {
    pub id: ServerId,
    pub config: Config,
    pub metrics: Metrics,
    pub status: StatusBoard,
    /// Resolved once discovery ends; client requests that arrive earlier wait on it.
    pub found: Promise<Found>,
    /// The driver's inbox. Handlers send into it and never wait for the driver to read.
    pub events: mpsc::UnboundedSender<Event>,
    pub shutdown: Shutdown,
    /// The bytes of request bodies held at once, clients' and peers' apart.
    pub bodies: Bodies,
    /// The config's `tls`, read at start: HTTPS in and out when set.
    pub tls: Option<Tls>,
}

/// Runs a server on `listener` until `shutdown` is cancelled (or a fatal error).
///
/// The caller binds the listener, so binding errors ("address in use") surface before anything
/// starts, and a test or bench can bind port 0 and read the address back.
pub async fn run(
    listener: TcpListener,
    config: Config,
    tls: Option<Tls>,
    data_dir: &Path,
    shutdown: Shutdown,
) -> Result<(), RunError> {
    let opened = DataDir::open(data_dir)?;
    log::replayed(data_dir, &opened.durable, opened.torn_bytes);
    let id = ServerId::random();
    let listen = listener
        .local_addr()
        .map_err(|e| RunError::unreadable_address(&e))?;
    log::starting(RUNTIME, id.as_str(), listen, data_dir);
    let (events, inbox) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        id,
        config,
        metrics: Metrics::new(),
        status: StatusBoard::new(),
        found: Promise::new(),
        events,
        shutdown: shutdown.clone(),
        bodies: Bodies::default(),
        tls,
    });
    let http = server::start(listener, Arc::clone(&shared))?;

    // As in the seed talk, this task looks for itself while the handlers already serve
    // `/server_id` (and make client requests wait on `found`).
    let driver = match discovery::find_myself(&shared).await {
        Ok(Some(me)) => Some(driver::start(Arc::clone(&shared), me, opened, inbox)),
        Ok(None) => None,
        Err(error) => {
            shutdown.cancel();
            http.stop(SHUTDOWN_GRACE).await;
            return Err(error);
        }
    };

    shutdown.cancelled().await;
    log::shutting_down();
    let result = match driver {
        Some(driver) => driver.stop(&shared).await,
        None => Ok(()),
    };
    http.stop(SHUTDOWN_GRACE).await;
    log::stopped();
    result
}
