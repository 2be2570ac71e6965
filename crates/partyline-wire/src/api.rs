//! JSON bodies of the coordinator's HTTP API (`/v1/...`).
//!
//! | method and path | body | answer |
//! |---|---|---|
//! | `GET /v1/info` | | [`ServerInfo`] |
//! | `POST /v1/sessions` | [`CreateSession`] | [`SessionCreated`] |
//! | `GET /v1/sessions/{id}?seen=K&wait=SECS` | | [`SessionView`], held back up to `wait` seconds until the number of announcements differs from `K` or the state changes |
//! | `POST /v1/sessions/{id}/announcements` | [`SignedAnnouncement`] | [`SessionView`] |
//! | `DELETE /v1/sessions/{id}/announcements/{endpoint}` | | 204 |
//! | `POST /v1/sessions/{id}/done` | | 204 |
//!
//! Every request that changes a session (announce, withdraw, done) carries
//! the session's write token as `Authorization: Bearer <hex>`.
//!
//! Errors are a status code with an [`ApiError`] body.
use serde::{Deserialize, Serialize};

use crate::{SessionId, SignedAnnouncement, WriteTokenHash};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    pub version: String,
    /// The relay parties should use, `https://host:port`.
    pub relay_url: String,
    /// UDP port of the relay's QUIC address discovery, if it runs.
    pub relay_quic_port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateSession {
    pub parties: u16,
    pub label: Option<String>,
    /// The hash of the session's write token (see [`crate::write_token`]):
    /// every change of the session must show the token.
    pub write_token_hash: WriteTokenHash,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCreated {
    pub session: SessionId,
    /// Unix time (seconds) after which the server forgets the session.
    pub expires_at: u64,
}

/// Where a session is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionState {
    /// Waiting for parties to announce themselves.
    Open,
    /// As many announcements as parties: the mesh can be built.
    Full,
    /// A party reported the end of the session.
    Done,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    pub session: SessionId,
    pub parties: u16,
    pub label: Option<String>,
    pub state: SessionState,
    pub expires_at: u64,
    pub announcements: Vec<SignedAnnouncement>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
}
