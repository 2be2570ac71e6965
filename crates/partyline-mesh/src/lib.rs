//! The native carrier of partyline's peer protocol (`partyline_proto`): our
//! iroh endpoint with UDP sockets and the pinned relay, one authenticated QUIC
//! connection to every other party, and the forwarding of the MPC program's
//! TCP streams over them.
//!
//! Peers are dialled by endpoint id (an Ed25519 public key) taken from the
//! verified roster, so the QUIC handshake itself proves who is on the other
//! end; connections from any other key are closed at once. The only relays used
//! are the session server's (its own, and those it lists for other regions,
//! the nearest our home), trusted by certificate pin; no public relay or
//! address lookup service is ever contacted.
//!
//! # Layout
//! - [`addrs`]: every party's local address, the same on every machine where
//!   the system allows it, and the sockets bound there.
//! - [`endpoint`]: binding our iroh endpoint (our server's relays only, fresh key).
//! - [`connect`]: our links to the roster's peers, with byte counters and path; the ready barrier.
//! - [`forward`]: local TCP listeners per peer, the seat rules on every stream,
//!   and the byte pumps between TCP and QUIC.
//! - [`local_peer`]: which local user a connection to a tunnel end comes from.
//! - [`ending`]: watching how each peer's connection ends.
//! - [`webrtc`]: our end of browser parties' WebRTC data channels, an iroh
//!   custom transport (str0m, ICE-lite, one UDP socket per session).
//! - `stun`: the Binding request that socket sends the server's STUN
//!   responder, to learn its server-reflexive address.
#![forbid(unsafe_code)]

pub mod addrs;
pub mod connect;
pub mod ending;
pub mod endpoint;
pub mod forward;
pub mod local_peer;
mod stun;
pub mod webrtc;

pub use addrs::{AddrsError, Fallback, LocalEnds};
pub use connect::{PathKind, PeerLink, connect_all, ready_barrier};
pub use endpoint::{MeshConfig, PartyEndpoint};
pub use forward::{Forwarder, SeatBreach};
pub use partyline_proto::{ALPN, CloseCode, ConnectError, PeerEvent, PeerEventKind, ReadyError};

/// What can go wrong while building the mesh.
#[derive(Debug, thiserror::Error)]
pub enum MeshError {
    #[error("cannot open a network endpoint: {0}")]
    Bind(String),
    #[error("the relay URL {0:?} is not valid")]
    BadRelayUrl(String),
    #[error(
        "cannot reach the session's relay at {url} within {secs}s; check that the server is running and that this machine can reach it"
    )]
    RelayUnreachable { url: String, secs: u64 },
    #[error(transparent)]
    Connect(#[from] ConnectError),
}
