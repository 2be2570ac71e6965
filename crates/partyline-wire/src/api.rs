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
//! Errors are a status code with an [`ApiError`] body. The paths are built by
//! [`path`], which the server's router and both clients (native and browser) use.
//! Clients read no more of an answer than [`answer_limit`] allows.
use serde::{Deserialize, Serialize};

use crate::{SessionId, SignedAnnouncement, WriteTokenHash};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    pub version: String,
    /// The peer protocol the server's parties speak (`partyline_proto::PROTOCOL`);
    /// empty from servers older than this field.
    #[serde(default)]
    pub protocol: String,
    /// The relay parties should use, `https://host:port`.
    pub relay_url: String,
    /// UDP port of the relay's QUIC address discovery, if it runs.
    pub relay_quic_port: Option<u16>,
    /// What the server keeps of a session, and how long; absent from servers
    /// older than this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
}

/// What a server keeps of each session and when it deletes it, for anyone
/// deciding whether to use it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// In words: what is kept, where, and that deleting means deleting.
    pub keeps: String,
    /// A session is deleted this many seconds after it was created, done or not.
    pub session_secs: u64,
    /// A done session is deleted this many seconds after it ended.
    pub done_secs: u64,
    /// The relay drops a done session's parties this many seconds after it ended.
    pub relay_secs: u64,
    /// Deletion runs this often: a session goes at most this long after its time.
    pub sweep_secs: u64,
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

/// The most bytes a party reads of each kind of answer, so that a hostile
/// server cannot fill a party's memory. Each is far above what a partyline
/// server sends for a session of [`crate::MAX_PARTIES`] parties.
pub mod answer_limit {
    /// [`super::ServerInfo`]: a version, a protocol name and a URL.
    pub const INFO: usize = 64 * 1024;
    /// [`super::SessionCreated`]: an id and a time.
    pub const CREATED: usize = 64 * 1024;
    /// [`super::SessionView`]: at most 64 announcements of at most 8 KiB each,
    /// as JSON at most 64 KiB each (the server's request limit, which leaves
    /// room for escaping every character), plus a label.
    pub const SESSION: usize = 5 * 1024 * 1024;
    /// [`super::ApiError`]: one sentence.
    pub const ERROR: usize = 64 * 1024;
}

/// The paths of the API: route patterns for the server (`{id}` and
/// `{endpoint}` are its path parameters) and the paths clients request.
pub mod path {
    use std::time::Duration;

    use crate::{EndpointKey, SessionId};

    pub const INFO: &str = "/v1/info";
    pub const SESSIONS: &str = "/v1/sessions";
    pub const SESSION: &str = "/v1/sessions/{id}";
    pub const ANNOUNCEMENTS: &str = "/v1/sessions/{id}/announcements";
    pub const ANNOUNCEMENT: &str = "/v1/sessions/{id}/announcements/{endpoint}";
    pub const DONE: &str = "/v1/sessions/{id}/done";

    fn with_id(pattern: &str, id: &SessionId) -> String {
        pattern.replace("{id}", &id.to_string())
    }

    pub fn session(id: &SessionId) -> String {
        with_id(SESSION, id)
    }

    /// The session, held back up to `wait` until the number of announcements
    /// differs from `seen` or the state changes (long poll).
    pub fn session_after(id: &SessionId, seen: usize, wait: Duration) -> String {
        format!("{}?seen={seen}&wait={}", session(id), wait.as_secs())
    }

    pub fn announcements(id: &SessionId) -> String {
        with_id(ANNOUNCEMENTS, id)
    }

    pub fn announcement(id: &SessionId, endpoint: &EndpointKey) -> String {
        with_id(ANNOUNCEMENT, id).replace("{endpoint}", &endpoint.to_string())
    }

    pub fn done(id: &SessionId) -> String {
        with_id(DONE, id)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn paths_fill_the_route_patterns() {
            let id = SessionId([0; 16]);
            let key = EndpointKey([0xab; 32]);
            assert_eq!(session(&id), format!("/v1/sessions/{id}"));
            assert_eq!(
                session_after(&id, 2, Duration::from_secs(20)),
                format!("/v1/sessions/{id}?seen=2&wait=20")
            );
            assert_eq!(
                announcement(&id, &key),
                format!("/v1/sessions/{id}/announcements/{key}")
            );
            assert_eq!(done(&id), format!("/v1/sessions/{id}/done"));
        }
    }
}
