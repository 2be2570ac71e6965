//! Carrying the program's TCP connections over QUIC streams.
//!
//! For every peer we listen on a local port; the program connects there as if
//! it were the peer. Each accepted TCP connection becomes one bidirectional
//! QUIC stream, which the peer's partyline connects to its own program's
//! listening port. Bytes are copied as they come, both ways, with QUIC's flow
//! control as back-pressure and FIN as half-close, so any TCP protocol works.
//!
//! Every stream starts with one header byte, because a QUIC stream is only
//! announced to the peer once data is sent on it, and some protocols let the
//! accepting side speak first.
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use iroh::endpoint::{Connection, RecvStream, SendStream, VarInt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::PeerLink;

const STREAM_TCP: u8 = 1;
const BUFFER: usize = 64 * 1024;
/// How long a stream from a peer waits for our program to start listening.
const PROGRAM_START_TIMEOUT: Duration = Duration::from_secs(120);
const RESET_CODE: u32 = 1;

/// The running forwarders of one session.
pub struct Forwarder {
    /// Local addresses in seat order: peers' tunnel ends, and our program's own port.
    pub addrs: Vec<SocketAddr>,
    stop: CancellationToken,
    outgoing: TaskTracker,
}

impl Forwarder {
    /// Opens one local listener per peer and starts forwarding.
    ///
    /// `program_addr` is where our own program will listen for its peers.
    pub async fn start(
        links: &[PeerLink],
        own_index: usize,
        program_addr: SocketAddr,
    ) -> std::io::Result<Self> {
        let stop = CancellationToken::new();
        let outgoing = TaskTracker::new();
        let mut addrs = vec![program_addr; links.len() + 1];
        for link in links {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
            addrs[link.member.index] = listener.local_addr()?;
            tokio::spawn(accept_local(
                listener,
                link.clone(),
                stop.clone(),
                outgoing.clone(),
            ));
            tokio::spawn(accept_remote(
                link.clone(),
                program_addr,
                stop.clone(),
                outgoing.clone(),
            ));
        }
        debug_assert_eq!(addrs[own_index], program_addr);
        Ok(Self {
            addrs,
            stop,
            outgoing,
        })
    }

    /// Waits (up to `limit`) until everything our program sent has been
    /// received by the peers (only the directions towards peers are tracked),
    /// then stops forwarding. Called after our program
    /// exited, so closing the connections loses nothing.
    pub async fn drain(&self, limit: Duration) {
        self.outgoing.close();
        let _ = tokio::time::timeout(limit, self.outgoing.wait()).await;
        self.stop.cancel();
    }
}

async fn accept_local(
    listener: TcpListener,
    link: PeerLink,
    stop: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let tcp = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    tracing::warn!("local listener for party {} failed: {e}", link.member.index);
                    return;
                }
            },
        };
        let link = link.clone();
        let tracker = tracker.clone();
        tokio::spawn(async move {
            match open_stream(&link.conn).await {
                Ok((send, recv)) => pump(tcp, send, recv, &link, &tracker).await,
                Err(e) => {
                    tracing::warn!("cannot open a stream to party {}: {e}", link.member.index)
                }
            }
        });
    }
}

async fn open_stream(conn: &Connection) -> Result<(SendStream, RecvStream), String> {
    let (mut send, recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    send.write_all(&[STREAM_TCP])
        .await
        .map_err(|e| e.to_string())?;
    Ok((send, recv))
}

async fn accept_remote(
    link: PeerLink,
    program_addr: SocketAddr,
    stop: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let (send, mut recv) = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = link.conn.accept_bi() => match accepted {
                Ok(streams) => streams,
                // The connection ended; `ending::watch_peers` reports why.
                Err(_) => return,
            },
        };
        let link = link.clone();
        let stop = stop.clone();
        let tracker = tracker.clone();
        tokio::spawn(async move {
            let mut header = [0u8; 1];
            if recv.read_exact(&mut header).await.is_err() || header[0] != STREAM_TCP {
                tracing::warn!(
                    "party {} opened a stream partyline does not understand",
                    link.member.index
                );
                return;
            }
            match connect_program(program_addr, &stop).await {
                Some(tcp) => pump(tcp, send, recv, &link, &tracker).await,
                None => {
                    let mut send = send;
                    let _ = send.reset(VarInt::from_u32(RESET_CODE));
                }
            }
        });
    }
}

/// Connects to our program, retrying while it starts up: the peer's program
/// may dial before ours listens.
async fn connect_program(addr: SocketAddr, stop: &CancellationToken) -> Option<TcpStream> {
    let deadline = tokio::time::Instant::now() + PROGRAM_START_TIMEOUT;
    loop {
        match TcpStream::connect(addr).await {
            Ok(tcp) => return Some(tcp),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                tracing::warn!("our program never accepted on {addr}: {e}");
                return None;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = stop.cancelled() => return None,
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
}

/// Copies both ways until both directions are finished. The direction towards
/// the peer runs in `tracker`, so that [`Forwarder::drain`] can wait for it.
async fn pump(
    tcp: TcpStream,
    mut send: SendStream,
    mut recv: RecvStream,
    link: &PeerLink,
    tracker: &TaskTracker,
) {
    // MPyC sends many small messages and waits for answers: never delay them.
    let _ = tcp.set_nodelay(true);
    let (mut tcp_read, mut tcp_write) = tcp.into_split();
    let sent = link.bytes_sent.clone();
    let upstream = tracker.spawn(async move {
        match copy_counted(&mut tcp_read, &mut send, &sent).await {
            Ok(()) => {
                let _ = send.finish();
                // Resolves once the peer has read everything: only then may the
                // connection be closed without losing data.
                let _ = send.stopped().await;
            }
            Err(_) => {
                let _ = send.reset(VarInt::from_u32(RESET_CODE));
            }
        }
    });
    if copy_counted(&mut recv, &mut tcp_write, &link.bytes_received)
        .await
        .is_ok()
    {
        let _ = tcp_write.shutdown().await;
    } else {
        let _ = recv.stop(VarInt::from_u32(RESET_CODE));
    }
    let _ = upstream.await;
}

async fn copy_counted<R, W>(
    reader: &mut R,
    writer: &mut W,
    counter: &Arc<AtomicU64>,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUFFER];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return writer.flush().await;
        }
        writer.write_all(&buf[..n]).await?;
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}
