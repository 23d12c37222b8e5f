//! A small blocking HTTP client over `ureq`, which hands back every status as a value.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;
use ureq::tls::{
    Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig, TlsProvider, parse_pem,
};

use crate::netns::{Inside, Netns};
use crate::tls::Pair;

/// The timeout of [`Client::default`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// An answer: status, content type and the whole body.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

impl Response {
    /// The body as JSON; panics (showing the body) when it is not.
    pub fn json(&self) -> Json {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "expected a JSON body, got {} {:?}: {e}",
                self.status, self.body
            )
        })
    }

    /// The sentence of an error body `{"error": "<sentence>"}`; panics when the body has any
    /// other shape.
    pub fn error_sentence(&self) -> String {
        let json = self.json();
        match json.as_object() {
            Some(object) if object.len() == 1 => match object.get("error") {
                Some(Json::String(sentence)) if !sentence.is_empty() => sentence.clone(),
                _ => panic!("expected {{\"error\": <sentence>}}, got {json}"),
            },
            _ => panic!("expected {{\"error\": <sentence>}}, got {json}"),
        }
    }

    /// Whether the content type says JSON.
    pub fn is_json(&self) -> bool {
        self.content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("application/json"))
    }
}

/// A blocking client with a global timeout per request and no connection reuse (members are
/// killed and restarted on the same ports, and idle pooled connections would keep a member
/// that shuts down gracefully waiting). A client given a network namespace
/// ([`Client::with_netns`]) sends each request from inside it.
#[derive(Clone, Debug)]
pub struct Client {
    agent: ureq::Agent,
    netns: Option<Arc<Netns>>,
}

impl Default for Client {
    fn default() -> Self {
        Client::new(DEFAULT_TIMEOUT)
    }
}

impl Client {
    pub fn new(timeout: Duration) -> Client {
        Client::with_tls(timeout, None)
    }

    /// A client that speaks HTTPS to `https://` URLs, trusting only `tls.ca` and presenting
    /// `tls.identity`, if any, when a member asks for a client certificate.
    pub fn with_tls(timeout: Duration, tls: Option<&ClientTls>) -> Client {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .max_idle_connections(0)
            .max_idle_connections_per_host(0);
        if let Some(tls) = tls {
            config = config.tls_config(tls.ureq());
        }
        Client {
            agent: ureq::Agent::new_with_config(config.build()),
            netns: None,
        }
    }

    /// The same client, sending every request from inside `netns` (a host of a
    /// [`Network`](crate::netns::Network)), or from the calling thread's own namespace with
    /// `None`. Each request enters the namespace on the calling thread and leaves it once
    /// answered. Names are still resolved with this machine's `/etc/hosts`: give such a client
    /// addresses.
    pub fn with_netns(mut self, netns: Option<Arc<Netns>>) -> Client {
        self.netns = netns;
        self
    }

    /// The namespace this client sends from, if not the caller's.
    pub fn netns(&self) -> Option<&Arc<Netns>> {
        self.netns.as_ref()
    }

    fn enter(&self) -> Option<Inside> {
        self.netns.as_ref().map(|netns| netns.enter())
    }

    pub fn get(&self, url: &str) -> Result<Response, String> {
        let _inside = self.enter();
        read(url, self.agent.get(url).call())
    }

    /// POSTs `body` as `application/json` with extra `headers`.
    pub fn post(
        &self,
        url: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> Result<Response, String> {
        let _inside = self.enter();
        let mut request = self
            .agent
            .post(url)
            .header("Content-Type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        read(url, request.send(body))
    }

    pub fn post_json(&self, url: &str, body: &Json) -> Result<Response, String> {
        self.post(url, body.to_string().as_bytes(), &[])
    }

    /// POSTs `body` as JSON and says, when no answer came, why: a client that must tell a
    /// timeout from a refused connection (the nemesis runner counts them apart) uses this.
    pub fn send_json(&self, url: &str, body: &Json) -> Result<Response, (NoAnswer, String)> {
        let _inside = self.enter();
        let result = self
            .agent
            .post(url)
            .header("Content-Type", "application/json")
            .send(body.to_string().as_bytes());
        read_typed(result).map_err(|e| (NoAnswer::of(&e), format!("{url}: {e}")))
    }

    pub fn put(&self, url: &str, body: &[u8]) -> Result<Response, String> {
        let _inside = self.enter();
        read(
            url,
            self.agent
                .put(url)
                .header("Content-Type", "application/json")
                .send(body),
        )
    }

    pub fn delete(&self, url: &str) -> Result<Response, String> {
        let _inside = self.enter();
        read(url, self.agent.delete(url).call())
    }
}

/// What an HTTPS client of the harness trusts and presents.
#[derive(Clone, Debug)]
pub struct ClientTls {
    /// The CA file whose certificates are the only roots.
    pub ca: PathBuf,
    /// A certificate and key to present when asked for one.
    pub identity: Option<Pair>,
}

impl ClientTls {
    fn ureq(&self) -> TlsConfig {
        let read = |path: &PathBuf| {
            std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        };
        let roots: Vec<Certificate<'static>> = parse_pem(&read(&self.ca))
            .filter_map(|item| match item.expect("a PEM file") {
                PemItem::Certificate(cert) => Some(cert),
                _ => None,
            })
            .collect();
        let identity = self.identity.as_ref().map(|pair| {
            let cert = Certificate::from_pem(&read(&pair.cert)).expect("a PEM certificate");
            let key = PrivateKey::from_pem(&read(&pair.key)).expect("a PEM key");
            ClientCert::new_with_certs(&[cert], key)
        });
        TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(RootCerts::from(roots))
            .client_cert(identity)
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .build()
    }
}

/// Why a request got no HTTP answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NoAnswer {
    /// The client's timeout expired: the server may still act on the request.
    Timeout,
    /// Nothing listened: the request never reached a server.
    Refused,
    /// The connection was reset or closed before the answer was complete.
    Reset,
    /// Anything else, such as an answer that is not HTTP.
    Other,
}

impl NoAnswer {
    fn of(error: &ureq::Error) -> NoAnswer {
        use std::io::ErrorKind;
        match error {
            ureq::Error::Timeout(_) => NoAnswer::Timeout,
            ureq::Error::Io(e) => match e.kind() {
                ErrorKind::TimedOut | ErrorKind::WouldBlock => NoAnswer::Timeout,
                ErrorKind::ConnectionRefused => NoAnswer::Refused,
                ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::BrokenPipe
                | ErrorKind::UnexpectedEof => NoAnswer::Reset,
                _ => NoAnswer::Other,
            },
            _ => NoAnswer::Other,
        }
    }

    /// A short name for reports: `timeout`, `refused`, `reset`, `other`.
    pub fn name(self) -> &'static str {
        match self {
            NoAnswer::Timeout => "timeout",
            NoAnswer::Refused => "connection refused",
            NoAnswer::Reset => "connection reset",
            NoAnswer::Other => "other error",
        }
    }
}

fn read(
    url: &str,
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<Response, String> {
    read_typed(result).map_err(|e| format!("{url}: {e}"))
}

fn read_typed(
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<Response, ureq::Error> {
    let mut response = result?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.body_mut().read_to_string()?;
    Ok(Response {
        status,
        content_type,
        body,
    })
}

/// POSTs `body` to `http://<addr><path>` over a plain socket with `Connection: close`, and
/// reads the answer even when the server answers before reading the whole body and closes (as
/// a server may with `413`): write errors are ignored and the answer is read afterwards.
/// Blocking HTTP clients such as `ureq` report such an early answer as a broken pipe.
pub fn raw_post(
    addr: &str,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<Response, String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).map_err(|e| format!("{addr}: {e}"))?;
    stream.set_read_timeout(Some(timeout)).ok();
    stream.set_write_timeout(Some(timeout)).ok();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|()| body.chunks(64 * 1024).try_for_each(|c| stream.write_all(c)));
    let mut received = Vec::new();
    let mut buffer = [0; 16 * 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(e) if received.is_empty() => return Err(format!("{addr}{path}: reading: {e}")),
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&received);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{addr}{path}: an incomplete answer: {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{addr}{path}: a bad status line: {head:?}"))?;
    let content_type = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-type")
            .then(|| value.trim().to_owned())
    });
    Ok(Response {
        status,
        content_type,
        body: body.to_owned(),
    })
}
