//! The timeouts and QUIC settings every party uses, native or browser.
//!
//! A connection's idle timeout is the shorter of the two ends' (QUIC
//! negotiates the minimum): a peer that keeps quiet that long is taken for
//! gone. [`PeerTimeout`] is that limit; keep-alives every [`KEEP_ALIVE`] keep
//! healthy connections far from it.
use std::fmt;
use std::num::NonZeroUsize;
use std::str::FromStr;
use std::time::Duration;

use iroh::endpoint::{IdleTimeout, QuicTransportConfig};

/// Sent on every quiet connection this often, so that only a party that is
/// really gone (or whose link is down) reaches the idle timeout.
pub const KEEP_ALIVE: Duration = Duration::from_secs(1);
/// How long binding an endpoint waits to be connected to its relay.
pub const ONLINE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long, after our program exited, we wait for peers to receive what it sent.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(10);
/// How long closing an endpoint waits for the closes to be sent.
pub const CLOSE_LIMIT: Duration = Duration::from_secs(3);
/// The longest a single long-poll of the coordinator is held by the server.
pub const LONG_POLL: Duration = Duration::from_secs(20);
/// The round-trip time QUIC assumes before it has measured one, which sets
/// when a lost first handshake flight is sent again (three times this): a
/// dial that reaches a peer before the peer's relay connection is up is
/// lost. QUIC's default, 333 ms, waits a second; sent again early on a
/// longer path, a flight only arrives twice.
const INITIAL_RTT: Duration = Duration::from_millis(100);
/// Packets per send that each of our custom transports declares: noq builds
/// at most 10 (its `MAX_TRANSMIT_SEGMENTS`), as for an IP transport with GSO.
/// iroh batches every path's packets by the smallest number any transport of
/// the endpoint declares, so one transport left at the default of 1 turns
/// off GSO on the UDP paths too (`partyline bench` measured it: a bare
/// direct connection at 2.5 times the CPU per MB).
pub const TRANSMIT_SEGMENTS: NonZeroUsize = NonZeroUsize::new(10).expect("10 is not 0");
/// Streams a peer may have open at once: one per TCP connection of the program.
const MAX_STREAMS: u32 = 1024;
// The flow-control windows stay at QUIC's defaults (1.25 MB per stream, sized
// for 100 Mbit/s at 100 ms): a stream moves at most one window per round
// trip, so one stream to a party 75 ms away tops out near 17 MB/s, where
// kernel TCP (receive buffer up to tcp_rmem's 32 MiB here) fills the path.
// Larger windows are not safe with this QUIC stack: its receiver keeps at
// most 1024 pieces of unread stream data and closes the whole connection
// ("too many gaps in stream buffer") once a reader lags more than that, even
// without loss (quinn-rs/quinn#2809, which noq shares). `partyline bench`
// hit it at once with a 16 MiB stream window.

/// How long a silent peer is given before it counts as gone, and the session
/// ends naming it.
///
/// Short detects a vanished party quickly; long rides out a link that drops
/// for a while (a phone moving between networks, flaky Wi-Fi). The bounds
/// keep at least three keep-alives inside the timeout and the others from
/// waiting more than ten minutes for a party that is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerTimeout(Duration);

/// A peer timeout outside [`PeerTimeout::MIN_SECS`]..=[`PeerTimeout::MAX_SECS`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PeerTimeoutError {
    #[error("{0:?} is not a whole number of seconds")]
    NotSeconds(String),
    #[error(
        "{0} s is shorter than {min} s: with keep-alives every second, a few lost packets would end \
         the session; give {min} to {max}",
        min = PeerTimeout::MIN_SECS,
        max = PeerTimeout::MAX_SECS
    )]
    TooShort(u64),
    #[error(
        "{0} s is longer than {max} s: the others would wait that long for a party that is gone; \
         give {min} to {max}",
        min = PeerTimeout::MIN_SECS,
        max = PeerTimeout::MAX_SECS
    )]
    TooLong(u64),
}

// At least three keep-alives fit in the shortest timeout.
const _: () = assert!(KEEP_ALIVE.as_secs() * 3 <= PeerTimeout::MIN_SECS);

impl PeerTimeout {
    pub const MIN_SECS: u64 = 3;
    pub const MAX_SECS: u64 = 600;
    pub const DEFAULT_SECS: u64 = 5;

    pub fn from_secs(secs: u64) -> Result<Self, PeerTimeoutError> {
        if secs < Self::MIN_SECS {
            Err(PeerTimeoutError::TooShort(secs))
        } else if secs > Self::MAX_SECS {
            Err(PeerTimeoutError::TooLong(secs))
        } else {
            Ok(Self(Duration::from_secs(secs)))
        }
    }

    pub fn duration(self) -> Duration {
        self.0
    }

    /// The QUIC transport configuration of every peer connection.
    pub fn transport_config(self) -> QuicTransportConfig {
        QuicTransportConfig::builder()
            .max_idle_timeout(Some(
                IdleTimeout::try_from(self.0).expect("at most 600 s is a valid idle timeout"),
            ))
            .keep_alive_interval(KEEP_ALIVE)
            .initial_rtt(INITIAL_RTT)
            .max_concurrent_bidi_streams(MAX_STREAMS.into())
            .build()
    }
}

impl Default for PeerTimeout {
    fn default() -> Self {
        Self(Duration::from_secs(Self::DEFAULT_SECS))
    }
}

impl FromStr for PeerTimeout {
    type Err = PeerTimeoutError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let secs = s
            .trim()
            .parse()
            .map_err(|_| PeerTimeoutError::NotSeconds(s.to_string()))?;
        Self::from_secs(secs)
    }
}

impl fmt::Display for PeerTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.as_secs())
    }
}

/// The QUIC transport configuration with the default [`PeerTimeout`] (the
/// browser party, which has no flag for it).
pub fn transport_config() -> QuicTransportConfig {
    PeerTimeout::default().transport_config()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_timeout_takes_whole_seconds_within_its_bounds() {
        assert_eq!("3".parse(), PeerTimeout::from_secs(3));
        assert_eq!(
            "600".parse::<PeerTimeout>().unwrap().duration(),
            Duration::from_secs(600)
        );
        assert_eq!(
            "2".parse::<PeerTimeout>(),
            Err(PeerTimeoutError::TooShort(2))
        );
        assert_eq!(
            "601".parse::<PeerTimeout>(),
            Err(PeerTimeoutError::TooLong(601))
        );
        assert!(matches!(
            "1.5".parse::<PeerTimeout>(),
            Err(PeerTimeoutError::NotSeconds(_))
        ));
        assert_eq!(PeerTimeout::default().duration(), Duration::from_secs(5));
    }

    #[test]
    fn errors_say_what_to_give() {
        let message = PeerTimeoutError::TooShort(1).to_string();
        assert!(message.contains("give 3 to 600"), "{message}");
    }
}
