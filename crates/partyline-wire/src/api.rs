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
//! | `POST /v1/relay/admissions` (relay) | [`RelayAdmission`] | [`RelayAdmitted`]; 404 if no live session admits it |
//! | `POST /v1/relay/live` (relay) | [`LiveSessions`] | [`LiveSessions`]: those of them still live |
//!
//! A relay of its own (`partyline relay`) asks its coordinator whom to admit
//! (requests marked *relay*), showing the relay token both were given as
//! `Authorization: Bearer <token>`; without it they answer 404 like an
//! unknown path, so a stranger learns nothing, not even that they exist.
//!
//! Every request that changes a session (announce, withdraw, done) carries
//! the session's write token as `Authorization: Bearer <hex>`.
//!
//! Short codes (`crate::code`): the coordinator relays the messages of the
//! PAKE between a code's host and each joiner, per nameplate, as opaque text
//! (see `crate::code_exchange`). The host's requests (marked *host*) carry the
//! write token of the nameplate's session; a joiner needs only the nameplate,
//! and the attempt id it was given.
//!
//! | method and path | body | answer |
//! |---|---|---|
//! | `POST /v1/nameplates` (host) | [`AllocateNameplate`] | [`NameplateAllocated`] |
//! | `GET /v1/nameplates/{nameplate}` | | [`NameplateInfo`]; 404 if there is none, 410 if it was burned |
//! | `DELETE /v1/nameplates/{nameplate}` (host) | | 204: freed |
//! | `POST /v1/nameplates/{nameplate}/burn` (host) | | 204: refuses every attempt from now on |
//! | `POST /v1/nameplates/{nameplate}/attempts` | [`CodeMessage`] | [`AttemptOpened`] |
//! | `GET /v1/nameplates/{nameplate}/attempts?seen=K&wait=SECS` (host) | | [`NameplateView`], held back until its `changes` differ from `K` |
//! | `GET /v1/nameplates/{nameplate}/attempts/{attempt}?seen=K&wait=SECS` | | [`AttemptView`], held back until the host has sent more than `K` messages |
//! | `POST /v1/nameplates/{nameplate}/attempts/{attempt}/joiner` | [`CodeMessage`] | 204 |
//! | `POST /v1/nameplates/{nameplate}/attempts/{attempt}/host` (host) | [`CodeMessage`] | 204 |
//!
//! Errors are a status code with an [`ApiError`] body. The paths are built by
//! [`path`], which the server's router and both clients (native and browser) use.
//! Clients read no more of an answer than [`answer_limit`] allows.
use serde::{Deserialize, Serialize};

use crate::{CertPin, EndpointKey, Nameplate, SessionId, SignedAnnouncement, WriteTokenHash};

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
    /// UDP port of the server's STUN responder (Binding only), on the
    /// relay's host, if it runs: browser parties' ICE server, and where
    /// native parties learn their server-reflexive address. Absent from
    /// servers older than this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stun_port: Option<u16>,
    /// More relays, e.g. in other regions (`partyline relay`); a party
    /// measures them all and uses the nearest as its home relay. Absent from
    /// servers older than this field, and when the server has only its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relays: Vec<RelayInfo>,
    /// What the server keeps of a session, and how long; absent from servers
    /// older than this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// Other addresses of this coordinator, `https://host:port`: servers that
    /// share its database and its certificate, which clients turn to while
    /// this one cannot be reached. Empty for a server on its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coordinators: Vec<String>,
    /// The address this request came from, as the server saw it. A party
    /// that has it among its own addresses has no NAT on the way, so its
    /// peers can reach it directly before its relay connection is up; absent
    /// from servers older than this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<std::net::IpAddr>,
}

/// A relay besides the coordinator's own, and how to trust it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayInfo {
    /// `https://host:port`.
    pub url: String,
    /// UDP port of its QUIC address discovery, if it runs.
    pub quic_port: Option<u16>,
    /// The SHA-256 of its certificate: parties accept the relay only if it
    /// shows this one. It reaches them through the pinned coordinator.
    pub pin: CertPin,
}

/// A relay asks whether a connecting endpoint belongs to a live session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayAdmission {
    pub endpoint: EndpointKey,
    /// The token the endpoint showed the relay: a session id, if it knows one.
    pub token: Option<String>,
}

/// The live session that admits an endpoint, and how many parties it has
/// (the relay holds at most a few connections per party).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayAdmitted {
    pub session: SessionId,
    pub parties: u16,
}

/// Sessions a relay serves (asked), or those of them still live (answered).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveSessions {
    pub sessions: Vec<SessionId>,
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

/// A host asks for a nameplate for its session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocateNameplate {
    pub session: SessionId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameplateAllocated {
    /// The lowest number free on the server.
    pub nameplate: Nameplate,
}

/// What a joiner learns of a nameplate before its first message: the session
/// its PAKE identities name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameplateInfo {
    pub nameplate: Nameplate,
    pub session: SessionId,
}

/// One message of a code exchange, opaque to the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeMessage {
    pub message: String,
}

/// An attempt: one joiner's exchange with the host. Its id is random, so
/// only the joiner (and the host) can follow it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptId(pub [u8; 16]);

impl AttemptId {
    pub fn random() -> Self {
        Self(SessionId::random().0)
    }
}

impl std::fmt::Display for AttemptId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        SessionId(self.0).fmt(f)
    }
}

impl std::fmt::Debug for AttemptId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AttemptId({self})")
    }
}

impl std::str::FromStr for AttemptId {
    type Err = crate::InviteError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<SessionId>().map(|id| Self(id.0))
    }
}

impl Serialize for AttemptId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AttemptId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptOpened {
    pub attempt: AttemptId,
}

/// An attempt's messages so far, in order, from each side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptView {
    pub attempt: AttemptId,
    pub joiner: Vec<String>,
    pub host: Vec<String>,
}

/// Every live attempt on a nameplate, for its host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameplateView {
    pub nameplate: Nameplate,
    pub session: SessionId,
    /// Counts the joiners' messages: a long poll waits until it differs.
    pub changes: u64,
    pub attempts: Vec<AttemptView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
}

/// The most bytes a party reads of each kind of answer, so that a hostile
/// server cannot fill a party's memory. Each is far above what a partyline
/// server sends for a session of [`crate::MAX_PARTIES`] parties.
pub mod answer_limit {
    /// [`super::ServerInfo`]: a version, a protocol name and a few relays.
    pub const INFO: usize = 64 * 1024;
    /// [`super::SessionCreated`]: an id and a time.
    pub const CREATED: usize = 64 * 1024;
    /// [`super::SessionView`]: at most 64 announcements of at most 8 KiB each,
    /// as JSON at most 64 KiB each (the server's request limit, which leaves
    /// room for escaping every character), plus a label.
    pub const SESSION: usize = 5 * 1024 * 1024;
    /// [`super::ApiError`]: one sentence.
    pub const ERROR: usize = 64 * 1024;
    /// Every answer about a nameplate: at most a few attempts of a few short
    /// messages each.
    pub const CODE: usize = 64 * 1024;
    /// [`super::RelayAdmitted`] and [`super::LiveSessions`]: ids a relay
    /// asked about, at most one per connection it holds.
    pub const RELAY: usize = 1024 * 1024;
}

/// The paths of the API: route patterns for the server (`{id}` and
/// `{endpoint}` are its path parameters) and the paths clients request.
pub mod path {
    use std::time::Duration;

    use super::AttemptId;
    use crate::{EndpointKey, Nameplate, SessionId};

    pub const INFO: &str = "/v1/info";
    pub const SESSIONS: &str = "/v1/sessions";
    pub const SESSION: &str = "/v1/sessions/{id}";
    pub const ANNOUNCEMENTS: &str = "/v1/sessions/{id}/announcements";
    pub const ANNOUNCEMENT: &str = "/v1/sessions/{id}/announcements/{endpoint}";
    pub const DONE: &str = "/v1/sessions/{id}/done";
    pub const RELAY_ADMISSIONS: &str = "/v1/relay/admissions";
    pub const RELAY_LIVE: &str = "/v1/relay/live";
    pub const NAMEPLATES: &str = "/v1/nameplates";
    pub const NAMEPLATE: &str = "/v1/nameplates/{nameplate}";
    pub const BURN: &str = "/v1/nameplates/{nameplate}/burn";
    pub const ATTEMPTS: &str = "/v1/nameplates/{nameplate}/attempts";
    pub const ATTEMPT: &str = "/v1/nameplates/{nameplate}/attempts/{attempt}";
    pub const ATTEMPT_JOINER: &str = "/v1/nameplates/{nameplate}/attempts/{attempt}/joiner";
    pub const ATTEMPT_HOST: &str = "/v1/nameplates/{nameplate}/attempts/{attempt}/host";

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

    fn with_nameplate(pattern: &str, nameplate: Nameplate) -> String {
        pattern.replace("{nameplate}", &nameplate.to_string())
    }

    fn with_attempt(pattern: &str, nameplate: Nameplate, attempt: &AttemptId) -> String {
        with_nameplate(pattern, nameplate).replace("{attempt}", &attempt.to_string())
    }

    pub fn nameplate(nameplate: Nameplate) -> String {
        with_nameplate(NAMEPLATE, nameplate)
    }

    pub fn burn(nameplate: Nameplate) -> String {
        with_nameplate(BURN, nameplate)
    }

    pub fn attempts(nameplate: Nameplate) -> String {
        with_nameplate(ATTEMPTS, nameplate)
    }

    /// The nameplate's attempts, held back up to `wait` until its changes
    /// differ from `seen` (the host's long poll).
    pub fn attempts_after(nameplate: Nameplate, seen: u64, wait: Duration) -> String {
        format!(
            "{}?seen={seen}&wait={}",
            attempts(nameplate),
            wait.as_secs()
        )
    }

    /// The attempt, held back up to `wait` until the host has sent more
    /// than `seen` messages (the joiner's long poll).
    pub fn attempt_after(
        nameplate: Nameplate,
        attempt: &AttemptId,
        seen: usize,
        wait: Duration,
    ) -> String {
        format!(
            "{}?seen={seen}&wait={}",
            with_attempt(ATTEMPT, nameplate, attempt),
            wait.as_secs()
        )
    }

    pub fn attempt_joiner(nameplate: Nameplate, attempt: &AttemptId) -> String {
        with_attempt(ATTEMPT_JOINER, nameplate, attempt)
    }

    pub fn attempt_host(nameplate: Nameplate, attempt: &AttemptId) -> String {
        with_attempt(ATTEMPT_HOST, nameplate, attempt)
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
            let attempt = AttemptId([1; 16]);
            let n = Nameplate(7);
            assert_eq!(nameplate(n), "/v1/nameplates/7");
            assert_eq!(
                attempts_after(n, 3, Duration::from_secs(20)),
                "/v1/nameplates/7/attempts?seen=3&wait=20"
            );
            assert_eq!(
                attempt_after(n, &attempt, 1, Duration::from_secs(5)),
                format!("/v1/nameplates/7/attempts/{attempt}?seen=1&wait=5")
            );
            assert_eq!(
                attempt_host(n, &attempt),
                format!("/v1/nameplates/7/attempts/{attempt}/host")
            );
            assert_eq!(
                attempt_joiner(n, &attempt),
                format!("/v1/nameplates/7/attempts/{attempt}/joiner")
            );
            assert_eq!(burn(n), "/v1/nameplates/7/burn");
        }
    }
}
