//! The HTTP routes, on axum.
//!
//! Each request runs as a future inside its connection's task and may await: a client request
//! waits there for discovery and then for its command to commit. Statuses and bodies come from
//! [`paxos_host::http`], so both servers answer alike.
//!
//! Under axum sits hyper, which reads each connection in a task of its own. `axum::serve` sets no
//! deadline for request heads and no bound on connections, so an idle or slow client would hold
//! its task and socket forever; [`accept`] accepts connections itself and gives each to hyper
//! with [`connection_limits`](crate::deadline::connection_limits) instead. At shutdown it stops accepting and closes idle keep-alive
//! connections at once; connections still in the middle of a request get
//! [`SHUTDOWN_GRACE`](paxos_host::SHUTDOWN_GRACE) to finish, after which [`Http::stop`] closes
//! them; it returns once every connection task has ended.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use http_body_util::LengthLimitError;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use paxos_core::Answer;
use paxos_host::handling::{self, Budget, Refused, Share};
use paxos_host::http::{self, MAX_BODY, MAX_PEER_BODY, Reply};
use paxos_host::metrics;
use paxos_host::routing::{self, Route};
use paxos_host::watches::Seen;
use paxos_host::{RunError, log};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::either::Either;
use tokio_util::task::TaskTracker;

use crate::deadline::{self, WriteDeadline};
use crate::driver::Event;
use crate::promise;
use crate::{RUNTIME, Shared, Shutdown};

/// The pause after a failed `accept`, such as running out of file descriptors, so that the
/// accept loop does not spin while connections close.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// The running HTTP server.
#[derive(Debug)]
pub struct Http {
    task: JoinHandle<()>,
    /// Every connection's task, which the accept task waits for.
    connections: TaskTracker,
    /// Cancelled when the grace ends: the connections still open then close.
    grace_over: Shutdown,
}

/// Serves on `listener` in a task of its own until shutdown.
pub fn start(listener: TcpListener, shared: Arc<Shared>) -> Result<Http, RunError> {
    let address = listener
        .local_addr()
        .map_err(|e| RunError::unreadable_address(&e))?;
    // One handler for every path: routing is `paxos_host::routing`'s, as on the threaded twin.
    let app = Router::new()
        .fallback(handle)
        .with_state(Arc::clone(&shared));
    log::listening(address);
    let (connections, grace_over) = (TaskTracker::new(), Shutdown::new());
    let accepting = accept(
        listener,
        app,
        shared,
        connections.clone(),
        grace_over.clone(),
    );
    let task = tokio::spawn(accepting);
    Ok(Http {
        task,
        connections,
        grace_over,
    })
}

/// Accepts connections until shutdown, serving each in a task of its own, at most
/// `max_connections` at once; returns once every connection has closed. At the bound it accepts
/// nothing until a connection closes: new connections wait in the kernel's listen backlog, and
/// the header timeout closes idle and slow ones within `client_timeout`. 5,000 idle or slow
/// clients cost 5,000 sleeping tasks, well within the default bound of 8,192.
async fn accept(
    listener: TcpListener,
    app: Router,
    shared: Arc<Shared>,
    connections: TaskTracker,
    grace_over: Shutdown,
) {
    let shutdown = &shared.shutdown;
    let builder = deadline::connection_limits(&shared.config);
    let slots = Arc::new(Semaphore::new(shared.config.max_connections));
    let tls = shared
        .tls
        .as_ref()
        .map(|tls| TlsAcceptor::from(Arc::clone(&tls.server)));
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
        let tcp = WriteDeadline::new(tcp, shared.config.client_timeout());
        let (builder, tls, shared) = (builder.clone(), tls.clone(), Arc::clone(&shared));
        let (shutdown, grace_over) = (shutdown.clone(), grace_over.clone());
        connections.spawn(async move {
            let _slot = slot;
            let stream = match tls {
                None => Either::Left(tcp),
                Some(tls) => match handshake(&shared, &tls, tcp).await {
                    Some(stream) => Either::Right(stream),
                    None => return,
                },
            };
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let mut connection = pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                () = shutdown.cancelled() => connection.as_mut().graceful_shutdown(),
            }
            // Idle connections close at once; one in the middle of a request finishes it, unless
            // the grace ends first: then dropping the connection drops its request.
            tokio::select! {
                _ = connection => {}
                () = grace_over.cancelled() => {}
            }
        });
    }
    connections.close();
    connections.wait().await;
}

/// Runs the TLS handshake of an accepted connection, in the connection's task (a client that
/// never finishes its handshake holds up no one else), within the head deadline
/// (`client_timeout_ms`). One that fails or times out is counted; the member stopping ends it
/// uncounted.
async fn handshake(
    shared: &Shared,
    tls: &TlsAcceptor,
    tcp: WriteDeadline<TcpStream>,
) -> Option<TlsStream<WriteDeadline<TcpStream>>> {
    let accepting = tokio::time::timeout(shared.config.client_timeout(), tls.accept(tcp));
    tokio::select! {
        accepted = accepting => match accepted {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(_)) | Err(_) => {
                shared.metrics.tls_handshake_failed();
                None
            }
        },
        () = shared.shutdown.cancelled() => None,
    }
}

impl Http {
    /// Waits up to `grace` for in-flight requests to finish after shutdown was requested, closes
    /// the connections still open past it, and returns once every task of the server has ended.
    pub async fn stop(self, grace: Duration) {
        // The accept task and every connection's task see the token themselves.
        if tokio::time::timeout(grace, self.connections.wait())
            .await
            .is_err()
        {
            log::connections_outlived_grace(grace, self.connections.len());
            self.grace_over.cancel();
        }
        let _ = self.task.await;
    }
}

/// Serves one request.
async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    serve(&shared, request, route_handler).await
}

/// Routes `request` and runs `handler` for its route. A panic in `handler` is contained here:
/// counted, logged with the route, and answered `500`, while the member serves on. (hyper would
/// end the connection's task with it and tell nobody.) Tests pass a `handler` that panics.
async fn serve<'a, F>(
    shared: &'a Shared,
    request: Request,
    handler: impl FnOnce(&'a Shared, Route, Request) -> F,
) -> Response
where
    F: Future<Output = Response>,
{
    if let Some(status) = malformed(&request) {
        return refuse(status);
    }
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    let (method, target) = (request.method().as_str(), &request.uri().to_string());
    let route = routing::route(
        &shared.config,
        &shared.metrics,
        method,
        target,
        authorization,
    );
    let route = match route {
        Ok(route) => route,
        Err(reply) => return respond(reply),
    };
    // Whatever the handler held is dropped as it unwinds: its body's share of the budget, its
    // place among the waiting requests, its promise.
    let handled = AssertUnwindSafe(async move { handler(shared, route, request).await });
    match handled.catch_unwind().await {
        Ok(response) => response,
        Err(panic) => respond(handling::panicked(&shared.metrics, route, &*panic)),
    }
}

/// The handler of each route.
async fn route_handler(shared: &Shared, route: Route, request: Request) -> Response {
    let reply = match route {
        Route::ServerId => http::server_id(shared.id.as_str()),
        Route::ClientRequest => client_request(shared, request).await,
        Route::Watch => watch(shared, &request.uri().to_string()).await,
        Route::Status => status(shared),
        Route::Metrics => return metrics(shared),
        Route::PaxosMessages => paxos_messages(shared, request).await,
    };
    respond(reply)
}

/// `POST /client-request`: reads the command, waits for discovery, submits, waits for the
/// answer. The steps are [`handling`]'s.
async fn client_request(shared: &Shared, request: Request) -> Reply {
    let mut timing = handling::Timing::start();
    let result = run_command(shared, request, &mut timing).await;
    handling::finish(&shared.metrics, timing, result)
}

async fn run_command(
    shared: &Shared,
    request: Request,
    timing: &mut handling::Timing,
) -> Result<Answer, Refused> {
    handling::open(shared.shutdown.is_cancelled())?;
    let budget = &shared.bodies.clients;
    let (body, _share) = read_body(shared, request, budget, MAX_BODY)
        .await
        .map_err(handling::unread)?;
    let command = handling::command(&body, timing)?;
    let _waiting = handling::queue(&shared.metrics)?;
    let timeout = shared.config.request_timeout();
    let deadline = Instant::now() + timeout;
    // Requests that arrive before the server has found itself wait here, as in the seed talk.
    handling::discovered(shared.found.wait_deadline(deadline).await, timeout)?;
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
    let answer = pending.wait_deadline(deadline).await;
    handling::answered(answer, shared.shutdown.is_cancelled(), timeout)
}

/// `GET /watch?key=K&after=I&wait=S`: waits for discovery, hands the watch to the driver, waits
/// for a change or the watch's deadline. The steps are [`handling`]'s.
async fn watch(shared: &Shared, target: &str) -> Reply {
    let result = run_watch(shared, target).await;
    handling::finish_watch(&shared.metrics, result)
}

async fn run_watch(shared: &Shared, target: &str) -> Result<Seen, Refused> {
    handling::open(shared.shutdown.is_cancelled())?;
    let watch = handling::watch(target, &shared.config)?;
    let _watching = handling::watching(&shared.metrics, &shared.config)?;
    let (deadline, wait) = (watch.deadline, shared.config.max_watch_wait());
    // Watches that arrive before the server has found itself wait here too.
    handling::discovered(shared.found.wait_deadline(deadline).await, wait)?;
    let (reply, pending) = promise::pending();
    let event = Event::Watch { watch, reply };
    shared
        .events
        .send(event)
        .map_err(|_| handling::not_submitted())?;
    handling::seen(
        pending
            .wait_deadline(deadline + handling::WATCH_GRACE)
            .await,
    )
}

/// `GET /status`.
fn status(shared: &Shared) -> Reply {
    let snapshot = shared.status.get();
    http::status(shared.id.as_str(), RUNTIME, &shared.config, &snapshot)
}

/// `GET /metrics`, in the Prometheus text format rather than JSON.
fn metrics(shared: &Shared) -> Response {
    let text = shared.metrics.render(RUNTIME, &shared.status.get());
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

/// `POST /paxos/messages`, authenticated already: checks the envelope, hands the messages to
/// the driver, and answers `204` at once.
async fn paxos_messages(shared: &Shared, request: Request) -> Reply {
    let budget = &shared.bodies.peers;
    let (body, _share) = match read_body(shared, request, budget, MAX_PEER_BODY).await {
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
/// `408` if it does not arrive within the client timeout (hyper has no body deadline of its
/// own), `503` if the budget is spent.
async fn read_body<'a>(
    shared: &Shared,
    request: Request,
    budget: &'a Budget,
    limit: usize,
) -> Result<(Vec<u8>, Share<'a>), Reply> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let share = budget.take(handling::declared(declared, limit)?)?;
    let timeout = shared.config.client_timeout();
    let reading = axum::body::to_bytes(request.into_body(), limit);
    let Ok(read) = tokio::time::timeout(timeout, reading).await else {
        return Err(http::body_timeout(timeout));
    };
    let body = read.map_err(|error| match error.into_inner().is::<LengthLimitError>() {
        true => http::body_too_large(limit),
        false => http::unreadable_body(),
    })?;
    Ok((body.to_vec(), share))
}

/// What hyper let through that the threaded twin's tiny_http refuses: see
/// [`routing::malformed`].
fn malformed(request: &Request) -> Option<u16> {
    let target = request.uri().path_and_query().map_or("", |t| t.as_str());
    let http_11 = request.version() == axum::http::Version::HTTP_11;
    let headers = request.headers();
    let hosts: Vec<&[u8]> = headers
        .get_all(header::HOST)
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    let codings = headers
        .get_all(header::TRANSFER_ENCODING)
        .into_iter()
        .map(|v| v.as_bytes());
    routing::malformed(target, http_11, &hosts, codings)
}

/// An empty refusal of a malformed request. Its body is left unread, so the connection closes.
fn refuse(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let close = [(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    )];
    (status, close).into_response()
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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Mutex;

    use paxos_host::handling::Bodies;
    use paxos_host::{Config, Metrics, ServerId, StatusBoard};
    use tokio::sync::mpsc;

    use super::*;
    use crate::Shutdown;
    use crate::promise::Promise;

    /// What a handler sees, with no driver behind it.
    fn shared() -> Shared {
        let (events, _) = mpsc::unbounded_channel();
        Shared {
            id: ServerId::random(),
            config: Config::with_servers(vec!["127.0.0.1:1".into()]),
            metrics: Metrics::new(),
            status: StatusBoard::new(),
            found: Promise::new(),
            events,
            shutdown: Shutdown::new(),
            bodies: Bodies::default(),
            tls: None,
        }
    }

    /// The log lines written on this thread while `f` runs, and what `f` returned.
    async fn logged<T>(f: impl Future<Output = T>) -> (String, T) {
        #[derive(Clone, Default)]
        struct Lines(Arc<Mutex<Vec<u8>>>);
        impl Write for Lines {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().write(bytes)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        // The test's runtime has one thread, so everything `f` does runs on this one.
        let value = {
            let _default = tracing::subscriber::set_default(subscriber);
            f.await
        };
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        (text, value)
    }

    /// A route handler that fails: a stand-in for a bug in any step of any route.
    async fn failing(_: &Shared, _: Route, _: Request) -> Response {
        panic!("injected failure")
    }

    /// A request as hyper hands it over, as `rouille::Request::fake_http` makes one.
    fn fake_http(method: &str, path: &str, body: &'static [u8]) -> Request {
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "localhost")
            .body(Body::from(body))
            .unwrap()
    }

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX);
        String::from_utf8(bytes.await.unwrap().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_panicking_handler_is_answered_500_counted_and_logged() {
        let shared = shared();
        let command = br#"{"op":"put","key":"k","value":"v"}"#;
        let request = fake_http("POST", "/client-request", command);
        let (log, response) = logged(serve(&shared, request, failing)).await;
        assert_eq!(response.status(), 500);
        assert_eq!(
            body(response).await,
            r#"{"error":"the server failed while handling POST /client-request; if the request carried a command, its outcome is unknown"}"#
        );
        let metrics = shared.metrics.render(RUNTIME, &shared.status.get());
        assert!(
            metrics.contains("paxos_handler_panics_total 1\n"),
            "{metrics}"
        );
        assert!(log.contains("POST /client-request"), "{log}");
        assert!(log.contains("injected failure"), "{log}");
        // The member serves on.
        let request = fake_http("GET", "/server_id", b"");
        let response = serve(&shared, request, route_handler).await;
        assert_eq!(response.status(), 200);
        assert_eq!(body(response).await, format!("\"{}\"", shared.id));
    }
}
