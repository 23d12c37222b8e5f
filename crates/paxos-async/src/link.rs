//! Links: HTTP to one other member, for its peer messages and discovery's probes, with hyper's
//! client connection, which the link drives itself.
//!
//! hyper's client connection is a future that must be polled for the requests on it to go
//! anywhere. reqwest polls each connection of its pool in a task of its own, so every post woke
//! that task and every answer woke the sender again: a hand-off between tasks each way that the
//! threaded twin's ureq does not make. Here the link polls the connection itself while it waits
//! for an answer, so a request is written and its answer read in the task that sends it. A
//! kept-alive connection the member has closed meanwhile takes no request; then the request,
//! never sent, goes on a new connection, as reqwest's pool would send it.

use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Request, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use paxos_host::peer::CONNECT_TIMEOUT;
use paxos_host::routing::Route;
use paxos_host::{http, probe};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_util::either::Either;

use crate::Shared;

/// HTTP to one member, each request within a timeout; errors are described for the log as
/// [`probe::describe_error`] says them, and statuses are answers, not errors.
pub struct Link {
    server: String,
    /// How the link starts TLS, when the config has `tls`.
    tls: Option<TlsConnector>,
    timeout: Duration,
    /// The kept-alive connection; `None` before the first request and after one fails.
    connection: Option<Connection>,
}

impl std::fmt::Debug for Link {
    // tokio-rustls's connector and hyper's connection have no `Debug`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("server", &self.server)
            .field("connected", &self.connection.is_some())
            .finish()
    }
}

impl Link {
    /// A link to `server` (`host:port`): connecting within the connect timeout, each request
    /// within `timeout` in all, over TLS when the config has `tls`.
    pub fn new(shared: &Shared, server: &str, timeout: Duration) -> Link {
        let tls = shared
            .tls
            .as_ref()
            .map(|tls| TlsConnector::from(Arc::clone(&tls.client)));
        Link {
            server: server.to_owned(),
            tls,
            timeout,
            connection: None,
        }
    }

    /// Posts a JSON `body` to `route`, with the peers' `Authorization` header when there is
    /// one, and returns the answer's status.
    pub async fn post(
        &mut self,
        route: Route,
        body: Vec<u8>,
        authorization: Option<&str>,
    ) -> Result<u16, String> {
        let mut request = Request::post(route.path())
            .header(header::HOST, &self.server)
            .header(header::CONTENT_TYPE, http::JSON);
        if let Some(authorization) = authorization {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        // An error only if the peer's address or the secret cannot be a header value.
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| probe::describe_error(&e))?;
        let (status, _) = self.send(request, usize::MAX).await?;
        Ok(status)
    }

    /// Gets `route`: the answer's status, and its body up to one byte past `limit` (which tells
    /// an over-long answer without reading all of it).
    pub async fn get(&mut self, route: Route, limit: usize) -> Result<(u16, Vec<u8>), String> {
        let request = Request::get(route.path())
            .header(header::HOST, &self.server)
            .body(Full::new(Bytes::new()))
            .map_err(|e| probe::describe_error(&e))?;
        self.send(request, limit).await
    }

    /// Sends `request` within the link's timeout.
    async fn send(&mut self, request: Post, limit: usize) -> Result<(u16, Vec<u8>), String> {
        match tokio::time::timeout(self.timeout, self.exchange(request, limit)).await {
            Ok(answered) => answered.map_err(|e| probe::describe_error(&*e)),
            Err(_) => {
                // Where the connection stands is unknown: the next request opens another.
                self.connection = None;
                Err("timed out".to_owned())
            }
        }
    }

    /// Sends `request` on the kept-alive connection, connecting first if there is none; one
    /// the member closed meanwhile hands the request back unsent, for a new connection.
    async fn exchange(&mut self, request: Post, limit: usize) -> Result<(u16, Vec<u8>), BoxError> {
        let mut request = request;
        loop {
            let reused = self.connection.is_some();
            let connection = match &mut self.connection {
                Some(connection) => connection,
                None => {
                    let opened = Connection::open(&self.server, self.tls.as_ref()).await?;
                    self.connection.insert(opened)
                }
            };
            match connection.send(request, limit).await {
                Ok(answer) => return Ok(answer),
                Err(Failure::Unsent(unsent, _)) if reused => {
                    self.connection = None;
                    request = *unsent;
                }
                Err(Failure::Unsent(_, error) | Failure::Failed(error)) => {
                    self.connection = None;
                    return Err(error.into());
                }
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

/// The name a peer's certificate must carry: the host of `server` (`host:port`), a DNS name or
/// an IP address.
fn server_name(server: &str) -> Result<ServerName<'static>, BoxError> {
    let (host, _) = paxos_host::cli::split_host_port(server)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok(ServerName::try_from(host.to_owned())?)
}

/// Any error of a request, for the log line.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a request over a [`Connection`] failed, with the request when it was never sent.
enum Failure {
    Unsent(Box<Post>, hyper::Error),
    Failed(hyper::Error),
}

/// A request as hyper sends it: a post of messages, or discovery's `GET`.
type Post = Request<Full<Bytes>>;

/// A kept-alive connection, driven by the task that sends on it.
struct Connection {
    send: SendRequest<Full<Bytes>>,
    /// `None` once it has ended.
    driven: Option<Pin<Box<Driven>>>,
}

/// hyper's side of a [`Connection`]: the future that reads and writes the socket.
type Driven = http1::Connection<TokioIo<Stream>, Full<Bytes>>;

/// A connection's transport: TCP, or TLS over it.
type Stream = Either<TcpStream, TlsStream<TcpStream>>;

impl Connection {
    /// Connects to `server` (`host:port`) within the connect timeout.
    async fn open(server: &str, tls: Option<&TlsConnector>) -> Result<Connection, BoxError> {
        let tcp = connect_any(server).await?;
        // No Nagle delay: a post that leaves in two segments must not wait for a delayed ACK.
        let _ = tcp.set_nodelay(true);
        let stream = match tls {
            None => Either::Left(tcp),
            // The peer's certificate must name the host it was reached by.
            Some(tls) => Either::Right(tls.connect(server_name(server)?, tcp).await?),
        };
        let (send, driven) = http1::handshake(TokioIo::new(stream)).await?;
        Ok(Connection {
            send,
            driven: Some(Box::pin(driven)),
        })
    }

    /// Sends `request` and reads the answer, polling the connection meanwhile: its status, and
    /// its body up to one byte past `limit` (the connection is then not fit for another
    /// request).
    async fn send(&mut self, request: Post, limit: usize) -> Result<(u16, Vec<u8>), Failure> {
        let Connection { send, driven } = self;
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
        if let Some(driving) = driven {
            tokio::select! {
                // The connection first: one the peer closed while it was idle is seen closed
                // before the request is put on it, so that the request goes on a new one.
                biased;
                _ = driving.as_mut() => {}
                answered = exchange.as_mut() => return answered,
            }
        }
        // The connection ended (the peer closed it, or it broke) before the answer came.
        // Dropping it fails the request, handing it back if it was never sent.
        *driven = None;
        exchange.await
    }
}

#[cfg(test)]
mod tests {
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
        let mut link = Link {
            server: server.clone(),
            tls: None,
            timeout: Duration::from_secs(10),
            connection: None,
        };
        let first = link.post(Route::PaxosMessages, b"{}".to_vec(), None);
        let first = first.await.unwrap();
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
        assert!(
            link.connection.is_some(),
            "the first connection was given up already"
        );
        let second = link.post(Route::PaxosMessages, b"{}".to_vec(), None);
        let second = second.await.unwrap();
        assert_eq!(second, 204);
        let clients = peer.await.unwrap();
        assert_ne!(clients[0], clients[1], "both posts went on one connection");
    }

    fn listener_port(server: &str) -> u16 {
        server.rsplit(':').next().unwrap().parse().unwrap()
    }
}
