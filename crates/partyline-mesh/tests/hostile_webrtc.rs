//! A native party's WebRTC socket as an attacker sees it. Anyone who learns
//! its address can send to it, and the coordinator knows, from the
//! announcements (MAC'd, not encrypted), both sides' ICE credentials and the
//! native's candidates, but not the browser's DTLS private key.
//!
//! Real sockets on loopback and the real [`WebRtcHost`]; the browser is
//! played by str0m as Chromium behaves towards a native party (full ICE,
//! controlling, DTLS client, the negotiated channel of `web/app.js`), the
//! attacker by another str0m with the browser's ICE credentials and a
//! certificate of its own, and by a plain UDP socket sending crafted STUN,
//! DTLS and garbage.
use std::future::poll_fn;
use std::io::IoSliceMut;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytecodec::EncodeExt;
use iroh::endpoint::transports::{CustomEndpoint, CustomTransport, RecvInfo};
use noq_udp::RecvMeta;
use partyline_mesh::webrtc::{WebRtcHost, channel_config, dtls_certificate};
use partyline_proto::webrtc::peer_addr;
use partyline_wire::{EndpointKey, Member, WebRtcOffer};
use rand::Rng;
use str0m::change::DirectApi;
use str0m::config::DtlsCert;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceCreds, Input, Output, Rtc, RtcConfig};
use stun_codec::rfc5245::attributes::{IceControlling, Priority, UseCandidate};
use stun_codec::rfc5389::attributes::{Fingerprint, MessageIntegrity, Username};
use stun_codec::rfc5389::methods::BINDING;
use stun_codec::{Message, MessageClass, MessageEncoder, TransactionId};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

stun_codec::define_attribute_enums!(
    IceAttribute,
    IceAttributeDecoder,
    IceAttributeEncoder,
    [
        Username,
        MessageIntegrity,
        Fingerprint,
        Priority,
        UseCandidate,
        IceControlling
    ]
);

/// Every wait: on loopback each takes milliseconds.
const WAIT: Duration = Duration::from_secs(8);

/// The browser party's endpoint key in the roster.
const BROWSER: EndpointKey = EndpointKey([7; 32]);

/// A native party's WebRTC side, expecting one browser.
struct Native {
    host: WebRtcHost,
    driver: JoinHandle<()>,
    offer: WebRtcOffer,
    /// Where iroh would read the data channels' packets.
    endpoint: Box<dyn CustomEndpoint>,
}

impl Native {
    fn start() -> Self {
        let host = WebRtcHost::bind(0).unwrap();
        let driver = host.drive();
        let offer = host.offer([Ipv4Addr::LOCALHOST.into()], None);
        let endpoint = CustomTransport::bind(&host).unwrap();
        Self {
            host,
            driver,
            offer,
            endpoint,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.offer.candidates[0].parse().unwrap()
    }

    /// The roster's browser: its announced fingerprint and credentials.
    fn expect(&self, fingerprint: String, creds: &IceCreds) {
        let member = Member {
            index: 1,
            name: "browser".to_string(),
            endpoint: BROWSER,
            relay_url: None,
            addrs: Vec::new(),
            identity: None,
            webrtc: Some(WebRtcOffer {
                fingerprint,
                ufrag: creds.ufrag.clone(),
                pwd: creds.pass.clone(),
                candidates: Vec::new(),
                peer_candidates: Vec::new(),
            }),
        };
        let browsers = self.host.expect_browsers(&self.offer, [&member]);
        assert_eq!(browsers, [BROWSER].into());
    }

    /// Waits until a packet equal to `want` arrives from the browser's channel.
    async fn receives(&mut self, want: &[u8]) -> bool {
        let wait = async {
            let mut storage = vec![[0u8; 2048]; 8];
            let mut metas = vec![RecvMeta::default(); 8];
            let mut infos = vec![RecvInfo::new(peer_addr(&BROWSER), None); 8];
            loop {
                let mut bufs: Vec<IoSliceMut> =
                    storage.iter_mut().map(|b| IoSliceMut::new(b)).collect();
                let count = poll_fn(|cx| {
                    self.endpoint
                        .poll_recv(cx, &mut bufs, &mut metas, &mut infos)
                })
                .await
                .unwrap();
                for (buf, meta) in storage.iter().zip(&metas).take(count) {
                    if buf[..meta.len] == *want {
                        return;
                    }
                }
            }
        };
        tokio::time::timeout(WAIT, wait).await.is_ok()
    }
}

#[derive(Clone, Debug, Default)]
struct ClientState {
    open: bool,
    /// Why its Rtc ended, if it did.
    ended: Option<String>,
    /// Whether it has sent its DTLS Certificate message.
    sent_certificate: bool,
    /// How many datagrams it has sent.
    sent: usize,
    received: Vec<Vec<u8>>,
}

enum Command {
    /// A message on the data channel.
    Write(Vec<u8>),
    /// A datagram from the client's socket to the native, as it is.
    Raw(Vec<u8>),
}

/// A str0m peer connection to the native, as the page makes one: full ICE,
/// controlling, DTLS client, the negotiated channel.
struct Client {
    commands: mpsc::UnboundedSender<Command>,
    state: watch::Receiver<ClientState>,
    task: JoinHandle<()>,
}

impl Client {
    /// A client with the ICE credentials `creds` and the certificate `cert`.
    async fn start(native: &WebRtcOffer, creds: &IceCreds, cert: DtlsCert) -> Self {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = socket.local_addr().unwrap();
        let native_addr: SocketAddr = native.candidates[0].parse().unwrap();
        let mut rtc = RtcConfig::new()
            .set_dtls_cert(cert)
            .set_local_ice_credentials(creds.clone())
            .build(Instant::now());
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        rtc.add_remote_candidate(Candidate::host(native_addr, "udp").unwrap());
        let mut api = DirectApi::new(&mut rtc);
        api.set_remote_ice_credentials(IceCreds {
            ufrag: native.ufrag.clone(),
            pass: native.pwd.clone(),
        });
        api.set_remote_fingerprint(native.fingerprint.parse().unwrap());
        api.set_ice_controlling(true);
        api.start_dtls(true).unwrap();
        api.start_sctp(true);
        api.create_data_channel(channel_config());
        let (commands, receive) = mpsc::unbounded_channel();
        let (state, watched) = watch::channel(ClientState::default());
        let task = tokio::spawn(run_client(rtc, socket, native_addr, receive, state));
        Self {
            commands,
            state: watched,
            task,
        }
    }

    fn write(&self, message: &[u8]) {
        self.commands
            .send(Command::Write(message.to_vec()))
            .unwrap();
    }

    fn raw(&self, datagram: Vec<u8>) {
        self.commands.send(Command::Raw(datagram)).unwrap();
    }

    /// Waits (at most [`WAIT`]) until its state satisfies `done`.
    async fn until(&self, done: impl Fn(&ClientState) -> bool) -> bool {
        let mut state = self.state.clone();
        tokio::time::timeout(WAIT, state.wait_for(|s| done(s)))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run_client(
    mut rtc: Rtc,
    socket: UdpSocket,
    native: SocketAddr,
    mut commands: mpsc::UnboundedReceiver<Command>,
    state: watch::Sender<ClientState>,
) {
    let local = socket.local_addr().unwrap();
    let mut buf = vec![0u8; 2048];
    let mut channel = None;
    loop {
        let next = loop {
            match rtc.poll_output() {
                Ok(Output::Timeout(at)) => break at,
                Ok(Output::Transmit(t)) => {
                    // A DTLS handshake record (22) carrying a Certificate (11).
                    let certificate =
                        t.contents.len() > 13 && t.contents[0] == 22 && t.contents[13] == 11;
                    let _ = socket.send_to(&t.contents, t.destination).await;
                    state.send_modify(|s| {
                        s.sent += 1;
                        s.sent_certificate |= certificate;
                    });
                }
                Ok(Output::Event(Event::ChannelOpen(id, _))) => {
                    channel = Some(id);
                    state.send_modify(|s| s.open = true);
                }
                Ok(Output::Event(Event::ChannelData(data))) => {
                    state.send_modify(|s| s.received.push(data.data));
                }
                Ok(Output::Event(_)) => {}
                Err(e) => {
                    state.send_modify(|s| s.ended = Some(e.to_string()));
                    return;
                }
            }
        };
        if !rtc.is_alive() {
            state.send_modify(|s| s.ended = Some("closed".to_string()));
            return;
        }
        let next = next.min(Instant::now() + Duration::from_secs(1));
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let Ok((len, source)) = received else { return };
                if let Ok(contents) = buf[..len].try_into() {
                    let input = Input::Receive(Instant::now(), Receive {
                        proto: Protocol::Udp,
                        source,
                        destination: local,
                        contents,
                    });
                    let _ = rtc.handle_input(input);
                }
            }
            _ = tokio::time::sleep_until(next.into()) => {
                let _ = rtc.handle_input(Input::Timeout(Instant::now()));
            }
            command = commands.recv() => match command {
                None => return,
                Some(Command::Write(message)) => {
                    if let Some(mut channel) = channel.and_then(|id| rtc.channel(id)) {
                        let _ = channel.write(true, &message);
                    }
                }
                Some(Command::Raw(datagram)) => {
                    let _ = socket.send_to(&datagram, native).await;
                }
            }
        }
    }
}

/// A connectivity check with the browser's credentials (what the
/// coordinator knows), nominating its sender's address at the highest
/// priority there is.
fn nomination(native: &WebRtcOffer, browser: &IceCreds) -> (TransactionId, Vec<u8>) {
    let id = TransactionId::new(rand::random());
    let mut message = Message::<IceAttribute>::new(MessageClass::Request, BINDING, id);
    let username = format!("{}:{}", native.ufrag, browser.ufrag);
    message.add_attribute(Username::new(username).unwrap());
    message.add_attribute(Priority::new(u32::MAX));
    message.add_attribute(UseCandidate::new());
    message.add_attribute(IceControlling::new(rand::random()));
    let integrity = MessageIntegrity::new_short_term_credential(&message, &native.pwd).unwrap();
    message.add_attribute(integrity);
    let fingerprint = Fingerprint::new(&message).unwrap();
    message.add_attribute(fingerprint);
    let bytes = MessageEncoder::new().encode_into_bytes(message).unwrap();
    (id, bytes)
}

/// Whether `datagram` is a STUN success response to `id`.
fn answers(datagram: &[u8], id: TransactionId) -> bool {
    datagram.len() >= 20 && datagram[..2] == [0x01, 0x01] && datagram[8..20] == id.as_bytes()[..]
}

/// Sends `request` from `socket` to `to` until a response to `id` comes
/// back (at most [`WAIT`]).
async fn answered(socket: &UdpSocket, to: SocketAddr, request: &[u8], id: TransactionId) -> bool {
    let ask = async {
        let mut buf = [0u8; 2048];
        loop {
            socket.send_to(request, to).await.unwrap();
            let reply = tokio::time::timeout(Duration::from_millis(200), socket.recv(&mut buf));
            if let Ok(Ok(len)) = reply.await
                && answers(&buf[..len], id)
            {
                return;
            }
        }
    };
    tokio::time::timeout(WAIT, ask).await.is_ok()
}

/// What a stranger throws at the socket: random bytes of random lengths,
/// and as many with a STUN header (a request or response class, the magic
/// cookie, a length that fits) and random attributes.
fn garbage(count: usize) -> Vec<Vec<u8>> {
    let mut rng = rand::rng();
    (0..count)
        .map(|i| {
            let len = rng.random_range(0..1400);
            let mut datagram: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            if i % 2 == 0 && len >= 20 {
                let class: [u8; 2] = [[0x00, 0x01], [0x01, 0x01], [0x01, 0x11], [0x00, 0x11]]
                    [rng.random_range(0..4)];
                datagram[..2].copy_from_slice(&class);
                let body = u16::try_from(len - 20).unwrap() & !3;
                datagram[2..4].copy_from_slice(&body.to_be_bytes());
                datagram[4..8].copy_from_slice(&0x2112_A442u32.to_be_bytes());
            }
            datagram
        })
        .collect()
}

/// DTLS records a stranger can make without any key: a ClientHello, a fatal
/// alert and a ChangeCipherSpec, all in epoch 0, and an application data
/// record of epoch 1 with a made-up body.
fn dtls_records() -> Vec<Vec<u8>> {
    let record = |content: u8, epoch: u16, body: &[u8]| {
        let mut r = vec![content, 0xfe, 0xfd];
        r.extend_from_slice(&epoch.to_be_bytes());
        r.extend_from_slice(&[0, 0, 0, 0, 0, 9]);
        r.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        r.extend_from_slice(body);
        r
    };
    let mut hello = vec![1, 0, 0, 44, 0, 0, 0, 0, 0, 0, 0, 44, 0xfe, 0xfd];
    hello.extend_from_slice(&[0x42; 32]);
    hello.extend_from_slice(&[0, 0, 0, 2, 0xc0, 0x2b, 1, 0]);
    vec![
        record(22, 0, &hello),
        record(21, 0, &[2, 40]),
        record(20, 0, &[1]),
        record(23, 1, &[0x55; 64]),
    ]
}

/// Sends nominations of its own address with the browser's credentials and
/// the highest priority, each followed by keyless DTLS records if `dtls`,
/// every 20 ms (so that its pair stays alive); returns its socket and the
/// task.
async fn keep_attacking(
    native: &Native,
    creds: &IceCreds,
    dtls: bool,
) -> (Arc<UdpSocket>, JoinHandle<()>) {
    let stranger = Arc::new(UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap());
    let (socket, offer, creds) = (stranger.clone(), native.offer.clone(), creds.clone());
    let to = native.addr();
    let task = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(20));
        loop {
            every.tick().await;
            let (_, check) = nomination(&offer, &creds);
            let _ = socket.send_to(&check, to).await;
            if dtls {
                for record in dtls_records() {
                    let _ = socket.send_to(&record, to).await;
                }
            }
        }
    });
    (stranger, task)
}

/// Data goes both ways over the browser's channel: a fresh message each way,
/// the native's first (a browser's message would tell the native where the
/// browser is).
async fn data_flows(native: &mut Native, browser: &Client, tag: &str) {
    let down = format!("{tag}: native to browser").into_bytes();
    native.host.send(&BROWSER, [&down[..]]);
    assert!(
        browser.until(|s| s.received.contains(&down)).await,
        "{tag}: the browser got nothing from the native's channel"
    );
    let up = format!("{tag}: browser to native").into_bytes();
    browser.write(&up);
    assert!(
        native.receives(&up).await,
        "{tag}: the native got nothing from the browser's channel"
    );
}

/// Opens the real browser's channel.
async fn open_browser(native: &mut Native, browser: &Client) {
    let open = native.host.wait_open(&[BROWSER].into(), WAIT).await;
    assert!(
        open.contains(&BROWSER),
        "the real browser's channel did not open on the native"
    );
    assert!(browser.until(|s| s.open).await, "not open on the browser");
    data_flows(native, browser, "opened").await;
}

/// The native and the real browser, expected by the native.
async fn session() -> (Native, IceCreds, DtlsCert) {
    let native = Native::start();
    let creds = IceCreds::new();
    let (cert, fingerprint) = dtls_certificate().unwrap();
    native.expect(fingerprint, &creds);
    (native, creds, cert)
}

/// A stranger who knows both sides' ICE credentials (the coordinator) runs
/// ICE and a DTLS handshake with a certificate of its own before the
/// browser, and then nominates its own address: its channel never opens,
/// and the browser's opens all the same.
#[tokio::test]
async fn a_stranger_who_tries_first_does_not_keep_the_browser_out() {
    let (mut native, creds, cert) = session().await;
    let (stranger_cert, _) = dtls_certificate().unwrap();
    let stranger = Client::start(&native.offer, &creds, stranger_cert).await;
    assert!(
        stranger.until(|s| s.sent_certificate).await,
        "the stranger's DTLS handshake did not get as far as its certificate"
    );
    // The native reads its socket in order: once it answers a check sent
    // after the stranger's certificate, it has dealt with the certificate.
    let probe = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let (id, check) = nomination(&native.offer, &creds);
    assert!(
        answered(&probe, native.addr(), &check, id).await,
        "after a stranger's DTLS handshake with the wrong certificate, the native no longer answers the browser's ICE credentials: it gave up that browser for good"
    );
    assert!(
        !stranger.state.borrow().open,
        "the stranger's channel opened"
    );
    drop(stranger);
    drop(probe);

    // And it nominates its own address, at the highest priority, before
    // and while the browser connects. (DTLS records of its own while the
    // browser's handshake is under way would keep it from completing: the
    // stall the module docs of `webrtc` describe.)
    let (_, nominating) = keep_attacking(&native, &creds, false).await;
    let browser = Client::start(&native.offer, &creds, cert).await;
    open_browser(&mut native, &browser).await;
    nominating.abort();
    assert!(!native.driver.is_finished());
}

/// Once the browser's channel is open, nominations with the highest
/// priority from a stranger's address, a stranger's ICE and DTLS, and keyless
/// DTLS records, STUN responses and garbage from the browser's own address
/// change nothing: data goes both ways.
#[tokio::test]
async fn a_stranger_cannot_take_or_break_an_open_channel() {
    let (mut native, creds, cert) = session().await;
    let browser = Client::start(&native.offer, &creds, cert).await;
    open_browser(&mut native, &browser).await;

    let (stranger, nominating) = keep_attacking(&native, &creds, true).await;
    data_flows(&mut native, &browser, "while a stranger nominates itself").await;

    let (stranger_cert, _) = dtls_certificate().unwrap();
    let rival = Client::start(&native.offer, &creds, stranger_cert).await;
    assert!(
        rival.until(|s| s.sent >= 3).await,
        "the stranger sent nothing"
    );
    data_flows(&mut native, &browser, "after a stranger's ICE and DTLS").await;
    assert!(!rival.state.borrow().open, "the stranger's channel opened");

    for record in dtls_records() {
        browser.raw(record);
    }
    let (id, _) = nomination(&native.offer, &creds);
    let mut response = Message::<IceAttribute>::new(MessageClass::SuccessResponse, BINDING, id);
    response.add_attribute(Username::new("x:y".to_string()).unwrap());
    browser.raw(MessageEncoder::new().encode_into_bytes(response).unwrap());
    for datagram in garbage(200) {
        browser.raw(datagram);
    }
    data_flows(
        &mut native,
        &browser,
        "after DTLS records and garbage from the browser's address",
    )
    .await;
    nominating.abort();

    // The browser's connection no longer hears the stranger: not even its
    // checks were answered.
    let mut buf = [0u8; 2048];
    if let Ok(len) = stranger.try_recv(&mut buf) {
        panic!("the native sent the stranger {len} bytes");
    }
    assert!(!native.driver.is_finished());
}

/// A few thousand random datagrams, half of them with STUN's header, before
/// and while the browser connects and sends: nothing panics, the driver
/// keeps serving the browser.
#[tokio::test]
async fn garbage_does_not_stop_the_driver() {
    let (mut native, creds, cert) = session().await;
    let stranger = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    for datagram in garbage(2000) {
        let _ = stranger.send_to(&datagram, native.addr()).await;
    }
    let browser = Client::start(&native.offer, &creds, cert).await;
    for datagram in garbage(2000) {
        let _ = stranger.send_to(&datagram, native.addr()).await;
    }
    open_browser(&mut native, &browser).await;
    for datagram in garbage(2000).into_iter().chain(dtls_records()) {
        let _ = stranger.send_to(&datagram, native.addr()).await;
    }
    data_flows(&mut native, &browser, "after garbage").await;
    assert!(!native.driver.is_finished());
}
