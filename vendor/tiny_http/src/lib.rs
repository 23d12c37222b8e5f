//! # Simple usage
//!
//! ## Creating the server
//!
//! The easiest way to create a server is to call `Server::http()`.
//!
//! The `http()` function returns an `IoResult<Server>` which will return an error
//! in the case where the server creation fails (for example if the listening port is already
//! occupied).
//!
//! ```no_run
//! let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
//! ```
//!
//! A newly-created `Server` will immediately start listening for incoming connections and HTTP
//! requests.
//!
//! ## Receiving requests
//!
//! Calling `server.recv()` will block until the next request is available.
//! This function returns an `IoResult<Request>`, so you need to handle the possible errors.
//!
//! ```no_run
//! # let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
//!
//! loop {
//!     // blocks until the next request is received
//!     let request = match server.recv() {
//!         Ok(rq) => rq,
//!         Err(e) => { println!("error: {}", e); break }
//!     };
//!
//!     // do something with the request
//!     // ...
//! }
//! ```
//!
//! In a real-case scenario, you will probably want to spawn multiple worker tasks and call
//! `server.recv()` on all of them. Like this:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use std::thread;
//! # let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
//! let server = Arc::new(server);
//! let mut guards = Vec::with_capacity(4);
//!
//! for _ in (0 .. 4) {
//!     let server = server.clone();
//!
//!     let guard = thread::spawn(move || {
//!         loop {
//!             let rq = server.recv().unwrap();
//!
//!             // ...
//!         }
//!     });
//!
//!     guards.push(guard);
//! }
//! ```
//!
//! If you don't want to block, you can call `server.try_recv()` instead.
//!
//! ## Handling requests
//!
//! The `Request` object returned by `server.recv()` contains informations about the client's request.
//! The most useful methods are probably `request.method()` and `request.url()` which return
//! the requested method (`GET`, `POST`, etc.) and url.
//!
//! To handle a request, you need to create a `Response` object. See the docs of this object for
//! more infos. Here is an example of creating a `Response` from a file:
//!
//! ```no_run
//! # use std::fs::File;
//! # use std::path::Path;
//! let response = tiny_http::Response::from_file(File::open(&Path::new("image.png")).unwrap());
//! ```
//!
//! All that remains to do is call `request.respond()`:
//!
//! ```no_run
//! # use std::fs::File;
//! # use std::path::Path;
//! # let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
//! # let request = server.recv().unwrap();
//! # let response = tiny_http::Response::from_file(File::open(&Path::new("image.png")).unwrap());
//! let _ = request.respond(response);
//! ```
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
#![allow(clippy::match_like_matches_macro)]

#[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
use zeroize::Zeroizing;

use std::error::Error;
use std::io::Error as IoError;
use std::io::ErrorKind as IoErrorKind;
use std::io::Result as IoResult;
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use client::ClientConnection;
use connection::Connection;
use util::MessagesQueue;

pub use common::{HTTPVersion, Header, HeaderField, Method, StatusCode};
pub use connection::{ConfigListenAddr, ListenAddr, Listener};
pub use limits::Limits;
/// Twin Paxos patch: HTTPS from a ready rustls config, for servers built inside `Tls::around`.
#[cfg(feature = "ssl-rustls")]
pub use ssl::Tls;
pub use request::{ReadWrite, Request};
pub use response::{Response, ResponseBox};
pub use test::TestRequest;

mod client;
mod common;
mod connection;
mod limits;
mod request;
mod response;
mod ssl;
mod test;
mod util;

/// Twin Paxos patch: the pause after a failed `accept`, so that running out of file descriptors
/// does not turn the accept thread into a busy loop.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// The main class of this library.
///
/// Destroying this object will immediately close the listening socket and the reading
///  part of all the client's connections. Requests that have already been returned by
///  the `recv()` function will not close and the responses will be transferred to the client.
pub struct Server {
    // should be false as long as the server exists
    // when set to true, all the subtasks will close within a few hundreds ms
    close: Arc<AtomicBool>,

    // queue for messages received by child threads
    messages: Arc<MessagesQueue<Message>>,

    // result of TcpListener::local_addr()
    listening_addr: ListenAddr,

    /// Twin Paxos patch: the open connections, which `shut_down` and `stop` close.
    slots: Arc<util::Slots>,

    /// Twin Paxos patch: the accept thread, which ends with the pool of connection threads it
    /// started, for `stop` to join. Upstream's threads were all detached.
    accept_thread: Mutex<Option<thread::JoinHandle<util::TaskPool>>>,
}

/// Twin Paxos patch: what a server built with [`Server::http_with_handler`] calls for each
/// request, on the thread that read the request from its connection.
pub type Handler = Arc<dyn Fn(Request) + Send + Sync + 'static>;

enum Message {
    Error(IoError),
    NewRequest(Request),
}

impl From<IoError> for Message {
    fn from(e: IoError) -> Message {
        Message::Error(e)
    }
}

impl From<Request> for Message {
    fn from(rq: Request) -> Message {
        Message::NewRequest(rq)
    }
}

// this trait is to make sure that Server implements Share and Send
#[doc(hidden)]
trait MustBeShareDummy: Sync + Send {}
#[doc(hidden)]
impl MustBeShareDummy for Server {}

pub struct IncomingRequests<'a> {
    server: &'a Server,
}

/// Represents the parameters required to create a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The addresses to try to listen to.
    pub addr: ConfigListenAddr,

    /// If `Some`, then the server will use SSL to encode the communications.
    pub ssl: Option<SslConfig>,
}

/// Configuration of the server for SSL.
#[derive(Debug, Clone)]
pub struct SslConfig {
    /// Contains the public certificate to send to clients.
    pub certificate: Vec<u8>,
    /// Contains the ultra-secret private key used to decode communications.
    pub private_key: Vec<u8>,
}

impl Server {
    /// Shortcut for a simple server on a specific address.
    #[inline]
    pub fn http<A>(addr: A) -> Result<Server, Box<dyn Error + Send + Sync + 'static>>
    where
        A: ToSocketAddrs,
    {
        Server::new(ServerConfig {
            addr: ConfigListenAddr::from_socket_addrs(addr)?,
            ssl: None,
        })
    }

    /// Shortcut for an HTTPS server on a specific address.
    #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
    #[inline]
    pub fn https<A>(
        addr: A,
        config: SslConfig,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>>
    where
        A: ToSocketAddrs,
    {
        Server::new(ServerConfig {
            addr: ConfigListenAddr::from_socket_addrs(addr)?,
            ssl: Some(config),
        })
    }

    #[cfg(unix)]
    #[inline]
    /// Shortcut for a UNIX socket server at a specific path
    pub fn http_unix(
        path: &std::path::Path,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        Server::new(ServerConfig {
            addr: ConfigListenAddr::unix_from_path(path),
            ssl: None,
        })
    }

    /// Builds a new server that listens on the specified address.
    pub fn new(config: ServerConfig) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        let listener = config.addr.bind()?;
        Self::from_listener(listener, config.ssl)
    }

    /// Twin Paxos patch: a plain HTTP server that calls `handler` for each request on the thread
    /// that read it from its connection, instead of queueing the request for `recv`.
    ///
    /// Upstream (and [`Server::http`]) hands every request over: the connection's thread reads
    /// it and queues it, another thread takes it off the queue (`recv`) and handles it, often
    /// handing it on to a third, and the connection's thread waits until the answer is written
    /// before it reads the next request. Here the connection's thread reads, handles and answers
    /// each request itself, so a request costs no hand-off between threads: requests on one
    /// connection are served one after another (as they must be answered anyway), requests on
    /// different connections in parallel, up to `max_connections` (see [`Limits`]). `recv` and
    /// its kin get nothing from such a server.
    ///
    /// A panic in `handler` is caught: the request, if not answered, gets an empty `500` (as any
    /// request dropped unanswered does), and its connection closes.
    pub fn http_with_handler<A, H>(
        addr: A,
        handler: H,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>>
    where
        A: ToSocketAddrs,
        H: Fn(Request) + Send + Sync + 'static,
    {
        let listener = ConfigListenAddr::from_socket_addrs(addr)?.bind()?;
        Self::start(listener.into(), None, Some(Arc::new(handler)))
    }

    /// Builds a new server using the specified TCP listener.
    ///
    /// This is useful if you've constructed TcpListener using some less usual method
    /// such as from systemd. For other cases, you probably want the `new()` function.
    pub fn from_listener<L: Into<Listener>>(
        listener: L,
        ssl_config: Option<SslConfig>,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        Self::start(listener.into(), ssl_config, None)
    }

    /// Twin Paxos patch: starts the accept thread; each connection's requests go to `handler` on
    /// the connection's thread if there is one, into the queue for `recv` otherwise.
    fn start(
        listener: Listener,
        ssl_config: Option<SslConfig>,
        handler: Option<Handler>,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        // building the "close" variable
        let close_trigger = Arc::new(AtomicBool::new(false));

        // building the TcpListener
        let (server, local_addr) = {
            let local_addr = listener.local_addr()?;
            log::debug!("Server listening on {}", local_addr);
            (listener, local_addr)
        };

        // building the SSL capabilities
        #[cfg(all(feature = "ssl-openssl", feature = "ssl-rustls"))]
        compile_error!(
            "Features 'ssl-openssl' and 'ssl-rustls' must not be enabled at the same time"
        );
        #[cfg(not(any(feature = "ssl-openssl", feature = "ssl-rustls")))]
        type SslContext = ();
        #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
        type SslContext = crate::ssl::SslContextImpl;
        let ssl: Option<SslContext> = {
            match ssl_config {
                #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
                Some(config) => Some(SslContext::from_pem(
                    config.certificate,
                    Zeroizing::new(config.private_key),
                )?),
                #[cfg(not(any(feature = "ssl-openssl", feature = "ssl-rustls")))]
                Some(_) => return Err(
                    "Building a server with SSL requires enabling the `ssl` feature in tiny-http"
                        .into(),
                ),
                None => None,
            }
        };
        // Twin Paxos patch: a server built inside `Tls::around` serves HTTPS with its config.
        #[cfg(feature = "ssl-rustls")]
        let ssl = match (ssl, ssl::Tls::current()) {
            (None, Some(tls)) => Some(SslContext::from_tls(tls)),
            (ssl, _) => ssl,
        };

        // creating a task where server.accept() is continuously called
        // and ClientConnection objects are pushed in the messages queue
        let messages = MessagesQueue::with_capacity(8);

        let inside_close_trigger = close_trigger.clone();
        let inside_messages = messages.clone();
        // Twin Paxos patch: the limits of whoever builds this server (see `Limits::around`).
        let limits = Limits::current();
        let slots = util::Slots::new(limits.max_connections);
        let inside_slots = Arc::clone(&slots);
        let accept_thread = thread::spawn(move || {
            let slots = inside_slots;
            // a tasks pool is used to dispatch the connections into threads
            let tasks_pool = util::TaskPool::new();

            log::debug!("Running accept thread");
            while !inside_close_trigger.load(Relaxed) {
                // Twin Paxos patch: at the bound, accept nothing until a connection closes.
                let Some(slot) = slots.acquire(&inside_close_trigger) else {
                    break;
                };
                let new_client = match server.accept() {
                    // Twin Paxos patch: the connection that wakes a stopping server's accept is
                    // not served.
                    Ok(_) if inside_close_trigger.load(Relaxed) => break,
                    Ok((sock, _)) => {
                        use util::RefinedTcpStream;
                        // Twin Paxos patch: a client that stops reading cannot block a response
                        // forever. Both halves share the socket, so one call covers them.
                        if sock.set_write_timeout(limits.write_timeout).is_err() {
                            continue;
                        }
                        // Twin Paxos patch: one socket for both halves and the list of open
                        // connections (upstream duplicated the descriptor for each half).
                        let sock = Arc::new(sock);
                        let phase = slot.attach(Arc::clone(&sock));
                        let (read_closable, write_closable) = match ssl {
                            None => RefinedTcpStream::new(sock),
                            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
                            Some(ref ssl) => {
                                // trying to apply SSL over the connection
                                // if an error occurs, we just close the socket and resume listening
                                let sock = match ssl.accept(sock) {
                                    Ok(s) => s,
                                    Err(_) => continue,
                                };

                                RefinedTcpStream::new(sock)
                            }
                            #[cfg(not(any(feature = "ssl-openssl", feature = "ssl-rustls")))]
                            Some(ref _ssl) => unreachable!(),
                        };

                        Ok(ClientConnection::new(
                            write_closable,
                            read_closable,
                            limits,
                            phase,
                        ))
                    }
                    Err(e) => Err(e),
                };

                match new_client {
                    Ok(client) => {
                        let messages = inside_messages.clone();
                        let handler = handler.clone();
                        let mut client = Some(client);
                        let mut slot = Some(slot);
                        tasks_pool.spawn(Box::new(move || {
                            // Twin Paxos patch: the slot is freed when the connection's thread is
                            // done with it.
                            let _slot = slot.take();
                            let Some(client) = client.take() else {
                                return;
                            };
                            if let Some(handler) = &handler {
                                // Twin Paxos patch: each request is handled here, on the thread
                                // that read it. A panic leaves the request answered `500` by its
                                // drop, and where the next request starts unknown: close.
                                for rq in client {
                                    let handled = panic::catch_unwind(AssertUnwindSafe(|| handler(rq)));
                                    if handled.is_err() {
                                        break;
                                    }
                                }
                            } else if client.secure() {
                                // Synchronization is needed for HTTPS requests to avoid a deadlock
                                let (sender, receiver) = mpsc::channel();
                                for rq in client {
                                    messages.push(rq.with_notify_sender(sender.clone()).into());
                                    receiver.recv().unwrap();
                                }
                            } else {
                                for rq in client {
                                    messages.push(rq.into());
                                }
                            }
                        }));
                    }

                    // Twin Paxos patch: upstream stopped accepting for good on the first error, so
                    // one moment out of file descriptors (`EMFILE`) left a server that never took
                    // another connection. Errors of `accept` pass (a connection reset before it
                    // was taken, descriptors freed by closing connections), so wait a little and
                    // go on.
                    Err(e) => {
                        log::error!("Error accepting new client: {}", e);
                        thread::sleep(ACCEPT_RETRY);
                    }
                }
            }
            log::debug!("Terminating accept thread");
            tasks_pool
        });

        // result
        Ok(Server {
            messages,
            close: close_trigger,
            listening_addr: local_addr,
            slots,
            accept_thread: Mutex::new(Some(accept_thread)),
        })
    }

    /// Twin Paxos patch: begins a graceful shutdown. The server stops accepting, closes idle
    /// connections (those waiting for the first byte of a request head) at once, and lets each
    /// other connection finish the request it is in and then close, reading nothing after it.
    /// This is what hyper's graceful shutdown does. Calling it again does nothing more.
    pub fn shut_down(&self) {
        if self.close.swap(true, Relaxed) {
            return;
        }
        self.slots.close_idle();
        self.wake_accept();
    }

    /// Twin Paxos patch: the connections open now, idle or busy.
    pub fn open_connections(&self) -> usize {
        self.slots.open()
    }

    /// Twin Paxos patch: shuts the server down (see [`Server::shut_down`]), waits up to `grace`
    /// for the connections still in the middle of a request, then closes the sockets of any
    /// left, drops the requests queued for `recv` that nobody took, and joins the accept thread
    /// and every connection thread. Returns how many connections the grace left open.
    ///
    /// Once it returns, no thread this server started is running. A handler still running when
    /// the grace ends finds its socket closed: what it reads or writes fails, and its thread ends
    /// when the handler returns; this waits for that.
    pub fn stop(&self, grace: Duration) -> usize {
        let deadline = Instant::now() + grace;
        self.shut_down();
        let accept_thread = self.accept_thread.lock().unwrap().take();
        let Some(accept_thread) = accept_thread else {
            return 0;
        };
        let pool = accept_thread.join();
        let left = self.slots.wait_closed(deadline);
        if left > 0 {
            self.slots.close_all();
        }
        // A queued request holds its connection's thread until it is answered; dropped, it
        // is answered `500` on a socket that is closed by now.
        while self.messages.try_pop().is_some() {}
        if let Ok(pool) = pool {
            pool.join();
        }
        left
    }

    /// Connects briefly to the listening socket, so that an accept thread blocked in `accept`
    /// wakes and sees the close flag.
    fn wake_accept(&self) {
        let maybe_stream = match &self.listening_addr {
            ListenAddr::IP(addr) => TcpStream::connect(addr).map(Connection::from),
            #[cfg(unix)]
            ListenAddr::Unix(addr) => {
                // TODO: use connect_addr when its stabilized.
                let path = addr.as_pathname().unwrap();
                std::os::unix::net::UnixStream::connect(path).map(Connection::from)
            }
        };
        if let Ok(stream) = maybe_stream {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Returns an iterator for all the incoming requests.
    ///
    /// The iterator will return `None` if the server socket is shutdown.
    #[inline]
    pub fn incoming_requests(&self) -> IncomingRequests<'_> {
        IncomingRequests { server: self }
    }

    /// Returns the address the server is listening to.
    #[inline]
    pub fn server_addr(&self) -> ListenAddr {
        self.listening_addr.clone()
    }

    /// Returns the number of clients currently connected to the server.
    pub fn num_connections(&self) -> usize {
        unimplemented!()
        //self.requests_receiver.lock().len()
    }

    /// Blocks until an HTTP request has been submitted and returns it.
    pub fn recv(&self) -> IoResult<Request> {
        match self.messages.pop() {
            Some(Message::Error(err)) => Err(err),
            Some(Message::NewRequest(rq)) => Ok(rq),
            None => Err(IoError::new(IoErrorKind::Other, "thread unblocked")),
        }
    }

    /// Same as `recv()` but doesn't block longer than timeout
    pub fn recv_timeout(&self, timeout: Duration) -> IoResult<Option<Request>> {
        match self.messages.pop_timeout(timeout) {
            Some(Message::Error(err)) => Err(err),
            Some(Message::NewRequest(rq)) => Ok(Some(rq)),
            None => Ok(None),
        }
    }

    /// Same as `recv()` but doesn't block.
    pub fn try_recv(&self) -> IoResult<Option<Request>> {
        match self.messages.try_pop() {
            Some(Message::Error(err)) => Err(err),
            Some(Message::NewRequest(rq)) => Ok(Some(rq)),
            None => Ok(None),
        }
    }

    /// Unblock thread stuck in recv() or incoming_requests().
    /// If there are several such threads, only one is unblocked.
    /// This method allows graceful shutdown of server.
    pub fn unblock(&self) {
        self.messages.unblock();
    }
}

impl Iterator for IncomingRequests<'_> {
    type Item = Request;
    fn next(&mut self) -> Option<Request> {
        self.server.recv().ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Twin Paxos patch: after `stop` the accept thread has ended already.
        if !self.close.swap(true, Relaxed) {
            // Connect briefly to ourselves to unblock the accept thread
            self.wake_accept();
        }

        #[cfg(unix)]
        if let ListenAddr::Unix(addr) = &self.listening_addr {
            if let Some(path) = addr.as_pathname() {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// Twin Paxos patch: a server whose connection threads handle their requests, and how it stops.
#[cfg(test)]
mod on_connection_threads {
    use super::*;
    use std::io::{Read, Write};
    use std::sync::mpsc::{channel, Receiver};

    /// A server that answers `GET` with `ok` and, for `POST`, reads the body (telling the test
    /// when it starts, and waiting for `go` first) and answers with its length.
    fn server() -> (Server, SocketAddr, Receiver<()>, mpsc::Sender<()>) {
        let (reading, started) = channel();
        let (go, wait) = channel::<()>();
        let (reading, wait) = (Mutex::new(reading), Mutex::new(wait));
        let server = Server::http_with_handler("127.0.0.1:0", move |mut request: Request| {
            if request.method() == &Method::Post {
                reading.lock().unwrap().send(()).unwrap();
                let _ = wait.lock().unwrap().recv();
                let mut body = Vec::new();
                let read = request.as_reader().read_to_end(&mut body);
                let text = format!("{} {}", read.is_ok(), body.len());
                let _ = request.respond(Response::from_string(text));
            } else {
                let _ = request.respond(Response::from_string("ok"));
            }
        })
        .unwrap();
        let address = server.server_addr().to_ip().unwrap();
        (server, address, started, go)
    }

    fn send(stream: &mut TcpStream, text: &str) {
        stream.write_all(text.as_bytes()).unwrap();
    }

    /// Reads until the end of the stream (or an error), with a timeout.
    fn rest(stream: &mut TcpStream) -> String {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn idle_connections_close_at_once_and_requests_in_flight_finish() {
        let (server, address, started, go) = server();
        let get = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        let mut idle = TcpStream::connect(address).unwrap();
        send(&mut idle, get);
        let mut answer = [0; 512];
        let n = idle.read(&mut answer).unwrap();
        assert!(String::from_utf8_lossy(&answer[..n]).ends_with("ok"));
        let mut busy = TcpStream::connect(address).unwrap();
        send(&mut busy, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2000\r\n\r\n");
        started.recv().unwrap();
        let stopped = Instant::now();
        thread::scope(|scope| {
            let stopping = scope.spawn(|| server.stop(Duration::from_secs(10)));
            // The idle connection closes without waiting for the busy one.
            assert_eq!(rest(&mut idle), "");
            assert!(stopped.elapsed() < Duration::from_secs(5));
            go.send(()).unwrap();
            send(&mut busy, &"x".repeat(2000));
            assert!(rest(&mut busy).ends_with("true 2000"));
            assert_eq!(stopping.join().unwrap(), 0);
        });
        assert!(TcpStream::connect(address).is_err(), "still listening");
    }

    #[test]
    fn a_server_without_a_handler_still_queues_its_requests() {
        let server = Server::http("127.0.0.1:0").unwrap();
        let address = server.server_addr().to_ip().unwrap();
        let mut client = TcpStream::connect(address).unwrap();
        send(&mut client, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        let request = server.recv_timeout(Duration::from_secs(10)).unwrap();
        let _ = request.unwrap().respond(Response::from_string("queued"));
        assert!(rest(&mut client).ends_with("queued"));
        assert_eq!(server.stop(Duration::from_secs(10)), 0);
    }

    #[test]
    fn past_the_grace_connections_are_closed() {
        let (server, address, started, go) = server();
        let mut stalled = TcpStream::connect(address).unwrap();
        send(&mut stalled, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2000\r\n\r\nx");
        started.recv().unwrap();
        go.send(()).unwrap();
        let stopped = Instant::now();
        // The handler waits for the rest of the body, which never comes, until the socket is shut.
        assert_eq!(server.stop(Duration::from_millis(300)), 1);
        assert!(stopped.elapsed() >= Duration::from_millis(300));
        let answer = rest(&mut stalled);
        assert!(!answer.contains("true"), "{}", answer);
    }
}
