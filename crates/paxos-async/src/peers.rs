//! Peer senders: one task per peer, each with its own queue, posting batches with hyper's
//! client connection, which the task drives itself.
//!
//! The driver must never wait on the network, so it only pushes messages onto a peer's queue.
//! The peer's task sleeps until something is queued, takes everything queued, and posts it as
//! few envelopes as possible over a kept-alive connection. While a post is in flight new messages
//! pile up in the queue and go out together in the next one, which is how batching adapts to a
//! slow peer. A failed post is counted and dropped: Paxos tolerates lost messages.

use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::time::Instant;

use axum::http::{Request, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use paxos_core::{MemberId, Message, To};
use paxos_host::peer::{self, CONNECT_TIMEOUT, MAX_DRAIN, Outgoing, POST_TIMEOUT};
use paxos_host::probe;
use paxos_host::routing::Route;
use paxos_host::{http, log};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_util::either::Either;
use tokio_util::task::TaskTracker;

use crate::Shared;

/// The queues of every peer, indexed by member; `None` at this server's own index.
#[derive(Debug)]
pub struct Peers {
    queues: Vec<Option<mpsc::UnboundedSender<Arc<Outgoing>>>>,
    tasks: TaskTracker,
}

impl Peers {
    /// Starts one sender task for every member but `me`.
    pub fn start(shared: &Arc<Shared>, me: MemberId) -> Peers {
        let tls = shared
            .tls
            .as_ref()
            .map(|tls| TlsConnector::from(Arc::clone(&tls.client)));
        let mut queues = Vec::new();
        let tasks = TaskTracker::new();
        for member in 0..shared.config.servers.len() {
            if member == me {
                queues.push(None);
                continue;
            }
            let (queue, inbox) = mpsc::unbounded_channel();
            queues.push(Some(queue));
            let sender = Sender {
                shared: Arc::clone(shared),
                tls: tls.clone(),
                me,
                server: shared.config.peer_address(member).to_owned(),
            };
            tasks.spawn(sender.run(inbox));
        }
        tasks.close();
        Peers { queues, tasks }
    }

    /// Queues messages for their peers; never blocks.
    pub fn send(&self, messages: Vec<(To, Message)>) {
        for (to, message) in messages {
            let outgoing = Outgoing::new(message);
            for member in peer::recipients(to, self.queues.len()) {
                if let Some(Some(queue)) = self.queues.get(member) {
                    // It fails only once the sender task has ended (its queue dropped, or it
                    // panicked): then nobody is left to post the message, and Paxos copes.
                    let _ = queue.send(Arc::clone(&outgoing));
                }
            }
        }
    }

    /// Closes the queues and waits for the senders, each of which posts what is still queued
    /// (each post bounded by the post timeout) and then sees its queue closed.
    pub async fn stop(self) {
        drop(self.queues);
        self.tasks.wait().await;
    }
}

/// One peer's sender.
struct Sender {
    shared: Arc<Shared>,
    /// How links to the peer start TLS, when the config has `tls`.
    tls: Option<TlsConnector>,
    me: MemberId,
    server: String,
}

impl Sender {
    async fn run(self, mut inbox: mpsc::UnboundedReceiver<Arc<Outgoing>>) {
        let authorization = peer::authorization(self.shared.config.secret.as_deref());
        let mut link = None;
        let mut messages = Vec::new();
        // Sleeps until a message is queued, then takes every other one already there.
        while inbox.recv_many(&mut messages, MAX_DRAIN).await > 0 {
            for body in peer::envelopes(&self.shared.config, self.me, &messages) {
                let posting = async {
                    let request = self.request(body.json, authorization.as_deref())?;
                    post(&self.server, self.tls.as_ref(), &mut link, request).await
                };
                let started = Instant::now();
                let posted = tokio::time::timeout(POST_TIMEOUT, posting).await;
                self.shared.metrics.peer_post(started.elapsed());
                match posted {
                    Ok(Ok(204)) => {
                        self.shared.metrics.peer_sent(body.messages);
                    }
                    Ok(Ok(status)) => {
                        self.shared.metrics.peer_send_error();
                        let reason = format!("answered HTTP {status}");
                        log::peer_send_failed(&self.server, body.messages, reason);
                    }
                    Ok(Err(error)) => {
                        self.shared.metrics.peer_send_error();
                        let reason = probe::describe_error(&*error);
                        log::peer_send_failed(&self.server, body.messages, reason);
                    }
                    Err(_) => {
                        // Where the connection stands is unknown: the next post opens another.
                        link = None;
                        self.shared.metrics.peer_send_error();
                        log::peer_send_failed(&self.server, body.messages, "timed out");
                    }
                }
            }
            messages.clear();
        }
    }

    /// The post of one envelope; an error if the peer's address or the secret cannot be a
    /// header value.
    fn request(&self, json: Vec<u8>, authorization: Option<&str>) -> Result<Post, BoxError> {
        let mut request = Request::post(Route::PaxosMessages.path())
            .header(header::HOST, &self.server)
            .header(header::CONTENT_TYPE, http::JSON);
        if let Some(authorization) = authorization {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        Ok(request.body(Full::new(Bytes::from(json)))?)
    }
}

/// Posts one envelope to `server` over `link`, connecting first if there is none, and returns
/// the answer's status. A kept-alive connection the peer has closed meanwhile takes no request;
/// then the request, never sent, goes on a new connection, as reqwest's pool would send it.
async fn post(
    server: &str,
    tls: Option<&TlsConnector>,
    link: &mut Option<Link>,
    request: Post,
) -> PostResult {
    let mut request = request;
    loop {
        let reused = link.is_some();
        let current = match link {
            Some(current) => current,
            None => link.insert(Link::connect(server, tls).await?),
        };
        match current.send(request, usize::MAX).await {
            Ok((status, _)) => return Ok(status),
            Err(Failure::Unsent(unsent, _)) if reused => {
                *link = None;
                request = *unsent;
            }
            Err(Failure::Unsent(_, error) | Failure::Failed(error)) => {
                *link = None;
                return Err(error.into());
            }
        }
    }
}

/// Connects to the first address of `server` (`host:port`) that takes the connection. A name may
/// stand for several addresses, one of them cut off: each address gets its share of the connect
/// timeout, as ureq gives it on the threaded twin, rather than the first one all of it (tokio's
/// own `connect` tries them in turn within one timeout, so a first address whose link is down
/// would leave the peer unreachable for good).
async fn connect_any(server: &str) -> io::Result<TcpStream> {
    let addresses: Vec<_> = tokio::net::lookup_host(server).await?.collect();
    let share = CONNECT_TIMEOUT / addresses.len().max(1) as u32;
    let mut last = io::Error::new(
        io::ErrorKind::NotFound,
        format!("{server} names no address"),
    );
    for address in addresses {
        match tokio::time::timeout(share, TcpStream::connect(address)).await {
            Ok(Ok(tcp)) => return Ok(tcp),
            Ok(Err(error)) => last = error,
            Err(_) => last = io::Error::from(io::ErrorKind::TimedOut),
        }
    }
    Err(last)
}

/// What a post came to: the answer's status, or why there was none.
/// The name a peer's certificate must carry: the host of `server` (`host:port`), a DNS name or
/// an IP address.
fn server_name(server: &str) -> Result<ServerName<'static>, BoxError> {
    let (host, _) = paxos_host::cli::split_host_port(server)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok(ServerName::try_from(host.to_owned())?)
}

type PostResult = Result<u16, BoxError>;

/// Any error of a post, for the log line.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a request over a [`Link`] failed, with the request when it was never sent.
pub(crate) enum Failure {
    Unsent(Box<Post>, hyper::Error),
    Failed(hyper::Error),
}

/// A request to a peer, as hyper sends it: a post of messages, or discovery's `GET`.
pub(crate) type Post = Request<Full<Bytes>>;

/// A kept-alive connection to one peer, driven by its sender's task.
///
/// hyper's client connection is a future that must be polled for the requests on it to go
/// anywhere. reqwest polls each connection of its pool in a task of its own, so every post woke
/// that task and every answer woke the sender again: a hand-off between tasks each way that the
/// threaded twin's ureq does not make. Here the sender polls the connection itself while it waits
/// for an answer, so a post is written and its answer read in the sender's own task.
pub(crate) struct Link {
    send: SendRequest<Full<Bytes>>,
    /// `None` once it has ended.
    connection: Option<Pin<Box<Driven>>>,
}

/// hyper's side of a [`Link`]: the future that reads and writes the socket.
type Driven = Connection<TokioIo<Stream>, Full<Bytes>>;

/// A link's transport: TCP, or TLS over it.
type Stream = Either<TcpStream, TlsStream<TcpStream>>;

impl Failure {
    /// The error, the request set aside.
    pub(crate) fn into_error(self) -> hyper::Error {
        match self {
            Failure::Unsent(_, error) | Failure::Failed(error) => error,
        }
    }
}

impl Link {
    /// Connects to `server` (`host:port`) within the connect timeout.
    pub(crate) async fn connect(
        server: &str,
        tls: Option<&TlsConnector>,
    ) -> Result<Link, BoxError> {
        let tcp = connect_any(server).await?;
        // No Nagle delay: a post that leaves in two segments must not wait for a delayed ACK.
        let _ = tcp.set_nodelay(true);
        let stream = match tls {
            None => Either::Left(tcp),
            // The peer's certificate must name the host it was reached by.
            Some(tls) => Either::Right(tls.connect(server_name(server)?, tcp).await?),
        };
        let (send, connection) = http1::handshake(TokioIo::new(stream)).await?;
        Ok(Link {
            send,
            connection: Some(Box::pin(connection)),
        })
    }

    /// Sends `request` and reads the answer, polling the connection meanwhile: its status, and
    /// its body up to one byte past `limit` (which tells an over-long answer without reading all
    /// of it; the connection is then not fit for another request).
    pub(crate) async fn send(
        &mut self,
        request: Post,
        limit: usize,
    ) -> Result<(u16, Vec<u8>), Failure> {
        let Link { send, connection } = self;
        let exchange = async {
            let response = send
                .try_send_request(request)
                .await
                .map_err(|mut error| match error.take_message() {
                    Some(unsent) => Failure::Unsent(Box::new(unsent), error.into_error()),
                    None => Failure::Failed(error.into_error()),
                })?;
            let status = response.status().as_u16();
            // The answer's body (none, for a `204`) is read so that the connection is free.
            let mut body = response.into_body();
            let mut read = Vec::new();
            while read.len() <= limit
                && let Some(frame) = body.frame().await
            {
                if let Ok(data) = frame.map_err(Failure::Failed)?.into_data() {
                    read.extend_from_slice(&data);
                }
            }
            Ok((status, read))
        };
        let mut exchange = pin!(exchange);
        if let Some(driving) = connection {
            tokio::select! {
                // The connection first: one the peer closed while it was idle is seen closed
                // before the request is put on it, so that the request goes on a new one.
                biased;
                _ = driving.as_mut() => {}
                posted = exchange.as_mut() => return posted,
            }
        }
        // The connection ended (the peer closed it, or it broke) before the answer came.
        // Dropping it fails the request, handing it back if it was never sent.
        *connection = None;
        exchange.await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// Whether a socket to port `remote` has received its peer's close and not closed yet
    /// (`CLOSE_WAIT` in `/proc/net/tcp`).
    fn closed_by_peer(remote: u16) -> bool {
        const CLOSE_WAIT: &str = "08";
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        let port = |address: &str| u16::from_str_radix(address.rsplit(':').next()?, 16).ok();
        table.lines().skip(1).any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(2).and_then(|a| port(a)) == Some(remote)
                && fields.get(3) == Some(&CLOSE_WAIT)
        })
    }

    fn envelope(server: &str) -> Post {
        Request::post(Route::PaxosMessages.path())
            .header(header::HOST, server)
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap()
    }

    #[tokio::test]
    async fn a_post_on_a_connection_the_peer_closed_goes_on_a_new_one() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = listener.local_addr().unwrap().to_string();
        let (close, closing) = tokio::sync::oneshot::channel::<()>();
        // A peer that answers one post per connection and closes the first connection once told
        // to, as a peer does that restarts or times an idle connection out.
        let peer = tokio::spawn(async move {
            let mut closing = Some(closing);
            let mut clients = Vec::new();
            for _ in 0..2 {
                let (mut socket, client) = listener.accept().await.unwrap();
                let mut received = Vec::new();
                while !received.ends_with(b"{}") {
                    let mut buffer = [0; 1024];
                    let n = socket.read(&mut buffer).await.unwrap();
                    assert!(n > 0, "the post broke off");
                    received.extend_from_slice(&buffer[..n]);
                }
                socket
                    .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                    .await
                    .unwrap();
                if let Some(closing) = closing.take() {
                    closing.await.unwrap();
                }
                clients.push(client.port());
            }
            clients
        });
        let mut link = None;
        let first = post(&server, None, &mut link, envelope(&server))
            .await
            .unwrap();
        assert_eq!(first, 204);
        close.send(()).unwrap();
        // Until the peer's close has reached this side, the connection still looks usable.
        let port = listener_port(&server);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !closed_by_peer(port) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the peer never closed"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(link.is_some(), "the first connection was given up already");
        let second = post(&server, None, &mut link, envelope(&server))
            .await
            .unwrap();
        assert_eq!(second, 204);
        let clients = peer.await.unwrap();
        assert_ne!(clients[0], clients[1], "both posts went on one connection");
    }

    fn listener_port(server: &str) -> u16 {
        server.rsplit(':').next().unwrap().parse().unwrap()
    }
}
