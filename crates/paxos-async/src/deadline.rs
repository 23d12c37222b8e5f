//! Deadlines: what each connection may take, so that idle and slow clients cannot hold the
//! server's tasks for ever.
//!
//! hyper enforces the deadline for each request head; the body's is `server::read_body`'s. hyper
//! bounds how long a head may take to arrive, but not how long an answer may take to leave: a
//! client that never reads a large answer would hold its task, its socket and its connection
//! slot for as long as it kept the connection open. [`WriteDeadline`] wraps the connection's
//! socket and fails a write that has made no progress for `timeout`, which makes hyper drop the
//! connection. The threaded twin gets the same from its socket's write timeout (`SO_SNDTIMEO`,
//! set by the patched tiny_http).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use paxos_host::Config;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// What hyper allows each connection. A client gets `client_timeout` for a request head, counted
/// from when hyper starts waiting for it (the accept, or the end of the previous exchange), so it
/// is also the idle keep-alive timeout: hyper has one clock for both. The body's deadline is
/// `server::read_body`'s, and the same again for each write of an answer it does not read is
/// [`WriteDeadline`]'s.
pub fn connection_limits(config: &Config) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.client_timeout());
    builder
}

/// A socket whose writes fail with `TimedOut` after `timeout` without progress.
#[derive(Debug)]
pub struct WriteDeadline<T> {
    inner: T,
    timeout: Duration,
    /// Armed while a write waits; reset by every write that goes through.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteDeadline<T> {
    pub fn new(inner: T, timeout: Duration) -> Self {
        WriteDeadline {
            inner,
            timeout,
            stalled: None,
        }
    }

    /// Passes a ready write through (and disarms the deadline); while the write waits, arms the
    /// deadline and fails once it passes.
    fn guard<R>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let timeout = self.timeout;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + timeout)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read nothing of the answer within the client timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.guard(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.guard(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.guard(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.guard(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    async fn a_write_nobody_reads_fails_after_the_timeout() {
        // A pipe of 64 bytes whose far end never reads.
        let (near, _far) = tokio::io::duplex(64);
        let mut socket = WriteDeadline::new(near, Duration::from_secs(3));
        socket.write_all(&[0; 64]).await.unwrap();
        let started = Instant::now();
        let error = socket.write_all(&[0; 64]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn progress_resets_the_deadline() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut socket = WriteDeadline::new(near, Duration::from_secs(3));
        let reader = tokio::spawn(async move {
            let mut buf = [0; 64];
            // Reads a little every two seconds: slower than the pipe fills, faster than the
            // deadline.
            for _ in 0..8 {
                tokio::time::sleep(Duration::from_secs(2)).await;
                tokio::io::AsyncReadExt::read_exact(&mut far, &mut buf)
                    .await
                    .unwrap();
            }
        });
        socket.write_all(&[0; 8 * 64]).await.unwrap();
        reader.await.unwrap();
    }
}
