//! Twin Paxos patch: TLS on rustls 0.23, rewritten. Upstream's module was for rustls 0.20, read
//! and wrote through `rustls::StreamOwned` (whose reads and writes may each read the socket, and
//! so block without the connection's deadline), and took only PEM bytes. This one:
//!
//! - takes a ready `rustls::ServerConfig` from [`Tls::around`], scoped like [`crate::Limits`]
//!   since rouille passes no options to the server it builds;
//! - runs the handshake on the connection's thread at its first read, every socket read of it
//!   within the connection's read deadline (the head deadline then), so a client that never
//!   finishes its handshake is dropped when that passes; a handshake that fails or times out
//!   calls [`Tls::on_handshake_failure`];
//! - never reads the socket on the write path, and shuts the socket down without the stream's
//!   lock, so that a stopping server can close a connection blocked in a read.

use crate::connection::Connection;
use crate::util::deadline::{self, Deadline};
use crate::util::refined_tcp_stream::Stream as RefinedStream;
use std::cell::RefCell;
use std::error::Error;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// What a TLS server built inside [`Tls::around`] serves with.
#[derive(Clone)]
pub struct Tls {
    /// The server's rustls config.
    pub config: Arc<rustls::ServerConfig>,
    /// Called once for each connection whose handshake failed: the client closed, sent
    /// something that is not TLS, refused the certificate or was refused, or the read deadline
    /// passed first.
    pub on_handshake_failure: Arc<dyn Fn() + Send + Sync>,
}

thread_local! {
    static SCOPED: RefCell<Option<Tls>> = const { RefCell::new(None) };
}

impl Tls {
    /// Runs `build`, and any server it creates on this thread without an `SslConfig` of its
    /// own serves HTTPS with this config.
    pub fn around<T>(self, build: impl FnOnce() -> T) -> T {
        /// Puts the previous scope back even if `build` panics.
        struct Restore(Option<Tls>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                SCOPED.with(|scoped| *scoped.borrow_mut() = previous);
            }
        }
        let _restore = Restore(SCOPED.with(|scoped| scoped.borrow_mut().replace(self)));
        build()
    }

    /// The TLS config for a server built now on this thread.
    pub(crate) fn current() -> Option<Tls> {
        SCOPED.with(|scoped| scoped.borrow().clone())
    }
}

/// A socket whose every read waits at most until the connection's deadline.
struct Within<'a> {
    sock: &'a Connection,
    deadline: &'a Deadline,
}

impl Read for Within<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let remaining = self.deadline.remaining()?;
        self.sock.set_read_timeout(remaining)?;
        let mut sock = self.sock;
        match sock.read(buf) {
            // A socket timeout shows as `WouldBlock` on Unix and `TimedOut` on Windows.
            Err(e) if remaining.is_some() && e.kind() == ErrorKind::WouldBlock => {
                Err(deadline::timed_out())
            }
            result => result,
        }
    }
}

impl Write for Within<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut sock = self.sock;
        sock.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let mut sock = self.sock;
        sock.flush()
    }
}

struct Shared {
    sock: Arc<Connection>,
    tls: Mutex<rustls::ServerConnection>,
    on_handshake_failure: Option<Arc<dyn Fn() + Send + Sync>>,
}

/// Both halves of a TLS connection: one socket and one rustls connection behind a lock. The
/// halves of a connection never read and write at once (its thread reads a request, then
/// answers it), so the lock is not contended.
#[derive(Clone)]
pub(crate) struct RustlsStream(Arc<Shared>);

impl RustlsStream {
    pub(crate) fn peer_addr(&mut self) -> std::io::Result<Option<SocketAddr>> {
        self.0.sock.peer_addr()
    }

    pub(crate) fn shutdown(&mut self, how: Shutdown) -> std::io::Result<()> {
        self.0.sock.shutdown(how)
    }

    /// Reads plaintext, each socket read within `deadline`; the first read runs the handshake.
    pub(crate) fn read_within(
        &self,
        buf: &mut [u8],
        deadline: &Deadline,
    ) -> std::io::Result<usize> {
        let mut tls = self.0.tls.lock().unwrap_or_else(|e| e.into_inner());
        let mut sock = Within {
            sock: &self.0.sock,
            deadline,
        };
        if tls.is_handshaking() {
            // `complete_io` writes the alert of a failed handshake before it returns the error.
            let mut handshake = || {
                while tls.is_handshaking() {
                    tls.complete_io(&mut sock)?;
                }
                Ok::<(), std::io::Error>(())
            };
            if let Err(error) = handshake() {
                if let Some(failed) = &self.0.on_handshake_failure {
                    failed();
                }
                return Err(error);
            }
        }
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                // No plaintext yet: read more records below.
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                // The client closed without `close_notify`. Requests are framed by their
                // headers, so nothing can be cut short unseen: a close, as over plain TCP.
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            tls.read_tls(&mut sock)?;
            if let Err(error) = tls.process_new_packets() {
                let _ = tls.write_tls(&mut sock);
                return Err(std::io::Error::new(ErrorKind::InvalidData, error));
            }
            // Whatever the records asked to send back (a key update), never a read.
            while tls.wants_write() {
                tls.write_tls(&mut sock)?;
            }
        }
    }
}

impl Read for RustlsStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.read_within(buf, &Deadline::default())
    }
}

impl Write for RustlsStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut tls = self.0.tls.lock().unwrap_or_else(|e| e.into_inner());
        if tls.is_handshaking() {
            return Err(std::io::Error::new(
                ErrorKind::NotConnected,
                "TLS handshake not done",
            ));
        }
        let written = tls.writer().write(buf)?;
        let mut sock = &*self.0.sock;
        while tls.wants_write() {
            tls.write_tls(&mut sock)?;
        }
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let mut tls = self.0.tls.lock().unwrap_or_else(|e| e.into_inner());
        tls.writer().flush()?;
        let mut sock = &*self.0.sock;
        while tls.wants_write() {
            tls.write_tls(&mut sock)?;
        }
        sock.flush()
    }
}

pub(crate) struct RustlsContext {
    config: Arc<rustls::ServerConfig>,
    on_handshake_failure: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl RustlsContext {
    /// A context from PEM bytes, for `Server::https` (upstream's way; Twin Paxos uses
    /// [`Tls::around`]). rustls's crypto is the process default, or the one its features name.
    pub(crate) fn from_pem(
        certificates: Vec<u8>,
        private_key: Zeroizing<Vec<u8>>,
    ) -> Result<Self, Box<dyn Error + Send + Sync>> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certificate_chain = CertificateDer::pem_slice_iter(&certificates)
            .collect::<Result<Vec<_>, _>>()?;
        if certificate_chain.is_empty() {
            return Err("Couldn't extract certificate chain from config.".into());
        }
        let private_key = PrivateKeyDer::from_pem_slice(&private_key)?;
        let tls_conf = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certificate_chain, private_key)?;
        Ok(Self {
            config: Arc::new(tls_conf),
            on_handshake_failure: None,
        })
    }

    /// Twin Paxos patch: a context from [`Tls::around`]'s scope.
    pub(crate) fn from_tls(tls: Tls) -> Self {
        Self {
            config: tls.config,
            on_handshake_failure: Some(tls.on_handshake_failure),
        }
    }

    /// Wraps an accepted socket; no I/O here (the handshake runs at the first read, on the
    /// connection's thread, not on the accept thread).
    pub(crate) fn accept(
        &self,
        stream: Arc<Connection>,
    ) -> Result<RustlsStream, Box<dyn Error + Send + Sync + 'static>> {
        let connection = rustls::ServerConnection::new(self.config.clone())?;
        Ok(RustlsStream(Arc::new(Shared {
            sock: stream,
            tls: Mutex::new(connection),
            on_handshake_failure: self.on_handshake_failure.clone(),
        })))
    }
}

impl From<RustlsStream> for RefinedStream {
    fn from(stream: RustlsStream) -> Self {
        Self::Https(stream)
    }
}
