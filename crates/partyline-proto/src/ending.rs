//! How a session ends, as peers see it.
//!
//! A party closes its QUIC connections with a code that says why: its program
//! finished, its program failed, or it was aborted (Ctrl-C, an error). A peer
//! whose program is still running keeps running after a `Finished`, and stops
//! with a message naming the party after anything else. A connection that
//! goes silent (the party was killed, or lost its network) times out after
//! the [`crate::transport::PeerTimeout`] and counts as lost.
use iroh::endpoint::{Connection, ConnectionError, VarInt};

/// The application close codes of partyline's peer protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseCode {
    /// Our program exited with status 0.
    Finished = 0,
    /// Our program exited with a non-zero status or a signal.
    ProgramFailed = 1,
    /// We stopped before our program ended (Ctrl-C, an error, a lost peer).
    Aborted = 2,
    /// The connecting key is not in the roster.
    NotInRoster = 3,
    /// A peer broke the seat rules (`partyline_wire::seat`); the reason names it.
    SeatViolation = 4,
    /// The peer's ready carried another roster digest than ours: the
    /// coordinator showed us different rosters (see [`crate::ready`]).
    RosterMismatch = 5,
}

impl CloseCode {
    /// Closes `conn`, telling the peer why in `reason`.
    pub fn close(self, conn: &Connection, reason: &str) {
        conn.close(VarInt::from_u32(self as u32), reason.as_bytes());
    }

    fn from_code(code: u64) -> Option<Self> {
        [
            Self::Finished,
            Self::ProgramFailed,
            Self::Aborted,
            Self::NotInRoster,
            Self::SeatViolation,
            Self::RosterMismatch,
        ]
        .into_iter()
        .find(|c| *c as u64 == code)
    }
}

/// Something that happened to one peer's connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerEvent {
    pub index: usize,
    pub name: String,
    pub kind: PeerEventKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerEventKind {
    /// The peer's program finished successfully and it closed the connection.
    Finished,
    /// The peer ended the session on purpose, saying why.
    Ended(String),
    /// The connection broke without a word: the peer was killed or cut off.
    Lost(String),
}

impl PeerEventKind {
    /// What the end of a connection means, or `None` if we closed it ourselves.
    pub fn of(error: ConnectionError) -> Option<Self> {
        match error {
            ConnectionError::ApplicationClosed(close) => {
                let reason = String::from_utf8_lossy(&close.reason).into_owned();
                match CloseCode::from_code(close.error_code.into_inner()) {
                    Some(CloseCode::Finished) => Some(Self::Finished),
                    _ => Some(Self::Ended(reason)),
                }
            }
            ConnectionError::LocallyClosed => None,
            other => Some(Self::Lost(other.to_string())),
        }
    }
}

impl std::fmt::Display for PeerEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = format!("party {} ({})", self.index, self.name);
        match &self.kind {
            PeerEventKind::Finished => write!(f, "{who} finished"),
            PeerEventKind::Ended(reason) => write!(f, "{who} ended the session: {reason}"),
            PeerEventKind::Lost(reason) => write!(
                f,
                "lost the connection to {who} ({reason}); it was stopped or lost its network"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_are_the_wire_numbers() {
        // Changing one breaks sessions between parties of different builds.
        for (code, number) in [
            (CloseCode::Finished, 0),
            (CloseCode::ProgramFailed, 1),
            (CloseCode::Aborted, 2),
            (CloseCode::NotInRoster, 3),
            (CloseCode::SeatViolation, 4),
            (CloseCode::RosterMismatch, 5),
        ] {
            assert_eq!(code as u64, number);
            assert_eq!(CloseCode::from_code(number), Some(code));
        }
        assert_eq!(CloseCode::from_code(6), None);
    }

    #[test]
    fn a_local_close_is_no_event() {
        assert_eq!(PeerEventKind::of(ConnectionError::LocallyClosed), None);
        assert!(matches!(
            PeerEventKind::of(ConnectionError::TimedOut),
            Some(PeerEventKind::Lost(_))
        ));
    }
}
