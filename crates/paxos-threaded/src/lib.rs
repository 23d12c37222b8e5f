//! The Twin Paxos server on std threads: rouille serves HTTP, ureq calls peers, and plain threads,
//! channels and promises tie them together. No async runtime anywhere in its dependency tree.
//!
//! Its twin, `paxos-async`, is the same server on tokio. The two crates mirror each other file
//! for file and item for item, so `diff` between them shows only what the runtime forces to
//! differ. Everything that is not runtime lives in `paxos-core` (the protocol) and `paxos-host`
//! (config, data dir, HTTP bodies, metrics, log lines).
//!
//! # Layout
//!
//! - `main.rs`: parses the command line and config, calls [`run`], maps the result to an exit
//!   status.
//! - This file: [`run`], which starts and stops everything in order, and [`Shared`], the state
//!   every request handler sees.
//! - [`promise`]: a value set once and waited for, the seed talk's `Future`; used for "found
//!   myself" and for each waiting client request.
//! - [`shutdown`]: the cancellation token, and SIGINT/SIGTERM handling.
//! - [`deadline`]: what each connection may take: head, body and write deadlines.
//! - [`server`]: the HTTP routes on rouille, served on each request's connection thread.
//! - [`discovery`]: finds which `servers` entry is this server, probing them all concurrently.
//! - [`driver`]: the one thread that owns the Paxos node, the data dir and the waiting clients.
//! - [`peers`]: one sender thread per peer, posting batched messages over its link.
//! - [`link`]: HTTP to one other member, with ureq, for the peers and discovery.
//! - [`variants`]: the benchmark's variants: rouille's own dispatch, to a pool or new threads.
//!
//! # Threads
//!
//! One accept thread and one thread per open connection (tiny_http, under rouille, at most
//! `max_connections`); the request handlers run on their connection's thread; one driver
//! thread; one sender thread per peer; short-lived probe threads during discovery; the thread
//! that called [`run`], which does discovery and then waits for shutdown; and `ctrlc`'s signal
//! thread. Every thread [`run`] starts has ended by the time it returns.

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
use std::sync::mpsc;

use paxos_host::handling::Bodies;
use paxos_host::{
    Config, DataDir, Found, Metrics, RunError, SHUTDOWN_GRACE, ServerId, StatusBoard, Tls, log,
};

use crate::driver::Event;
use crate::promise::Promise;
pub use crate::shutdown::Shutdown;

/// The name `/status` and `/metrics` give this runtime.
pub const RUNTIME: &str = "threaded";

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
    pub events: mpsc::Sender<Event>,
    pub shutdown: Shutdown,
    /// The bytes of request bodies held at once, clients' and peers' apart.
    pub bodies: Bodies,
    /// The config's `tls`, read at start: HTTPS in and out when set.
    pub tls: Option<Tls>,
}

/// Runs a server listening on `listen` until `shutdown` is cancelled (or a fatal error).
///
/// Unlike its async twin, this `run` binds the address itself: rouille creates its tiny_http
/// listener from an address and has no constructor that takes a listener the caller bound.
/// Binding errors ("address in use") still come back as a [`RunError`], exit status 1.
pub fn run(
    listen: &str,
    config: Config,
    tls: Option<Tls>,
    data_dir: &Path,
    shutdown: Shutdown,
) -> Result<(), RunError> {
    let opened = DataDir::open(data_dir)?;
    log::replayed(data_dir, &opened.durable, opened.torn_bytes);
    let id = ServerId::random();
    log::starting(RUNTIME, id.as_str(), listen, data_dir);
    let (events, inbox) = mpsc::channel();
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
    let http = server::start(listen, Arc::clone(&shared))?;

    // As in the seed talk, this thread looks for itself while the handlers already serve
    // `/server_id` (and make client requests wait on `found`).
    let mut probes = discovery::Probes::default();
    let driver = match discovery::find_myself(&shared, &mut probes) {
        Ok(Some(me)) => Some(driver::start(Arc::clone(&shared), me, opened, inbox)),
        Ok(None) => None,
        Err(error) => {
            shutdown.cancel();
            http.stop(SHUTDOWN_GRACE);
            probes.join();
            return Err(error);
        }
    };

    shutdown.cancelled();
    log::shutting_down();
    // A thread cannot wait for the token and a socket at once, so the HTTP server is told: it
    // stops accepting and closes idle connections now, while the driver stops.
    http.shut_down();
    let result = match driver {
        Some(driver) => driver.stop(&shared),
        None => Ok(()),
    };
    http.stop(SHUTDOWN_GRACE);
    probes.join();
    log::stopped();
    result
}
