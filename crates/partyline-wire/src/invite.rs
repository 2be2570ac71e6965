//! The invite: everything a party needs to join a session, in one string.
//!
//! An invite looks like `https://coord.example:7700/join#pl1.<base64url>`. It is
//! a URL so that it can be opened in a browser, and everything secret sits in
//! the fragment, which browsers never send to the server. The fragment encodes:
//!
//! | bytes | field |
//! |---|---|
//! | 16 | session id, chosen by the server |
//! | 2  | number of parties (big endian) |
//! | 32 | SHA-256 of the server's TLS certificate (the pin) |
//! | 16 | invite secret (128 bits), never sent to the server |
//! | 4  | checksum: the first bytes of BLAKE3 over all of the above |
//!
//! The party count lives in the invite, not only on the server, so that a
//! coordinator cannot add a seat for someone who does not hold the invite. The
//! checksum turns a truncated or mistyped invite into a clear error instead of
//! a session that silently never verifies.
use std::fmt;
use std::str::FromStr;

use data_encoding::BASE64URL_NOPAD;
use rand::RngCore;

use crate::{MAX_PARTIES, ServerUrl};

const FRAGMENT_PREFIX: &str = "pl1.";
const PAYLOAD_LEN: usize = 16 + 2 + 32 + 16;
const CHECKSUM_LEN: usize = 4;

/// A session id: 16 random bytes chosen by the server, shown as base32.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub [u8; 16]);

impl SessionId {
    /// A fresh random id.
    pub fn random() -> Self {
        let mut id = [0u8; 16];
        rand::rng().fill_bytes(&mut id);
        Self(id)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&data_encoding::BASE32_NOPAD.encode(&self.0).to_lowercase())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

impl FromStr for SessionId {
    type Err = InviteError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = data_encoding::BASE32_NOPAD
            .decode(s.to_ascii_uppercase().as_bytes())
            .map_err(|_| InviteError::BadSessionId(s.to_string()))?;
        let id = bytes
            .try_into()
            .map_err(|_| InviteError::BadSessionId(s.to_string()))?;
        Ok(Self(id))
    }
}

impl serde::Serialize for SessionId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for SessionId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// SHA-256 of the server's TLS certificate (DER). Parties accept the server, and
/// its relay, only if the certificate they are shown hashes to this value.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertPin(pub [u8; 32]);

impl fmt::Display for CertPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&data_encoding::HEXLOWER.encode(&self.0))
    }
}

impl fmt::Debug for CertPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertPin({self})")
    }
}

impl FromStr for CertPin {
    type Err = InviteError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(s.trim().as_bytes())
            .map_err(|_| InviteError::BadPin)?;
        Ok(Self(bytes.try_into().map_err(|_| InviteError::BadPin)?))
    }
}

impl serde::Serialize for CertPin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for CertPin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The 128-bit invite secret. Only parties hold it; every announcement is
/// authenticated with a key derived from it.
#[derive(Clone, PartialEq, Eq)]
pub struct InviteSecret(pub [u8; 16]);

impl InviteSecret {
    /// A fresh secret from the operating system's random source.
    pub fn random() -> Self {
        let mut secret = [0u8; 16];
        rand::rng().fill_bytes(&mut secret);
        Self(secret)
    }
}

impl fmt::Debug for InviteSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InviteSecret(..)")
    }
}

/// Everything needed to join one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invite {
    /// The coordinator's address.
    pub server: ServerUrl,
    pub session: SessionId,
    pub parties: u16,
    pub pin: CertPin,
    pub secret: InviteSecret,
}

/// Why a string is not a usable invite.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    #[error(
        "this is not a partyline invite: expected a link like https://HOST:PORT/join#pl1.…; copy the whole last line that `partyline create` printed"
    )]
    NotAnInvite,
    #[error(
        "this invite was made by a newer partyline (format {0:?}); update partyline to join this session"
    )]
    UnsupportedVersion(String),
    #[error(
        "the invite's code contains characters that cannot appear in an invite; it was probably altered when copied"
    )]
    BadEncoding,
    #[error(
        "the invite is {got} bytes long instead of {expected}: it was probably cut off when copied; copy the whole line"
    )]
    WrongLength { expected: usize, got: usize },
    #[error(
        "the invite's checksum does not match: a character was changed when it was copied; copy it again"
    )]
    ChecksumMismatch,
    #[error("the invite's server address {0:?} is not an https://HOST:PORT URL")]
    BadServerUrl(String),
    #[error("the invite is for {0} parties; a session has between 1 and {MAX_PARTIES}")]
    BadPartyCount(u16),
    #[error("{0:?} is not a session id")]
    BadSessionId(String),
    #[error("the certificate pin is not 64 hex digits")]
    BadPin,
}

impl Invite {
    /// Validates the parts and builds an invite.
    pub fn new(
        server: &ServerUrl,
        session: SessionId,
        parties: u16,
        pin: CertPin,
        secret: InviteSecret,
    ) -> Result<Self, InviteError> {
        check_parties(parties)?;
        Ok(Self {
            server: server.clone(),
            session,
            parties,
            pin,
            secret,
        })
    }

    fn payload(&self) -> [u8; PAYLOAD_LEN] {
        let mut out = [0u8; PAYLOAD_LEN];
        out[..16].copy_from_slice(&self.session.0);
        out[16..18].copy_from_slice(&self.parties.to_be_bytes());
        out[18..50].copy_from_slice(&self.pin.0);
        out[50..].copy_from_slice(&self.secret.0);
        out
    }
}

fn checksum(payload: &[u8]) -> [u8; CHECKSUM_LEN] {
    let hash = blake3::Hasher::new_derive_key("partyline invite checksum v1")
        .update(payload)
        .finalize();
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&hash.as_bytes()[..CHECKSUM_LEN]);
    out
}

fn check_parties(parties: u16) -> Result<(), InviteError> {
    if parties == 0 || parties > MAX_PARTIES {
        return Err(InviteError::BadPartyCount(parties));
    }
    Ok(())
}

impl fmt::Display for Invite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let payload = self.payload();
        let mut bytes = payload.to_vec();
        bytes.extend_from_slice(&checksum(&payload));
        write!(
            f,
            "{}/join#{FRAGMENT_PREFIX}{}",
            self.server,
            BASE64URL_NOPAD.encode(&bytes)
        )
    }
}

impl FromStr for Invite {
    type Err = InviteError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        // People paste invites with quotes, angle brackets or a trailing newline.
        let text = input
            .trim()
            .trim_matches(|c| c == '"' || c == '\'' || c == '<' || c == '>');
        let (base, fragment) = text.split_once('#').ok_or(InviteError::NotAnInvite)?;
        let server = base.strip_suffix("/join").ok_or(InviteError::NotAnInvite)?;
        let code = match fragment.strip_prefix(FRAGMENT_PREFIX) {
            Some(code) => code,
            None if fragment.starts_with("pl") && fragment.contains('.') => {
                let version = fragment.split('.').next().unwrap_or_default();
                return Err(InviteError::UnsupportedVersion(version.to_string()));
            }
            None => return Err(InviteError::NotAnInvite),
        };
        let bytes = BASE64URL_NOPAD
            .decode(code.as_bytes())
            .map_err(|e| match e.kind {
                data_encoding::DecodeKind::Length => InviteError::WrongLength {
                    expected: PAYLOAD_LEN + CHECKSUM_LEN,
                    got: code.len() * 3 / 4,
                },
                _ => InviteError::BadEncoding,
            })?;
        if bytes.len() != PAYLOAD_LEN + CHECKSUM_LEN {
            return Err(InviteError::WrongLength {
                expected: PAYLOAD_LEN + CHECKSUM_LEN,
                got: bytes.len(),
            });
        }
        let (payload, sum) = bytes.split_at(PAYLOAD_LEN);
        if checksum(payload) != sum {
            return Err(InviteError::ChecksumMismatch);
        }
        let session = SessionId(payload[..16].try_into().expect("length checked"));
        let parties = u16::from_be_bytes([payload[16], payload[17]]);
        let pin = CertPin(payload[18..50].try_into().expect("length checked"));
        let secret = InviteSecret(payload[50..].try_into().expect("length checked"));
        let server: ServerUrl = server
            .parse()
            .map_err(|_| InviteError::BadServerUrl(server.to_string()))?;
        Invite::new(&server, session, parties, pin, secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Invite {
        Invite::new(
            &"https://127.0.0.1:7700".parse().unwrap(),
            SessionId([7; 16]),
            3,
            CertPin([9; 32]),
            InviteSecret([5; 16]),
        )
        .unwrap()
    }

    #[test]
    fn round_trips_through_text() {
        let invite = sample();
        let text = invite.to_string();
        assert!(text.starts_with("https://127.0.0.1:7700/join#pl1."));
        assert_eq!(text.parse::<Invite>().unwrap(), invite);
    }

    #[test]
    fn tolerates_paste_noise() {
        let text = format!("  \"{}\"\n", sample());
        assert_eq!(text.parse::<Invite>().unwrap(), sample());
    }

    #[test]
    fn truncated_invite_says_so() {
        let text = sample().to_string();
        for cut in 1..20 {
            let err = text[..text.len() - cut].parse::<Invite>().unwrap_err();
            assert!(
                matches!(
                    err,
                    InviteError::WrongLength { .. } | InviteError::BadEncoding
                ),
                "cut {cut}: {err}"
            );
        }
    }

    #[test]
    fn every_single_character_change_is_caught() {
        let text = sample().to_string();
        let start = text.find('#').unwrap() + 1 + FRAGMENT_PREFIX.len();
        for i in start..text.len() {
            let mut bytes = text.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(bytes).unwrap();
            assert!(changed.parse::<Invite>().is_err(), "change at {i} accepted");
        }
    }

    #[test]
    fn rejects_other_versions_and_non_invites() {
        let text = sample().to_string().replace("#pl1.", "#pl9.");
        assert_eq!(
            text.parse::<Invite>().unwrap_err(),
            InviteError::UnsupportedVersion("pl9".into())
        );
        assert_eq!(
            "hello".parse::<Invite>().unwrap_err(),
            InviteError::NotAnInvite
        );
        let http = sample().to_string().replace("https://", "http://");
        assert!(matches!(
            http.parse::<Invite>().unwrap_err(),
            InviteError::BadServerUrl(_)
        ));
    }

    #[test]
    fn rejects_bad_party_counts() {
        for parties in [0, MAX_PARTIES + 1] {
            let err = Invite::new(
                &"https://h:1".parse().unwrap(),
                SessionId([0; 16]),
                parties,
                CertPin([0; 32]),
                InviteSecret([0; 16]),
            )
            .unwrap_err();
            assert_eq!(err, InviteError::BadPartyCount(parties));
        }
    }

    #[test]
    fn session_id_round_trips() {
        let id = SessionId::random();
        assert_eq!(id.to_string().parse::<SessionId>().unwrap(), id);
        assert!("not an id".parse::<SessionId>().is_err());
    }

    proptest! {
        #[test]
        fn any_invite_round_trips(
            session in any::<[u8; 16]>(),
            parties in 1..=MAX_PARTIES,
            pin in any::<[u8; 32]>(),
            secret in any::<[u8; 16]>(),
            port in 1u16..,
            host in "[a-z][a-z0-9-]{0,20}(\\.[a-z]{2,5})?",
        ) {
            let server = format!("https://{host}:{port}").parse().unwrap();
            let invite = Invite::new(&server, SessionId(session), parties, CertPin(pin), InviteSecret(secret)).unwrap();
            prop_assert_eq!(invite.to_string().parse::<Invite>().unwrap(), invite);
        }

        #[test]
        fn garbage_never_panics(text in ".{0,300}") {
            let _ = text.parse::<Invite>();
        }

        #[test]
        fn garbage_fragment_never_panics(code in "[A-Za-z0-9_-]{0,200}") {
            let _ = format!("https://h:1/join#pl1.{code}").parse::<Invite>();
        }
    }
}
