//! Long-term identities: a party's Ed25519 key that outlives its sessions,
//! so that the others can recognise it next time (`partyline id`).
//!
//! A session's endpoint key is fresh every time, so by itself it says nothing
//! about who holds it. A party with an identity adds to its announcement an
//! [`IdentityProof`]: its identity public key and that key's signature over
//! the session id, its name and its endpoint key. Every verifier checks the
//! signature ([`IdentityProof::verify`]); the endpoint key is then proven
//! by QUIC's TLS handshake when the parties connect, so a party shown as
//! "known" is the holder of that identity key, in this session, under this
//! name. The signature is inside the announcement's body, which the invite's
//! MAC covers as before: the coordinator can neither add nor remove it.
//!
//! People compare identities as [`IdentityKey::words`]: 12 BIP39 words of a
//! hash of the public key (132 bits), the same form as the session
//! fingerprint. To impersonate a known identity, one would need a key whose
//! words equal its words: a second preimage of 132 bits.
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::{EndpointKey, Fingerprint, SessionId};

/// The domain of what an identity signs, so that the signature cannot be
/// taken for anything else the same key might sign.
const PROOF_CONTEXT: &[u8] = b"partyline 2026-11 identity proof v1";

/// An identity's public key (Ed25519), as it travels in announcements.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdentityKey(pub [u8; 32]);

/// A party's long-term identity: the private key. Only its owner has it.
pub struct Identity {
    signing: SigningKey,
}

/// What an announcement carries to prove its party holds an identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityProof {
    /// The identity public key, hex.
    pub key: IdentityKey,
    /// Hex of the Ed25519 signature over [`signed_message`].
    pub signature: String,
}

/// Why an identity proof was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadProof {
    #[error("its identity key is not a valid Ed25519 public key")]
    BadKey,
    #[error("its identity signature is not 64 bytes of hex")]
    Malformed,
    #[error(
        "its identity signature does not verify: the announcement claims an identity key its party does not hold"
    )]
    WrongSignature,
}

impl Identity {
    /// A fresh identity from the operating system's random numbers.
    pub fn generate() -> Self {
        Self::from_secret(rand::random())
    }

    /// The identity whose private key (seed) is `secret`.
    pub fn from_secret(secret: [u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(&secret),
        }
    }

    /// The private key (seed), for storing it.
    pub fn secret(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    pub fn key(&self) -> IdentityKey {
        IdentityKey(self.signing.verifying_key().to_bytes())
    }

    /// Signs that this identity is `name` at `endpoint` in `session`.
    pub fn prove(&self, session: &SessionId, name: &str, endpoint: &EndpointKey) -> IdentityProof {
        let signature = self.signing.sign(&signed_message(session, name, endpoint));
        IdentityProof {
            key: self.key(),
            signature: data_encoding::HEXLOWER.encode(&signature.to_bytes()),
        }
    }
}

impl IdentityProof {
    /// Checks the signature over this session, name and endpoint key. Uses
    /// Ed25519's strict verification, which refuses weak keys and
    /// malleable signatures.
    pub fn verify(
        &self,
        session: &SessionId,
        name: &str,
        endpoint: &EndpointKey,
    ) -> Result<(), BadProof> {
        let key = VerifyingKey::from_bytes(&self.key.0).map_err(|_| BadProof::BadKey)?;
        let bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(self.signature.as_bytes())
            .map_err(|_| BadProof::Malformed)?;
        let signature = Signature::from_slice(&bytes).map_err(|_| BadProof::Malformed)?;
        key.verify_strict(&signed_message(session, name, endpoint), &signature)
            .map_err(|_| BadProof::WrongSignature)
    }
}

/// The bytes an identity signs: the context, the session id, the endpoint
/// key and the name (length first, so no two inputs give the same bytes).
pub fn signed_message(session: &SessionId, name: &str, endpoint: &EndpointKey) -> Vec<u8> {
    let mut message = Vec::with_capacity(PROOF_CONTEXT.len() + 16 + 32 + 8 + name.len());
    message.extend_from_slice(PROOF_CONTEXT);
    message.extend_from_slice(&session.0);
    message.extend_from_slice(&endpoint.0);
    message.extend_from_slice(&(name.len() as u64).to_le_bytes());
    message.extend_from_slice(name.as_bytes());
    message
}

impl IdentityKey {
    /// The words people compare: 12 BIP39 words of a hash of the key.
    pub fn words(&self) -> Fingerprint {
        Fingerprint::from_hash(&blake3::derive_key(
            "partyline 2026-11 identity words v1",
            &self.0,
        ))
    }
}

impl std::fmt::Display for IdentityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&data_encoding::HEXLOWER.encode(&self.0))
    }
}

impl std::fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdentityKey({self})")
    }
}

impl std::str::FromStr for IdentityKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EndpointKey::from_str(s)
            .map(|key| Self(key.0))
            .map_err(|_| format!("identity key {s:?} is not 32 bytes of hex"))
    }
}

impl Serialize for IdentityKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IdentityKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SESSION: SessionId = SessionId([1; 16]);
    const ENDPOINT: EndpointKey = EndpointKey([2; 32]);

    #[test]
    fn a_proof_verifies_for_what_was_signed_only() {
        let alice = Identity::from_secret([7; 32]);
        let proof = alice.prove(&SESSION, "alice", &ENDPOINT);
        assert_eq!(proof.key, alice.key());
        assert_eq!(proof.verify(&SESSION, "alice", &ENDPOINT), Ok(()));
        let wrong = Err(BadProof::WrongSignature);
        assert_eq!(proof.verify(&SessionId([9; 16]), "alice", &ENDPOINT), wrong);
        assert_eq!(proof.verify(&SESSION, "alicia", &ENDPOINT), wrong);
        assert_eq!(
            proof.verify(&SESSION, "alice", &EndpointKey([3; 32])),
            wrong
        );
    }

    #[test]
    fn someone_elses_key_with_ones_own_signature_is_refused() {
        let alice = Identity::from_secret([7; 32]);
        let mallory = Identity::from_secret([8; 32]);
        let forged = IdentityProof {
            key: alice.key(),
            ..mallory.prove(&SESSION, "alice", &ENDPOINT)
        };
        assert_eq!(
            forged.verify(&SESSION, "alice", &ENDPOINT),
            Err(BadProof::WrongSignature)
        );
    }

    #[test]
    fn malformed_proofs_are_refused_without_panic() {
        let proof = Identity::from_secret([7; 32]).prove(&SESSION, "a", &ENDPOINT);
        let short = IdentityProof {
            signature: proof.signature[..10].to_string(),
            ..proof.clone()
        };
        assert_eq!(
            short.verify(&SESSION, "a", &ENDPOINT),
            Err(BadProof::Malformed)
        );
        let not_hex = IdentityProof {
            signature: "zz".repeat(64),
            ..proof.clone()
        };
        assert_eq!(
            not_hex.verify(&SESSION, "a", &ENDPOINT),
            Err(BadProof::Malformed)
        );
    }

    #[test]
    fn words_are_twelve_and_differ_between_keys() {
        let a = Identity::from_secret([7; 32]).key();
        let b = Identity::from_secret([8; 32]).key();
        assert_eq!(a.words().words().count(), Fingerprint::WORDS);
        assert_ne!(a.words(), b.words());
        assert_eq!(a.words(), a.words());
    }

    #[test]
    fn the_secret_round_trips() {
        let fresh = Identity::generate();
        assert_eq!(Identity::from_secret(fresh.secret()).key(), fresh.key());
        assert_ne!(Identity::generate().key(), fresh.key());
    }

    proptest! {
        #[test]
        fn any_key_and_signature_bytes_never_panic(
            key in any::<[u8; 32]>(), signature in "[0-9a-fA-F]{0,140}", name in ".{0,50}",
        ) {
            let proof = IdentityProof { key: IdentityKey(key), signature };
            prop_assert!(proof.verify(&SESSION, &name, &ENDPOINT).is_err());
        }

        #[test]
        fn every_identity_proves_itself(seed in any::<[u8; 32]>(), name in "[a-z]{1,40}") {
            let identity = Identity::from_secret(seed);
            let proof = identity.prove(&SESSION, &name, &ENDPOINT);
            prop_assert_eq!(proof.verify(&SESSION, &name, &ENDPOINT), Ok(()));
        }
    }
}
