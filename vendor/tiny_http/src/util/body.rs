//! Twin Paxos patch: the reader of a request body, which tells its connection when the body's
//! end was not found.
//!
//! Upstream gave a handler an `EqualReader` for a `Content-Length` body and the
//! `chunked_transfer` crate's decoder for a chunked one. The decoder accepted what RFC 9112 §7.1
//! does not (spaces around the size, bare LF line ends), refused what it allows (trailer fields),
//! turned a read timeout into `InvalidInput`, and was not drained when dropped, so a chunked body
//! a handler did not read was parsed as the next request. And whatever went wrong, the
//! connection went on reading "requests" from the middle of the body.
//!
//! [`Body`] reads either framing, drains what the handler left when it is dropped (so the next
//! request on the connection starts where it should), and sets the connection's `broken` flag
//! when the end of the body was not found (a framing error, a timeout, the client gone); the
//! connection then closes after the answer instead of reading on. The chunked decoder accepts
//! exactly what hyper 1.x's does (`proto/h1/decode.rs`), so both servers agree on every body.

use std::convert::TryFrom;
use std::io::{Error as IoError, ErrorKind, Read, Result as IoResult};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::util::framing;
use crate::util::Deadline;

/// The longest chunk extension accepted, in bytes (hyper's `CHUNKED_EXTENSIONS_LIMIT`).
const MAX_EXTENSION_BYTES: u64 = 16 * 1024;
/// The most trailer bytes and fields accepted (hyper's `TRAILER_LIMIT` and its default
/// `max_headers`).
const MAX_TRAILER_BYTES: usize = 16 * 1024;
const MAX_TRAILERS: usize = 100;
/// The buffer a dropped body is drained through. Upstream drained into a buffer as large as the
/// declared `Content-Length`, so one header claiming 100 GB aborted the server.
const DRAIN_BUFFER: usize = 64 * 1024;
/// How long a dropped body may take to drain. hyper drains only what has arrived and otherwise
/// closes; upstream drained until the body deadline, so a client that declared a long body and
/// sent none of it (answered `413` unread) held the handler's thread for the whole deadline.
const DRAIN_WITHIN: Duration = Duration::from_secs(1);

/// A request body over the connection's reader `R`.
pub(crate) struct Body<R: Read> {
    state: State<R>,
    /// Shared with the connection; set once this body's end was not found.
    broken: Arc<AtomicBool>,
    /// The connection's read deadline, brought forward for a drain.
    deadline: Option<Deadline>,
}

enum State<R> {
    /// Bytes already read, then the error that stopped the reading, if any.
    Buffered(std::io::Cursor<Vec<u8>>, Option<ErrorKind>),
    Length {
        source: R,
        remaining: u64,
    },
    Chunked(Chunked<R>),
    /// The end was read.
    Done,
    /// A read failed; the same failure is reported again.
    Failed(ErrorKind),
}

impl<R: Read> Body<R> {
    /// A body of `length` bytes read from `source` as the handler asks.
    pub(crate) fn length(source: R, length: u64, broken: Arc<AtomicBool>) -> Self {
        let state = match length {
            0 => State::Done,
            remaining => State::Length { source, remaining },
        };
        Body {
            state,
            broken,
            deadline: None,
        }
    }

    /// A chunked body read from `source` as the handler asks.
    pub(crate) fn chunked(source: R, broken: Arc<AtomicBool>) -> Self {
        Body {
            state: State::Chunked(Chunked::new(source)),
            broken,
            deadline: None,
        }
    }

    /// A body of `length` bytes read from `source` now, so that the connection can read the
    /// next (pipelined) request while this one is handled, as upstream does for small bodies.
    /// A read that fails is not answered here: the handler reads the bytes that came, then the
    /// error, and answers it (`408` for a timeout, `400` for a body cut short), as it does for
    /// a longer body and as the async server does.
    pub(crate) fn buffered(mut source: R, length: usize, broken: Arc<AtomicBool>) -> Self {
        let mut data = vec![0; length];
        let mut filled = 0;
        let mut error = None;
        while filled < length {
            match source.read(&mut data[filled..]) {
                Ok(0) => {
                    error = Some(ErrorKind::UnexpectedEof);
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    error = Some(e.kind());
                    break;
                }
            }
        }
        if error.is_some() {
            broken.store(true, Ordering::Release);
        }
        data.truncate(filled);
        Body {
            state: State::Buffered(std::io::Cursor::new(data), error),
            broken,
            deadline: None,
        }
    }

    /// Drains within [`DRAIN_WITHIN`] of the drop, on the connection's `deadline`.
    pub(crate) fn draining_on(mut self, deadline: Option<Deadline>) -> Self {
        self.deadline = deadline;
        self
    }

    fn fail(&mut self, error: IoError) -> IoError {
        if error.kind() != ErrorKind::Interrupted {
            self.broken.store(true, Ordering::Release);
            self.state = State::Failed(error.kind());
        }
        error
    }
}

impl<R: Read> Read for Body<R> {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let result = match &mut self.state {
            State::Buffered(data, error) => match (data.read(buf)?, *error) {
                (0, Some(kind)) => Err(body_error(kind, "the request body was cut short")),
                (0, None) => {
                    self.state = State::Done;
                    Ok(0)
                }
                (n, _) => Ok(n),
            },
            State::Length { source, remaining } => {
                let want = buf
                    .len()
                    .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                match source.read(&mut buf[..want]) {
                    Ok(0) => Err(body_error(
                        ErrorKind::UnexpectedEof,
                        "the connection closed before the end of the request body",
                    )),
                    Ok(n) => {
                        *remaining -= n as u64;
                        if *remaining == 0 {
                            self.state = State::Done;
                        }
                        Ok(n)
                    }
                    Err(e) => Err(e),
                }
            }
            State::Chunked(chunked) => match chunked.read(buf) {
                Ok(0) => {
                    self.state = State::Done;
                    Ok(0)
                }
                other => other,
            },
            State::Done => Ok(0),
            State::Failed(kind) => Err(body_error(*kind, "the request body could not be read")),
        };
        result.map_err(|e| self.fail(e))
    }
}

impl<R: Read> Drop for Body<R> {
    /// Reads what the handler left of the body, so that the next request on the connection
    /// starts after it, for at most [`DRAIN_WITHIN`]. If the end is not found, the connection
    /// closes instead. The connection's thread starts the next head's clock only after this.
    fn drop(&mut self) {
        // Nothing to drain, or no point: the connection closes anyway.
        let finished = matches!(
            self.state,
            State::Done | State::Failed(_) | State::Buffered(..)
        );
        if finished || self.broken.load(Ordering::Acquire) {
            return;
        }
        if let Some(deadline) = &self.deadline {
            deadline.shorten(DRAIN_WITHIN);
        }
        let mut buf = vec![0; DRAIN_BUFFER];
        loop {
            match self.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}

fn body_error(kind: ErrorKind, message: &'static str) -> IoError {
    IoError::new(kind, message)
}

fn framing_error(message: &'static str) -> IoError {
    IoError::new(ErrorKind::InvalidData, message)
}

/// Where a chunked decoder is (RFC 9112 §7.1): the states of hyper's `ChunkedState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Before the first digit of a chunk size.
    Start,
    Size,
    /// Spaces after the size, before `;` or CR.
    SizeSpace,
    Extension,
    SizeLf,
    /// Inside a chunk's data.
    Data,
    DataCr,
    DataLf,
    /// After the last chunk: a CR (the end) or a trailer field.
    EndCr,
    Trailer,
    TrailerLf,
    EndLf,
    End,
}

/// A chunked body decoder, strict where hyper's is: hex digits then optional spaces, a chunk
/// extension (ignored, RFC 9112 §7.1.1) up to CRLF, CRLF after the data, and trailer fields
/// (discarded, as §7.1.2 allows) that must be well-formed field lines.
struct Chunked<R> {
    source: R,
    step: Step,
    size: u64,
    extension_bytes: u64,
    trailer: Vec<u8>,
    trailers: usize,
}

impl<R: Read> Chunked<R> {
    fn new(source: R) -> Self {
        Chunked {
            source,
            step: Step::Start,
            size: 0,
            extension_bytes: 0,
            trailer: Vec::new(),
            trailers: 0,
        }
    }

    fn byte(&mut self) -> IoResult<u8> {
        let mut byte = [0];
        loop {
            match self.source.read(&mut byte) {
                Ok(0) => {
                    return Err(body_error(
                        ErrorKind::UnexpectedEof,
                        "the connection closed inside a chunked request body",
                    ))
                }
                Ok(_) => return Ok(byte[0]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn add_digit(&mut self, b: u8) -> IoResult<()> {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => unreachable!("only hex digits are added"),
        };
        self.size = self
            .size
            .checked_mul(16)
            .and_then(|n| n.checked_add(u64::from(digit)))
            .ok_or_else(|| framing_error("chunk size overflows"))?;
        Ok(())
    }

    /// Checks one trailer field line (without its CRLF) as a head's field line is checked.
    fn check_trailer(&mut self) -> IoResult<()> {
        let line = std::mem::take(&mut self.trailer);
        let valid = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                framing::is_token(&line[..colon])
                    && line[colon + 1..]
                        .iter()
                        .all(|&b| b == b'\t' || (b >= b' ' && b != 0x7f))
            }
            None => false,
        };
        if !valid {
            return Err(framing_error("invalid trailer field"));
        }
        self.trailers += 1;
        if self.trailers > MAX_TRAILERS {
            return Err(framing_error("too many trailer fields"));
        }
        Ok(())
    }

    fn push_trailer(&mut self, b: u8) -> IoResult<()> {
        self.trailer.push(b);
        if self.trailer.len() > MAX_TRAILER_BYTES {
            return Err(framing_error("trailer fields too large"));
        }
        Ok(())
    }

    /// Reads up to the next chunk data, or to the end; `Ok(0)` at the end.
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        loop {
            self.step = match self.step {
                Step::Start => match self.byte()? {
                    b if b.is_ascii_hexdigit() => {
                        self.size = 0;
                        self.add_digit(b)?;
                        Step::Size
                    }
                    _ => return Err(framing_error("chunk size missing")),
                },
                Step::Size => match self.byte()? {
                    b if b.is_ascii_hexdigit() => {
                        self.add_digit(b)?;
                        Step::Size
                    }
                    b' ' | b'\t' => Step::SizeSpace,
                    b';' => Step::Extension,
                    b'\r' => Step::SizeLf,
                    _ => return Err(framing_error("invalid chunk size")),
                },
                Step::SizeSpace => match self.byte()? {
                    b' ' | b'\t' => Step::SizeSpace,
                    b';' => Step::Extension,
                    b'\r' => Step::SizeLf,
                    _ => return Err(framing_error("invalid chunk size")),
                },
                Step::Extension => match self.byte()? {
                    b'\r' => Step::SizeLf,
                    b'\n' => return Err(framing_error("chunk extension contains LF")),
                    _ => {
                        self.extension_bytes += 1;
                        if self.extension_bytes >= MAX_EXTENSION_BYTES {
                            return Err(framing_error("chunk extensions too long"));
                        }
                        Step::Extension
                    }
                },
                Step::SizeLf => match self.byte()? {
                    b'\n' if self.size == 0 => Step::EndCr,
                    b'\n' => Step::Data,
                    _ => return Err(framing_error("chunk size line without LF")),
                },
                Step::Data => {
                    let want = buf
                        .len()
                        .min(usize::try_from(self.size).unwrap_or(usize::MAX));
                    let n = self.source.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(body_error(
                            ErrorKind::UnexpectedEof,
                            "the connection closed inside a chunk",
                        ));
                    }
                    self.size -= n as u64;
                    if self.size == 0 {
                        self.step = Step::DataCr;
                    }
                    return Ok(n);
                }
                Step::DataCr => match self.byte()? {
                    b'\r' => Step::DataLf,
                    _ => return Err(framing_error("chunk data longer than its size")),
                },
                Step::DataLf => match self.byte()? {
                    b'\n' => Step::Start,
                    _ => return Err(framing_error("chunk data without CRLF")),
                },
                Step::EndCr => match self.byte()? {
                    b'\r' => Step::EndLf,
                    b => {
                        self.push_trailer(b)?;
                        Step::Trailer
                    }
                },
                Step::Trailer => match self.byte()? {
                    b'\r' => Step::TrailerLf,
                    b => {
                        self.push_trailer(b)?;
                        Step::Trailer
                    }
                },
                Step::TrailerLf => match self.byte()? {
                    b'\n' => {
                        self.check_trailer()?;
                        Step::EndCr
                    }
                    _ => return Err(framing_error("trailer field without LF")),
                },
                Step::EndLf => match self.byte()? {
                    b'\n' => Step::End,
                    _ => return Err(framing_error("chunked body without its final CRLF")),
                },
                Step::End => return Ok(0),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(encoded: &[u8]) -> (IoResult<Vec<u8>>, bool, Vec<u8>) {
        let broken = Arc::new(AtomicBool::new(false));
        let mut source = encoded;
        let mut body = Body::chunked(&mut source, Arc::clone(&broken));
        let mut out = Vec::new();
        let result = body.read_to_end(&mut out).map(|_| out);
        drop(body);
        (result, broken.load(Ordering::Acquire), source.to_vec())
    }

    #[test]
    fn chunked_bodies() {
        let (body, broken, rest) = decode(b"3\r\nabc\r\n1;x=y\r\nd\r\n0\r\n\r\nNEXT");
        assert_eq!(body.unwrap(), b"abcd");
        assert!(!broken);
        assert_eq!(rest, b"NEXT");
        let (body, _, rest) = decode(b"3 \t;ext\r\nabc\r\n0\r\nA: b\r\nC: d\r\n\r\nNEXT");
        assert_eq!(body.unwrap(), b"abc");
        assert_eq!(rest, b"NEXT");
        for bad in [
            &b" 3\r\nabc\r\n0\r\n\r\n"[..],
            b"3\nabc\n0\n\n",
            b"zz\r\n",
            b"fffffffffffffffffff\r\n",
            b"1\r\nabc\r\n0\r\n\r\n",
            b"0\r\nno colon\r\n\r\n",
            b"3\r\nab",
        ] {
            let (body, broken, _) = decode(bad);
            assert!(body.is_err(), "{:?}", String::from_utf8_lossy(bad));
            assert!(broken);
        }
    }

    #[test]
    fn dropped_bodies_are_drained() {
        let broken = Arc::new(AtomicBool::new(false));
        let mut source = &b"3\r\nabc\r\n0\r\n\r\nNEXT"[..];
        drop(Body::chunked(&mut source, Arc::clone(&broken)));
        assert_eq!(source, b"NEXT");
        let mut source = &b"abcNEXT"[..];
        drop(Body::length(&mut source, 3, Arc::clone(&broken)));
        assert_eq!(source, b"NEXT");
        assert!(!broken.load(Ordering::Acquire));
        let mut source = &b"ab"[..];
        drop(Body::length(&mut source, 3, Arc::clone(&broken)));
        assert!(broken.load(Ordering::Acquire));
    }

    #[test]
    fn short_buffered_bodies_fail_when_read() {
        let broken = Arc::new(AtomicBool::new(false));
        let mut body = Body::buffered(&b"ab"[..], 3, Arc::clone(&broken));
        assert!(broken.load(Ordering::Acquire));
        let mut out = Vec::new();
        let error = body.read_to_end(&mut out).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::UnexpectedEof);
        assert_eq!(out, b"ab");
    }
}
