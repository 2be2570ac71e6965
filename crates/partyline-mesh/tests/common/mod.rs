//! What the mesh's tests share: a session server on loopback, party
//! endpoints bound as parties bind them, and two of them connected as a
//! roster says.
#![allow(dead_code)]
use std::net::Ipv4Addr;
use std::time::Duration;

use partyline_mesh::{MeshConfig, PartyEndpoint, PeerLink, connect_all};
use partyline_server::{RunningServer, ServerConfig};
use partyline_wire::{CertPin, Member, Roster, SessionId};

/// Long enough for loopback, short enough that a test that waits it out
/// (a stranger who is never dialled) stays quick.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A session server; its relay serves any endpoint, as the endpoints here
/// are in no session of its coordinator (the gate has tests of its own).
pub async fn start_server() -> (RunningServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = partyline_server::start(ServerConfig {
        listen: (Ipv4Addr::LOCALHOST, 0).into(),
        data_dir: dir.path().to_path_buf(),
        quotas: partyline_server::Quotas::unlimited(),
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    (server, dir)
}

/// How parties of `server` bind their endpoints, trusting `pin` for its relay.
pub fn config(server: &RunningServer, pin: CertPin) -> MeshConfig {
    MeshConfig {
        relay_url: server.relay_url().to_string(),
        relay_quic_port: None,
        stun_port: server.stun_port(),
        pin,
        more_relays: Vec::new(),
        relay_only: false,
        webrtc_port: None,
        relay_token: None,
        peer_timeout: Default::default(),
    }
}

pub async fn bind(server: &RunningServer) -> PartyEndpoint {
    bind_with(server, false).await
}

/// A party endpoint that reaches peers through the relay only, if `relay_only`.
pub async fn bind_with(server: &RunningServer, relay_only: bool) -> PartyEndpoint {
    PartyEndpoint::bind(&MeshConfig {
        relay_only,
        ..config(server, server.pin())
    })
    .await
    .unwrap()
}

pub fn member(index: usize, name: &str, end: &PartyEndpoint) -> Member {
    Member {
        index,
        name: name.to_string(),
        endpoint: end.key(),
        relay_url: Some(end.relay_url()),
        addrs: end.direct_addrs(),
        identity: None,
        webrtc: None,
    }
}

pub fn roster(session: SessionId, members: &[Member], own_index: usize) -> Roster {
    Roster {
        session,
        members: members.to_vec(),
        own_index,
    }
}

/// Alice (seat 0) and Bob (seat 1), connected as the roster says.
pub struct Pair {
    pub alice_links: Vec<PeerLink>,
    pub bob_links: Vec<PeerLink>,
    /// The connections live as long as their endpoints.
    pub ends: [PartyEndpoint; 2],
}

pub async fn connected_pair(server: &RunningServer) -> Pair {
    connected_pair_with(server, false).await
}

/// Alice and Bob, through the relay only if `relay_only`.
pub async fn connected_pair_with(server: &RunningServer, relay_only: bool) -> Pair {
    let (alice, bob) = (
        bind_with(server, relay_only).await,
        bind_with(server, relay_only).await,
    );
    let members = [member(0, "alice", &alice), member(1, "bob", &bob)];
    let session = SessionId::random();
    let (alices, bobs) = (roster(session, &members, 0), roster(session, &members, 1));
    let (alice_links, bob_links) = tokio::try_join!(
        connect_all(&alice, &alices, CONNECT_TIMEOUT),
        connect_all(&bob, &bobs, CONNECT_TIMEOUT),
    )
    .unwrap();
    Pair {
        alice_links,
        bob_links,
        ends: [alice, bob],
    }
}

/// What `future` gives, if it does within [`CONNECT_TIMEOUT`].
pub async fn within<T>(future: impl Future<Output = T>, what: &str) -> T {
    tokio::time::timeout(CONNECT_TIMEOUT, future)
        .await
        .unwrap_or_else(|_| panic!("not within {CONNECT_TIMEOUT:?}: {what}"))
}
