//! The relay token: the shared secret with which a relay of its own
//! (`partyline relay`) asks its coordinator whom to admit.
//!
//! The operator gives the same token to both (`serve --relay-token`,
//! `relay --token`). The coordinator keeps only its BLAKE3 hash and compares
//! hashes, in constant time, so the comparison tells nothing about the token.
use std::fmt;

/// Fewer characters than this are too easy to guess.
pub const MIN_CHARS: usize = 16;

/// The token as the operator wrote it.
#[derive(Clone, PartialEq, Eq)]
pub struct RelayToken(String);

/// Why a relay token is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the relay token has {chars} characters; use at least {MIN_CHARS} random ones (e.g. the output of `openssl rand -hex 32`)"
)]
pub struct WeakRelayToken {
    pub chars: usize,
}

impl RelayToken {
    pub fn new(token: &str) -> Result<Self, WeakRelayToken> {
        let token = token.trim();
        let chars = token.chars().count();
        if chars < MIN_CHARS {
            return Err(WeakRelayToken { chars });
        }
        Ok(Self(token.to_string()))
    }

    /// The value of the `Authorization` header that carries it.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }

    pub fn hash(&self) -> RelayTokenHash {
        RelayTokenHash(*blake3::hash(self.0.as_bytes()).as_bytes())
    }
}

impl fmt::Debug for RelayToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RelayToken(…)")
    }
}

/// The BLAKE3 hash of a [`RelayToken`]: what the coordinator keeps.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RelayTokenHash([u8; 32]);

impl RelayTokenHash {
    /// Whether the `Authorization` header value `bearer` carries the token,
    /// in constant time (`blake3::Hash` compares so).
    pub fn admits(&self, bearer: &str) -> bool {
        let Some((scheme, token)) = bearer.split_once(' ') else {
            return false;
        };
        scheme.eq_ignore_ascii_case("bearer")
            && blake3::hash(token.trim().as_bytes()) == blake3::Hash::from_bytes(self.0)
    }
}

impl fmt::Debug for RelayTokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RelayTokenHash(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_token_is_admitted() {
        let token = RelayToken::new("0123456789abcdef0123").unwrap();
        let hash = token.hash();
        assert!(hash.admits(&token.bearer()));
        assert!(hash.admits("bearer 0123456789abcdef0123"));
        assert!(!hash.admits("Bearer 0123456789abcdef0124"));
        assert!(!hash.admits("Basic 0123456789abcdef0123"));
        assert!(!hash.admits("0123456789abcdef0123"));
    }

    #[test]
    fn short_tokens_are_refused_with_what_to_do() {
        let error = RelayToken::new("secret").unwrap_err();
        assert_eq!(error.chars, 6);
        assert!(error.to_string().contains("openssl rand"), "{error}");
    }
}
