//! What each connection is held to before any request on it is read: at most
//! `max_connections_per_client` open per client address, and a response the client stops
//! reading cut off after `send_timeout` (nginx's `send_timeout`). Without these, about 500
//! clients that ask for a large object and never read hold a descriptor each forever, and a
//! server at its open-files limit answers every later request with an error.

use actix_web::rt::net::TcpStream;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Open connections per client address, shared by every worker.
#[derive(Default)]
pub(crate) struct Counts(Mutex<HashMap<IpAddr, usize>>);

/// One counted connection; uncounted when dropped.
pub(crate) struct Slot {
    counts: Arc<Counts>,
    ip: IpAddr,
}

impl Counts {
    /// A slot for one more connection from `ip`, or `None` when it already holds `max`.
    pub(crate) fn claim(self: &Arc<Counts>, ip: IpAddr, max: usize) -> Option<Slot> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            counts: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut map = self.counts.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// The answer to a connection over the per-client limit, written before it is closed: the
/// documented JSON error shape, so a client sees why.
pub(crate) fn over_limit_response(max: usize) -> Vec<u8> {
    let refusal = crate::error::ApiError::Unavailable(format!(
        "this address already holds {max} open connections to the server \
         (max_connections_per_client); close some and try again"
    ));
    let body = refusal.body().to_string();
    format!(
        "HTTP/1.1 {} Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\nretry-after: 1\r\n\r\n{body}",
        refusal.status().as_str(),
        body.len()
    )
    .into_bytes()
}

/// A TCP stream whose writes fail with `TimedOut` once the peer has taken nothing for
/// `send_timeout`: a write that cannot proceed (the socket buffer is full because the client
/// does not read) starts a timer, and any progress clears it.
pub(crate) struct Watched {
    io: TcpStream,
    send_timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl Watched {
    pub fn new(io: TcpStream, send_timeout: Duration) -> Watched {
        Watched {
            io,
            send_timeout,
            stalled: None,
        }
    }

    /// The socket underneath, for the sendfile path's peek.
    pub(crate) fn get_ref(&self) -> &TcpStream {
        &self.io
    }

    fn on_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let timeout = self.send_timeout;
                let timer = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if timer.as_mut().poll(cx).is_ready() {
                    log::info!(
                        "closed a connection whose client took nothing for {} s",
                        timeout.as_secs()
                    );
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client stopped reading (send_timeout)",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.on_write(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.on_write(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_flush(cx);
        self.on_write(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
