//! The HTTP routes, on axum.
//!
//! Each request runs as a future inside its connection's task and may await: a client request
//! waits there for discovery and then for its command to commit. Statuses and bodies come from
//! [`paxos_host::http`], so both servers answer alike.
//!
//! Under axum sits hyper, which reads each connection in a task of its own. `axum::serve` sets no
//! deadline for request heads and no bound on connections, so an idle or slow client would hold
//! its task and socket forever; [`serve`] accepts connections itself and gives each to hyper
//! with [`connection_limits`] instead. At shutdown it stops accepting and closes idle keep-alive
//! connections at once; connections still in the middle of a request get
//! [`SHUTDOWN_GRACE`](paxos_host::SHUTDOWN_GRACE) to finish, after which [`Http::stop`] aborts
//! them.

use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use paxos_core::Command;
use paxos_host::http::{self, MAX_BODY, MAX_PEER_BODY, MAX_WAITING_CLIENTS, Reply, Route};
use paxos_host::metrics::{self, Outcome};
use paxos_host::{Config, RunError, log};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use crate::driver::Event;
use crate::promise;
use crate::{RUNTIME, Shared};

/// The pause after a failed `accept`, such as running out of file descriptors, so that the
/// accept loop does not spin while connections close.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// The running HTTP server.
#[derive(Debug)]
pub struct Http {
    task: JoinHandle<()>,
}

/// Serves on `listener` in a task of its own until shutdown.
pub fn start(listener: TcpListener, shared: Arc<Shared>) -> Result<Http, RunError> {
    let address = listener
        .local_addr()
        .map_err(|e| RunError(format!("cannot read the listening address: {e}")))?;
    let app = Router::new()
        .route(Route::ServerId.path(), get(server_id))
        .route(Route::ClientRequest.path(), post(client_request))
        .route(Route::Status.path(), get(status))
        .route(Route::Metrics.path(), get(metrics))
        .route(Route::PaxosMessages.path(), post(paxos_messages))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // A layer runs before routing, for the fallbacks too.
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            guard_peers,
        ))
        // The outermost layer, so it runs first.
        .layer(middleware::from_fn(refuse_malformed))
        .with_state(Arc::clone(&shared));
    log::listening(address);
    let task = tokio::spawn(serve(listener, app, shared));
    Ok(Http { task })
}

/// What hyper allows each connection. A client gets `client_timeout` for a request head, counted
/// from when hyper starts waiting for it (the accept, or the end of the previous exchange), so it
/// is also the idle keep-alive timeout: hyper has one clock for both. The body's deadline is
/// [`read_body`]'s.
pub fn connection_limits(config: &Config) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.client_timeout());
    builder
}

/// Accepts connections until shutdown, serving each in a task of its own, at most
/// `max_connections` at once; returns once every connection has closed. At the bound it accepts
/// nothing until a connection closes: new connections wait in the kernel's listen backlog, and
/// the header timeout closes idle and slow ones within `client_timeout`. 5,000 idle or slow
/// clients cost 5,000 sleeping tasks, well within the default bound of 8,192.
async fn serve(listener: TcpListener, app: Router, shared: Arc<Shared>) {
    let shutdown = &shared.shutdown;
    let builder = connection_limits(&shared.config);
    let slots = Arc::new(Semaphore::new(shared.config.max_connections));
    let connections = TaskTracker::new();
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore is never closed"),
            () = shutdown.cancelled() => break,
        };
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(error) => {
                    log::accept_failed(&error);
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        // No Nagle delay: a response that leaves in two segments must not wait for the client's
        // delayed ACK (the threaded twin's patched tiny_http does the same).
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = builder.serve_connection(TokioIo::new(tcp), service);
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let _slot = slot;
            let mut connection = pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                () = shutdown.cancelled() => connection.as_mut().graceful_shutdown(),
            }
            // Idle connections close at once; one in the middle of a request finishes it.
            let _ = connection.await;
        });
    }
    connections.close();
    connections.wait().await;
}

impl Http {
    /// Waits up to `grace` for in-flight requests to finish after shutdown was requested.
    pub async fn stop(self, grace: Duration) {
        let abort = self.task.abort_handle();
        if tokio::time::timeout(grace, self.task).await.is_err() {
            log::connections_outlived_grace(grace);
            abort.abort();
        }
    }
}

/// `GET /server_id`.
async fn server_id(State(shared): State<Arc<Shared>>) -> Response {
    respond(http::server_id(shared.id.as_str()))
}

/// `POST /client-request`: waits for discovery, submits, waits for the answer.
async fn client_request(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (outcome, reply) = run_command(&shared, request).await;
    shared.metrics.client_request(outcome);
    respond(reply)
}

async fn run_command(shared: &Shared, request: Request) -> (Outcome, Reply) {
    if shared.shutdown.is_cancelled() {
        return (Outcome::Unavailable, http::shutting_down());
    }
    let _waiting = shared.metrics.client_waiting();
    let waiting = shared.metrics.client_waiting_now();
    if waiting > MAX_WAITING_CLIENTS {
        return (Outcome::Unavailable, http::overloaded(waiting));
    }
    let body = match read_body(shared, request, MAX_BODY).await {
        Ok(body) => body,
        Err(reply) => return (Outcome::TooLarge, reply),
    };
    let command = match Command::from_json(&body) {
        Ok(command) => command,
        Err(sentence) => return (Outcome::BadRequest, http::bad_request(&sentence)),
    };
    let timeout = shared.config.request_timeout();
    let deadline = Instant::now() + timeout;
    // Requests that arrive before the server has found itself wait here, as in the seed talk.
    match shared.found.wait_deadline(deadline).await {
        Some(Some(_)) => {}
        Some(None) => return (Outcome::Unavailable, http::shutting_down()),
        None => return (Outcome::Unavailable, http::still_discovering(timeout)),
    }
    let (reply, pending) = promise::pending();
    let submit = Event::Submit {
        command,
        reply,
        deadline,
    };
    if shared.events.send(submit).is_err() {
        return (Outcome::Unavailable, http::shutting_down());
    }
    match pending.wait_deadline(deadline).await {
        Some(answer) => (Outcome::of(&answer), http::answer(&answer)),
        None if shared.shutdown.is_cancelled() => (Outcome::Unavailable, http::shutting_down()),
        None => (Outcome::Timeout, http::timeout(timeout)),
    }
}

/// `GET /status`.
async fn status(State(shared): State<Arc<Shared>>) -> Response {
    let snapshot = shared.status.get();
    respond(http::status(
        shared.id.as_str(),
        RUNTIME,
        &shared.config,
        &snapshot,
    ))
}

/// `GET /metrics`, in the Prometheus text format rather than JSON.
async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let text = shared.metrics.render(RUNTIME, &shared.status.get());
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

/// `POST /paxos/messages`, authenticated already: checks the envelope, hands the messages to
/// the driver, and answers `204` at once.
async fn paxos_messages(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    respond(peer_messages(&shared, request).await)
}

async fn peer_messages(shared: &Shared, request: Request) -> Reply {
    let body = match read_body(shared, request, MAX_PEER_BODY).await {
        Ok(body) => body,
        Err(reply) => return refuse_peer(shared, reply),
    };
    let envelope = match http::parse_envelope(&body, &shared.config, &shared.metrics) {
        Ok(envelope) => envelope,
        Err(reply) => return refuse_peer(shared, reply),
    };
    if !matches!(shared.found.get(), Some(Some(_))) || shared.shutdown.is_cancelled() {
        return refuse_peer(shared, http::peer_before_discovery());
    }
    shared.metrics.peer_received(envelope.messages.len());
    if shared.events.send(Event::Peer(envelope)).is_err() {
        return http::shutting_down();
    }
    http::accepted()
}

/// Refuses any request under `/paxos/` that lacks the cluster secret, before routing, so that
/// nothing about the peer paths shows without it.
async fn guard_peers(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    let secret = shared.config.secret.as_deref();
    match http::guard_peer_path(request.uri().path(), authorization, secret) {
        Some(reply) => respond(refuse_peer(&shared, reply)),
        None => next.run(request).await,
    }
}

fn refuse_peer(shared: &Shared, reply: Reply) -> Reply {
    shared.metrics.peer_rejected();
    log::peer_refused(&reply.body);
    reply
}

/// Refuses what hyper lets through and RFC 9112 does not, as the threaded twin's patched
/// tiny_http refuses it while reading the head (`vendor/tiny_http/src/util/framing.rs`), so that
/// both answer alike: a request target that is not ASCII (400, RFC 9112 §3.2; hyper takes
/// UTF-8), a missing, repeated or invalid `Host` (400, RFC 9112 §3.2), and a transfer coding
/// other than a single `chunked` (501, RFC 9112 §6.1; hyper refuses one that does not end in
/// `chunked` itself). The body is left unread, so the answer says `Connection: close` and hyper
/// closes the connection after it, as tiny_http does. Empty, as hyper's own refusals of
/// malformed heads are.
async fn refuse_malformed(request: Request, next: Next) -> Response {
    fn valid_host(value: &[u8]) -> bool {
        // `uri-host [ ":" port ]` (RFC 9110 §7.2): tiny_http's `is_valid_host`, byte for byte.
        let (host, port) = match value.iter().rposition(|&b| b == b':') {
            Some(at) if !value[at..].contains(&b']') => (&value[..at], &value[at + 1..]),
            _ => (value, &[][..]),
        };
        let host_ok = match host {
            [b'[', literal @ .., b']'] => {
                !literal.is_empty()
                    && literal
                        .iter()
                        .all(|&b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:".contains(&b))
            }
            _ => host
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(&b)),
        };
        host_ok && port.iter().all(u8::is_ascii_digit)
    }
    let target_ok = request
        .uri()
        .path_and_query()
        .is_none_or(|target| target.as_str().is_ascii());
    let hosts = request.headers().get_all(header::HOST);
    let count = hosts.iter().count();
    let http_11 = request.version() == axum::http::Version::HTTP_11;
    let host_ok =
        count <= 1 && (count == 1 || !http_11) && hosts.iter().all(|v| valid_host(v.as_bytes()));
    let (mut chunked, mut other) = (0, 0);
    for value in request.headers().get_all(header::TRANSFER_ENCODING) {
        let codings = value.as_bytes().split(|&b| b == b',');
        for coding in codings.map(|c| c.trim_ascii()).filter(|c| !c.is_empty()) {
            match coding.eq_ignore_ascii_case(b"chunked") {
                true => chunked += 1,
                false => other += 1,
            }
        }
    }
    let status = if !target_ok || !host_ok {
        StatusCode::BAD_REQUEST
    } else if other > 0 || chunked > 1 {
        StatusCode::NOT_IMPLEMENTED
    } else {
        return next.run(request).await;
    };
    let close = [(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    )];
    (status, close).into_response()
}

/// Any path that is not a route: `404`.
async fn not_found(uri: Uri) -> Response {
    respond(http::not_found(uri.path()))
}

/// A route with the wrong method: `405`, with the reply [`Route::find`] gives.
async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    match Route::find(method.as_str(), uri.path()) {
        Err(reply) => respond(reply),
        // axum calls this only for a method the route does not take.
        Ok(_) => respond(http::error(405, "method not allowed")),
    }
}

/// Reads a body of at most `limit` bytes; `413` if it is longer, `408` if it does not arrive
/// within the client timeout (hyper has no body deadline of its own).
async fn read_body(shared: &Shared, request: Request, limit: usize) -> Result<Vec<u8>, Reply> {
    let declared = content_length(request.headers());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(http::body_too_large(limit));
    }
    let timeout = shared.config.client_timeout();
    let reading = axum::body::to_bytes(request.into_body(), limit);
    let Ok(read) = tokio::time::timeout(timeout, reading).await else {
        return Err(http::body_timeout(timeout));
    };
    match read {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(error) => match error.into_inner().is::<http_body_util::LengthLimitError>() {
            true => Err(http::body_too_large(limit)),
            false => Err(http::unreadable_body()),
        },
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Turns a [`Reply`] into an axum response.
fn respond(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = if reply.status == 204 {
        status.into_response()
    } else {
        (
            status,
            [(header::CONTENT_TYPE, http::JSON)],
            Body::from(reply.body),
        )
            .into_response()
    };
    if let Some(allow) = reply.allow {
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    }
    response
}
