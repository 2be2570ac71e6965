//! The exchange that turns a short [`Code`] into the invite: a balanced PAKE
//! between the host (`partyline create --code`) and one joiner, through the
//! coordinator, which relays the messages and learns nothing from them.
//!
//! | step | from | message |
//! |---|---|---|
//! | 1 | joiner | its SPAKE2 message (side B) |
//! | 2 | host | its SPAKE2 message (side A) |
//! | 3 | joiner | its key confirmation |
//! | 4 | host | the invite, sealed under the PAKE's key, or [`REFUSED`] |
//!
//! SPAKE2 (RustCrypto's `spake2`, Ed25519 group, as magic-wormhole uses)
//! binds both identities into the key: the host's and the joiner's, each
//! naming the nameplate and the session, so a key agreed for one nameplate
//! or session is useless for another. From the PAKE key, BLAKE3's key
//! derivation makes two keys under contexts of their own: the joiner's
//! confirmation (sent as is: a one-way function of the key) and the key that
//! seals the invite with XChaCha20-Poly1305, the nameplate and session as
//! associated data.
//!
//! Why this order: the SPAKE2 messages say nothing about the code, and the
//! joiner confirms first. So a guesser learns whether its one guess was right
//! only from the host's answer to its confirmation, and the host counts every
//! wrong confirmation as one guess: exactly the guesses made, and the host
//! burns the code after a few. A coordinator in the middle gets one guess per
//! attempt on each side, which costs the host a try, and no invite.
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use data_encoding::BASE64URL_NOPAD;
use rand::RngCore;
use spake2::{Ed25519Group, Identity, Password, Spake2};

use crate::code::{Code, Nameplate};
use crate::{Invite, SessionId};

/// The host's last message when the joiner's confirmation was wrong.
pub const REFUSED: &str = "refused";
/// What starts the host's last message when it carries the sealed invite.
const SEALED_PREFIX: &str = "invite.";
const CONFIRMATION_CONTEXT: &str = "partyline 2026-11 code joiner confirmation v1";
const SEAL_CONTEXT: &str = "partyline 2026-11 code invite seal v1";
const NONCE_LEN: usize = 24;

/// Why an exchange did not give the invite.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    #[error("the other side's message is not part of a code exchange ({0})")]
    Malformed(&'static str),
    #[error("the host refused the code")]
    Refused,
    #[error(
        "the host's answer does not open with the key from your code: the server altered the exchange"
    )]
    DoesNotOpen,
    #[error("the host's answer opened but holds no invite for this session ({0})")]
    NotTheInvite(String),
}

/// The SPAKE2 identities of host (side A) and joiner (side B) for one
/// nameplate of one session.
fn identities(nameplate: Nameplate, session: &SessionId) -> (Identity, Identity) {
    let id = |side: &str| {
        Identity::new(
            format!("partyline code v1 {side} nameplate {nameplate} session {session}").as_bytes(),
        )
    };
    (id("host"), id("joiner"))
}

fn password(code: &Code) -> Password {
    Password::new(code.to_string().as_bytes())
}

fn decode(message: &str, what: &'static str) -> Result<Vec<u8>, ExchangeError> {
    BASE64URL_NOPAD
        .decode(message.as_bytes())
        .map_err(|_| ExchangeError::Malformed(what))
}

/// A joiner's half-done exchange: its SPAKE2 state, waiting for the host's message.
pub struct JoinerPake {
    state: Spake2<Ed25519Group>,
    nameplate: Nameplate,
    session: SessionId,
}

impl JoinerPake {
    /// Starts the joiner's side for `code` on the session the nameplate
    /// belongs to; returns the message to send (step 1).
    pub fn start(code: &Code, session: SessionId) -> (Self, String) {
        let (host, joiner) = identities(code.nameplate(), &session);
        let (state, message) = Spake2::<Ed25519Group>::start_b(&password(code), &host, &joiner);
        let pake = Self {
            state,
            nameplate: code.nameplate(),
            session,
        };
        (pake, BASE64URL_NOPAD.encode(&message))
    }

    /// Takes the host's SPAKE2 message (step 2) and gives the keys; the
    /// joiner then sends [`AttemptKeys::confirmation`] (step 3).
    pub fn finish(self, host_message: &str) -> Result<AttemptKeys, ExchangeError> {
        if host_message == REFUSED {
            return Err(ExchangeError::Refused);
        }
        let message = decode(host_message, "the host's SPAKE2 message is not base64url")?;
        let key = self
            .state
            .finish(&message)
            .map_err(|_| ExchangeError::Malformed("the host's SPAKE2 message is not valid"))?;
        Ok(AttemptKeys::derive(&key, self.nameplate, self.session))
    }
}

/// The host's answer to a joiner's SPAKE2 message (step 1): the keys, and
/// the message to send back (step 2).
pub fn host_answer(
    code: &Code,
    session: SessionId,
    joiner_message: &str,
) -> Result<(AttemptKeys, String), ExchangeError> {
    let joiner_bytes = decode(
        joiner_message,
        "the joiner's SPAKE2 message is not base64url",
    )?;
    let (host, joiner) = identities(code.nameplate(), &session);
    let (state, message) = Spake2::<Ed25519Group>::start_a(&password(code), &host, &joiner);
    let key = state
        .finish(&joiner_bytes)
        .map_err(|_| ExchangeError::Malformed("the joiner's SPAKE2 message is not valid"))?;
    let keys = AttemptKeys::derive(&key, code.nameplate(), session);
    Ok((keys, BASE64URL_NOPAD.encode(&message)))
}

/// The keys of one attempt, derived from its PAKE key.
pub struct AttemptKeys {
    confirmation: blake3::Hash,
    seal: [u8; 32],
    nameplate: Nameplate,
    session: SessionId,
}

impl std::fmt::Debug for AttemptKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AttemptKeys(nameplate {}, ..)", self.nameplate)
    }
}

impl AttemptKeys {
    fn derive(pake_key: &[u8], nameplate: Nameplate, session: SessionId) -> Self {
        Self {
            confirmation: blake3::Hash::from_bytes(blake3::derive_key(
                CONFIRMATION_CONTEXT,
                pake_key,
            )),
            seal: blake3::derive_key(SEAL_CONTEXT, pake_key),
            nameplate,
            session,
        }
    }

    /// The joiner's key confirmation (step 3).
    pub fn confirmation(&self) -> String {
        BASE64URL_NOPAD.encode(self.confirmation.as_bytes())
    }

    /// Whether the joiner's confirmation shows the same key, i.e. the same
    /// code; compared in constant time (`blake3::Hash`).
    pub fn confirms(&self, message: &str) -> bool {
        let Ok(bytes) = decode(message, "") else {
            return false;
        };
        let Ok(bytes) = <[u8; 32]>::try_from(bytes.as_slice()) else {
            return false;
        };
        self.confirmation == blake3::Hash::from_bytes(bytes)
    }

    fn associated_data(&self) -> Vec<u8> {
        format!(
            "partyline code v1 nameplate {} session {}",
            self.nameplate, self.session
        )
        .into_bytes()
    }

    /// The host's last message for a joiner that confirmed: the invite,
    /// sealed (step 4).
    pub fn seal(&self, invite: &Invite) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new(Key::from_slice(&self.seal));
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: invite.to_string().as_bytes(),
                    aad: &self.associated_data(),
                },
            )
            .expect("sealing a short invite cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{}", BASE64URL_NOPAD.encode(&out))
    }

    /// Opens the host's last message (step 4): the invite, or why not.
    pub fn open(&self, message: &str) -> Result<Invite, ExchangeError> {
        if message == REFUSED {
            return Err(ExchangeError::Refused);
        }
        let sealed = message
            .strip_prefix(SEALED_PREFIX)
            .ok_or(ExchangeError::Malformed(
                "the host's answer is neither an invite nor a refusal",
            ))?;
        let bytes = decode(sealed, "the host's sealed invite is not base64url")?;
        if bytes.len() <= NONCE_LEN {
            return Err(ExchangeError::DoesNotOpen);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let cipher = XChaCha20Poly1305::new(Key::from_slice(&self.seal));
        let plain = cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &self.associated_data(),
                },
            )
            .map_err(|_| ExchangeError::DoesNotOpen)?;
        let text = String::from_utf8(plain)
            .map_err(|_| ExchangeError::NotTheInvite("not text".to_string()))?;
        let invite: Invite = text
            .parse()
            .map_err(|e: crate::InviteError| ExchangeError::NotTheInvite(e.to_string()))?;
        if invite.session != self.session {
            return Err(ExchangeError::NotTheInvite(format!(
                "it is for session {}",
                invite.session
            )));
        }
        Ok(invite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CertPin, InviteSecret};
    use proptest::prelude::*;

    fn invite(session: SessionId) -> Invite {
        Invite::new(
            &"https://h:1".parse().unwrap(),
            session,
            3,
            CertPin([2; 32]),
            InviteSecret([9; 16]),
        )
        .unwrap()
    }

    /// Runs the whole exchange: joiner with `joiner_code`, host with
    /// `host_code`, each told its own session; `tamper` may change each
    /// message on its way (step number, message).
    fn exchange(
        joiner_code: &str,
        joiner_session: SessionId,
        host_code: &str,
        host_session: SessionId,
        tamper: impl Fn(usize, String) -> String,
    ) -> (bool, Result<Invite, ExchangeError>) {
        let (joiner_code, host_code): (Code, Code) =
            (joiner_code.parse().unwrap(), host_code.parse().unwrap());
        let (pake, step1) = JoinerPake::start(&joiner_code, joiner_session);
        let (host_keys, step2) = match host_answer(&host_code, host_session, &tamper(1, step1)) {
            Ok(answer) => answer,
            Err(error) => return (false, Err(error)),
        };
        let joiner_keys = match pake.finish(&tamper(2, step2)) {
            Ok(keys) => keys,
            Err(error) => return (false, Err(error)),
        };
        let confirmed = host_keys.confirms(&tamper(3, joiner_keys.confirmation()));
        let step4 = if confirmed {
            host_keys.seal(&invite(host_session))
        } else {
            REFUSED.to_string()
        };
        (confirmed, joiner_keys.open(&tamper(4, step4)))
    }

    const CODE: &str = "7-orbit-lamp-quiz";

    #[test]
    fn the_right_code_gives_the_invite() {
        let session = SessionId([1; 16]);
        let (confirmed, opened) = exchange(CODE, session, CODE, session, |_, m| m);
        assert!(confirmed);
        assert_eq!(opened.unwrap(), invite(session));
    }

    #[test]
    fn a_wrong_code_is_refused_without_the_invite() {
        let session = SessionId([1; 16]);
        for wrong in ["7-orbit-lamp-quit", "8-orbit-lamp-quiz"] {
            let (confirmed, opened) = exchange(wrong, session, CODE, session, |_, m| m);
            assert!(!confirmed, "{wrong}");
            assert_eq!(opened.unwrap_err(), ExchangeError::Refused);
        }
    }

    #[test]
    fn another_session_is_another_key() {
        let (confirmed, _) = exchange(CODE, SessionId([1; 16]), CODE, SessionId([2; 16]), |_, m| m);
        assert!(!confirmed);
    }

    #[test]
    fn a_server_in_the_middle_gets_no_invite() {
        let session = SessionId([1; 16]);
        let guess: Code = "7-abandon-abandon-abandon".parse().unwrap();
        // The server answers each side with SPAKE2 messages of its own guess.
        let (_, own_b) = JoinerPake::start(&guess, session);
        let (_, own_a) =
            host_answer(&guess, session, &JoinerPake::start(&guess, session).1).unwrap();
        for step in [1, 2] {
            let (confirmed, opened) = exchange(CODE, session, CODE, session, |at, m| match at {
                1 if step == 1 => own_b.clone(),
                2 if step == 2 => own_a.clone(),
                _ => m,
            });
            assert!(!confirmed, "step {step}");
            assert_eq!(opened.unwrap_err(), ExchangeError::Refused);
        }
        // A sealed invite altered on its way does not open.
        let (confirmed, opened) = exchange(CODE, session, CODE, session, |at, m| {
            if at == 4 {
                let mut bytes = m.into_bytes();
                let last = bytes.len() - 3;
                bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
                String::from_utf8(bytes).unwrap()
            } else {
                m
            }
        });
        assert!(confirmed);
        assert_eq!(opened.unwrap_err(), ExchangeError::DoesNotOpen);
    }

    #[test]
    fn a_forged_refusal_or_garbage_is_named() {
        let session = SessionId([1; 16]);
        let code: Code = CODE.parse().unwrap();
        let (pake, _) = JoinerPake::start(&code, session);
        assert_eq!(pake.finish(REFUSED).unwrap_err(), ExchangeError::Refused);
        let (pake, _) = JoinerPake::start(&code, session);
        assert!(matches!(
            pake.finish("AAAA"),
            Err(ExchangeError::Malformed(_))
        ));
        assert!(matches!(
            host_answer(&code, session, "!!"),
            Err(ExchangeError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn garbage_never_panics(message in ".{0,200}", b64 in "[A-Za-z0-9_-]{0,120}") {
            let session = SessionId([1; 16]);
            let code: Code = CODE.parse().unwrap();
            for text in [message.clone(), b64.clone(), format!("{SEALED_PREFIX}{b64}")] {
                let _ = host_answer(&code, session, &text);
                let (pake, _) = JoinerPake::start(&code, session);
                if let Ok(keys) = pake.finish(&text) {
                    prop_assert!(!keys.confirms(&text));
                    prop_assert!(keys.open(&text).is_err());
                }
                let (host_keys, _) = host_answer(&code, session, &JoinerPake::start(&code, session).1).unwrap();
                prop_assert!(!host_keys.confirms(&text));
                prop_assert!(host_keys.open(&text).is_err());
            }
        }
    }
}
