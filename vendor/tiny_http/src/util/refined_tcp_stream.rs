use std::io::Result as IoResult;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::connection::Connection;
use crate::util::deadline::{self, Deadline};
#[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
use crate::ssl::SslStream;

pub(crate) enum Stream {
    /// Twin Paxos patch: shared, not duplicated. Upstream gave each half of a connection a
    /// descriptor of its own (`try_clone`), two per connection; the halves now share one socket,
    /// and so can the server's list of open connections, which shuts idle ones down at shutdown.
    Http(Arc<Connection>),
    #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
    Https(SslStream),
}

impl Clone for Stream {
    fn clone(&self) -> Self {
        match self {
            Stream::Http(tcp_stream) => Stream::Http(Arc::clone(tcp_stream)),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => Stream::Https(ssl_stream.clone()),
        }
    }
}

impl From<Arc<Connection>> for Stream {
    fn from(tcp_stream: Arc<Connection>) -> Self {
        Stream::Http(tcp_stream)
    }
}

impl Stream {
    fn secure(&self) -> bool {
        match self {
            Stream::Http(_) => false,
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(_) => true,
        }
    }

    fn peer_addr(&mut self) -> IoResult<Option<SocketAddr>> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.peer_addr(),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.peer_addr(),
        }
    }

    /// Twin Paxos patch: how long one read may block. Upstream set no timeout at all.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> IoResult<()> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.set_read_timeout(timeout),
            // rustls streams set it for each of their own reads (`RustlsStream::read_within`);
            // OpenSSL is not built for Twin Paxos, and its streams keep upstream's blocking reads.
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(_) => Ok(()),
        }
    }

    fn shutdown(&mut self, how: Shutdown) -> IoResult<()> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.shutdown(how),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.shutdown(how),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        match self {
            Stream::Http(tcp_stream) => (&**tcp_stream).read(buf),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> IoResult<usize> {
        match self {
            Stream::Http(tcp_stream) => (&**tcp_stream).write(buf),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.write(buf),
        }
    }

    fn flush(&mut self) -> IoResult<()> {
        match self {
            Stream::Http(tcp_stream) => (&**tcp_stream).flush(),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.flush(),
        }
    }
}

pub struct RefinedTcpStream {
    stream: Stream,
    close_read: bool,
    close_write: bool,
    /// Twin Paxos patch: the deadline reads must meet (only the read half looks at it).
    deadline: Deadline,
    /// Twin Paxos patch: whether the socket has a read timeout set, so that reads without a
    /// deadline clear it once rather than on every read.
    timeout_set: bool,
}

impl RefinedTcpStream {
    pub(crate) fn new<S>(stream: S) -> (RefinedTcpStream, RefinedTcpStream)
    where
        S: Into<Stream>,
    {
        let stream: Stream = stream.into();

        let (read, write) = (stream.clone(), stream);

        let read = RefinedTcpStream {
            stream: read,
            close_read: true,
            close_write: false,
            deadline: Deadline::default(),
            timeout_set: false,
        };

        let write = RefinedTcpStream {
            stream: write,
            close_read: false,
            close_write: true,
            deadline: Deadline::default(),
            timeout_set: false,
        };

        (read, write)
    }

    /// Returns true if this struct wraps around a secure connection.
    #[inline]
    pub(crate) fn secure(&self) -> bool {
        self.stream.secure()
    }

    pub(crate) fn peer_addr(&mut self) -> IoResult<Option<SocketAddr>> {
        self.stream.peer_addr()
    }

    /// Twin Paxos patch: the deadline this stream's reads must meet, for its owner to set.
    pub(crate) fn deadline(&self) -> Deadline {
        self.deadline.clone()
    }
}

impl Drop for RefinedTcpStream {
    fn drop(&mut self) {
        if self.close_read {
            self.stream.shutdown(Shutdown::Read).ok();
        }

        if self.close_write {
            self.stream.shutdown(Shutdown::Write).ok();
        }
    }
}

impl Read for RefinedTcpStream {
    /// Twin Paxos patch: each read may block only for what is left before the deadline. The
    /// socket's timeout applies to one read, so it is set again before every read.
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        // A TLS read may read the socket several times (the handshake, a record in pieces):
        // each read waits only until the deadline.
        #[cfg(feature = "ssl-rustls")]
        if let Stream::Https(tls) = &self.stream {
            return tls.read_within(buf, &self.deadline);
        }
        let remaining = self.deadline.remaining()?;
        if remaining.is_some() || self.timeout_set {
            self.stream.set_read_timeout(remaining)?;
            self.timeout_set = remaining.is_some();
        }
        match self.stream.read(buf) {
            // A socket timeout shows as `WouldBlock` on Unix and `TimedOut` on Windows.
            Err(e) if remaining.is_some() && e.kind() == std::io::ErrorKind::WouldBlock => {
                Err(deadline::timed_out())
            }
            result => result,
        }
    }
}

impl Write for RefinedTcpStream {
    fn write(&mut self, buf: &[u8]) -> IoResult<usize> {
        let written = self.stream.write(buf);
        self.end_on_timeout(written)
    }

    fn flush(&mut self) -> IoResult<()> {
        let flushed = self.stream.flush();
        self.end_on_timeout(flushed)
    }
}

impl RefinedTcpStream {
    /// Twin Paxos patch: a write that timed out (the client read nothing for the write timeout)
    /// ends the connection. Upstream ignored the error and went on to the next pipelined request,
    /// whose answer timed out again, and so on: a client that never read held its connection and
    /// thread for the write timeout times the requests it had sent. Shutting the socket down makes
    /// the connection's reads fail too, so its thread ends it.
    fn end_on_timeout<T>(&mut self, result: IoResult<T>) -> IoResult<T> {
        if let Err(error) = &result {
            if let std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock = error.kind() {
                self.stream.shutdown(Shutdown::Both).ok();
            }
        }
        result
    }
}
