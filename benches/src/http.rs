//! A minimal HTTP/1.1 keep-alive client over one `TcpStream`, or over rustls on it.
//!
//! The load generator sends the same bytes to both servers, so neither is favoured by a client
//! library's quirks, and a raw connection is what the idle-connection scenario needs anyway. It
//! understands exactly what the two servers send: a status line, headers, and a body framed by
//! `Content-Length` or chunked encoding. With TLS the bytes are the same, inside rustls (the
//! servers' own TLS library, on the same ring crypto), so the TLS rows measure the servers and
//! not a difference between two clients.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

/// One keep-alive connection.
#[derive(Debug)]
pub struct Conn {
    host: String,
    reader: BufReader<Stream>,
}

/// What a connection runs on: the socket, or a TLS session over it.
#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    // Boxed: a rustls session is a few kilobytes, the socket a descriptor.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

impl Conn {
    /// A plain-HTTP connection to `addr`.
    pub fn connect(addr: &str, timeout: Duration) -> io::Result<Conn> {
        Conn::open(addr, timeout, None)
    }

    /// A connection to `addr`, over TLS with `tls` when given. The handshake happens on the
    /// first request, as rustls does it lazily: a keep-alive client pays it once, and the TLS
    /// rows measure mostly what each request costs to encrypt.
    pub fn open(
        addr: &str,
        timeout: Duration,
        tls: Option<&Arc<ClientConfig>>,
    ) -> io::Result<Conn> {
        let socket = addr.to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{addr} resolves to nothing"),
            )
        })?;
        let stream = TcpStream::connect_timeout(&socket, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let stream = match tls {
            None => Stream::Plain(stream),
            Some(config) => {
                // The certificate is checked against the host as dialled (`127.0.0.1`).
                let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
                let name = ServerName::try_from(host.to_owned())
                    .map_err(|e| bad(format!("{host}: not a server name: {e}")))?;
                let session = ClientConnection::new(Arc::clone(config), name)
                    .map_err(|e| bad(format!("TLS to {addr}: {e}")))?;
                Stream::Tls(Box::new(StreamOwned::new(session, stream)))
            }
        };
        Ok(Conn {
            host: addr.to_owned(),
            reader: BufReader::new(stream),
        })
    }

    /// Sends one request and reads its whole answer: `(status, body)`.
    pub fn request(&mut self, method: &str, path: &str, body: &[u8]) -> io::Result<(u16, Vec<u8>)> {
        self.send(method, path, body)?;
        self.read_response()
    }

    /// Sends one request without reading its answer (see [`Conn::read_response`]).
    pub fn send(&mut self, method: &str, path: &str, body: &[u8]) -> io::Result<()> {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        // rustls may hold written bytes until flushed; on a plain socket this does nothing.
        stream.flush()
    }

    /// Sends a `GET` and reads its answer. The idle-connection scenario sends one on each
    /// connection it holds, so the server has accepted it and keeps its state.
    pub fn get(&mut self, path: &str) -> io::Result<(u16, Vec<u8>)> {
        self.request("GET", path, b"")
    }

    /// Reads the answer to a request sent with [`Conn::send`].
    pub fn read_response(&mut self) -> io::Result<(u16, Vec<u8>)> {
        let mut line = String::new();
        self.read_line(&mut line)?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("bad status line {line:?}")))?;
        let mut length = None;
        let mut chunked = false;
        loop {
            line.clear();
            self.read_line(&mut line)?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or((header, ""));
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| bad("bad content-length".into()))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
        let body = if chunked {
            self.read_chunked()?
        } else {
            let mut body = vec![0; length.unwrap_or(0)];
            self.reader.read_exact(&mut body)?;
            body
        };
        Ok((status, body))
    }

    fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            self.read_line(&mut line)?;
            let size_text = line.trim().split(';').next().unwrap_or("");
            let size =
                usize::from_str_radix(size_text, 16).map_err(|_| bad("bad chunk size".into()))?;
            if size == 0 {
                line.clear();
                self.read_line(&mut line)?;
                return Ok(body);
            }
            let start = body.len();
            body.resize(start + size, 0);
            self.reader.read_exact(&mut body[start..])?;
            line.clear();
            self.read_line(&mut line)?;
        }
    }

    fn read_line(&mut self, line: &mut String) -> io::Result<()> {
        if self.reader.read_line(line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        Ok(())
    }
}

fn bad(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}
