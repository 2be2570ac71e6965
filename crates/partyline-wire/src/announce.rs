//! A party's announcement: "I am NAME, reach me at ENDPOINT", authenticated
//! with the invite secret.
//!
//! The MAC covers the exact JSON text the party produced, so nobody has to
//! agree on a canonical encoding: the server stores the text and MAC as it
//! received them, and every verifier checks the very bytes that were signed.
//! The key is derived with BLAKE3's KDF from the invite secret and session id;
//! the MAC is keyed BLAKE3, and comparing `blake3::Hash` values is constant-time.
use serde::{Deserialize, Serialize};
use unicode_normalization::{UnicodeNormalization, is_nfc};

use crate::identity::{BadProof, Identity, IdentityProof};
use crate::webrtc::{BadWebRtc, WebRtcOffer};
use crate::{EndpointKey, Invite, SessionId};

/// The longest party name, in characters.
pub const MAX_NAME_CHARS: usize = 40;

/// The longest announcement body the server keeps. Real ones are a few
/// hundred bytes, a browser's up to a few KiB (its WebRTC candidates); the
/// limit keeps a session from being used as storage.
pub const MAX_ANNOUNCEMENT_BYTES: usize = 8 * 1024;

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
    /// The party's long-term identity and its signature over this session,
    /// name and endpoint, if it has one. Absent from the JSON when `None`,
    /// so that announcements without one read exactly as before, and
    /// partyline versions that predate it ignore it (serde skips unknown
    /// fields) and still verify the MAC over the whole body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityProof>,
    /// What a browser needs to open a WebRTC data channel to this party (or,
    /// a browser's own, what its peers check its DTLS certificate against).
    /// Absent from the JSON when `None`, like `identity`, so parties that
    /// predate it read and verify the announcement as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webrtc: Option<WebRtcOffer>,
}

impl Announcement {
    /// Adds `identity`'s proof that it is this announcement's name at its
    /// endpoint in its session.
    pub fn with_identity(self, identity: &Identity) -> Self {
        let proof = identity.prove(&self.session, &self.name, &self.endpoint);
        Self {
            identity: Some(proof),
            ..self
        }
    }
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
    #[error("its name {name:?} {problem}")]
    BadName { name: String, problem: NameProblem },
    #[error("its party {name:?} claims an identity, but {problem}")]
    BadIdentity { name: String, problem: BadProof },
    #[error("its party {name:?} announced WebRTC parameters, but {problem}")]
    BadWebRtc { name: String, problem: BadWebRtc },
}

/// What is wrong with a party name; see [`check_name`] for the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameProblem {
    #[error("is empty: give a name")]
    Empty,
    #[error("is longer than {MAX_NAME_CHARS} characters: give a shorter one")]
    TooLong,
    #[error(
        "is not in Unicode normal form C (NFC): the same text can be written with other code points, so names could look alike and differ"
    )]
    NotNfc,
    #[error("begins or ends with a space, or has two spaces in a row: remove the extra spaces")]
    Spacing,
    #[error(
        "contains {} (U+{:04X}); a name may hold only letters, digits, spaces and `-`, `_`, `.`",
        describe(*.0), u32::from(*.0)
    )]
    Character(char),
}

/// A character as an error message shows it: one that Rust would escape
/// (invisible, formatting, control) only by its code point, printed elsewhere.
fn describe(c: char) -> String {
    if c.escape_debug().count() == 1 {
        format!("{c:?}")
    } else {
        "an invisible or formatting character".to_string()
    }
}

/// Checks a party name against partyline's character set, so that every party
/// sees it alike and two names that look the same cannot both exist.
///
/// A name is 1 to [`MAX_NAME_CHARS`] characters in Unicode normal form C,
/// made of letters and digits of any script (Unicode `Alphabetic` and
/// `Numeric`, which includes the combining vowel signs some scripts need),
/// spaces and `-`, `_`, `.`, with no space at either end and never two in a
/// row. Everything else is refused: control characters, zero-width and
/// joiner characters (U+200B..U+200D, U+FEFF), the bidirectional marks and
/// overrides (U+200E, U+200F, U+202A..U+202E, U+2066..U+2069), other
/// punctuation and symbols. A name that is not NFC is refused rather than
/// changed, because the roster's fingerprint covers the exact bytes; callers
/// that take a name from a person normalise it first with [`normalize_name`].
///
/// Letters that merely look alike across scripts (Latin `a`, Cyrillic `а`)
/// are allowed: the fingerprint differs, but a person reading the roster
/// cannot tell them apart.
pub fn check_name(name: &str) -> Result<(), AnnounceError> {
    name_problem(name).map_or(Ok(()), |problem| {
        Err(AnnounceError::BadName {
            name: name.to_string(),
            problem,
        })
    })
}

fn name_problem(name: &str) -> Option<NameProblem> {
    let count = name.chars().count();
    if count == 0 {
        return Some(NameProblem::Empty);
    }
    if count > MAX_NAME_CHARS {
        return Some(NameProblem::TooLong);
    }
    if !is_nfc(name) {
        return Some(NameProblem::NotNfc);
    }
    if let Some(bad) = name
        .chars()
        .find(|&c| !(c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.')))
    {
        return Some(NameProblem::Character(bad));
    }
    if name.starts_with(' ') || name.ends_with(' ') || name.contains("  ") {
        return Some(NameProblem::Spacing);
    }
    None
}

/// A name typed by a person, in normal form C, as [`check_name`] wants it.
pub fn normalize_name(typed: &str) -> String {
    typed.nfc().collect()
}

/// A name typed by a person, normalised ([`normalize_name`]) and then
/// checked ([`check_name`]): what every party asks of a name it is given.
pub fn typed_name(typed: &str) -> Result<String, AnnounceError> {
    let name = normalize_name(typed);
    check_name(&name).map(|()| name)
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
        if let Some(proof) = &announcement.identity {
            proof
                .verify(
                    &announcement.session,
                    &announcement.name,
                    &announcement.endpoint,
                )
                .map_err(|problem| AnnounceError::BadIdentity {
                    name: announcement.name.clone(),
                    problem,
                })?;
        }
        if let Some(webrtc) = &announcement.webrtc {
            webrtc.check().map_err(|problem| AnnounceError::BadWebRtc {
                name: announcement.name.clone(),
                problem,
            })?;
        }
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
            &"https://h:1".parse().unwrap(),
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
            identity: None,
            webrtc: None,
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

    fn problem(name: &str) -> Option<NameProblem> {
        match check_name(name) {
            Ok(()) => None,
            Err(AnnounceError::BadName { problem, .. }) => Some(problem),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    /// Zero-width, joiner, byte-order and bidirectional characters.
    const INVISIBLE: &[char] = &[
        '\u{200B}', '\u{200C}', '\u{200D}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}',
        '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
        '\u{FEFF}', '\u{00AD}', '\u{2060}', '\u{061C}',
    ];

    #[test]
    fn names_are_checked() {
        for good in [
            "bob",
            "Dr. Zoë Müller-Lüdenscheidt",
            "o_o 2",
            "李小龙",
            "देवनागरी",
            "١٢٣",
        ] {
            assert_eq!(problem(good), None, "{good:?}");
        }
        assert_eq!(problem(""), Some(NameProblem::Empty));
        assert_eq!(
            problem("a\u{1b}[2J"),
            Some(NameProblem::Character('\u{1b}'))
        );
        assert_eq!(
            problem(&"x".repeat(MAX_NAME_CHARS + 1)),
            Some(NameProblem::TooLong)
        );
        assert_eq!(problem(" bob"), Some(NameProblem::Spacing));
        assert_eq!(problem("bob "), Some(NameProblem::Spacing));
        assert_eq!(problem("bo  b"), Some(NameProblem::Spacing));
        assert_eq!(problem("bob\tx"), Some(NameProblem::Character('\t')));
        assert_eq!(problem("bob@x"), Some(NameProblem::Character('@')));
        for &c in INVISIBLE {
            assert_eq!(
                problem(&format!("al{c}ice")),
                Some(NameProblem::Character(c))
            );
        }
    }

    #[test]
    fn non_nfc_names_are_refused_and_normalize_name_fixes_them() {
        let decomposed = "Zoe\u{0308}";
        assert_eq!(problem(decomposed), Some(NameProblem::NotNfc));
        assert_eq!(normalize_name(decomposed), "Zo\u{00EB}");
        assert_eq!(problem(&normalize_name(decomposed)), None);
        assert_eq!(typed_name(decomposed).as_deref(), Ok("Zo\u{00EB}"));
        assert!(typed_name("Zoe\u{0308}\u{200B}").is_err());
    }

    #[test]
    fn bad_name_message_names_the_character_without_printing_it() {
        let message = check_name("al\u{200B}ice").unwrap_err().to_string();
        assert!(message.contains("U+200B"), "{message}");
        assert!(message.contains("letters, digits"), "{message}");
        assert!(!message.contains('\u{200B}'), "{message}");
    }

    #[test]
    fn an_announcement_with_a_bad_name_does_not_verify() {
        let key = AnnouncementKey::derive(&invite(5));
        let a = Announcement {
            name: "al\u{202E}ice".into(),
            ..announcement()
        };
        assert!(matches!(
            key.verify(&key.sign(&a)),
            Err(AnnounceError::BadName { .. })
        ));
    }

    #[test]
    fn an_announcement_without_identity_reads_as_before() {
        // The body an older partyline signs: no identity field at all.
        let key = AnnouncementKey::derive(&invite(5));
        let old_body = format!(
            r#"{{"session":"{}","name":"alice","endpoint":"{}","relay_url":"https://h:2","addrs":["127.0.0.1:4000"],"joined_at_ms":17}}"#,
            SessionId([1; 16]),
            EndpointKey([3; 32])
        );
        assert_eq!(key.sign(&announcement()).body, old_body);
        assert_eq!(
            key.verify(&key.sign_body(old_body)).unwrap(),
            announcement()
        );
    }

    /// An announcement as partyline read it before identities existed.
    #[derive(Debug, PartialEq, Deserialize)]
    struct OlderAnnouncement {
        session: SessionId,
        name: String,
        endpoint: EndpointKey,
        relay_url: Option<String>,
        addrs: Vec<String>,
        joined_at_ms: u64,
    }

    #[test]
    fn an_announcement_with_identity_verifies_and_older_versions_still_read_it() {
        let key = AnnouncementKey::derive(&invite(5));
        let alice = Identity::from_secret([9; 32]);
        let with = announcement().with_identity(&alice);
        let signed = key.sign(&with);
        let verified = key.verify(&signed).unwrap();
        assert_eq!(verified.identity.as_ref().map(|p| p.key), Some(alice.key()));
        assert_eq!(verified, with);
        let older: OlderAnnouncement = serde_json::from_str(&signed.body).unwrap();
        assert_eq!(older.name, "alice");
        assert_eq!(older.endpoint, EndpointKey([3; 32]));
    }

    #[test]
    fn an_identity_signed_for_something_else_is_refused_naming_the_party() {
        let key = AnnouncementKey::derive(&invite(5));
        let alice = Identity::from_secret([9; 32]);
        let mallory = Identity::from_secret([10; 32]);
        // Mallory's endpoint, alice's identity key, mallory's signature.
        let mut forged = announcement().with_identity(&mallory);
        forged.identity.as_mut().unwrap().key = alice.key();
        let err = key.verify(&key.sign(&forged)).unwrap_err();
        assert_eq!(
            err,
            AnnounceError::BadIdentity {
                name: "alice".into(),
                problem: BadProof::WrongSignature
            }
        );
        assert!(err.to_string().contains("\"alice\""), "{err}");
        // A proof copied from another session's announcement.
        let other_session = Announcement {
            session: SessionId([4; 16]),
            ..announcement()
        }
        .with_identity(&alice);
        let replayed = Announcement {
            identity: other_session.identity,
            ..announcement()
        };
        assert!(matches!(
            key.verify(&key.sign(&replayed)),
            Err(AnnounceError::BadIdentity { .. })
        ));
    }

    proptest! {
        #[test]
        fn any_identity_field_never_panics(key in "[0-9a-f]{0,70}", signature in "[0-9a-zA-Z]{0,140}") {
            let key_json = serde_json::to_string(&key).unwrap();
            let signature_json = serde_json::to_string(&signature).unwrap();
            let body = format!(
                r#"{{"session":"{}","name":"a","endpoint":"{}","relay_url":null,"addrs":[],"joined_at_ms":1,"identity":{{"key":{key_json},"signature":{signature_json}}}}}"#,
                SessionId([1; 16]),
                EndpointKey([3; 32])
            );
            let mac_key = AnnouncementKey::derive(&invite(5));
            prop_assert!(mac_key.verify(&mac_key.sign_body(body)).is_err());
        }

        #[test]
        fn garbage_never_verifies_or_panics(body in ".{0,200}", mac in "[0-9a-f]{0,70}") {
            let key = AnnouncementKey::derive(&invite(5));
            let signed = SignedAnnouncement { body, mac };
            prop_assert!(key.verify(&signed).is_err());
        }

        #[test]
        fn an_invisible_character_anywhere_is_refused(
            name in "[a-z]{1,20}", at in 0usize..21, pick in 0usize..18,
        ) {
            let at = at.min(name.len());
            let bad = format!("{}{}{}", &name[..at], INVISIBLE[pick], &name[at..]);
            prop_assert_eq!(problem(&bad), Some(NameProblem::Character(INVISIBLE[pick])));
        }

        #[test]
        fn checked_names_are_nfc_and_allowed_characters_only(name in "\\PC{1,40}") {
            if problem(&name).is_none() {
                prop_assert!(is_nfc(&name));
                prop_assert!(name.chars().all(|c| c.is_alphanumeric() || " -_.".contains(c)));
                prop_assert_eq!(name.trim(), name.as_str());
            }
            let normal = normalize_name(&name);
            prop_assert!(is_nfc(&normal));
        }

        #[test]
        fn any_announcement_round_trips(name in "[a-zA-Z0-9]{1,20}( [a-zA-Z0-9_.-]{1,19})?", endpoint in any::<[u8; 32]>(), at in any::<u64>()) {
            let key = AnnouncementKey::derive(&invite(5));
            let a = Announcement { name, endpoint: EndpointKey(endpoint), joined_at_ms: at, ..announcement() };
            prop_assert_eq!(key.verify(&key.sign(&a)).unwrap(), a);
        }
    }
}
