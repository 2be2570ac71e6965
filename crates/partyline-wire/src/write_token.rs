//! The write capability: only invite holders may change a session.
//!
//! A session's write token is derived from the invite secret (which never
//! reaches the server) with BLAKE3's key derivation, under a context string of
//! its own, so it tells nothing about the announcement key. The creator sends
//! only the token's BLAKE3 hash when it creates the session; every change
//! (announce, withdraw, done) carries the token itself, and the server
//! compares its hash with the stored one. The server can thus check the
//! token without being able to make one, and it still never learns the secret.
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::InviteSecret;

const CONTEXT: &str = "partyline 2026-11 session write token v1";

/// What a party shows to change its session, as `Authorization: Bearer <hex>`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct WriteToken(pub [u8; 32]);

/// The BLAKE3 hash of a [`WriteToken`]: what the server keeps.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct WriteTokenHash(pub [u8; 32]);

impl WriteToken {
    /// The token of the session whose invite holds `secret`. The session id
    /// is not part of it: the creator needs the token before the server has
    /// given the session its id, and the secret is fresh for every session.
    pub fn derive(secret: &InviteSecret) -> Self {
        Self(blake3::derive_key(CONTEXT, &secret.0))
    }

    pub fn hash(&self) -> WriteTokenHash {
        WriteTokenHash(*blake3::hash(&self.0).as_bytes())
    }

    /// The value of the `Authorization` header that carries it.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", data_encoding::HEXLOWER.encode(&self.0))
    }

    /// Reads the token out of an `Authorization` header value.
    pub fn from_bearer(value: &str) -> Option<Self> {
        let (scheme, token) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(token.trim().as_bytes())
            .ok()?;
        Some(Self(bytes.try_into().ok()?))
    }
}

impl WriteTokenHash {
    /// Whether `token` is the one this is the hash of, in constant time
    /// (`blake3::Hash` compares so).
    pub fn admits(&self, token: &WriteToken) -> bool {
        blake3::hash(&token.0) == blake3::Hash::from_bytes(self.0)
    }
}

impl fmt::Debug for WriteToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WriteToken(…)")
    }
}

impl fmt::Display for WriteTokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&data_encoding::HEXLOWER.encode(&self.0))
    }
}

impl fmt::Debug for WriteTokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WriteTokenHash({self})")
    }
}

impl FromStr for WriteTokenHash {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(s.as_bytes())
            .map_err(|_| format!("{s:?} is not hex"))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("{s:?} is not 32 bytes"))?;
        Ok(Self(bytes))
    }
}

impl Serialize for WriteTokenHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for WriteTokenHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_admits_its_token_only() {
        let token = WriteToken::derive(&InviteSecret([7; 16]));
        let other = WriteToken::derive(&InviteSecret([8; 16]));
        assert!(token.hash().admits(&token));
        assert!(!token.hash().admits(&other));
        assert_ne!(token.0, token.hash().0);
    }

    #[test]
    fn bearer_round_trips() {
        let token = WriteToken::derive(&InviteSecret([7; 16]));
        assert_eq!(WriteToken::from_bearer(&token.bearer()), Some(token));
        assert_eq!(WriteToken::from_bearer("Basic abc"), None);
        assert_eq!(WriteToken::from_bearer("Bearer 00"), None);
    }

    #[test]
    fn hash_is_hex_in_json() {
        let hash = WriteToken::derive(&InviteSecret([7; 16])).hash();
        let json = serde_json::to_string(&hash).unwrap();
        assert_eq!(json.len(), 66);
        assert_eq!(serde_json::from_str::<WriteTokenHash>(&json).unwrap(), hash);
    }

    /// The token is not the announcement key, nor anything else derived from
    /// the secret under another context.
    #[test]
    fn token_differs_from_other_derivations() {
        let secret = InviteSecret([7; 16]);
        let token = WriteToken::derive(&secret);
        let plain = blake3::derive_key("partyline 2026-11 announcement key v1", &secret.0);
        assert_ne!(token.0, plain);
    }
}
