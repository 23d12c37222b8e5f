//! The HTTP routes, on axum.
//!
//! Each request runs as a future inside its connection's task and may await: a client request
//! waits there for discovery and then for its command to commit. Statuses and bodies come from
//! [`paxos_host::http`], so both servers answer alike.
//!
//! Under axum sits hyper, which reads each connection in a task of its own. At shutdown axum
//! stops accepting and closes idle keep-alive connections at once; connections still in the
//! middle of a request get [`SHUTDOWN_GRACE`](paxos_host::SHUTDOWN_GRACE) to finish, after which
//! [`Http::stop`] aborts them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use paxos_core::Command;
use paxos_host::http::{self, MAX_BODY, MAX_PEER_BODY, Reply, Route};
use paxos_host::metrics::{self, Outcome};
use paxos_host::{RunError, log};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::driver::Event;
use crate::promise;
use crate::{RUNTIME, Shared};

/// The running HTTP server.
#[derive(Debug)]
pub struct Http {
    task: JoinHandle<()>,
}

/// Serves on `listener` in a task of its own until shutdown.
pub fn start(listener: TcpListener, shared: Arc<Shared>) -> Result<Http, RunError> {
    let shutdown = shared.shutdown.clone();
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
        .with_state(shared);
    log::listening(address);
    let task = tokio::spawn(async move {
        let stopping = async move { shutdown.cancelled().await };
        // `serve` only fails to accept on errors it retries itself; it returns once the
        // shutdown signal fired and every connection closed.
        // No Nagle delay: a response that leaves in two segments must not wait for the
        // client's delayed ACK (the threaded twin's patched tiny_http does the same).
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(stopping)
            .await;
    });
    Ok(Http { task })
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
    let body = match read_body(request, MAX_BODY).await {
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
        &shared.config.servers,
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
    let body = match read_body(request, MAX_PEER_BODY).await {
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

/// Reads a body of at most `limit` bytes; `413` if it is longer.
async fn read_body(request: Request, limit: usize) -> Result<Vec<u8>, Reply> {
    let declared = content_length(request.headers());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(http::body_too_large(limit));
    }
    match axum::body::to_bytes(request.into_body(), limit).await {
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
