//! Carrying the program's TCP connections over QUIC streams.
//!
//! For every peer we listen on a local port; the program connects there as if
//! it were the peer. Each accepted TCP connection becomes one bidirectional
//! QUIC stream, which the peer's partyline connects to its own program's
//! listening port. Bytes are copied as they come, both ways, with QUIC's flow
//! control as back-pressure and FIN as half-close, so any TCP protocol works.
//!
//! How a stream starts is the protocol's (`partyline_proto::stream`).
//!
//! Where each tunnel end listens, and where a forwarded connection comes
//! from, is [`crate::addrs`]'s: peer j's own address where the system allows
//! it, so that the program sees every party at the same address as the others do.
//!
//! # Who may open a stream
//! Every tunnel end listens on a loopback address, which any process of the
//! machine can reach, so a local connection is forwarded only if it comes from
//! a process of our own user ([`crate::local_peer`]); any other is closed at
//! once. The tunnel end at peer j's address carries streams to peer j's
//! verified connection only.
//!
//! A verified peer is not trusted with seats other than its own. MPyC learns
//! a peer's party id from the first two bytes of a stream, so in MPyC mode
//! ([`StreamRules::Mpyc`]) only the streams of MPyC's own pattern exist
//! ([`partyline_wire::seat`]): our program connects once to each tunnel end
//! towards a higher seat and never towards a lower one (other local
//! connections are refused and the session goes on); a peer opens one stream
//! and only from a lower seat, and the first two bytes, held back until
//! checked, must be its own seat. A peer that breaks these rules ends the
//! session: we close every connection with [`CloseCode::SeatViolation`] and a
//! reason naming it, so every party stops and says who it was, and
//! [`Forwarder::breach`] tells our caller. Generic programs
//! ([`StreamRules::Generic`]) may open any number of streams either way.
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use iroh::endpoint::{Connection, RecvStream, SendStream};
use partyline_proto::stream::{self, RESET_CODE};
use partyline_wire::seat::{IncomingCheck, PARTY_ID_LEN, PeerSeat, SeatViolation, StreamRules};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::addrs::LocalEnds;
use crate::{CloseCode, PeerLink, local_peer};

const BUFFER: usize = 64 * 1024;
/// How long a stream from a peer waits for our program to start listening.
const PROGRAM_START_TIMEOUT: Duration = Duration::from_secs(120);

/// The running forwarders of one session.
pub struct Forwarder {
    /// Local addresses in seat order: peers' tunnel ends, and our program's own port.
    pub addrs: Vec<SocketAddr>,
    stop: CancellationToken,
    outgoing: TaskTracker,
    breaches: Mutex<mpsc::UnboundedReceiver<SeatBreach>>,
    /// Keeps [`Forwarder::breach`] waiting rather than ending when no task is left.
    _breach_sender: mpsc::UnboundedSender<SeatBreach>,
}

/// A peer broke the seat rules; every connection of the session is closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeatBreach {
    pub index: usize,
    pub name: String,
    pub violation: SeatViolation,
}

impl std::fmt::Display for SeatBreach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "party {} ({}) {}", self.index, self.name, self.violation)
    }
}

/// Where a peer's streams reach our program, and from which address.
#[derive(Clone, Copy, Debug)]
struct ProgramEnd {
    /// Its first port; the others follow.
    addr: SocketAddr,
    ports: u16,
    /// The peer's own address (port 0), or `None` where the system picks it.
    source: Option<SocketAddr>,
}

/// What every task of one peer's forwarding shares.
#[derive(Clone)]
struct Shared {
    /// Every connection of the session, closed together after a breach.
    all: Arc<[Connection]>,
    breaches: mpsc::UnboundedSender<SeatBreach>,
    stop: CancellationToken,
    outgoing: TaskTracker,
}

impl Forwarder {
    /// Starts forwarding under `rules` on the tunnel ends of `ends`, one per
    /// peer; streams from peers go to our program at `ends`' own address.
    pub fn start(
        links: &[PeerLink],
        own_index: usize,
        mut ends: LocalEnds,
        rules: StreamRules,
    ) -> std::io::Result<Self> {
        let (breach_sender, breaches) = mpsc::unbounded_channel();
        let shared = Shared {
            all: links.iter().map(|l| l.conn.clone()).collect(),
            breaches: breach_sender.clone(),
            stop: CancellationToken::new(),
            outgoing: TaskTracker::new(),
        };
        let addrs = ends.addrs().to_vec();
        let program_addr = addrs[own_index];
        let ports = ends.ports();
        for link in links {
            let index = link.member.index;
            let listeners = ends.take(index);
            if listeners.is_empty() {
                let missing = format!("no tunnel end for party {index}");
                return Err(std::io::Error::other(missing));
            }
            let program = ProgramEnd {
                addr: program_addr,
                ports,
                source: ends.source(index),
            };
            // Several ports come with generic rules only (join allows no
            // other), so the copies of the seat need not share their counts.
            let seat = PeerSeat::new(rules, own_index, link.member.index);
            for (offset, listener) in (0..).zip(listeners) {
                listener.set_nonblocking(true)?;
                let listener = TcpListener::from_std(listener)?;
                tokio::spawn(accept_local(
                    listener,
                    offset,
                    link.clone(),
                    seat.clone(),
                    shared.clone(),
                ));
            }
            tokio::spawn(accept_remote(link.clone(), seat, program, shared.clone()));
        }
        Ok(Self {
            addrs,
            stop: shared.stop,
            outgoing: shared.outgoing,
            breaches: Mutex::new(breaches),
            _breach_sender: breach_sender,
        })
    }

    /// Waits until a peer breaks the seat rules. By then every connection is
    /// already closed with [`CloseCode::SeatViolation`].
    pub async fn breach(&self) -> SeatBreach {
        match self.breaches.lock().await.recv().await {
            Some(breach) => breach,
            None => std::future::pending().await,
        }
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
    offset: u16,
    link: PeerLink,
    mut seat: PeerSeat,
    shared: Shared,
) {
    let index = link.member.index;
    loop {
        let (tcp, from) = tokio::select! {
            _ = shared.stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("local listener for party {index} failed: {e}");
                    return;
                }
            },
        };
        let admitted = tcp
            .local_addr()
            .map_err(|e| e.to_string())
            .and_then(|local| local_peer::check_same_user(local, from).map_err(|e| e.to_string()))
            .and_then(|()| seat.admit_local().map_err(|e| e.to_string()));
        if let Err(reason) = admitted {
            // Dropping the socket closes it: the other end reads EOF at once.
            tracing::warn!(
                "refused a local connection from {from} to the tunnel end towards party {index}: {reason}"
            );
            continue;
        }
        let link = link.clone();
        let tracker = shared.outgoing.clone();
        tokio::spawn(async move {
            match stream::open_to_port(&link.conn, offset).await {
                Ok((send, recv)) => pump(tcp, send, recv, &link, &tracker).await,
                Err(e) => {
                    tracing::warn!("cannot open a stream to party {index}: {e}")
                }
            }
        });
    }
}

async fn accept_remote(link: PeerLink, mut seat: PeerSeat, program: ProgramEnd, shared: Shared) {
    loop {
        let (send, recv) = tokio::select! {
            _ = shared.stop.cancelled() => return,
            accepted = link.conn.accept_bi() => match accepted {
                Ok(streams) => streams,
                // The connection ended; `ending::watch_peers` reports why.
                Err(_) => return,
            },
        };
        let check = match seat.admit_incoming() {
            Ok(check) => check,
            Err(violation) => return end_session(&link, violation, &shared),
        };
        let link = link.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = shared.stop.cancelled() => {}
                _ = forward_incoming(send, recv, check, program, &link, &shared) => {}
            }
        });
    }
}

/// Checks a stream the peer opened, then connects it to our program: the
/// header, then (in MPyC mode) the party id, which is held back until it has
/// been found to be the peer's own seat and then passed on first.
async fn forward_incoming(
    send: SendStream,
    mut recv: RecvStream,
    check: IncomingCheck,
    program: ProgramEnd,
    link: &PeerLink,
    shared: &Shared,
) {
    let index = link.member.index;
    let offset = match stream::read_tcp_header(&mut recv).await {
        Ok(offset) if offset < program.ports => Ok(offset),
        Ok(offset) => Err(format!("a stream to our port +{offset}, which we lack")),
        Err(e) => Err(format!("a stream partyline does not understand: {e}")),
    };
    let offset = match offset {
        Ok(offset) => offset,
        Err(what) => {
            tracing::warn!("party {index} opened {what}");
            let _ = recv.stop(RESET_CODE);
            let mut send = send;
            let _ = send.reset(RESET_CODE);
            return;
        }
    };
    let mut party_id = [0u8; PARTY_ID_LEN];
    if check != IncomingCheck::None {
        // A stream that ends before its party id carries nothing for the
        // program; its seat stays used, as MPyC never dials twice.
        if let Err(e) = recv.read_exact(&mut party_id).await {
            tracing::warn!("party {index}'s stream ended before its MPyC party id: {e}");
            return;
        }
        if let Err(violation) = check.check(party_id) {
            return end_session(link, violation, shared);
        }
    }
    let Some(mut tcp) = connect_program(program, offset, &shared.stop).await else {
        let mut send = send;
        let _ = send.reset(RESET_CODE);
        return;
    };
    if check != IncomingCheck::None {
        if tcp.write_all(&party_id).await.is_err() {
            return;
        }
        link.bytes_received
            .fetch_add(PARTY_ID_LEN as u64, Ordering::Relaxed);
    }
    pump(tcp, send, recv, link, &shared.outgoing).await;
}

/// Ends the session on every connection, naming the peer that broke the seat
/// rules, and tells our caller.
fn end_session(link: &PeerLink, violation: SeatViolation, shared: &Shared) {
    let breach = SeatBreach {
        index: link.member.index,
        name: link.member.name.clone(),
        violation,
    };
    let reason = breach.to_string();
    tracing::warn!("{reason}; ending the session");
    for conn in shared.all.iter() {
        CloseCode::SeatViolation.close(conn, &reason);
    }
    shared.stop.cancel();
    let _ = shared.breaches.send(breach);
}

/// Connects to our program from the peer's address, retrying while it starts
/// up: the peer's program may dial before ours listens.
async fn connect_program(
    program: ProgramEnd,
    offset: u16,
    stop: &CancellationToken,
) -> Option<TcpStream> {
    let deadline = tokio::time::Instant::now() + PROGRAM_START_TIMEOUT;
    let addr = SocketAddr::new(program.addr.ip(), program.addr.port() + offset);
    loop {
        match connect_from(program.source, addr).await {
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

/// A TCP connection to `addr`, from `source` when given.
async fn connect_from(source: Option<SocketAddr>, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let Some(source) = source else {
        return TcpStream::connect(addr).await;
    };
    let socket = TcpSocket::new_v4()?;
    socket.bind(source)?;
    socket.connect(addr).await
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
                let _ = send.reset(RESET_CODE);
            }
        }
    });
    if copy_counted(&mut recv, &mut tcp_write, &link.bytes_received)
        .await
        .is_ok()
    {
        let _ = tcp_write.shutdown().await;
    } else {
        let _ = recv.stop(RESET_CODE);
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
