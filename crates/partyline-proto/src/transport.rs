//! The timeouts and QUIC settings every party uses, native or browser.
//!
//! Both ends of a connection must agree on them: a peer that keeps quiet
//! longer than the other's idle timeout is taken for gone.
use std::time::Duration;

use iroh::endpoint::{IdleTimeout, QuicTransportConfig};

/// How long a silent peer is given before it counts as gone. Short, because a
/// party that vanished must end the session within seconds; keep-alives every
/// [`KEEP_ALIVE`] keep healthy connections far from it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
pub const KEEP_ALIVE: Duration = Duration::from_secs(1);
/// How long binding an endpoint waits to be connected to its relay.
pub const ONLINE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long, after our program exited, we wait for peers to receive what it sent.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(10);
/// How long closing an endpoint waits for the closes to be sent.
pub const CLOSE_LIMIT: Duration = Duration::from_secs(3);
/// The longest a single long-poll of the coordinator is held by the server.
pub const LONG_POLL: Duration = Duration::from_secs(20);
/// Streams a peer may have open at once: one per TCP connection of the program.
const MAX_STREAMS: u32 = 1024;

/// The QUIC transport configuration of every peer connection.
pub fn transport_config() -> QuicTransportConfig {
    QuicTransportConfig::builder()
        .max_idle_timeout(Some(
            IdleTimeout::try_from(IDLE_TIMEOUT).expect("5 s is a valid idle timeout"),
        ))
        .keep_alive_interval(KEEP_ALIVE)
        .max_concurrent_bidi_streams(MAX_STREAMS.into())
        .build()
}
