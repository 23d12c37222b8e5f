use ascii::AsciiString;

use std::io::Error as IoError;
use std::io::Result as IoResult;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::common::{HTTPVersion, Header, HeaderField, Method, StatusCode};
use crate::request::new_framed_request;
use crate::util::framing;
use crate::util::{Deadline, Phase, RefinedTcpStream};
use crate::util::{SequentialReader, SequentialReaderBuilder};
use crate::util::{SequentialWriter, SequentialWriterBuilder};
use crate::{Limits, Request, Response};

/// A ClientConnection is an object that will store a socket to a client
/// and return Request objects.

/// Twin Paxos patch: the limits of a request head. They are hyper 1.x's defaults, so that
/// paxos-threaded refuses the same heads as its twin on hyper: a head over hyper's read buffer
/// (`max_buf_size`) or with more header lines than hyper's `DEFAULT_MAX_HEADERS` gets `431`
/// (RFC 6585 §5), a request target over hyper's `MAX_URI_LEN` gets `414` (RFC 9110 §15.5.15).
/// Upstream had no limits; an earlier patch closed the connection without an answer past a
/// 64 KiB line and answered `400` past 128 header lines.
const MAX_HEAD_BYTES: usize = 8192 + 4096 * 100;
const MAX_HEADERS: usize = 100;
const MAX_TARGET_BYTES: usize = 65_534;

type Writer = SequentialWriter<BufWriter<RefinedTcpStream>>;

pub struct ClientConnection {
    // address of the client
    remote_addr: IoResult<Option<SocketAddr>>,

    // sequence of Readers to the stream, so that the data is not read in
    //  the wrong order
    source: SequentialReaderBuilder<BufReader<RefinedTcpStream>>,

    // sequence of Writers to the stream, to avoid writing response #2 before
    //  response #1
    sink: SequentialWriterBuilder<BufWriter<RefinedTcpStream>>,

    // Reader to read the next header from
    next_header_source: SequentialReader<BufReader<RefinedTcpStream>>,

    // set to true if we know that the previous request is the last one
    no_more_requests: bool,

    // true if the connection goes through SSL
    secure: bool,

    /// Twin Paxos patch: the clocks for heads and bodies.
    limits: Limits,

    /// Twin Paxos patch: the read deadline shared with the socket's read half.
    deadline: Deadline,

    /// Twin Paxos patch: set by a request's body when its end was not found (see `util::Body`);
    /// what follows on the stream is then not a request, so the connection closes.
    broken: Arc<AtomicBool>,

    /// Twin Paxos patch: idle or busy, as a stopping server sees it (see `util::Phase`).
    phase: Arc<Phase>,
}

/// Twin Paxos patch: why no request was read. Upstream had one variant per cause, and answered
/// a version above 1.1 with `505` through a second writer while the request still held the
/// first, which waited forever: the connection's thread, descriptors and slot were never freed.
enum ReadError {
    /// Answer with this status through this writer, then close: the head was refused, and where
    /// the next request would start is unknown (RFC 9112 §9.6: say so with `Connection: close`).
    Refuse(u16, Writer),
    /// Close without an answer: the client closed, timed out, or sent the HTTP/2 preface, or the
    /// previous body's end was not found.
    Close,
}

/// Why a head was not read.
enum HeadError {
    Refuse(u16),
    Close,
}

impl From<IoError> for HeadError {
    fn from(_: IoError) -> HeadError {
        HeadError::Close
    }
}

/// A request head as read, before its framing is decided.
struct Head {
    method: Method,
    target: String,
    version: HTTPVersion,
    /// Names (tokens) and raw values, OWS trimmed, in order.
    headers: Vec<(String, Vec<u8>)>,
}

impl ClientConnection {
    /// Creates a new `ClientConnection` that takes ownership of the `TcpStream`.
    pub fn new(
        write_socket: RefinedTcpStream,
        mut read_socket: RefinedTcpStream,
        limits: Limits,
        phase: Arc<Phase>,
    ) -> ClientConnection {
        let remote_addr = read_socket.peer_addr();
        let secure = read_socket.secure();
        let deadline = read_socket.deadline();

        let mut source = SequentialReaderBuilder::new(BufReader::with_capacity(1024, read_socket));
        let first_header = source.next().unwrap();

        ClientConnection {
            source,
            sink: SequentialWriterBuilder::new(BufWriter::with_capacity(1024, write_socket)),
            remote_addr,
            next_header_source: first_header,
            no_more_requests: false,
            secure,
            limits,
            deadline,
            broken: Arc::new(AtomicBool::new(false)),
            phase,
        }
    }

    /// true if the connection is HTTPS
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Twin Paxos patch: reads one line of a head, without its line end, and takes its bytes
    /// (line end included) from `budget`; past the budget, the head is too large.
    ///
    /// Upstream ended lines only at CRLF, so a client that ends them with a bare LF, as RFC 9112
    /// §2.2 lets a recipient accept and hyper does, got no answer at all. A line now ends at LF,
    /// with the CR before it removed; any other CR stays in the line and makes it invalid
    /// (§2.2: a bare CR must not be taken as a line end).
    ///
    /// A byte that no valid line can hold is refused as it arrives, as hyper's parser does,
    /// rather than at the end of a line that may never come (a TLS handshake sent to the plain
    /// port has no LF): a CR not before LF, a control character other than a tab, and in a
    /// `request_line` a tab or a byte past ASCII.
    fn read_line(&mut self, budget: &mut usize, request_line: bool) -> Result<Vec<u8>, HeadError> {
        let mut line = Vec::new();
        loop {
            let byte = match self.next_header_source.by_ref().bytes().next() {
                Some(b) => b?,
                None => return Err(HeadError::Close),
            };
            if *budget == 0 {
                return Err(HeadError::Refuse(431));
            }
            *budget -= 1;
            if byte == b'\n' {
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            let after_cr = line.last() == Some(&b'\r');
            let control = (byte < b' ' && byte != b'\t' && byte != b'\r') || byte == 0x7f;
            let not_in_request_line = request_line && (byte == b'\t' || byte >= 0x80);
            if after_cr || control || not_in_request_line {
                return Err(HeadError::Refuse(400));
            }
            line.push(byte);
        }
    }

    /// Twin Paxos patch: reads and checks a request head, as hyper's parser (httparse) does.
    fn read_head(&mut self) -> Result<Head, HeadError> {
        let mut budget = MAX_HEAD_BYTES;
        // RFC 9112 §2.2: empty lines before the request line are ignored (upstream refused
        // them with `400`).
        let request_line = loop {
            let line = self.read_line(&mut budget, true)?;
            if !line.is_empty() {
                break line;
            }
        };
        // The HTTP/2 connection preface (RFC 9113 §3.4). No HTTP/1.1 answer means anything to
        // an HTTP/2 client, so the connection closes without one, as hyper's does when the
        // whole preface has arrived (it looks at what it has buffered, and so does this);
        // otherwise the version is refused below with `400`, as by hyper.
        if request_line == b"PRI * HTTP/2.0"
            && self
                .next_header_source
                .buffered()
                .starts_with(b"\r\nSM\r\n\r\n")
        {
            return Err(HeadError::Close);
        }
        let (method, target, version) =
            parse_request_line(&request_line).ok_or(HeadError::Refuse(400))?;
        let mut headers = Vec::new();
        loop {
            let line = self.read_line(&mut budget, false)?;
            if line.is_empty() {
                break;
            }
            if headers.len() == MAX_HEADERS {
                return Err(HeadError::Refuse(431));
            }
            headers.push(parse_header_line(&line).ok_or(HeadError::Refuse(400))?);
        }
        // Checked once the head is whole, as hyper does.
        if target.len() > MAX_TARGET_BYTES {
            return Err(HeadError::Refuse(414));
        }
        // The fragment is not part of a request target (RFC 9112 §3.2); hyper's URI parser
        // drops it, and so does this one, so that both route `/status#x` as `/status`.
        let target = match target.find('#') {
            Some(at) => target[..at].to_owned(),
            None => target,
        };
        Ok(Head {
            method,
            target,
            version,
            headers,
        })
    }

    /// Reads a request from the stream.
    /// Blocks until the header has been read.
    fn read(&mut self) -> Result<Request, ReadError> {
        // Twin Paxos patch: the head's clock starts once the previous response has been written,
        // so neither the time a handler takes nor pipelined requests count against the client.
        // Upstream read the next head while the previous request was still being handled.
        let mut writer = self.sink.next().unwrap();
        writer.wait_turn();
        // Twin Paxos patch: and once the previous body has been read or drained. If its end was
        // not found, what follows is no request: upstream parsed it as one.
        self.next_header_source.wait_turn();
        if self.broken.load(Ordering::Acquire) {
            return Err(ReadError::Close);
        }
        self.deadline.start(self.limits.head_timeout);

        // Twin Paxos patch: while it waits for a request head, and until the head is whole, the
        // connection is idle, and a stopping server closes it at once, as hyper's graceful
        // shutdown closes idle connections; once the head is read, the request is in flight and
        // may finish. A stopping server lets a connection finish the request it is in and start
        // no other; requests pipelined behind it are not read (hyper does the same).
        if !self.phase.to_idle() {
            return Err(ReadError::Close);
        }
        let head = self.read_head();
        if !self.phase.to_busy() {
            return Err(ReadError::Close);
        }
        let head = match head {
            Ok(head) => head,
            Err(HeadError::Refuse(status)) => return Err(ReadError::Refuse(status, writer)),
            Err(HeadError::Close) => return Err(ReadError::Close),
        };
        let version = (head.version.0, head.version.1);
        let lines = head.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()));
        let refused = framing::framing(version, lines.clone()).and_then(|framing| {
            match framing::refusal(version, lines) {
                Some(status) => Err(status),
                None => Ok(framing),
            }
        });
        let framing = match refused {
            Ok(framing) => framing,
            Err(status) => return Err(ReadError::Refuse(status, writer)),
        };
        if framing.close || !framing.keep_alive {
            self.no_more_requests = true;
        }

        // Twin Paxos patch: the body's clock starts at the end of the head.
        self.deadline.start(self.limits.body_timeout);

        // follow-up for next potential request
        let mut data_source = self.source.next().unwrap();
        std::mem::swap(&mut self.next_header_source, &mut data_source);

        Ok(new_framed_request(
            self.secure,
            head.method,
            head.target,
            head.version,
            handler_headers(head.headers),
            *self.remote_addr.as_ref().unwrap(),
            data_source,
            writer,
            framing,
            Arc::clone(&self.broken),
            Some(self.deadline.clone()),
        ))
    }
}

impl Iterator for ClientConnection {
    type Item = Request;

    /// Blocks until the next Request is available.
    /// Returns None when no new Requests will come from the client.
    fn next(&mut self) -> Option<Request> {
        // the previous request said it was the last one (`Connection: close`, HTTP/1.0
        // without `keep-alive`), or its framing was ambiguous
        if self.no_more_requests {
            return None;
        }

        match self.read() {
            Ok(rq) => Some(rq),
            Err(ReadError::Refuse(status, mut writer)) => {
                let response = Response::new_empty(StatusCode(status)).with_connection_close();
                response
                    .raw_print(&mut writer, HTTPVersion(1, 1), &[], false, None)
                    .ok();
                writer.flush().ok();
                None
            }
            // Twin Paxos patch: upstream answered a read timeout with `408`. Now that a head
            // has a deadline, the timeout mostly ends idle keep-alive connections, where an
            // answer nobody asked for would be read as the answer to the client's next
            // request; like hyper, close without answering.
            Err(ReadError::Close) => None,
        }
    }
}

/// Twin Paxos patch: the header lines a handler sees, as hyper hands them to axum: no
/// `Content-Length` next to `Transfer-Encoding` (which overrides it) and only the first of
/// several equal ones. A value with bytes past ASCII (obs-text, which RFC 9110 §5.5 allows) is
/// left out, since tiny_http's values are ASCII; upstream closed the connection without an
/// answer. Values that frame the request were checked on their raw bytes already.
fn handler_headers(raw: Vec<(String, Vec<u8>)>) -> Vec<Header> {
    let chunked = raw
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("Transfer-Encoding"));
    let mut length_seen = false;
    raw.into_iter()
        .filter_map(|(name, value)| {
            if name.eq_ignore_ascii_case("Content-Length") {
                if chunked || length_seen {
                    return None;
                }
                length_seen = true;
            }
            Some(Header {
                field: HeaderField::from_str(&name).ok()?,
                value: AsciiString::from_ascii(value).ok()?,
            })
        })
        .collect()
}

/// Twin Paxos patch: parses a request line, `method SP request-target SP HTTP-version` (RFC 9112
/// §3), each part separated by exactly one space, as hyper's parser does. Upstream trimmed the
/// line, took any ASCII as a method and accepted HTTP/0.9, 2.0 and 3.0 (and then hung on the
/// latter two). Now the method is a token, the target visible ASCII (a URI is ASCII, RFC 9112
/// §3.2; the async server refuses other targets in a middleware), and the version 1.0 or 1.1.
fn parse_request_line(line: &[u8]) -> Option<(Method, String, HTTPVersion)> {
    let mut parts = line.splitn(3, |&b| b == b' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if !framing::is_token(method) {
        return None;
    }
    if target.is_empty() || !target.iter().all(|&b| (0x21..=0x7e).contains(&b)) {
        return None;
    }
    let version = match version {
        b"HTTP/1.1" => HTTPVersion(1, 1),
        b"HTTP/1.0" => HTTPVersion(1, 0),
        _ => return None,
    };
    let method = Method::from_str(std::str::from_utf8(method).ok()?).ok()?;
    let target = String::from_utf8(target.to_vec()).ok()?;
    Some((method, target, version))
}

/// Twin Paxos patch: parses a field line, `field-name ":" OWS field-value OWS` (RFC 9112 §5):
/// the name a token right before the colon (so no obs-fold, RFC 9112 §5.2, and no space before
/// the colon, §5.1), the value without control characters but tabs (RFC 9110 §5.5). Upstream
/// took any name without whitespace and any ASCII value.
fn parse_header_line(line: &[u8]) -> Option<(String, Vec<u8>)> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = &line[..colon];
    if !framing::is_token(name) {
        return None;
    }
    let value = framing::trim(&line[colon + 1..]);
    if !value
        .iter()
        .all(|&b| b == b'\t' || (b >= b' ' && b != 0x7f))
    {
        return None;
    }
    Some((String::from_utf8(name.to_vec()).ok()?, value.to_vec()))
}

#[cfg(test)]
mod test {
    use super::{parse_header_line, parse_request_line};
    use crate::common::HTTPVersion;

    #[test]
    fn test_parse_request_line() {
        let (method, path, ver) = parse_request_line(b"GET /hello HTTP/1.1").unwrap();

        assert!(method == crate::Method::Get);
        assert!(path == "/hello");
        assert!(ver == HTTPVersion(1, 1));

        assert!(parse_request_line(b"GET /hello").is_none());
        assert!(parse_request_line(b"qsd qsd qsd").is_none());
        // Twin Paxos patch: what hyper's parser refuses too.
        for bad in [
            &b"GET /hello HTTP/2.0"[..],
            b"GET /hello HTTP/0.9",
            b"GET /hello HTTP/1.2",
            b"GET /hello http/1.1",
            b"GET  /hello HTTP/1.1",
            b"GET /hello HTTP/1.1 ",
            b" GET /hello HTTP/1.1",
            b"GET\t/hello\tHTTP/1.1",
            b"G(T /hello HTTP/1.1",
            b"GET /h\x01llo HTTP/1.1",
            b"GET /h\xc3\xa9llo HTTP/1.1",
        ] {
            assert!(parse_request_line(bad).is_none(), "{:?}", bad);
        }
        assert!(parse_request_line(b"get /hello HTTP/1.0").is_some());
    }

    #[test]
    fn test_parse_header_line() {
        let (name, value) = parse_header_line(b"Host: \t x y \t").unwrap();
        assert_eq!((name.as_str(), value.as_slice()), ("Host", &b"x y"[..]));
        assert_eq!(
            parse_header_line(b"X: caf\xc3\xa9").unwrap().1,
            b"caf\xc3\xa9"
        );
        for bad in [
            &b"Host : x"[..],
            b" b",
            b"Foo",
            b": y",
            b"X(: y",
            b"X: a\x01b",
            b"X: a\x00b",
            b"X: a\rb",
        ] {
            assert!(parse_header_line(bad).is_none(), "{:?}", bad);
        }
    }
}
