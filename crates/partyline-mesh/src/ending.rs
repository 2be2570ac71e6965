//! How a session ends, as peers see it.
//!
//! A party closes its QUIC connections with a code that says why: its program
//! finished, its program failed, or it was aborted (Ctrl-C, an error). A peer
//! whose program is still running keeps running after a `Finished`, and stops
//! with a message naming the party after anything else. A connection that
//! goes silent (the party was killed, or lost its network) times out after
//! [`crate::endpoint::IDLE_TIMEOUT`] and counts as lost.
use iroh::endpoint::{Connection, ConnectionError, VarInt};
use tokio::sync::mpsc;

use crate::PeerLink;

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
}

impl CloseCode {
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

fn classify(error: ConnectionError) -> Option<PeerEventKind> {
    match error {
        ConnectionError::ApplicationClosed(close) => {
            let reason = String::from_utf8_lossy(&close.reason).into_owned();
            match CloseCode::from_code(close.error_code.into_inner()) {
                Some(CloseCode::Finished) => Some(PeerEventKind::Finished),
                _ => Some(PeerEventKind::Ended(reason)),
            }
        }
        ConnectionError::LocallyClosed => None,
        other => Some(PeerEventKind::Lost(other.to_string())),
    }
}

/// Reports how each peer's connection ends, once per peer.
pub fn watch_peers(links: &[PeerLink]) -> mpsc::UnboundedReceiver<PeerEvent> {
    let (tx, rx) = mpsc::unbounded_channel();
    for link in links {
        let tx = tx.clone();
        let conn = link.conn.clone();
        let (index, name) = (link.member.index, link.member.name.clone());
        tokio::spawn(async move {
            if let Some(kind) = classify(conn.closed().await) {
                let _ = tx.send(PeerEvent { index, name, kind });
            }
        });
    }
    rx
}
