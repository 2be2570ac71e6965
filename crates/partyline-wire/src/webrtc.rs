//! What a party announces so that a browser party can open a WebRTC data
//! channel to it: its DTLS certificate's fingerprint, its ICE credentials
//! and (a native party) the UDP addresses its WebRTC socket listens on.
//!
//! It travels inside the MAC'd announcement, so a coordinator that changes
//! any of it (say, swaps the fingerprint for that of its own certificate, to
//! sit in the middle of the data channel) makes the roster check fail. The
//! browser turns these fields into SDP lines, so they are held to the
//! characters ICE and SDP allow before anyone uses them.
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The most candidate addresses an announcement may carry.
pub const MAX_CANDIDATES: usize = 16;

/// One party's WebRTC parameters for the whole session: one certificate and
/// one set of ICE credentials, shared by its data channels to every peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebRtcOffer {
    /// The SHA-256 fingerprint of the party's DTLS certificate, as SDP writes
    /// it: `sha-256 AB:CD:…` (32 bytes).
    pub fingerprint: String,
    /// ICE username fragment (4 to 32 ICE characters).
    pub ufrag: String,
    /// ICE password (22 to 64 ICE characters).
    pub pwd: String,
    /// `ip:port` of the party's WebRTC UDP socket; empty for a browser,
    /// which is reached as a peer-reflexive candidate once it sends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<String>,
}

/// What is wrong with an announced [`WebRtcOffer`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadWebRtc {
    #[error("its DTLS fingerprint is not `sha-256` followed by 32 hex bytes")]
    Fingerprint,
    #[error("its ICE username fragment is not 4 to 32 ICE characters")]
    Ufrag,
    #[error("its ICE password is not 22 to 64 ICE characters")]
    Pwd,
    #[error("it lists more than {MAX_CANDIDATES} candidates, or one that is not ip:port")]
    Candidates,
}

impl WebRtcOffer {
    /// Checks every field (see [`BadWebRtc`]).
    pub fn check(&self) -> Result<(), BadWebRtc> {
        if fingerprint_bytes(&self.fingerprint).is_none() {
            return Err(BadWebRtc::Fingerprint);
        }
        if !ice_chars(&self.ufrag, 4, 32) {
            return Err(BadWebRtc::Ufrag);
        }
        if !ice_chars(&self.pwd, 22, 64) {
            return Err(BadWebRtc::Pwd);
        }
        if self.candidates.len() > MAX_CANDIDATES
            || self
                .candidates
                .iter()
                .any(|c| c.parse::<SocketAddr>().is_err())
        {
            return Err(BadWebRtc::Candidates);
        }
        Ok(())
    }

    /// The candidate addresses, as checked by [`WebRtcOffer::check`].
    pub fn candidate_addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.candidates.iter().filter_map(|c| c.parse().ok())
    }
}

/// The 32 bytes of a `sha-256 AB:CD:…` fingerprint, if it is one.
pub fn fingerprint_bytes(fingerprint: &str) -> Option<[u8; 32]> {
    let hex = fingerprint.strip_prefix("sha-256 ")?;
    let mut bytes = [0u8; 32];
    let mut parts = hex.split(':');
    for byte in &mut bytes {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(bytes)
}

/// ICE's `ice-char`: ALPHA / DIGIT / "+" / "/" (RFC 8839), `min..=max` of them.
fn ice_chars(text: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer() -> WebRtcOffer {
        WebRtcOffer {
            fingerprint: format!("sha-256 {}", vec!["AB"; 32].join(":")),
            ufrag: "abcd".to_string(),
            pwd: "a".repeat(22),
            candidates: vec!["127.0.0.1:4000".to_string(), "[::1]:4000".to_string()],
        }
    }

    #[test]
    fn a_well_formed_offer_passes() {
        assert_eq!(offer().check(), Ok(()));
        assert_eq!(fingerprint_bytes(&offer().fingerprint), Some([0xAB; 32]));
    }

    #[test]
    fn fields_that_could_inject_sdp_lines_are_refused() {
        let bad = |f: fn(&mut WebRtcOffer)| {
            let mut o = offer();
            f(&mut o);
            o.check()
        };
        assert_eq!(bad(|o| o.ufrag = "ab\r\na=x".into()), Err(BadWebRtc::Ufrag));
        assert_eq!(bad(|o| o.pwd.push_str("\r\n")), Err(BadWebRtc::Pwd));
        assert_eq!(
            bad(|o| o.fingerprint.push_str(":AB")),
            Err(BadWebRtc::Fingerprint)
        );
        assert_eq!(
            bad(|o| o.fingerprint = o.fingerprint.replace("sha-256", "sha-1")),
            Err(BadWebRtc::Fingerprint)
        );
        assert_eq!(
            bad(|o| o.candidates.push("host.local:1".into())),
            Err(BadWebRtc::Candidates)
        );
        assert_eq!(
            bad(|o| o.candidates = vec!["127.0.0.1:1".into(); MAX_CANDIDATES + 1]),
            Err(BadWebRtc::Candidates)
        );
    }
}
