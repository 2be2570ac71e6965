//! What the mesh refuses: endpoints outside the roster, whichever side dials;
//! streams that do not start with partyline's header; a relay that does not
//! show the pinned certificate.
//!
//! Everything is real and on loopback: session servers with their relays
//! (`partyline-server`, in this process), iroh endpoints bound as parties bind
//! them, and the mesh's own `connect_all` and `Forwarder`. A stranger is an
//! endpoint of the same kind with a roster of its own making.
mod common;

use common::*;
use iroh::SecretKey;
use iroh::endpoint::{ConnectionError, VarInt};
use partyline_mesh::{CloseCode, Forwarder, LocalEnds, MeshError, PartyEndpoint, connect_all};
use partyline_proto::stream::{self, RESET_CODE};
use partyline_wire::seat::StreamRules;
use partyline_wire::{EndpointKey, Member, SessionId};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread")]
async fn a_stranger_dialling_a_party_is_closed_as_not_in_the_roster() {
    let (server, _dir) = start_server().await;
    let (alice, bob, stranger) = (
        bind(&server).await,
        bind(&server).await,
        bind(&server).await,
    );
    let session = SessionId::random();
    let members = [member(0, "alice", &alice), member(1, "bob", &bob)];
    let bob_waits = tokio::spawn({
        let (bob, roster) = (bob.clone(), roster(session, &members, 1));
        async move { connect_all(&bob, &roster, CONNECT_TIMEOUT).await }
    });

    // The stranger takes Alice's seat in a roster of its own and dials Bob.
    let forged = [member(0, "alice", &stranger), members[1].clone()];
    let links = connect_all(&stranger, &roster(session, &forged, 0), CONNECT_TIMEOUT)
        .await
        .expect("the QUIC handshake itself succeeds: the stranger holds its own key");
    match within(
        links[0].conn.closed(),
        "Bob closes the stranger's connection",
    )
    .await
    {
        ConnectionError::ApplicationClosed(close) => {
            assert_eq!(
                close.error_code,
                VarInt::from_u32(CloseCode::NotInRoster as u32)
            );
            assert_eq!(&close.reason[..], b"you are not in this session's roster");
        }
        other => panic!("the stranger's connection ended otherwise: {other}"),
    }

    // Bob still waits for Alice, and gets her.
    let alice_links = connect_all(&alice, &roster(session, &members, 0), CONNECT_TIMEOUT)
        .await
        .unwrap();
    let bob_links = bob_waits.await.unwrap().unwrap();
    assert_eq!(bob_links.len(), 1);
    assert_eq!(bob_links[0].member.endpoint, alice.key());
    assert_eq!(alice_links[0].member.endpoint, bob.key());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_party_dialling_a_stranger_gets_no_connection() {
    let (server, _dir) = start_server().await;
    let (alice, stranger) = (bind(&server).await, bind(&server).await);
    let session = SessionId::random();
    // Alice's roster has Bob at seat 1, but the direct addresses announced
    // for Bob are the stranger's (an announcement may carry any address), and
    // no endpoint with Bob's key is on the relay, which Alice tries too: her
    // packets for Bob reach the stranger only.
    let bob_key = EndpointKey(*SecretKey::generate().public().as_bytes());
    let bob_at_strangers_address = Member {
        index: 1,
        name: "bob".into(),
        endpoint: bob_key,
        relay_url: None,
        addrs: stranger.direct_addrs(),
        identity: None,
        webrtc: None,
    };
    let alices = [member(0, "alice", &alice), bob_at_strangers_address];
    // The stranger expects Alice, so it would keep a connection from her.
    let strangers = [alices[0].clone(), member(1, "bob", &stranger)];
    let (alices, strangers) = (roster(session, &alices, 0), roster(session, &strangers, 1));
    let (alice_result, stranger_result) = tokio::join!(
        connect_all(&alice, &alices, CONNECT_TIMEOUT),
        connect_all(&stranger, &strangers, CONNECT_TIMEOUT),
    );
    // The stranger cannot prove Bob's key, so Alice's handshake fails.
    match alice_result {
        Err(MeshError::Connect(error)) => {
            assert!(error.to_string().contains("party 1 (bob)"), "{error}")
        }
        Err(other) => panic!("Alice failed otherwise: {other}"),
        Ok(_) => panic!("Alice connected to a key the stranger does not hold"),
    }
    assert!(
        stranger_result.is_err(),
        "the stranger got a connection from Alice"
    );
}

/// Bob forwards Alice's streams to a local port the test owns: each stream
/// that starts with a byte other than the TCP header (unknown kinds, and
/// Ready, which belongs on a uni stream) is stopped and reset, and only the
/// well-formed stream after them reaches the port.
#[tokio::test(flavor = "multi_thread")]
async fn streams_without_the_header_are_reset_and_reach_no_program() {
    let (server, _dir) = start_server().await;
    let pair = connected_pair(&server).await;
    let mut ends = LocalEnds::loopback(2).unwrap();
    let program = ends.take(1).pop().unwrap();
    program.set_nonblocking(true).unwrap();
    let program = TcpListener::from_std(program).unwrap();
    let _bob = Forwarder::start(&pair.bob_links, 1, ends, StreamRules::Generic).unwrap();
    let conn = &pair.alice_links[0].conn;

    for header in [0u8, 2, 0xff] {
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        send.write_all(&[header]).await.unwrap();
        send.write_all(b"not for the program").await.unwrap();
        assert_eq!(
            within(send.stopped(), "Bob stops the stream")
                .await
                .unwrap(),
            Some(RESET_CODE),
            "header {header}"
        );
        match within(recv.read_to_end(1024), "Bob resets the stream").await {
            Err(iroh::endpoint::ReadToEndError::Read(iroh::endpoint::ReadError::Reset(code))) => {
                assert_eq!(code, RESET_CODE, "header {header}")
            }
            other => panic!("header {header}: Bob's side of the stream was not reset: {other:?}"),
        }
    }

    // Bob handled the streams in order: the first connection to the program
    // is this one, so none of the refused streams reached it.
    let (mut send, _recv) = stream::open(conn).await.unwrap();
    send.write_all(b"for the program").await.unwrap();
    send.finish().unwrap();
    let (mut tcp, _) = within(program.accept(), "the stream reaches the program")
        .await
        .unwrap();
    let mut got = Vec::new();
    within(tcp.read_to_end(&mut got), "the stream ends")
        .await
        .unwrap();
    assert_eq!(got, b"for the program");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relay_without_the_pinned_certificate_is_not_used() {
    let (ours, _ours_dir) = start_server().await;
    let (impostor, _impostor_dir) = start_server().await;
    assert_ne!(ours.pin(), impostor.pin());

    // The impostor's relay serves endpoints that trust its own certificate...
    let trusting = PartyEndpoint::bind(&config(&impostor, impostor.pin())).await;
    assert!(trusting.is_ok(), "{:?}", trusting.err());
    // ...but not one that pins ours: it never gets online.
    match PartyEndpoint::bind(&config(&impostor, ours.pin())).await {
        Err(MeshError::RelayUnreachable { url, .. }) => assert_eq!(url, impostor.relay_url()),
        Err(other) => panic!("binding failed otherwise: {other}"),
        Ok(_) => panic!("an endpoint used a relay whose certificate is not the pinned one"),
    }
}
