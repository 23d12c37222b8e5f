//! The HTTP routes, on rouille.
//!
//! Each request runs on the thread that read it from its connection, and may block: a client
//! request waits there for discovery and then for its command to commit. Statuses and bodies
//! come from [`paxos_host::http`], so both servers answer alike.
//!
//! Under rouille sits tiny_http, which reads each connection on a thread of its own. The patched
//! copies (see `vendor/tiny_http/PATCHED.md` and `vendor/rouille/PATCHED.md`) let that thread
//! run the handler too, so a request is read, handled, waited for and answered on one thread:
//! no queue, no dispatch loop, no handler pool. Upstream tiny_http set no socket timeouts and no
//! bound on its threads, so idle or slow clients could hold threads without end; the patched
//! copy takes [`connection_limits`](crate::deadline::connection_limits): a deadline for each
//! request head and each body, a write timeout, and at most `max_connections` connection threads,
//! which now bounds the handlers as well. A client that stalls in its body, or never reads its
//! answer, holds its own connection's thread and nothing else. The patch also keeps a request
//! head or a declared body length from exhausting memory. At shutdown [`Http::shut_down`] stops
//! accepting and closes idle keep-alive connections at once; connections still in the middle of a
//! request get [`SHUTDOWN_GRACE`](paxos_host::SHUTDOWN_GRACE) to finish, after which [`Http::stop`] closes
//! them; it returns once every connection thread has ended.
//!
//! rouille's own dispatch, a loop that takes each request off tiny_http's queue and hands it to
//! a pool or a new thread, remains as the benchmark's [`variants`].

use std::io::{ErrorKind, Read};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use paxos_core::Answer;
use paxos_host::handling::{self, Budget, Refused, Share};
use paxos_host::http::{self, MAX_BODY, MAX_PEER_BODY, Reply};
use paxos_host::metrics;
use paxos_host::routing::{self, Route};
use paxos_host::watches::Seen;
use paxos_host::{RunError, log};

use crate::deadline;
use crate::driver::Event;
use crate::promise;
use crate::variants::{self, Dispatch};
use crate::{RUNTIME, Shared};

/// rouille's server with this server's handler, whose closure type has no name.
type Server = rouille::Server<Box<dyn Fn(&rouille::Request) -> rouille::Response + Send + Sync>>;

/// The running HTTP server.
pub struct Http {
    server: Arc<Server>,
    /// The variants' dispatch loop; `None` as designed, where the connection threads handle
    /// their own requests.
    dispatch: Option<Dispatch>,
}

/// Binds `listen` and serves on tiny_http's connection threads until shutdown.
pub fn start(listen: &str, shared: Arc<Shared>) -> Result<Http, RunError> {
    let limits = deadline::connection_limits(&shared.config);
    let tls = tls(&shared);
    let handler: Box<dyn Fn(&rouille::Request) -> rouille::Response + Send + Sync> =
        Box::new(move |request| handle(&shared, request));
    let build = || variants::server(listen, handler);
    let server = limits
        .around(|| match tls {
            Some(tls) => tls.around(build),
            None => build(),
        })
        .map_err(|error| match error.downcast_ref::<std::io::Error>() {
            Some(io) => RunError::bind(listen, io),
            None => RunError(format!("cannot listen on {listen}: {error}")),
        })?;
    log::listening(server.server_addr());
    let server = Arc::new(server);
    let dispatch = Dispatch::start(&server)?;
    Ok(Http { server, dispatch })
}

/// The patched tiny_http's TLS, when the config has `tls`: each connection's handshake runs on
/// its own thread at its first read, within the head deadline, and one that fails or times out
/// is counted.
fn tls(shared: &Arc<Shared>) -> Option<tiny_http::Tls> {
    let config = Arc::clone(&shared.tls.as_ref()?.server);
    let shared = Arc::clone(shared);
    Some(tiny_http::Tls {
        config,
        on_handshake_failure: Arc::new(move || shared.metrics.tls_handshake_failed()),
    })
}

impl std::fmt::Debug for Http {
    // rouille's server has no `Debug`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("address", &self.server.server_addr())
            .field("dispatch_loop", &self.dispatch.is_some())
            .finish()
    }
}

impl Http {
    /// Stops accepting and closes idle connections at once; a connection in the middle of a
    /// request finishes it and then closes.
    pub fn shut_down(&self) {
        self.server.shut_down();
    }

    /// Waits up to `grace` for in-flight requests to finish after shutdown was requested, closes
    /// the connections still open past it, and returns once every thread of the server has
    /// ended.
    pub fn stop(self, grace: Duration) {
        self.shut_down();
        if let Some(dispatch) = self.dispatch {
            dispatch.stop();
        }
        let left = self.server.stop(grace);
        if left > 0 {
            log::connections_outlived_grace(grace, left);
        }
    }
}

/// Serves one request.
fn handle(shared: &Shared, request: &rouille::Request) -> rouille::Response {
    serve(shared, request, route_handler)
}

/// Routes `request` and runs `handler` for its route. A panic in `handler` is contained here:
/// counted, logged with the route, and answered `500`, while the member serves on. (rouille
/// would catch it too, but answer with an HTML page and tell nobody.) Tests pass a `handler` that
/// panics.
fn serve<'a>(
    shared: &'a Shared,
    request: &rouille::Request,
    handler: impl FnOnce(&'a Shared, Route, &rouille::Request) -> rouille::Response,
) -> rouille::Response {
    let authorization = request.header("Authorization").map(str::as_bytes);
    let (method, target) = (request.method(), request.raw_url());
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
    match panic::catch_unwind(AssertUnwindSafe(|| handler(shared, route, request))) {
        Ok(response) => response,
        Err(panic) => respond(handling::panicked(&shared.metrics, route, &*panic)),
    }
}

/// The handler of each route.
fn route_handler(shared: &Shared, route: Route, request: &rouille::Request) -> rouille::Response {
    let reply = match route {
        Route::ServerId => http::server_id(shared.id.as_str()),
        Route::ClientRequest => client_request(shared, request),
        Route::Watch => watch(shared, request.raw_url()),
        Route::Status => status(shared),
        Route::Metrics => return metrics(shared),
        Route::PaxosMessages => paxos_messages(shared, request),
    };
    respond(reply)
}

/// `POST /client-request`: reads the command, waits for discovery, submits, waits for the
/// answer. The steps are [`handling`]'s.
fn client_request(shared: &Shared, request: &rouille::Request) -> Reply {
    let mut timing = handling::Timing::start();
    let result = run_command(shared, request, &mut timing);
    handling::finish(&shared.metrics, timing, result)
}

fn run_command(
    shared: &Shared,
    request: &rouille::Request,
    timing: &mut handling::Timing,
) -> Result<Answer, Refused> {
    handling::open(shared.shutdown.is_cancelled())?;
    let budget = &shared.bodies.clients;
    let (body, _share) = read_body(shared, request, budget, MAX_BODY).map_err(handling::unread)?;
    let command = handling::command(&body, timing)?;
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

/// `GET /watch?key=K&after=I&wait=S`: waits for discovery, hands the watch to the driver, waits
/// for a change or the watch's deadline. The steps are [`handling`]'s.
fn watch(shared: &Shared, target: &str) -> Reply {
    let result = run_watch(shared, target);
    handling::finish_watch(&shared.metrics, result)
}

fn run_watch(shared: &Shared, target: &str) -> Result<Seen, Refused> {
    handling::open(shared.shutdown.is_cancelled())?;
    let watch = handling::watch(target, &shared.config)?;
    let _watching = handling::watching(&shared.metrics, &shared.config)?;
    let (deadline, wait) = (watch.deadline, shared.config.max_watch_wait());
    // Watches that arrive before the server has found itself wait here too.
    handling::discovered(shared.found.wait_deadline(deadline), wait)?;
    let (reply, pending) = promise::pending();
    let event = Event::Watch { watch, reply };
    shared
        .events
        .send(event)
        .map_err(|_| handling::not_submitted())?;
    handling::seen(pending.wait_deadline(deadline + handling::WATCH_GRACE))
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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Mutex, mpsc};

    use paxos_host::handling::Bodies;
    use paxos_host::{Config, Metrics, ServerId, StatusBoard};

    use super::*;
    use crate::Shutdown;
    use crate::promise::Promise;

    /// What a handler sees, with no driver behind it.
    fn shared() -> Shared {
        let (events, _) = mpsc::channel();
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
    fn logged<T>(f: impl FnOnce() -> T) -> (String, T) {
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
        let value = tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        (text, value)
    }

    /// A route handler that fails: a stand-in for a bug in any step of any route.
    fn failing(_: &Shared, _: Route, _: &rouille::Request) -> rouille::Response {
        panic!("injected failure")
    }

    fn body(response: rouille::Response) -> String {
        let mut text = String::new();
        let (mut data, _) = response.data.into_reader_and_size();
        data.read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn a_panicking_handler_is_answered_500_counted_and_logged() {
        let shared = shared();
        let command = br#"{"op":"put","key":"k","value":"v"}"#.to_vec();
        let request = rouille::Request::fake_http("POST", "/client-request", vec![], command);
        let (log, response) = logged(|| serve(&shared, &request, failing));
        assert_eq!(response.status_code, 500);
        assert_eq!(
            body(response),
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
        let request = rouille::Request::fake_http("GET", "/server_id", vec![], Vec::new());
        let response = serve(&shared, &request, route_handler);
        assert_eq!(response.status_code, 200);
        assert_eq!(body(response), format!("\"{}\"", shared.id));
    }
}
