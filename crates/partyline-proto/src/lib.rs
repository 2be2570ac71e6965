//! partyline's peer protocol, written once for both kinds of party: native
//! parties (`partyline-mesh`, `partyline-session`) and browser parties
//! (`partyline-web`, compiled to wasm32) use this very code, so a protocol
//! change is made here and reaches both.
//!
//! The protocol is an ALPN plus what the two ends of a connection agree on:
//! who dials whom, how a stream starts, how a connection is closed and what
//! the close means, how long silence is tolerated. The carriers around it
//! differ only in transport: natives bind UDP sockets and forward TCP streams,
//! a browser reaches every peer through the relay and hands streams to
//! JavaScript.
//!
//! # Layout
//! - [`transport`]: the timeouts and the QUIC transport configuration every party uses.
//! - [`ending`]: close codes and what a peer learns from how a connection ended.
//! - [`stream`]: the header that starts every stream (with the port it is for,
//!   when a party has several), and opening/accepting one.
//! - [`connect`]: connecting to exactly the roster's peers (dial higher seats, accept lower ones).
//! - [`ready`]: the ready barrier: no program starts until every party accepted the roster.
//! - [`join`]: announcing ourselves and waiting for the verified roster, against any coordinator client.
//! - [`code`]: a joiner's side of a short code: the PAKE exchange with the
//!   host, through the coordinator, that gives the invite.
//! - [`relay_batches`]: relayed packets in batches for endpoints without UDP
//!   (browsers, and natives with `--relay-only`).
//! - [`webrtc`]: what both ends of a WebRTC data channel (a browser's
//!   direct path to a native party) agree on: addresses, channel, limits.
//! - [`pin`]: trusting the self-hosted server's TLS certificate by its pin (native parties).
#![forbid(unsafe_code)]

pub mod code;
pub mod connect;
pub mod ending;
pub mod join;
pub mod pin;
pub mod ready;
pub mod relay_batches;
pub mod stream;
pub mod transport;
pub mod webrtc;

pub use code::{CodeFailure, CodeRelay, invite_from_code};
pub use connect::{ConnectError, Dialing, connect_all};
pub use ending::{CloseCode, PeerEvent, PeerEventKind};
pub use join::{CoordinatorApi, Progress, WaitError, announce_and_wait};
pub use pin::{PinMismatch, PinnedCertVerifier};
pub use ready::{ReadyError, ready_barrier};

/// The name and version of partyline's peer protocol. The version changes
/// whenever two parties of different versions could not run a session together.
/// Servers report it in `/v1/info`, so a party refuses a server of another
/// protocol before it announces anything.
pub const PROTOCOL: &str = "partyline/mesh/1";

/// The ALPN of partyline's peer connections: [`PROTOCOL`] as bytes.
pub const ALPN: &[u8] = PROTOCOL.as_bytes();

/// Why we will not work with a server: it speaks another peer protocol.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the server at {url} speaks the peer protocol {server:?}, this party speaks {PROTOCOL:?}; use a partyline of the same version as the server"
)]
pub struct WrongProtocol {
    pub url: String,
    pub server: String,
}

/// Checks that a server (its `/v1/info` answer) speaks our peer protocol.
pub fn check_protocol(
    url: &str,
    info: &partyline_wire::api::ServerInfo,
) -> Result<(), WrongProtocol> {
    if info.protocol == PROTOCOL {
        Ok(())
    } else {
        Err(WrongProtocol {
            url: url.to_string(),
            server: info.protocol.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alpn_is_the_protocol_name() {
        assert_eq!(ALPN, b"partyline/mesh/1");
        assert_eq!(std::str::from_utf8(ALPN).unwrap(), PROTOCOL);
    }
}
