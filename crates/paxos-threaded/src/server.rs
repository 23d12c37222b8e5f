//! The HTTP routes, on rouille.
//!
//! Each request runs on a thread of a fixed pool and may block: a client request waits there for
//! discovery and then for its command to commit. Statuses and bodies come from
//! [`paxos_host::http`], so both servers answer alike.
//!
//! Under rouille sits tiny_http, which reads each connection on a thread of its own. Upstream it
//! set no socket timeouts and no bound on those threads, so idle or slow clients could hold
//! threads without end; the patched copy (see `vendor/tiny_http/PATCHED.md`) takes
//! [`connection_limits`](crate::deadline::connection_limits): a deadline for each request head and each body, a write timeout, and
//! at most `max_connections` connection threads. tiny_http reads bodies up to 1 KiB itself before
//! it hands the request over, so a client that stalls in such a body holds only its connection's
//! thread; one that stalls in a longer body holds a handler thread too, until the body deadline.
//! None of this blocks shutdown: [`Http::stop`] waits only
//! [`SHUTDOWN_GRACE`](paxos_host::SHUTDOWN_GRACE), and the process exits past the stragglers (the
//! threads are detached). The patch also keeps a request head or a declared body length from
//! exhausting memory.

use std::io::{ErrorKind, Read};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use paxos_core::Answer;
use paxos_host::handling::{self, Budget, Refused, Share};
use paxos_host::http::{self, MAX_BODY, MAX_PEER_BODY, MAX_WAITING_CLIENTS, Reply};
use paxos_host::metrics;
use paxos_host::routing::{self, Route};
use paxos_host::{RunError, log};

use crate::deadline;
use crate::driver::Event;
use crate::promise::{self, Promise};
use crate::{RUNTIME, Shared};

/// The request handler pool's size. rouille's default spawns a thread per request, unbounded;
/// a fixed pool bounds the threads a burst can create. It must be large, because each client
/// request holds its thread for as long as its command takes to commit (up to the request
/// timeout), and peer messages are served by the same pool: if waiting clients took every
/// thread, the peer messages that would commit their commands could not be read.
pub const HANDLER_THREADS: usize = 512;
// At most `MAX_WAITING_CLIENTS` client requests wait (more are refused `503` at once), so the
// rest of the pool stays free for peer messages, `/status` and `/metrics`, whose handlers never
// block: the cluster keeps making progress under any client load.
const _: () = assert!(MAX_WAITING_CLIENTS + 32 <= HANDLER_THREADS as u64);
/// The benchmark variant (`PAXOS_VARIANT`) that serves each request on a thread of its own, as
/// rouille does by default, instead of on the fixed pool.
pub const PER_REQUEST_THREADS: &str = "per-request-threads";
/// How often the accept loop looks at the shutdown token while no requests come.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The running HTTP server.
#[derive(Debug)]
pub struct Http {
    stopped: Promise<()>,
}

/// Binds `listen` and serves on a thread of its own until shutdown.
pub fn start(listen: &str, shared: Arc<Shared>) -> Result<Http, RunError> {
    let shutdown = shared.shutdown.clone();
    let limits = deadline::connection_limits(&shared.config);
    let server = limits
        .around(|| rouille::Server::new(listen, move |request| handle(&shared, request)))
        .map_err(|error| match error.downcast_ref::<std::io::Error>() {
            Some(io) => RunError::bind(listen, io),
            None => RunError(format!("cannot listen on {listen}: {error}")),
        })?;
    // The benchmark's variant keeps rouille's default, a new thread for every request.
    let server = match paxos_host::variant().as_deref() {
        Some(PER_REQUEST_THREADS) => server,
        _ => server.pool_size(HANDLER_THREADS),
    };
    log::listening(server.server_addr());
    let stopped = Promise::new();
    let done = stopped.clone();
    thread::Builder::new()
        .name("http".into())
        .spawn(move || {
            server.poll_until(POLL_INTERVAL, || shutdown.is_cancelled());
            server.join();
            // Dropping the server closes the listening socket.
            drop(server);
            done.resolve(());
        })
        .map_err(|e| RunError(format!("cannot start the HTTP thread: {e}")))?;
    Ok(Http { stopped })
}

impl Http {
    /// Waits up to `grace` for in-flight requests to finish after shutdown was requested.
    pub fn stop(self, grace: Duration) {
        if self.stopped.wait_timeout(grace).is_none() {
            log::connections_outlived_grace(grace);
        }
    }
}

/// Routes one request.
fn handle(shared: &Shared, request: &rouille::Request) -> rouille::Response {
    let authorization = request.header("Authorization").map(str::as_bytes);
    let (method, target) = (request.method(), request.raw_url());
    let route = routing::route(
        &shared.config,
        &shared.metrics,
        method,
        target,
        authorization,
    );
    let reply = match route {
        Err(reply) => reply,
        Ok(Route::ServerId) => http::server_id(shared.id.as_str()),
        Ok(Route::ClientRequest) => client_request(shared, request),
        Ok(Route::Status) => status(shared),
        Ok(Route::Metrics) => return metrics(shared),
        Ok(Route::PaxosMessages) => paxos_messages(shared, request),
    };
    respond(reply)
}

/// `POST /client-request`: reads the command, waits for discovery, submits, waits for the
/// answer. The steps are [`handling`]'s.
fn client_request(shared: &Shared, request: &rouille::Request) -> Reply {
    let result = run_command(shared, request);
    handling::finish(&shared.metrics, result)
}

fn run_command(shared: &Shared, request: &rouille::Request) -> Result<Answer, Refused> {
    handling::open(shared.shutdown.is_cancelled())?;
    let budget = &shared.bodies.clients;
    let (body, _share) = read_body(shared, request, budget, MAX_BODY).map_err(handling::unread)?;
    let command = handling::command(&body)?;
    let _waiting = handling::queue(&shared.metrics)?;
    let timeout = shared.config.request_timeout();
    let deadline = Instant::now() + timeout;
    // Requests that arrive before the server has found itself wait here, as in the seed talk.
    handling::discovered(shared.found.wait_deadline(deadline), timeout)?;
    let (reply, pending) = promise::pending();
    let submit = Event::Submit {
        command,
        reply,
        deadline,
    };
    shared
        .events
        .send(submit)
        .map_err(|_| handling::not_submitted())?;
    let answer = pending.wait_deadline(deadline);
    handling::answered(answer, shared.shutdown.is_cancelled(), timeout)
}

/// `GET /status`.
fn status(shared: &Shared) -> Reply {
    let snapshot = shared.status.get();
    http::status(shared.id.as_str(), RUNTIME, &shared.config, &snapshot)
}

/// `GET /metrics`, in the Prometheus text format rather than JSON.
fn metrics(shared: &Shared) -> rouille::Response {
    let text = shared.metrics.render(RUNTIME, &shared.status.get());
    rouille::Response::from_data(metrics::CONTENT_TYPE, text)
}

/// `POST /paxos/messages`, authenticated already: checks the envelope, hands the messages to
/// the driver, and answers `204` at once.
fn paxos_messages(shared: &Shared, request: &rouille::Request) -> Reply {
    let budget = &shared.bodies.peers;
    let (body, _share) = match read_body(shared, request, budget, MAX_PEER_BODY) {
        Ok(read) => read,
        Err(reply) => return routing::refuse_peer(&shared.metrics, reply),
    };
    let (found, stopping) = (shared.found.get(), shared.shutdown.is_cancelled());
    let envelope = match handling::envelope(&body, &shared.config, &shared.metrics, found, stopping)
    {
        Ok(envelope) => envelope,
        Err(reply) => return reply,
    };
    if shared.events.send(Event::Peer(envelope)).is_err() {
        return http::shutting_down();
    }
    http::accepted()
}

/// Reads a body of at most `limit` bytes, holding its share of `budget`; `413` if it is longer,
/// `408` if it does not arrive within the client timeout (tiny_http enforces the deadline),
/// `503` if the budget is spent.
fn read_body<'a>(
    shared: &Shared,
    request: &rouille::Request,
    budget: &'a Budget,
    limit: usize,
) -> Result<(Vec<u8>, Share<'a>), Reply> {
    let declared = request
        .header("Content-Length")
        .and_then(|v| v.parse().ok());
    let share = budget.take(handling::declared(declared, limit)?)?;
    let mut body = Vec::new();
    if let Some(data) = request.data() {
        // One byte past the limit tells an over-long body without reading all of it.
        data.take(limit as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|error| match error.kind() {
                ErrorKind::TimedOut => http::body_timeout(shared.config.client_timeout()),
                _ => http::unreadable_body(),
            })?;
    }
    if body.len() > limit {
        return Err(http::body_too_large(limit));
    }
    Ok((body, share))
}

/// Turns a [`Reply`] into a rouille response.
fn respond(reply: Reply) -> rouille::Response {
    let mut response = if reply.status == 204 {
        rouille::Response::empty_204()
    } else {
        rouille::Response::from_data(http::JSON, reply.body).with_status_code(reply.status)
    };
    if let Some(allow) = reply.allow {
        response = response.with_additional_header("Allow", allow);
    }
    response
}
