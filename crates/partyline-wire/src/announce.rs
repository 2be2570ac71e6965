//! A party's announcement: "I am NAME, reach me at ENDPOINT", authenticated
//! with the invite secret.
//!
//! The MAC covers the exact JSON text the party produced, so nobody has to
//! agree on a canonical encoding: the server stores the text and MAC as it
//! received them, and every verifier checks the very bytes that were signed.
//! The key is derived with BLAKE3's KDF from the invite secret and session id;
//! the MAC is keyed BLAKE3, and comparing `blake3::Hash` values is constant-time.
use serde::{Deserialize, Serialize};

use crate::{EndpointKey, Invite, SessionId};

/// The longest party name, in characters.
pub const MAX_NAME_CHARS: usize = 40;

/// What a party tells the others through the coordinator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    /// The session this announcement is for: a replay into another session is refused.
    pub session: SessionId,
    /// A display name, chosen by the party.
    pub name: String,
    /// The party's iroh endpoint id, fresh for every session.
    pub endpoint: EndpointKey,
    /// The relay through which the party can always be reached.
    pub relay_url: Option<String>,
    /// Direct addresses (`ip:port`) the party's endpoint listens on.
    pub addrs: Vec<String>,
    /// The party's clock when it joined; seats are ordered by it, so seats
    /// follow join order, and every party computes the same order.
    pub joined_at_ms: u64,
}

/// An announcement as it travels through the coordinator: the JSON text and its MAC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedAnnouncement {
    pub body: String,
    /// Hex of the keyed BLAKE3 hash of `body`.
    pub mac: String,
}

/// Why an announcement was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnounceError {
    #[error("its authentication code is wrong: it was not made with this session's invite")]
    BadMac,
    #[error("it is authentic but not valid JSON of an announcement: {0}")]
    Malformed(String),
    #[error("it belongs to another session ({0}); it was replayed")]
    WrongSession(SessionId),
    #[error(
        "its name {0:?} is empty, longer than {MAX_NAME_CHARS} characters or contains control characters"
    )]
    BadName(String),
}

/// Checks a display name: short and printable, so that it can be shown safely.
pub fn check_name(name: &str) -> Result<(), AnnounceError> {
    let count = name.chars().count();
    if count == 0 || count > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(AnnounceError::BadName(name.to_string()));
    }
    Ok(())
}

/// The MAC key of one session, derived from its invite.
#[derive(Clone)]
pub struct AnnouncementKey {
    key: [u8; 32],
    session: SessionId,
}

impl AnnouncementKey {
    pub fn derive(invite: &Invite) -> Self {
        let mut material = Vec::with_capacity(32);
        material.extend_from_slice(&invite.secret.0);
        material.extend_from_slice(&invite.session.0);
        Self {
            key: blake3::derive_key("partyline 2026-11 announcement key v1", &material),
            session: invite.session,
        }
    }

    pub fn sign(&self, announcement: &Announcement) -> SignedAnnouncement {
        self.sign_body(serde_json::to_string(announcement).expect("announcements always serialize"))
    }

    /// Signs any body text, as any holder of the invite can: what a party
    /// receives from another invite holder may be arbitrary authentic bytes,
    /// so tests and fuzzing use this to play that party.
    pub fn sign_body(&self, body: String) -> SignedAnnouncement {
        let mac = blake3::keyed_hash(&self.key, body.as_bytes());
        SignedAnnouncement {
            body,
            mac: mac.to_hex().to_string(),
        }
    }

    /// Checks the MAC first and only then looks inside: unauthenticated bytes are never parsed.
    pub fn verify(&self, signed: &SignedAnnouncement) -> Result<Announcement, AnnounceError> {
        let claimed =
            blake3::Hash::from_hex(signed.mac.as_bytes()).map_err(|_| AnnounceError::BadMac)?;
        if blake3::keyed_hash(&self.key, signed.body.as_bytes()) != claimed {
            return Err(AnnounceError::BadMac);
        }
        let announcement: Announcement = serde_json::from_str(&signed.body)
            .map_err(|e| AnnounceError::Malformed(e.to_string()))?;
        if announcement.session != self.session {
            return Err(AnnounceError::WrongSession(announcement.session));
        }
        check_name(&announcement.name)?;
        Ok(announcement)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CertPin, InviteSecret};
    use proptest::prelude::*;

    fn invite(secret: u8) -> Invite {
        Invite::new(
            "https://h:1",
            SessionId([1; 16]),
            3,
            CertPin([2; 32]),
            InviteSecret([secret; 16]),
        )
        .unwrap()
    }

    fn announcement() -> Announcement {
        Announcement {
            session: SessionId([1; 16]),
            name: "alice".into(),
            endpoint: EndpointKey([3; 32]),
            relay_url: Some("https://h:2".into()),
            addrs: vec!["127.0.0.1:4000".into()],
            joined_at_ms: 17,
        }
    }

    #[test]
    fn signed_announcement_verifies() {
        let key = AnnouncementKey::derive(&invite(5));
        let signed = key.sign(&announcement());
        assert_eq!(key.verify(&signed).unwrap(), announcement());
        let json = serde_json::to_string(&signed).unwrap();
        let back: SignedAnnouncement = serde_json::from_str(&json).unwrap();
        assert_eq!(key.verify(&back).unwrap(), announcement());
    }

    #[test]
    fn other_secret_fails() {
        let signed = AnnouncementKey::derive(&invite(5)).sign(&announcement());
        let err = AnnouncementKey::derive(&invite(6))
            .verify(&signed)
            .unwrap_err();
        assert_eq!(err, AnnounceError::BadMac);
    }

    #[test]
    fn swapped_endpoint_fails() {
        let key = AnnouncementKey::derive(&invite(5));
        let mut signed = key.sign(&announcement());
        signed.body = signed.body.replace(
            &EndpointKey([3; 32]).to_string(),
            &EndpointKey([4; 32]).to_string(),
        );
        assert_eq!(key.verify(&signed).unwrap_err(), AnnounceError::BadMac);
    }

    #[test]
    fn replay_into_other_session_fails() {
        let key = AnnouncementKey::derive(&invite(5));
        let mut other = announcement();
        other.session = SessionId([9; 16]);
        let err = key.verify(&key.sign(&other)).unwrap_err();
        assert_eq!(err, AnnounceError::WrongSession(SessionId([9; 16])));
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("bob").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a\u{1b}[2J").is_err());
        assert!(check_name(&"x".repeat(MAX_NAME_CHARS + 1)).is_err());
    }

    proptest! {
        #[test]
        fn garbage_never_verifies_or_panics(body in ".{0,200}", mac in "[0-9a-f]{0,70}") {
            let key = AnnouncementKey::derive(&invite(5));
            let signed = SignedAnnouncement { body, mac };
            prop_assert!(key.verify(&signed).is_err());
        }

        #[test]
        fn any_announcement_round_trips(name in "[a-zA-Z0-9 ]{1,40}", endpoint in any::<[u8; 32]>(), at in any::<u64>()) {
            let key = AnnouncementKey::derive(&invite(5));
            let a = Announcement { name, endpoint: EndpointKey(endpoint), joined_at_ms: at, ..announcement() };
            prop_assert_eq!(key.verify(&key.sign(&a)).unwrap(), a);
        }
    }
}
