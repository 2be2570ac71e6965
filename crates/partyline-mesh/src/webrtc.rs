//! The native end of a browser party's direct path: WebRTC data channels
//! (`partyline_proto::webrtc`) as an iroh custom transport, with str0m.
//!
//! One UDP socket and one DTLS certificate per session serve every browser
//! peer; we are ICE-lite and DTLS server, so we only answer: the browser
//! sends its connectivity checks to the candidates we announced, and we learn
//! its address from them (a peer-reflexive candidate). Each browser peer gets
//! its own str0m [`Rtc`], created from its announcement in the verified
//! roster: our announced ICE credentials and the browser's, whose STUN
//! username tells the peers apart, and the browser's DTLS fingerprint, which
//! str0m checks in the handshake. The announcements are MAC'd with the invite
//! secret, so a coordinator cannot put its own certificate in the middle.
//!
//! The socket is open to anyone who learns its address, and the coordinator
//! sees the announcements (MAC'd, not encrypted): both sides' ICE
//! credentials and our candidates. Whoever knows them passes ICE's checks,
//! and an ICE-lite agent follows any nomination a check carries; only the
//! DTLS handshake tells the browser apart, by its certificate. So:
//! - our DTLS and SCTP packets go where the Rtc's last DTLS datagram came
//!   from, not to the nominated pair, which a stranger's checks can point
//!   at itself;
//! - once the DTLS handshake has ended (only the holder of the announced
//!   certificate's key gets that far), the Rtc takes datagrams from the
//!   browser's address alone: a stranger's nominations, DTLS records and
//!   garbage no longer reach it;
//! - an Rtc that ends before that (a stranger's handshake with another
//!   certificate ends it) is made afresh, so that a stranger cannot shut the
//!   browser out for good.
//!
//! What is left: a stranger with the credentials who keeps sending DTLS
//! records while the browser's handshake is under way can keep it from
//! completing, a stall (the browser goes through the relay); and a browser
//! whose address changes after the handshake loses its data channel.
//! `tests/hostile_webrtc.rs` attacks the socket so.
//!
//! The Rtcs live behind one mutex: a driver task feeds them what the socket
//! receives and their timeouts, and iroh's sender writes QUIC packets into
//! their data channels directly; whatever they have to send goes out at once.
//!
//! Before we announce, the socket asks the server's STUN responder once
//! which address it is seen from (`crate::stun`), and we announce that too
//! if it is new: behind a NAT that maps the socket to one public port for
//! everyone, a browser outside reaches us there. The driver takes the
//! answer out of the socket before any Rtc sees it; str0m never gets it (an
//! ICE-lite agent takes host candidates only, so the Rtcs know just the
//! socket's own addresses, which is where a browser's checks arrive after
//! the NAT).
use std::collections::{BTreeSet, HashMap};
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use iroh::endpoint::transports::{
    CustomEndpoint, CustomSender, CustomTransport, RecvInfo, Transmit,
};
use iroh_base::CustomAddr;
use n0_watcher::{Direct, Watchable};
use noq_udp::{RecvMeta, UdpSocketState};
use partyline_proto::transport::TRANSMIT_SEGMENTS;
use partyline_proto::webrtc::{CHANNEL_ID, CHANNEL_LABEL, Inbox, destination, packets, peer_key};
use partyline_wire::{EndpointKey, Member, WebRtcOffer};
use str0m::change::DirectApi;
use str0m::channel::{ChannelConfig, ChannelId, Reliability};
use str0m::config::{DtlsCert, Fingerprint};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceCreds, Input, Output, Rtc, RtcConfig};
use stun_codec::TransactionId;
use tokio::io::Interest;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// The largest datagram we read: above any path MTU.
const DATAGRAM_MAX: usize = 2048;

/// The data channel every pair opens (see `web/app.js`): negotiated, with
/// no DCEP exchange; unordered and without retransmissions, as QUIC does
/// its own.
pub fn channel_config() -> ChannelConfig {
    ChannelConfig {
        label: CHANNEL_LABEL.to_string(),
        ordered: false,
        reliability: Reliability::MaxRetransmits { retransmits: 0 },
        negotiated: Some(CHANNEL_ID),
        protocol: String::new(),
    }
}

/// A fresh DTLS certificate and its fingerprint as SDP writes it (and the
/// announcement carries it).
pub fn dtls_certificate() -> io::Result<(DtlsCert, String)> {
    let cert = str0m::crypto::from_feature_flags()
        .dtls_provider
        .generate_certificate()
        .ok_or_else(|| io::Error::other("cannot make a DTLS certificate"))?;
    // Taken from an Rtc with the certificate: str0m computes it, not we.
    let mut probe = RtcConfig::new()
        .set_dtls_cert(cert.clone())
        .build(Instant::now());
    let fingerprint = DirectApi::new(&mut probe)
        .local_dtls_fingerprint()
        .to_string();
    Ok((cert, fingerprint))
}

/// Our WebRTC side for one session: the socket, the certificate, the
/// browser peers. Cloning shares it.
#[derive(Clone, Debug)]
pub struct WebRtcHost {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    socket: tokio::net::UdpSocket,
    udp: UdpSocketState,
    port: u16,
    creds: IceCreds,
    cert: DtlsCert,
    fingerprint: String,
    state: Mutex<State>,
    /// Tells the driver to look at the Rtcs' timeouts again.
    wake_driver: Notify,
    /// The browser peers whose data channel is open.
    open: watch::Sender<BTreeSet<EndpointKey>>,
    /// Our address as the server's STUN responder sees it.
    reflexive: watch::Sender<Reflexive>,
}

/// What we know of our address as the server's STUN responder sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reflexive {
    /// No responder was asked, or the question could not be sent.
    Unknown,
    /// A question is on its way; its answer is awaited.
    Asking,
    /// The responder's answer.
    Known(SocketAddr),
}

#[derive(Default)]
struct State {
    peers: HashMap<EndpointKey, Peer>,
    inbox: Inbox,
    /// The STUN responder we asked, and our request's id, until it answers.
    asked: Option<(SocketAddr, TransactionId)>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("peers", &self.peers.len())
            .field("inbox", &self.inbox)
            .finish()
    }
}

struct Peer {
    rtc: Rtc,
    /// What the Rtc is made from, to make it afresh.
    expected: Expected,
    channel: Option<ChannelId>,
    /// Where our DTLS and SCTP packets go: the source of the last DTLS
    /// datagram the Rtc took, not the pair the ICE checks nominated, which
    /// anyone who knows the ICE credentials can nominate.
    dtls_peer: Option<SocketAddr>,
    /// Whether the DTLS handshake has ended: `dtls_peer` is then the
    /// browser's address (only the holder of the announced certificate's key
    /// gets that far), and the Rtc takes nothing from any other.
    pinned: bool,
}

/// A browser peer's announced ICE credentials and DTLS fingerprint, and the
/// candidates we announced.
struct Expected {
    creds: IceCreds,
    fingerprint: Fingerprint,
    ours: Vec<SocketAddr>,
}

impl Peer {
    fn new(shared: &Shared, expected: Expected) -> Option<Self> {
        let mut rtc = RtcConfig::new()
            .set_ice_lite(true)
            .set_dtls_cert(shared.cert.clone())
            .set_local_ice_credentials(shared.creds.clone())
            .build(Instant::now());
        for candidate in &expected.ours {
            if let Ok(candidate) = Candidate::host(*candidate, "udp") {
                rtc.add_local_candidate(candidate);
            }
        }
        let mut api = DirectApi::new(&mut rtc);
        api.set_remote_ice_credentials(expected.creds.clone());
        api.set_remote_fingerprint(expected.fingerprint.clone());
        api.set_ice_controlling(false);
        api.start_dtls(false).ok()?;
        api.start_sctp(false);
        api.create_data_channel(channel_config());
        Some(Self {
            rtc,
            expected,
            channel: None,
            dtls_peer: None,
            pinned: false,
        })
    }

    /// Whether the Rtc may see a datagram from `source`.
    fn hears(&self, source: SocketAddr) -> bool {
        !self.pinned || self.dtls_peer == Some(source)
    }
}

impl WebRtcHost {
    /// Binds the UDP socket at `port` (0: any free one) on every IPv4
    /// interface and makes the session's certificate and ICE credentials.
    pub fn bind(port: u16) -> io::Result<Self> {
        let std_socket = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port))?;
        std_socket.set_nonblocking(true)?;
        let udp = UdpSocketState::new((&std_socket).into())?;
        let port = std_socket.local_addr()?.port();
        let socket = tokio::net::UdpSocket::from_std(std_socket)?;
        let (cert, fingerprint) = dtls_certificate()?;
        let creds = IceCreds::new();
        let (open, _) = watch::channel(BTreeSet::new());
        let (reflexive, _) = watch::channel(Reflexive::Unknown);
        let shared = Arc::new(Shared {
            socket,
            udp,
            port,
            creds,
            cert,
            fingerprint,
            state: Mutex::default(),
            wake_driver: Notify::new(),
            open,
            reflexive,
        });
        Ok(Self { shared })
    }

    /// Starts the task that reads the socket and keeps the Rtcs' timers; it
    /// ends when the task handle is aborted ([`WebRtcHost`]'s owner does so
    /// when the endpoint closes).
    pub fn drive(&self) -> JoinHandle<()> {
        let shared = self.shared.clone();
        tokio::spawn(async move { shared.run().await })
    }

    /// Asks the STUN responder at the address `server` finds (IPv4, our
    /// socket's family; `None`: there is none to ask) from which address our
    /// socket's packets come, in a task of its own; see
    /// [`WebRtcHost::reflexive_addr`]. Asked once: a lost request or answer
    /// costs only that candidate.
    pub fn ask_reflexive(&self, server: impl Future<Output = Option<SocketAddr>> + Send + 'static) {
        self.shared.reflexive.send_replace(Reflexive::Asking);
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let Some(server) = server.await else {
                shared.reflexive.send_replace(Reflexive::Unknown);
                return;
            };
            let (id, request) = crate::stun::binding_request();
            shared.lock().asked = Some((server, id));
            if let Err(e) = shared.socket.send_to(&request, server).await {
                tracing::debug!("cannot ask the STUN responder at {server}: {e}");
                shared.reflexive.send_replace(Reflexive::Unknown);
            }
        });
    }

    /// Our address as the STUN responder saw it; while a question is on
    /// its way, waits for the answer `limit` at most.
    pub async fn reflexive_addr(&self, limit: Duration) -> Option<SocketAddr> {
        let mut reflexive = self.shared.reflexive.subscribe();
        let answered = reflexive.wait_for(|r| *r != Reflexive::Asking);
        let _ = tokio::time::timeout(limit, answered).await;
        match *reflexive.borrow() {
            Reflexive::Known(addr) => Some(addr),
            Reflexive::Unknown | Reflexive::Asking => None,
        }
    }

    /// What we announce: candidates on `ips` (our endpoint's direct
    /// addresses; IPv4 only) at our WebRTC port, and `reflexive`, our
    /// address as the STUN responder saw it, if it is not one of them.
    pub fn offer(
        &self,
        ips: impl IntoIterator<Item = IpAddr>,
        reflexive: Option<SocketAddr>,
    ) -> WebRtcOffer {
        let candidates: BTreeSet<SocketAddr> = ips
            .into_iter()
            .filter(IpAddr::is_ipv4)
            .map(|ip| SocketAddr::new(ip, self.shared.port))
            .chain(reflexive.filter(SocketAddr::is_ipv4))
            .collect();
        WebRtcOffer {
            fingerprint: self.shared.fingerprint.clone(),
            ufrag: self.shared.creds.ufrag.clone(),
            pwd: self.shared.creds.pass.clone(),
            candidates: candidates
                .into_iter()
                .take(partyline_wire::webrtc::MAX_CANDIDATES)
                .map(|c| c.to_string())
                .collect(),
            peer_candidates: Vec::new(),
        }
    }

    /// Gets ready for a data channel from every browser peer of the roster
    /// (a member whose announcement has WebRTC data and no candidates);
    /// returns their keys. `ours` is our own announced offer.
    pub fn expect_browsers<'a>(
        &self,
        ours: &WebRtcOffer,
        peers: impl IntoIterator<Item = &'a Member>,
    ) -> BTreeSet<EndpointKey> {
        let mut state = self.shared.lock();
        let mut browsers = BTreeSet::new();
        for member in peers {
            let Some(theirs) = member.webrtc.as_ref().filter(|w| w.is_browser()) else {
                continue;
            };
            let Ok(fingerprint) = theirs.fingerprint.parse() else {
                continue;
            };
            let expected = Expected {
                creds: IceCreds {
                    ufrag: theirs.ufrag.clone(),
                    pass: theirs.pwd.clone(),
                },
                fingerprint,
                ours: ours.candidate_addrs().collect(),
            };
            let Some(peer) = Peer::new(&self.shared, expected) else {
                continue;
            };
            state.peers.insert(member.endpoint, peer);
            browsers.insert(member.endpoint);
        }
        self.shared.drain(&mut state);
        drop(state);
        self.shared.wake_driver.notify_one();
        browsers
    }

    /// Writes `packets` into the data channel to the browser `to`, each one
    /// message, if that channel is open (what iroh's sender does with QUIC's
    /// packets); else they are lost.
    pub fn send<'a>(&self, to: &EndpointKey, packets: impl IntoIterator<Item = &'a [u8]>) {
        self.shared.send(to, packets);
    }

    /// Waits until the data channel of every peer in `keys` is open, at most
    /// `limit`; returns those that are.
    pub async fn wait_open(
        &self,
        keys: &BTreeSet<EndpointKey>,
        limit: Duration,
    ) -> BTreeSet<EndpointKey> {
        let mut open = self.shared.open.subscribe();
        let _ = tokio::time::timeout(limit, open.wait_for(|open| keys.is_subset(open))).await;
        open.borrow().intersection(keys).copied().collect()
    }
}

impl Shared {
    /// Writes `packets` into the data channel to the browser `to`, if it is
    /// open, and sends what that makes the Rtc send.
    fn send<'a>(&self, to: &EndpointKey, packets: impl IntoIterator<Item = &'a [u8]>) {
        let mut state = self.lock();
        if let Some(peer) = state.peers.get_mut(to)
            && let Some(id) = peer.channel
            && let Some(mut channel) = peer.rtc.channel(id)
        {
            for packet in packets {
                // A packet the channel cannot take now is lost, as on a
                // full socket; QUIC resends.
                let _ = channel.write(true, packet);
            }
        }
        self.drain(&mut state);
        drop(state);
        self.wake_driver.notify_one();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn run(&self) {
        let mut bufs = vec![[0u8; DATAGRAM_MAX]; noq_udp::BATCH_SIZE];
        let mut metas = vec![RecvMeta::default(); noq_udp::BATCH_SIZE];
        loop {
            let next = {
                let mut state = self.lock();
                self.drain(&mut state)
            };
            let sleep = tokio::time::sleep_until(next.into());
            tokio::select! {
                readable = self.socket.readable() => {
                    if readable.is_err() {
                        return;
                    }
                    let mut slices: Vec<IoSliceMut> =
                        bufs.iter_mut().map(|b| IoSliceMut::new(b)).collect();
                    let received = self.socket.try_io(Interest::READABLE, || {
                        self.udp.recv((&self.socket).into(), &mut slices, &mut metas)
                    });
                    if let Ok(count) = received {
                        let mut state = self.lock();
                        for (buf, meta) in bufs.iter().zip(&metas).take(count) {
                            for datagram in buf[..meta.len].chunks(meta.stride.max(1)) {
                                self.receive(&mut state, datagram, meta);
                            }
                        }
                    }
                }
                _ = sleep => {
                    let now = Instant::now();
                    let mut state = self.lock();
                    for peer in state.peers.values_mut() {
                        let _ = peer.rtc.handle_input(Input::Timeout(now));
                    }
                }
                _ = self.wake_driver.notified() => {}
            }
        }
    }

    /// One datagram from the socket: the STUN responder's answer, or for the
    /// Rtc of the peer it belongs to (see the module docs on who may reach
    /// which Rtc).
    fn receive(&self, state: &mut State, datagram: &[u8], meta: &RecvMeta) {
        if let Some((server, id)) = state.asked
            && meta.addr == server
            && let Some(reflexive) = crate::stun::mapped_address(datagram, id)
        {
            state.asked = None;
            self.reflexive.send_replace(Reflexive::Known(reflexive));
            return;
        }
        let Ok(contents) = datagram.try_into() else {
            return;
        };
        let destination = SocketAddr::new(
            meta.dst_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            self.port,
        );
        let input = Input::Receive(
            Instant::now(),
            Receive {
                proto: Protocol::Udp,
                source: meta.addr,
                destination,
                contents,
            },
        );
        let State { peers, inbox, .. } = state;
        let Some((key, peer)) = peers
            .iter_mut()
            .find(|(_, p)| p.hears(meta.addr) && p.rtc.accepts(&input))
        else {
            return;
        };
        if let Err(e) = peer.rtc.handle_input(input) {
            tracing::debug!("WebRTC input refused: {e}");
        }
        // 0 to 3: STUN (RFC 7983); anything else the Rtc takes is DTLS.
        if datagram.first().is_some_and(|b| *b > 3) && !peer.pinned {
            peer.dtls_peer = Some(meta.addr);
        }
        // At once, so that the DTLS handshake's end is seen with the
        // datagram that ended it. The driver asks every Rtc for its timeout
        // again before it waits.
        let mut next = Instant::now();
        if !self.poll(key, peer, inbox, &mut next) {
            let key = *key;
            self.end(state, key);
        }
    }

    /// What to do with a peer whose Rtc ended: before its DTLS handshake
    /// ended (a stranger's handshake with the wrong certificate, a datagram
    /// its DTLS could not take), a fresh Rtc waits for the browser, so that
    /// a stranger cannot shut the browser out for good; after it, the
    /// browser ended it, and the peer is gone.
    fn end(&self, state: &mut State, key: EndpointKey) {
        let Some(peer) = state.peers.remove(&key) else {
            return;
        };
        if peer.pinned {
            tracing::debug!("WebRTC session with {} ended", key.short());
            return;
        }
        tracing::debug!("WebRTC session with {} starts afresh", key.short());
        if let Some(fresh) = Peer::new(self, peer.expected) {
            state.peers.insert(key, fresh);
        }
    }

    /// Sends what every Rtc has to send, hands on their events, and returns
    /// the earliest time one wants to be woken.
    fn drain(&self, state: &mut State) -> Instant {
        let mut next = Instant::now() + Duration::from_secs(1);
        let State { peers, inbox, .. } = &mut *state;
        let ended: Vec<EndpointKey> = peers
            .iter_mut()
            .filter_map(|(key, peer)| (!self.poll(key, peer, inbox, &mut next)).then_some(*key))
            .collect();
        for key in ended {
            self.end(state, key);
        }
        next
    }

    /// Sends what one Rtc has to send and hands on its events; `next`
    /// becomes the earlier of itself and when the Rtc wants to be woken.
    /// Returns whether the Rtc is still alive.
    fn poll(
        &self,
        key: &EndpointKey,
        peer: &mut Peer,
        inbox: &mut Inbox,
        next: &mut Instant,
    ) -> bool {
        loop {
            match peer.rtc.poll_output() {
                Ok(Output::Timeout(at)) => {
                    *next = (*next).min(at);
                    return peer.rtc.is_alive();
                }
                Ok(Output::Transmit(t)) => {
                    // STUN answers go to whoever asked; the rest to our
                    // DTLS peer (see `Peer::dtls_peer`).
                    let stun = t.contents.first().is_some_and(|b| *b <= 3);
                    let destination = match peer.dtls_peer {
                        Some(dtls_peer) if !stun => dtls_peer,
                        _ => t.destination,
                    };
                    let transmit = noq_udp::Transmit {
                        destination,
                        ecn: None,
                        contents: &t.contents,
                        segment_size: None,
                        src_ip: (!t.source.ip().is_unspecified()).then_some(t.source.ip()),
                    };
                    // Like a full socket buffer: the packet is lost, and
                    // whoever sent it resends.
                    let _ = self.udp.try_send((&self.socket).into(), &transmit);
                }
                Ok(Output::Event(Event::Connected)) => peer.pinned = peer.dtls_peer.is_some(),
                Ok(Output::Event(Event::ChannelOpen(id, _))) => {
                    peer.channel = Some(id);
                    self.open.send_modify(|open| {
                        open.insert(*key);
                    });
                }
                Ok(Output::Event(Event::ChannelData(data))) => inbox.push(*key, data.data),
                Ok(Output::Event(Event::ChannelClose(_))) => peer.channel = None,
                Ok(Output::Event(_)) => {}
                Err(e) => {
                    tracing::debug!("WebRTC session with {}: {e}", key.short());
                    return false;
                }
            }
        }
    }
}

impl CustomTransport for WebRtcHost {
    fn bind(&self) -> io::Result<Box<dyn CustomEndpoint>> {
        Ok(Box::new(HostEndpoint {
            shared: self.shared.clone(),
            addrs: Watchable::new(Vec::new()),
        }))
    }
}

#[derive(Debug)]
struct HostEndpoint {
    shared: Arc<Shared>,
    /// Empty: a peer learns our data channel from the roster, not from iroh.
    addrs: Watchable<Vec<CustomAddr>>,
}

impl CustomEndpoint for HostEndpoint {
    fn watch_local_addrs(&self) -> Direct<Vec<CustomAddr>> {
        self.addrs.watch()
    }

    fn create_sender(&self) -> Arc<dyn CustomSender> {
        Arc::new(HostSender {
            shared: self.shared.clone(),
        })
    }

    fn poll_recv(
        &mut self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        metas: &mut [RecvMeta],
        recv_infos: &mut [RecvInfo],
    ) -> Poll<io::Result<usize>> {
        self.shared
            .lock()
            .inbox
            .poll_recv(cx, bufs, metas, recv_infos)
    }

    // Not the default of 1: see TRANSMIT_SEGMENTS.
    fn max_transmit_segments(&self) -> NonZeroUsize {
        TRANSMIT_SEGMENTS
    }
}

#[derive(Debug)]
struct HostSender {
    shared: Arc<Shared>,
}

impl CustomSender for HostSender {
    fn is_valid_send_addr(&self, addr: &CustomAddr) -> bool {
        peer_key(addr).is_some_and(|key| {
            self.shared
                .lock()
                .peers
                .get(&key)
                .is_some_and(|p| p.channel.is_some())
        })
    }

    fn poll_send(
        &self,
        _cx: &mut Context,
        dst: &CustomAddr,
        _src: Option<&CustomAddr>,
        transmit: &Transmit<'_>,
    ) -> Poll<io::Result<()>> {
        let key = match destination(dst) {
            Ok(key) => key,
            Err(e) => return Poll::Ready(Err(e)),
        };
        self.shared.send(&key, packets(transmit));
        Poll::Ready(Ok(()))
    }
}
