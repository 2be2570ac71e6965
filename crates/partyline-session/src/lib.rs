//! The party's side of the coordinator: create a session, announce ourselves,
//! wait for everyone, and verify what the coordinator hands back.
//!
//! Nothing the coordinator says is believed without a check: its TLS
//! certificate must match the invite's pin, and every announcement it relays
//! must carry a valid MAC under the invite secret (see `partyline_wire`).
//! Nor is it trusted with the party's memory or time: every answer has a
//! size limit, and every request ends by the caller's deadline.
//!
//! # Layout
//! - [`tls`]: HTTPS clients that trust our self-hosted server by certificate pin.
//! - [`link`]: the `https://host:port#sha256=PIN` server address.
//! - [`coordinator`]: the HTTPS API client, every answer bounded in size and
//!   time, reading the session and announcing asked again with back-off while
//!   the server cannot be reached (a restart), at the other servers on its
//!   database if it names any; announce-and-wait itself is
//!   `partyline_proto::join`, shared with browser parties, and so is a
//!   joiner's side of a short code (`partyline_proto::code`).
//! - [`code_host`]: the host's side of a short code: answers every joiner's
//!   exchange, hands the invite to those with the right code, burns the code
//!   after too many wrong ones, until every seat is taken.
#![forbid(unsafe_code)]

pub mod code_host;
pub mod coordinator;
pub mod link;
pub mod tls;

use std::time::Duration;

pub use coordinator::Coordinator;
pub use link::ServerLink;
pub use partyline_proto::join::{Progress, WaitError, announce_and_wait};
use partyline_proto::{PinMismatch, WrongProtocol};

/// What can go wrong between a party and the coordinator.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(
        "cannot reach the partyline server at {url}: {reason}. Is the server running, and is the address in the invite right?"
    )]
    Unreachable { url: String, reason: String },
    #[error(
        "the server at {url} showed a TLS certificate this invite does not trust ({mismatch}); someone may be impersonating the server, or the server was reinstalled: ask for a new invite"
    )]
    WrongCertificate {
        url: String,
        #[source]
        mismatch: PinMismatch,
    },
    #[error(transparent)]
    WrongProtocol(#[from] WrongProtocol),
    #[error("the server refused the request ({status}): {message}")]
    Api { status: u16, message: String },
    #[error(
        "the server at {url} sent an answer partyline does not understand ({reason}); is it a partyline server of the same version?"
    )]
    BadResponse { url: String, reason: String },
    #[error(
        "the partyline server at {url} did not send {what} in time (gave up after {:.1}s); it is overloaded, its network is slow, or it is misbehaving. Try again later or raise --timeout; if it keeps happening, tell the server's operator", waited.as_secs_f64()
    )]
    TooSlow {
        url: String,
        what: &'static str,
        waited: Duration,
    },
    #[error(
        "the partyline server at {url} sent more than {} KiB as {what}, far more than a partyline server sends; it is misbehaving or not a partyline server. Check the server's address, and tell its operator", limit / 1024
    )]
    TooLarge {
        url: String,
        what: &'static str,
        limit: usize,
    },
    #[error(transparent)]
    Roster(#[from] partyline_wire::RosterError),
    #[error(transparent)]
    Code(#[from] partyline_proto::CodeFailure),
    #[error("this session has already finished; ask for a new invite")]
    AlreadyFinished,
    #[error("gave up after {}s: {} of {expected} parties joined ({}); the others have not run `partyline join` with this invite yet. Raise --timeout to wait longer", waited.as_secs(), joined.len(), if joined.is_empty() { "none".to_string() } else { joined.join(", ") })]
    JoinTimeout {
        joined: Vec<String>,
        expected: usize,
        waited: Duration,
    },
}

impl From<WaitError> for SessionError {
    fn from(error: WaitError) -> Self {
        match error {
            WaitError::Roster(error) => Self::Roster(error),
            WaitError::AlreadyFinished => Self::AlreadyFinished,
            WaitError::Timeout {
                joined,
                expected,
                waited,
            } => Self::JoinTimeout {
                joined,
                expected,
                waited,
            },
        }
    }
}
