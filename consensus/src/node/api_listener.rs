//! The API's TCP listener: a bound on open connections and a read deadline per connection, so
//! that many idle or slow clients (slowloris) cannot hold the API (audit L10).
//!
//! # Invariants
//! - At most `max_connections` accepted connections are open at once: each holds a semaphore
//!   permit until it is dropped; while none is free, new connections wait in the kernel's
//!   backlog (they are not accepted, so they cost the node nothing).
//! - A connection that has been waiting for bytes longer than `read_timeout` since it was
//!   accepted or since the node last wrote to it fails its read with `TimedOut`, and the HTTP
//!   server closes it. That bounds how long a client may take to send one request (headers and
//!   body), and how long an idle keep-alive connection stays open.
//!
//! # Known limitations
//! The bound is global, not per client address: one client can take every slot for up to
//! `read_timeout` at a time. The API is meant to be reachable only from the node's own bridges
//! (see `consensus/README.md`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tracing::debug;

/// A [`TcpListener`] that bounds open connections and gives each a read deadline.
#[derive(Debug)]
pub(crate) struct LimitedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    read_timeout: Duration,
}

impl LimitedListener {
    /// Wraps `inner`: at most `max_connections` open at once (at least one), each failing a read
    /// that waits longer than `read_timeout`.
    pub(crate) fn new(inner: TcpListener, max_connections: usize, read_timeout: Duration) -> Self {
        LimitedListener {
            inner,
            permits: Arc::new(Semaphore::new(max_connections.max(1))),
            read_timeout,
        }
    }
}

impl axum::serve::Listener for LimitedListener {
    type Io = LimitedStream;
    type Addr = std::net::SocketAddr;

    /// Cancel safety: dropping the future before a connection is accepted loses nothing (the
    /// permit goes back; a pending connection stays in the backlog).
    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok(permit) = Arc::clone(&self.permits).acquire_owned().await else {
                // The semaphore is never closed; stay pending rather than spin.
                return std::future::pending().await;
            };
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    return (LimitedStream::new(stream, permit, self.read_timeout), addr);
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    debug!(cause = %e, "api accept failed");
                    drop(permit);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// An accepted API connection: holds its connection slot and enforces the read deadline.
#[derive(Debug)]
pub(crate) struct LimitedStream {
    inner: TcpStream,
    _permit: OwnedSemaphorePermit,
    read_timeout: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl LimitedStream {
    fn new(inner: TcpStream, permit: OwnedSemaphorePermit, read_timeout: Duration) -> Self {
        LimitedStream {
            inner,
            _permit: permit,
            read_timeout,
            deadline: Box::pin(tokio::time::sleep(read_timeout)),
        }
    }
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Pending => {
                if this.deadline.as_mut().poll(cx).is_ready() {
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "api client sent nothing in time",
                    )))
                } else {
                    Poll::Pending
                }
            }
            ready => ready,
        }
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            // An answer went out: the client gets a fresh `read_timeout` for its next request.
            let next = Instant::now() + this.read_timeout;
            this.deadline.as_mut().reset(next);
        }
        result
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
