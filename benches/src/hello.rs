//! Hello-world HTTP servers, one per stack, run as children of the bench
//! (`paxos-bench hello STACK PORT`): each reads a request's body and answers a fixed small JSON
//! object, with no Paxos behind it. The same load generator drives them as the Paxos servers, so
//! the cost of the HTTP stack and its dispatch shows apart from the cost of the server's work.
//!
//! - `rouille`: stock rouille, its default dispatch: tiny_http's connection thread queues each
//!   request, rouille's loop (`Server::run`) takes it off the queue and hands it to a new thread,
//!   and the connection's thread waits for that thread's answer.
//! - `rouille-connection-threads`: the patched rouille as `paxos-threaded` runs it
//!   (`Server::new_on_connection_threads`): each request runs on its connection's thread.
//! - `hyper-axum`: as `paxos-async` runs it: an accept loop on tokio's multi-thread runtime, a
//!   hand-driven hyper HTTP/1 connection per accepted socket in a task of its own (behind the
//!   same semaphore, write deadline and shutdown token), axum's `Router` with one fallback
//!   handler.
//!
//! Both rouille stacks run tiny_http with `paxos-threaded`'s connection limits and the async one
//! runs hyper with `paxos-async`'s, from the servers' own `deadline` modules and the default
//! config, so the three differ only where the stacks do. The child prints `ready` once it
//! listens and exits when its stdin closes.

use std::io::{BufRead, Read};
use std::net::SocketAddr;
use std::sync::Arc;

use serde::Serialize;

/// The body every hello server answers.
const HELLO: &str = r#"{"hello":"world"}"#;

/// The HTTP stacks the hello scenario compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stack {
    /// rouille's default dispatch: a new thread per request.
    Rouille,
    /// rouille on tiny_http's connection threads, as `paxos-threaded` runs it.
    RouilleConnectionThreads,
    /// hyper's HTTP/1 connections driven by hand, axum's fallback handler, as `paxos-async`.
    HyperAxum,
}

pub const STACKS: [Stack; 3] = [
    Stack::Rouille,
    Stack::RouilleConnectionThreads,
    Stack::HyperAxum,
];

impl Stack {
    /// The name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Stack::Rouille => "rouille",
            Stack::RouilleConnectionThreads => "rouille-connection-threads",
            Stack::HyperAxum => "hyper-axum",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Stack::Rouille => "stock rouille: its dispatch loop hands each request to a new thread",
            Stack::RouilleConnectionThreads => {
                "rouille on the connection threads, as the threaded server runs it"
            }
            Stack::HyperAxum => {
                "hyper http1 connections driven by hand, axum fallback, as the async server runs it"
            }
        }
    }

    /// Which Paxos server's model this stack is.
    pub fn model(self) -> &'static str {
        match self {
            Stack::Rouille | Stack::RouilleConnectionThreads => "threaded",
            Stack::HyperAxum => "async",
        }
    }

    pub fn parse(name: &str) -> Option<Stack> {
        STACKS.into_iter().find(|s| s.name() == name)
    }
}

/// The child's side: serves `stack` on 127.0.0.1:`port` until stdin closes.
pub fn child_main(stack: &str, port: &str) -> Result<(), String> {
    let stack = Stack::parse(stack).ok_or_else(|| {
        let names: Vec<&str> = STACKS.iter().map(|s| s.name()).collect();
        format!("hello: one of {}, not {stack:?}", names.join(", "))
    })?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("hello: bad port {port:?}"))?;
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    // The server's config with its defaults (client timeout 30 s, 8,192 connections).
    let config = paxos_host::Config::with_servers(vec![address.to_string()]);
    // Exits the whole process, whatever the server's threads are doing, once stdin closes.
    let exit_on_eof = || {
        std::thread::spawn(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().lock().read_to_end(&mut sink);
            std::process::exit(0);
        });
    };
    match stack {
        Stack::Rouille | Stack::RouilleConnectionThreads => {
            let limits = paxos_threaded::deadline::connection_limits(&config);
            let server = limits
                .around(|| match stack {
                    Stack::Rouille => rouille::Server::new(address, rouille_hello),
                    _ => rouille::Server::new_on_connection_threads(address, rouille_hello),
                })
                .map_err(|e| format!("hello: cannot listen on {address}: {e}"))?;
            exit_on_eof();
            println!("ready");
            match stack {
                Stack::Rouille => server.run(),
                // The connection threads serve; this thread has nothing to do but wait.
                _ => loop {
                    std::thread::park();
                },
            }
            Ok(())
        }
        Stack::HyperAxum => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("hello: cannot start tokio: {e}"))?;
            runtime.block_on(async {
                let listener = tokio::net::TcpListener::bind(address)
                    .await
                    .map_err(|e| format!("hello: cannot listen on {address}: {e}"))?;
                exit_on_eof();
                println!("ready");
                serve_hyper(listener, &config).await;
                Ok(())
            })
        }
    }
}

/// rouille's handler: reads the body, answers hello.
fn rouille_hello(request: &rouille::Request) -> rouille::Response {
    let mut body = Vec::new();
    if let Some(mut data) = request.data() {
        let _ = data.read_to_end(&mut body);
    }
    rouille::Response::from_data("application/json", HELLO)
}

/// axum's fallback handler: reads the body, answers hello.
async fn axum_hello(request: axum::extract::Request) -> axum::response::Response {
    use axum::response::IntoResponse;
    let _ = axum::body::to_bytes(request.into_body(), 64 * 1024).await;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        HELLO,
    )
        .into_response()
}

/// The async server's accept loop (`crates/paxos-async/src/server.rs`), less its routes: a
/// connection slot, `TCP_NODELAY`, the write deadline, hyper's builder with the head deadline,
/// and a task per connection that also watches a shutdown token.
async fn serve_hyper(listener: tokio::net::TcpListener, config: &paxos_host::Config) {
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;
    use paxos_async::deadline::{self, WriteDeadline};

    let app = axum::Router::new().fallback(axum_hello);
    let builder = deadline::connection_limits(config);
    let slots = Arc::new(tokio::sync::Semaphore::new(config.max_connections));
    let shutdown = tokio_util::sync::CancellationToken::new();
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let tcp = WriteDeadline::new(tcp, config.client_timeout());
        let connection = builder.serve_connection(TokioIo::new(tcp), service);
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = shutdown.cancelled() => connection.as_mut().graceful_shutdown(),
            }
        });
    }
}

/// A running hello child, killed on drop.
#[derive(Debug)]
pub struct Child {
    pub address: String,
    child: std::process::Child,
}

impl Child {
    /// Starts `paxos-bench hello STACK PORT` (through `launcher`, e.g. `taskset -c 0`, when
    /// given) and waits until it listens.
    pub fn start(stack: Stack, launcher: &[String]) -> Result<Child, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
        let port = paxos_tests::ports::free_port();
        let mut command = match launcher.split_first() {
            Some((program, args)) => {
                let mut command = std::process::Command::new(program);
                command.args(args).arg(exe);
                command
            }
            None => std::process::Command::new(exe),
        };
        let mut child = command
            .args(["hello", stack.name(), &port.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the hello {} child: {e}", stack.name()))?;
        let mut line = String::new();
        let stdout = child.stdout.take().ok_or("child has no stdout")?;
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let started = Child {
            address: format!("127.0.0.1:{port}"),
            child,
        };
        match line.trim() {
            "ready" => Ok(started),
            _ => Err(format!(
                "the hello {} child did not get ready",
                stack.name()
            )),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // Closing stdin asks the child to exit; kill it if it has not.
        drop(self.child.stdin.take());
        if paxos_tests::cluster::wait_child(&mut self.child, std::time::Duration::from_secs(2))
            .is_none()
        {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
