//! Who may hold a connection to the coordinator, and for how long it may
//! stay silent.
//!
//! Each connection holds a place (per client and in all, see `limits`) for
//! as long as it is open; a client over its share is disconnected at once,
//! before TLS. After TLS the client must start its request within the header
//! timeout: hyper times out slow request heads and idle kept-alive
//! connections itself, but not a connection that never sends a byte, since
//! it first waits to learn whether HTTP/1 or HTTP/2 is spoken.
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::limits::{Concurrency, Held};

/// Wraps the TLS acceptor `inner` with the connection quota and the
/// first-byte timeout.
#[derive(Clone)]
pub(crate) struct Admit<A> {
    inner: A,
    places: Arc<Concurrency>,
    first_byte: Duration,
}

impl<A> Admit<A> {
    pub(crate) fn new(inner: A, places: Arc<Concurrency>, first_byte: Duration) -> Self {
        Self {
            inner,
            places,
            first_byte,
        }
    }
}

/// The most TLS records waiting to be sent, per connection: rustls allows
/// 64 KiB by default, on top of hyper's own buffer.
const TLS_SEND_BUFFER_BYTES: usize = 16 * 1024;

impl<A, S> Accept<TcpStream, S> for Admit<A>
where
    A: Accept<TcpStream, S, Stream = TlsStream<TcpStream>> + Clone + Send + 'static,
    A::Future: Send,
    A::Service: Send,
    S: Send + 'static,
{
    type Stream = Admitted<TlsStream<TcpStream>>;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let peer: SocketAddr = stream.peer_addr()?;
            let place = this.places.hold(peer.ip()).map_err(|_| {
                tracing::debug!(%peer, "connection refused: too many open");
                io::Error::other("too many connections")
            })?;
            let (mut stream, service) = this.inner.accept(stream, service).await?;
            stream
                .get_mut()
                .1
                .set_buffer_limit(Some(TLS_SEND_BUFFER_BYTES));
            let mut stream = BufReader::new(stream);
            match tokio::time::timeout(this.first_byte, stream.fill_buf()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    tracing::debug!(%peer, "connection dropped: silent after TLS");
                    return Err(io::ErrorKind::TimedOut.into());
                }
            }
            Ok((
                Admitted {
                    stream,
                    _place: place,
                },
                service,
            ))
        })
    }
}

/// An admitted connection: the stream, and its place in the quota until it closes.
pub(crate) struct Admitted<S> {
    stream: BufReader<S>,
    _place: Held,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Admitted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Admitted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
