//! The data partyline parties exchange before they can trust each other.
//!
//! Everything here is plain data plus the checks on it; no networking. The
//! coordinator server stores and forwards these messages but cannot forge them:
//! each party's announcement carries a MAC under a key derived from the invite
//! secret, which the server never sees.
//!
//! # Layout
//! - [`invite`]: the invite string (server URL, session id, certificate pin,
//!   party count, secret) and its parser.
//! - [`announce`]: a party's signed announcement of its endpoint and addresses.
//! - [`identity`]: a party's optional long-term identity, the proof of it an
//!   announcement carries, and the words people compare it by.
//! - [`roster`]: turns the announcements the server hands out into a verified,
//!   ordered roster and the session fingerprint, or says exactly what was wrong.
//! - [`fingerprint`]: the session fingerprint as BIP39 words, full and short
//!   form, and the check of what a person typed against it.
//! - [`checks`]: what a person can ask to check before the program starts
//!   (the expected names, the fingerprint typed back), and why a roster is
//!   refused, for native and browser parties alike.
//! - [`url`]: the server address `https://host[:port]`, one type with one rule.
//! - [`api`]: the paths and JSON bodies of the coordinator's HTTP API.
//! - [`seat`]: which peer streams a session allows (MPyC's one stream per
//!   pair, from the lower seat, carrying its party id), for native and
//!   browser parties alike.
//! - [`write_token`]: the write capability derived from the invite secret,
//!   and the hash of it the server keeps.
//! - [`code`]: the short code (`7-orbit-lamp-quiz`): a nameplate number
//!   and secret BIP39 words.
//! - [`code_exchange`]: the PAKE (SPAKE2) between host and joiner that turns
//!   a code into the invite, sealed under the PAKE's key.
//! - [`relay_token`]: the secret a relay of its own shows its coordinator.
#![forbid(unsafe_code)]

pub mod announce;
pub mod api;
pub mod checks;
pub mod code;
pub mod code_exchange;
pub mod fingerprint;
pub mod identity;
pub mod invite;
pub mod relay_token;
pub mod roster;
pub mod seat;
pub mod url;
pub mod webrtc;
pub mod write_token;

pub use announce::{Announcement, AnnouncementKey, SignedAnnouncement};
pub use code::{Code, CodeError, Nameplate};
pub use fingerprint::Fingerprint;
pub use identity::{Identity, IdentityKey, IdentityProof};
pub use invite::{CertPin, Invite, InviteError, InviteSecret, SessionId};
pub use relay_token::{RelayToken, RelayTokenHash, WeakRelayToken};
pub use roster::{Member, Roster, RosterError};
pub use url::{BadServerUrl, ServerUrl};
pub use webrtc::WebRtcOffer;
pub use write_token::{WriteToken, WriteTokenHash};

/// The largest session partyline accepts. MPyC itself slows down steeply past
/// ten parties (see the README); 64 leaves room without inviting abuse.
pub const MAX_PARTIES: u16 = 64;

/// A 32-byte iroh endpoint id (an Ed25519 public key), kept as bytes so that
/// this crate does not depend on iroh.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EndpointKey(pub [u8; 32]);

impl std::fmt::Display for EndpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&data_encoding::HEXLOWER.encode(&self.0))
    }
}

impl std::fmt::Debug for EndpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EndpointKey({self})")
    }
}

impl EndpointKey {
    /// The first 10 hex digits: enough to tell parties apart in messages.
    pub fn short(&self) -> String {
        self.to_string()[..10].to_string()
    }
}

impl std::str::FromStr for EndpointKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(s.as_bytes())
            .map_err(|_| format!("endpoint id {s:?} is not hex"))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("endpoint id {s:?} is not 32 bytes"))?;
        Ok(Self(arr))
    }
}

impl serde::Serialize for EndpointKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for EndpointKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
