//! What the server's operator sees of a session holds none of its secrets.
//!
//! A recording proxy stands in front of the coordinator and one in front of
//! the relay of a real `partyline serve` (its `--public-url` and
//! `--public-relay-url` name the proxies), so every byte that `create` and the
//! parties send to the server, and every byte the server sends back, passes
//! through them. They terminate TLS with the server's own certificate and key,
//! as its operator can: what they record is the HTTP requests and the relay's
//! frames in the clear, which is what the operator sees. The test thus checks
//! partyline's own protection, not the TLS to the server: the invite secret
//! stays with the parties, and the MPC program's bytes cross the relay only
//! inside the parties' end-to-end encrypted QUIC connections. The parties run
//! with `--relay-only`, so all of the program's traffic crosses the relay.
//!
//! Not recorded: the relay's QUIC address discovery on UDP, which parties
//! without direct paths do not use.
//!
//! The same holds for a session joined by short code (`partyline create
//! --code`): neither the code nor the invite it unlocks shows.
mod common;

use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use data_encoding::{BASE32_NOPAD, BASE64_NOPAD, BASE64URL_NOPAD, Encoding, HEXLOWER, HEXUPPER};
use partyline_proto::invite_from_code;
use partyline_session::Coordinator;
use partyline_session::tls::pinned_client_config;
use partyline_wire::{AnnouncementKey, CertPin, Code, Invite, WriteToken};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Party 0's secret input: 64 bits that turn up nowhere by chance (the first
/// word of SHA-512's initial hash value).
const SECRET_INPUT: u64 = 0x6A09_E667_F3BC_C908;

const PARTIES: u16 = 3;
/// The block of the secret input's bytes that party 0 sends every other party.
const BLOCK_BYTES: usize = 64 * 1024;

/// HTTP/1.1 only, which the parties' coordinator client speaks: HTTP/2 would
/// compress the headers this test reads.
const HTTP1: &[&[u8]] = &[b"http/1.1"];
/// The relay speaks HTTP/1.1 and upgrades to WebSocket, without ALPN.
const NO_ALPN: &[&[u8]] = &[];

fn program() -> Vec<String> {
    vec![
        repo_file("crates/partyline/tests/programs/secret_input.py"),
        SECRET_INPUT.to_string(),
    ]
}

/// Which way bytes went through a proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Way {
    ToServer,
    ToClient,
}

/// One way of one proxied connection, every byte in order.
struct Log {
    service: &'static str,
    way: Way,
    bytes: Arc<Mutex<Vec<u8>>>,
}

/// What the proxies recorded, connection by connection.
#[derive(Clone, Default)]
struct Recording(Arc<Mutex<Vec<Log>>>);

/// A finished copy of one [`Log`].
struct Capture {
    service: &'static str,
    way: Way,
    bytes: Vec<u8>,
}

impl Recording {
    fn log(&self, service: &'static str, way: Way) -> Arc<Mutex<Vec<u8>>> {
        let bytes = Arc::new(Mutex::new(Vec::new()));
        self.0.lock().unwrap().push(Log {
            service,
            way,
            bytes: bytes.clone(),
        });
        bytes
    }

    fn captures(&self) -> Vec<Capture> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|log| Capture {
                service: log.service,
                way: log.way,
                bytes: log.bytes.lock().unwrap().clone(),
            })
            .collect()
    }
}

/// Copies `from` to `to` until `from` ends, recording every byte in `log`.
async fn pipe(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    log: Arc<Mutex<Vec<u8>>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n @ 1..) = from.read(&mut buf).await {
        log.lock().unwrap().extend_from_slice(&buf[..n]);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// Records both ways between `client` and `server`.
async fn record_both_ways(
    client: impl AsyncRead + AsyncWrite,
    server: impl AsyncRead + AsyncWrite,
    service: &'static str,
    recording: &Recording,
) {
    let (client_read, client_write) = tokio::io::split(client);
    let (server_read, server_write) = tokio::io::split(server);
    tokio::join!(
        pipe(
            client_read,
            server_write,
            recording.log(service, Way::ToServer)
        ),
        pipe(
            server_read,
            client_write,
            recording.log(service, Way::ToClient)
        ),
    );
}

/// The server's certificate and key, as its operator has them.
struct ServerIdentity {
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    pin: CertPin,
}

impl ServerIdentity {
    fn of(server: &Server) -> Self {
        let dir = server.data.path();
        Self {
            cert: CertificateDer::from_pem_file(dir.join("cert.pem")).unwrap(),
            key: PrivateKeyDer::from_pem_file(dir.join("key.pem")).unwrap(),
            pin: server
                .link
                .split("#sha256=")
                .nth(1)
                .unwrap()
                .parse()
                .unwrap(),
        }
    }
}

/// Serves `listener` with the server's certificate, forwards each connection
/// over TLS to `upstream` and records what passes, in the clear.
async fn tls_recording_proxy(
    listener: TcpListener,
    upstream: SocketAddr,
    identity: &ServerIdentity,
    alpn: &[&[u8]],
    service: &'static str,
    recording: Recording,
) {
    let alpn: Vec<Vec<u8>> = alpn.iter().map(|p| p.to_vec()).collect();
    let mut front = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![identity.cert.clone()], identity.key.clone_key())
    .unwrap();
    front.alpn_protocols = alpn.clone();
    let mut back = pinned_client_config(identity.pin);
    back.alpn_protocols = alpn;
    let acceptor = TlsAcceptor::from(Arc::new(front));
    let connector = TlsConnector::from(Arc::new(back));
    while let Ok((tcp, _)) = listener.accept().await {
        let (acceptor, connector, recording) =
            (acceptor.clone(), connector.clone(), recording.clone());
        tokio::spawn(async move {
            // A client that gives up during the handshake has sent nothing yet.
            let Ok(client) = acceptor.accept(tcp).await else {
                return;
            };
            let tcp = TcpStream::connect(upstream)
                .await
                .expect("the server listens");
            let server = connector
                .connect(ServerName::IpAddress(upstream.ip().into()), tcp)
                .await
                .expect("the server's TLS handshake");
            record_both_ways(client, server, service, &recording).await;
        });
    }
}

/// A value that must not be seen, in one of the forms it could be written in.
struct Needle {
    what: String,
    bytes: Vec<u8>,
}

const TEXT_ENCODINGS: [(&str, &Encoding); 5] = [
    ("hex", &HEXLOWER),
    ("upper-case hex", &HEXUPPER),
    ("base64", &BASE64_NOPAD),
    ("base64url", &BASE64URL_NOPAD),
    ("base32", &BASE32_NOPAD),
];

/// `bytes` raw and in every text encoding partyline or its libraries use.
fn forms(what: &str, bytes: &[u8]) -> Vec<Needle> {
    let mut needles = vec![Needle {
        what: format!("{what} (raw)"),
        bytes: bytes.to_vec(),
    }];
    for (name, encoding) in TEXT_ENCODINGS {
        let text = encoding.encode(bytes);
        needles.push(Needle {
            what: format!("{what} (lower-case {name})"),
            bytes: text.to_lowercase().into_bytes(),
        });
        needles.push(Needle {
            what: format!("{what} ({name})"),
            bytes: text.into_bytes(),
        });
    }
    needles
}

/// The secret input as MPyC's payload could carry it: as bytes either way
/// round (pickle writes integers little-endian), and as text.
fn input_forms() -> Vec<Needle> {
    let mut needles = forms(
        "the secret input, little-endian",
        &SECRET_INPUT.to_le_bytes(),
    );
    needles.extend(forms(
        "the secret input, big-endian",
        &SECRET_INPUT.to_be_bytes(),
    ));
    needles.push(Needle {
        what: "the secret input (decimal)".into(),
        bytes: SECRET_INPUT.to_string().into_bytes(),
    });
    needles
}

/// The invite's own text forms of the secret: the fragment, and the run of
/// its characters that encode bits of the secret only.
fn invite_forms(invite_text: &str, invite: &Invite) -> Vec<Needle> {
    let (_, fragment) = invite_text.split_once('#').unwrap();
    let code = fragment.split_once('.').unwrap().1;
    let decoded = BASE64URL_NOPAD.decode(code.as_bytes()).unwrap();
    let at = decoded
        .windows(invite.secret.0.len())
        .position(|w| w == invite.secret.0)
        .expect("the invite's code holds the secret");
    // Six bits a character: the characters wholly inside the secret's bits.
    let first = (at * 8).div_ceil(6);
    let end = (at + invite.secret.0.len()) * 8 / 6;
    vec![
        Needle {
            what: "the invite's fragment".into(),
            bytes: fragment.as_bytes().to_vec(),
        },
        Needle {
            what: "the invite's characters of the secret".into(),
            bytes: code.as_bytes()[first..end].to_vec(),
        },
    ]
}

/// The announcement key, derived as `partyline_wire::announce` derives it
/// (the key itself is private there); checked against a MAC the library
/// makes, so this cannot drift from the real key unnoticed.
fn announcement_key(invite: &Invite) -> [u8; 32] {
    let material = [invite.secret.0.as_slice(), &invite.session.0].concat();
    let key = blake3::derive_key("partyline 2026-11 announcement key v1", &material);
    let made_by_library = AnnouncementKey::derive(invite).sign_body("probe".into());
    assert_eq!(
        made_by_library.mac,
        blake3::keyed_hash(&key, b"probe").to_hex().to_string(),
        "partyline_wire derives the announcement key differently now: update this test"
    );
    key
}

fn find(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(at, _)| at)
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether the bytes before `at` are `authorization: Bearer ` starting a header line.
fn in_bearer_header(capture: &[u8], at: usize) -> bool {
    let line_start = capture[..at]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |nl| nl + 1);
    capture[line_start..at].eq_ignore_ascii_case(b"authorization: bearer ")
}

fn total(captures: &[Capture], service: &str, way: Way) -> usize {
    captures
        .iter()
        .filter(|c| c.service == service && c.way == way)
        .map(|c| c.bytes.len())
        .sum()
}

fn count(captures: &[Capture], service: &str, way: Way, needle: &[u8]) -> usize {
    captures
        .iter()
        .filter(|c| c.service == service && c.way == way)
        .map(|c| find(&c.bytes, needle).len())
        .sum()
}

/// A real `partyline serve` whose coordinator and relay are reached only
/// through recording proxies (its public URLs name them).
fn recorded_server(runtime: &tokio::runtime::Runtime) -> (Server, Recording) {
    let coordinator_front = StdTcpListener::bind("127.0.0.1:0").unwrap();
    let relay_front = StdTcpListener::bind("127.0.0.1:0").unwrap();
    let public = |listener: &StdTcpListener| format!("https://{}", listener.local_addr().unwrap());
    let (coordinator, relay) = (free_addr(), free_addr());
    let server = Server::start_with(&[
        "--listen",
        &coordinator.to_string(),
        "--relay-listen",
        &relay.to_string(),
        "--public-url",
        &public(&coordinator_front),
        "--public-relay-url",
        &public(&relay_front),
    ]);
    assert!(server.link.starts_with(&public(&coordinator_front)));

    let identity = Arc::new(ServerIdentity::of(&server));
    let recording = Recording::default();
    let fronts = [
        (coordinator_front, coordinator, "coordinator", HTTP1),
        (relay_front, relay, "relay", NO_ALPN),
    ];
    for (front, upstream, service, alpn) in fronts {
        front.set_nonblocking(true).unwrap();
        let listener = TcpListener::from_std(front).unwrap();
        let (identity, recording) = (identity.clone(), recording.clone());
        runtime.spawn(async move {
            tls_recording_proxy(listener, upstream, &identity, alpn, service, recording).await
        });
    }
    (server, recording)
}

/// Checks the parties' results and that all went through the relay; returns
/// the bytes their programs sent.
fn check_runs(parties: Vec<Party>) -> usize {
    let runs: Vec<Finished> = parties
        .into_iter()
        .map(|party| party.finish(Duration::from_secs(180)))
        .collect();
    let expected = [
        format!("sum: {}", SECRET_INPUT + 1 + 2),
        format!("received: {SECRET_INPUT}"),
        format!("block: {BLOCK_BYTES} bytes"),
    ];
    let mut relayed_bytes = 0;
    for run in &runs {
        run.assert_success();
        assert_eq!(
            run.result_lines(&["sum", "received", "block"]),
            expected,
            "{}",
            run.name
        );
        for peer in run.report.as_ref().expect("a report")["peers"]
            .as_array()
            .unwrap()
        {
            assert_eq!(peer["path"], "relay", "{}: {peer}", run.name);
            relayed_bytes += peer["bytes_sent"].as_u64().unwrap() as usize;
        }
    }
    relayed_bytes
}

/// The recording saw the session of `invite` and none of its secrets, nor
/// any of `more`; the write token only where it is sent by design.
fn check_recording(captures: &[Capture], invite: &Invite, relayed_bytes: usize, more: Vec<Needle>) {
    // The recording saw the session: its requests and answers, and every
    // byte of the program's traffic at least once each way through the relay.
    let session = invite.session.to_string();
    for (service, way) in [
        ("coordinator", Way::ToServer),
        ("coordinator", Way::ToClient),
        ("relay", Way::ToServer),
    ] {
        assert!(
            count(captures, service, way, session.as_bytes()) >= usize::from(PARTIES),
            "the session id is missing from what the {service} exchanged ({way:?})"
        );
    }
    for way in [Way::ToServer, Way::ToClient] {
        let seen = total(captures, "relay", way);
        assert!(
            seen >= relayed_bytes && relayed_bytes >= 2 * BLOCK_BYTES,
            "the relay carried {seen} bytes {way:?}; the programs sent {relayed_bytes}"
        );
    }

    // The write token is sent by design (`partyline_wire::write_token`): every
    // change of the session shows it in `Authorization: Bearer`, and the server
    // keeps its hash. It may appear there and nowhere else, in no other form.
    let token = WriteToken::derive(&invite.secret);
    let token_hex = HEXLOWER.encode(&token.0);
    let mut bearers = 0;
    for capture in captures {
        for at in find(&capture.bytes, token_hex.as_bytes()) {
            assert!(
                capture.service == "coordinator"
                    && capture.way == Way::ToServer
                    && in_bearer_header(&capture.bytes, at),
                "the write token appears outside an Authorization header ({} {:?})",
                capture.service,
                capture.way
            );
            bearers += 1;
        }
    }
    assert!(
        bearers >= usize::from(PARTIES),
        "only {bearers} announcements seen"
    );

    let mut needles = forms("the invite secret", &invite.secret.0);
    needles.extend(invite_forms(&invite.to_string(), invite));
    needles.extend(forms("the announcement key", &announcement_key(invite)));
    needles.extend(
        forms("the write token", &token.0)
            .into_iter()
            .filter(|needle| needle.bytes != token_hex.as_bytes()),
    );
    needles.extend(input_forms());
    needles.extend(more);
    for capture in captures {
        for needle in &needles {
            assert!(
                !contains(&capture.bytes, &needle.bytes),
                "{} is in what the {} saw ({:?})",
                needle.what,
                capture.service,
                capture.way
            );
        }
    }
}

#[test]
fn the_operator_sees_no_secret_of_a_relayed_session() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _in_runtime = runtime.enter();
    let (server, recording) = recorded_server(&runtime);
    let invite_text = server.create(PARTIES);
    let invite: Invite = invite_text.parse().unwrap();
    let parties = ["alice", "bob", "carol"]
        .iter()
        .map(|name| Party::join(&invite_text, name, &["--relay-only"], &program()))
        .collect();
    let relayed_bytes = check_runs(parties);
    check_recording(&recording.captures(), &invite, relayed_bytes, Vec::new());
}

/// A short code as it could travel: its text in every encoding, and its
/// words alone in the ways people write them.
fn code_forms(code: &Code) -> Vec<Needle> {
    let mut needles = forms("the code", code.to_string().as_bytes());
    let words = code.words();
    for (what, text) in [
        ("the code's words", words.clone()),
        ("the code's words, with spaces", words.replace('-', " ")),
        ("the code's words, run together", words.replace('-', "")),
    ] {
        needles.push(Needle {
            what: what.into(),
            bytes: text.into_bytes(),
        });
    }
    needles
}

/// The same with a short code: `create --code` hosts, every party joins by
/// the code through the recorded coordinator; the operator sees neither the
/// code nor the invite it unlocks. The test takes the invite as one more
/// joiner would (a code exchange of its own, recorded too), to know what to
/// look for.
#[test]
fn the_operator_sees_neither_the_code_nor_the_invite_of_a_code_session() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _in_runtime = runtime.enter();
    let (server, recording) = recorded_server(&runtime);
    let host = CodeHost::start(&server.link, PARTIES, &[]);
    let code: Code = host.code.parse().unwrap();
    let identity = ServerIdentity::of(&server);
    let coordinator = Coordinator::new(&server.url().parse().unwrap(), identity.pin)
        .with_deadline(Instant::now() + Duration::from_secs(60));
    let invite = runtime
        .block_on(invite_from_code(
            &coordinator,
            &code,
            Duration::from_secs(60),
        ))
        .expect("the host hands the invite to the right code");
    let parties = ["alice", "bob", "carol"]
        .iter()
        .map(|name| host.join(&server.link, name, &["--relay-only"], &program()))
        .collect();
    let relayed_bytes = check_runs(parties);
    host.wait_for_stderr("all 3 parties joined", Duration::from_secs(60));
    assert!(host.finish(Duration::from_secs(60)), "the host failed");
    let captures = recording.captures();
    let nameplate = format!("/v1/nameplates/{}/attempts", code.nameplate());
    assert!(
        count(
            &captures,
            "coordinator",
            Way::ToServer,
            nameplate.as_bytes()
        ) >= 4,
        "the code exchanges are missing from the recording"
    );
    check_recording(&captures, &invite, relayed_bytes, code_forms(&code));
}

/// Records plain TCP from `listener` to `upstream`, which may not listen yet
/// (MPyC's listening party starts when it starts).
async fn tcp_recording_proxy(listener: TcpListener, upstream: SocketAddr, recording: Recording) {
    while let Ok((client, _)) = listener.accept().await {
        let recording = recording.clone();
        tokio::spawn(async move {
            let server = connect_when_listening(upstream).await;
            record_both_ways(client, server, "plain TCP", &recording).await;
        });
    }
}

async fn connect_when_listening(addr: SocketAddr) -> TcpStream {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match TcpStream::connect(addr).await {
            Ok(tcp) => return tcp,
            Err(e) if tokio::time::Instant::now() > deadline => panic!("{addr}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

fn spawn_mpyc(addrs: &[SocketAddr], index: usize) -> Child {
    Command::new(python())
        .args(program())
        .args(partyline_launch::mpyc::connection_flags(addrs, index))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The control: over MPyC's own plain TCP, the search above finds the
/// secret input in what party 0 sends party 1, so its absence through
/// partyline is partyline's doing.
#[test]
fn plain_mpyc_traffic_shows_the_secret_input() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _in_runtime = runtime.enter();
    let addrs: Vec<SocketAddr> = (0..PARTIES).map(|_| free_addr()).collect();
    let front = StdTcpListener::bind("127.0.0.1:0").unwrap();
    front.set_nonblocking(true).unwrap();
    // Party 0 reaches party 1 through the recording proxy.
    let mut party0_addrs = addrs.clone();
    party0_addrs[1] = front.local_addr().unwrap();
    let recording = Recording::default();
    runtime.spawn(tcp_recording_proxy(
        TcpListener::from_std(front).unwrap(),
        addrs[1],
        recording.clone(),
    ));
    let parties: Vec<Child> = (0..usize::from(PARTIES))
        .map(|i| spawn_mpyc(if i == 0 { &party0_addrs } else { &addrs }, i))
        .collect();
    for party in parties {
        let out = party.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let seen: Vec<String> = recording
        .captures()
        .iter()
        .filter(|c| c.way == Way::ToServer)
        .flat_map(|c| {
            input_forms()
                .into_iter()
                .filter(|needle| contains(&c.bytes, &needle.bytes))
                .map(|needle| needle.what)
        })
        .collect();
    assert!(
        seen.contains(&"the secret input, little-endian (raw)".to_string()),
        "found only {seen:?}"
    );
}
