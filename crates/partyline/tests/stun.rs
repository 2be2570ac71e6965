//! The server's STUN responder, against a real `partyline serve`: it answers
//! Binding requests with the address they came from and nothing else, its
//! port is in `/v1/info`, and a native party announces the address it
//! reported for its WebRTC socket.
mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use bytecodec::{DecodeExt, EncodeExt};
use common::*;
use partyline_session::Coordinator;
use partyline_wire::announce::AnnouncementKey;
use partyline_wire::api::ServerInfo;
use partyline_wire::{CertPin, Invite, ServerUrl};
use stun_codec::rfc5389::Attribute;
use stun_codec::rfc5389::attributes::{Software, XorMappedAddress};
use stun_codec::rfc5389::methods::BINDING;
use stun_codec::{Message, MessageClass, MessageDecoder, MessageEncoder, Method, TransactionId};

/// How long a datagram on loopback may take, at most, on a loaded machine.
const ANSWER_LIMIT: Duration = Duration::from_secs(5);

fn coordinator(server: &Server) -> Coordinator {
    let (url, pin) = server.link.split_once("#sha256=").unwrap();
    let url: ServerUrl = url.parse().unwrap();
    let pin: CertPin = pin.parse().unwrap();
    Coordinator::new(&url, pin).with_deadline(Instant::now() + Duration::from_secs(20))
}

async fn info(server: &Server) -> ServerInfo {
    coordinator(server).info().await.unwrap()
}

fn message(class: MessageClass, method: Method, id: [u8; 12]) -> Vec<u8> {
    let message = Message::<Attribute>::new(class, method, TransactionId::new(id));
    MessageEncoder::new().encode_into_bytes(message).unwrap()
}

/// The next datagram on `socket`, decoded as a Binding success response:
/// its transaction id and the address it reports.
fn next_answer(socket: &UdpSocket) -> ([u8; 12], SocketAddr) {
    let mut buf = [0u8; 1500];
    let (len, _) = socket
        .recv_from(&mut buf)
        .expect("the STUN responder answers within the limit");
    let answer = MessageDecoder::<Attribute>::new()
        .decode_from_bytes(&buf[..len])
        .unwrap()
        .unwrap();
    assert_eq!(answer.class(), MessageClass::SuccessResponse);
    assert_eq!(answer.method(), BINDING);
    assert_eq!(answer.attributes().count(), 1, "only XOR-MAPPED-ADDRESS");
    assert_eq!(len, 32, "no byte more than the answer needs");
    let mapped = answer.get_attribute::<XorMappedAddress>().unwrap();
    (*answer.transaction_id().as_bytes(), mapped.address())
}

#[tokio::test]
async fn serve_answers_binding_requests_and_nothing_else() {
    let server = Server::start();
    let info = info(&server).await;
    let port = info.stun_port.expect("/v1/info names the STUN port");
    let stun = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    socket.set_read_timeout(Some(ANSWER_LIMIT)).unwrap();
    let me = socket.local_addr().unwrap();

    // None of these is a Binding request; the responder handles datagrams in
    // order and loopback keeps it, so if the first answer we get is the one
    // to the request sent after them, none of them was answered.
    let allocate = Method::new(0x003).unwrap();
    let mut unknown_required = message(MessageClass::Request, BINDING, [5; 12]);
    unknown_required[3] = 8;
    unknown_required.extend([0x00, 0x26, 0x00, 0x04, 1, 2, 3, 4]);
    let ignored = [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        vec![0; 20],
        message(MessageClass::Request, BINDING, [1; 12])[..19].to_vec(),
        message(MessageClass::Indication, BINDING, [2; 12]),
        message(MessageClass::SuccessResponse, BINDING, [3; 12]),
        message(MessageClass::Request, allocate, [4; 12]),
        unknown_required,
        vec![0x00; 2000],
    ];
    for datagram in &ignored {
        socket.send_to(datagram, stun).unwrap();
    }
    let mut request =
        Message::<Attribute>::new(MessageClass::Request, BINDING, TransactionId::new([9; 12]));
    request.add_attribute(Software::new("a test".into()).unwrap());
    socket
        .send_to(
            &MessageEncoder::new().encode_into_bytes(request).unwrap(),
            stun,
        )
        .unwrap();
    assert_eq!(next_answer(&socket), ([9; 12], me));

    // It still answers, once per request, in order.
    for id in [[10; 12], [11; 12]] {
        socket
            .send_to(&message(MessageClass::Request, BINDING, id), stun)
            .unwrap();
    }
    assert_eq!(next_answer(&socket), ([10; 12], me));
    assert_eq!(next_answer(&socket), ([11; 12], me));

    // Another client is told its own address.
    let other = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    other.set_read_timeout(Some(ANSWER_LIMIT)).unwrap();
    other
        .send_to(&message(MessageClass::Request, BINDING, [12; 12]), stun)
        .unwrap();
    assert_eq!(next_answer(&other), ([12; 12], other.local_addr().unwrap()));
}

#[tokio::test]
async fn the_stun_port_is_chosen_or_turned_off() {
    let wanted = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let chosen = Server::start_with(&[
        "--listen",
        "127.0.0.1:0",
        "--stun-port",
        &wanted.to_string(),
    ]);
    assert_eq!(info(&chosen).await.stun_port, Some(wanted));
    for off in [&["--no-stun"][..], &["--stun-port", "0"]] {
        let server = Server::start_with(&[&["--listen", "127.0.0.1:0"][..], off].concat());
        assert_eq!(info(&server).await.stun_port, None, "{off:?}");
    }
    // A port another program holds is refused, and the error says what to do.
    let holder = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let taken = holder.local_addr().unwrap().port().to_string();
    let out = std::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--stun-port", &taken])
        .arg("--data-dir")
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("STUN port {taken} is in use")) && stderr.contains("--no-stun"),
        "{stderr}"
    );
}

/// The WebRTC candidates a party announced, once it has.
async fn announced_candidates(server: &Server, invite: &str) -> Vec<String> {
    let invite: Invite = invite.parse().unwrap();
    let view = tokio::time::timeout(
        Duration::from_secs(30),
        coordinator(server).session(&invite.session, Some(0)),
    )
    .await
    .expect("the party announces within 30 s")
    .unwrap();
    let signed = view.announcements.first().expect("one announcement");
    let announcement = AnnouncementKey::derive(&invite).verify(signed).unwrap();
    announcement.webrtc.expect("WebRTC parameters").candidates
}

/// A STUN responder of the test's own on loopback that tells whoever asks
/// that it comes from `reported`; returns its port and, from its thread,
/// the address the first Binding request came from.
fn reporting_responder(reported: SocketAddr) -> (u16, std::thread::JoinHandle<Option<SocketAddr>>) {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let port = socket.local_addr().unwrap().port();
    let answering = std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        let (len, from) = socket.recv_from(&mut buf).ok()?;
        let request = MessageDecoder::<Attribute>::new()
            .decode_from_bytes(&buf[..len])
            .ok()?
            .ok()?;
        let mut answer = Message::<Attribute>::new(
            MessageClass::SuccessResponse,
            BINDING,
            request.transaction_id(),
        );
        answer.add_attribute(XorMappedAddress::new(reported));
        let bytes = MessageEncoder::new().encode_into_bytes(answer).unwrap();
        socket.send_to(&bytes, from).unwrap();
        Some(from)
    });
    (port, answering)
}

/// A party asks STUN from its WebRTC socket and announces the address the
/// answer reports. On loopback the real responder would report 127.0.0.1,
/// which the party may also announce from iroh's own address discovery; so
/// a coordinator in the middle names a responder of the test's own, which
/// reports an address nothing else could have told the party.
#[test]
fn a_native_party_announces_the_address_stun_reported() {
    // Not a tokio test: finding the party's Python runs a runtime of its own.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _guard = runtime.enter();
    let reported: SocketAddr = "203.0.113.7:4242".parse().unwrap();
    let (stun_port, answering) = reporting_responder(reported);
    let server = Server::start();
    let rewrite: Rewrite = std::sync::Arc::new(move |_method, path, leg, bytes| {
        if path == "/v1/info"
            && leg == Leg::Answer
            && let Ok(mut info) = serde_json::from_slice::<ServerInfo>(bytes)
        {
            info.stun_port = Some(stun_port);
            *bytes = serde_json::to_vec(&info).unwrap();
        }
    });
    let middle = start_middle(&server, rewrite);
    let invite = create(&middle, 2);
    let port = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let flags = [
        "--no-mpyc-flags",
        "--timeout",
        "30",
        "--webrtc-port",
        &port.to_string(),
    ];
    let program = vec!["sh".to_string(), "-c".into(), "true".into()];
    let mut party = Party::join(&invite, "alice", &flags, &program);
    let candidates = runtime.block_on(announced_candidates(&server, &invite));
    let _ = party.child.kill();
    let _ = party.child.wait();
    let asked_from = answering.join().unwrap().expect("the party asked STUN");
    assert_eq!(asked_from.port(), port, "asked from its WebRTC socket");
    assert!(
        candidates.contains(&reported.to_string()),
        "{reported} not announced: {candidates:?}"
    );
}
