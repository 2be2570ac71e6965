//! What a party announces so that a browser party can open a WebRTC data
//! channel to it: its DTLS certificate's fingerprint, its ICE credentials
//! and its ICE candidates: a native party the UDP addresses its WebRTC
//! socket listens on, a browser one candidate list per peer connection.
//!
//! It travels inside the MAC'd announcement, so a coordinator that changes
//! any of it (say, swaps the fingerprint for that of its own certificate, to
//! sit in the middle of the data channel) makes the roster check fail. The
//! browser turns these fields into SDP lines, so they are held to the
//! characters ICE and SDP allow before anyone uses them.
//!
//! Two browsers are both full ICE agents, and neither can learn the other's
//! candidates after the roster (no SDP crosses the network). So a browser
//! makes its peer connections before it announces, one for each other party
//! the invite names, and announces each one's candidates; after the roster,
//! the pair uses the connection [`peer_list_index`] picks on both sides.
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The most candidate addresses an announcement may carry, and the most in
/// one of a browser's per-peer lists.
pub const MAX_CANDIDATES: usize = 16;

/// The most candidates a browser's per-peer lists may hold together: at the
/// longest a candidate may be, they fill about 5 KiB, so that an
/// announcement of a session of [`crate::MAX_PARTIES`] parties stays under
/// [`crate::announce::MAX_ANNOUNCEMENT_BYTES`].
pub const MAX_PEER_CANDIDATES: usize = 64;

/// The longest `<name>.local` label a browser's candidate may have: one DNS
/// label (Chromium's are UUIDs, 36 characters).
const MAX_MDNS_LABEL: usize = 63;

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
    /// which a native party reaches as a peer-reflexive candidate once it
    /// sends (that is how a native party tells a browser party apart).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<String>,
    /// A browser's: the candidates of each of its peer connections, one
    /// list per other party of the session (see [`peer_list_index`]), each
    /// `ip:port`, `[ipv6]:port` or `<name>.local:port` (the names Chromium
    /// hides host addresses behind). Empty for a native party.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peer_candidates: Vec<Vec<String>>,
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
    #[error(
        "its per-peer candidate lists are more than {max_lists}, hold more than {MAX_CANDIDATES} in one or {MAX_PEER_CANDIDATES} together, or one that is not ip:port or name.local:port",
        max_lists = crate::MAX_PARTIES - 1
    )]
    PeerCandidates,
}

/// Which of a browser's per-peer candidate lists (and peer connections) is
/// for the party at seat `peer`, the browser being at seat `own`: its own
/// seat is left out, so both ends of a pair find their lists alike.
pub fn peer_list_index(own: usize, peer: usize) -> usize {
    if peer < own { peer } else { peer - 1 }
}

/// Whether `candidate` is `ip:port`, `[ipv6]:port` or `<name>.local:port`,
/// `name` one label of letters, digits and `-`: nothing that could end an
/// SDP line or add a field to it.
pub fn browser_candidate_ok(candidate: &str) -> bool {
    if candidate.parse::<SocketAddr>().is_ok() {
        return true;
    }
    let Some((host, port)) = candidate.rsplit_once(':') else {
        return false;
    };
    let Some(label) = host.strip_suffix(".local") else {
        return false;
    };
    matches!(port.parse::<u16>(), Ok(1..))
        && port.bytes().all(|b| b.is_ascii_digit())
        && (1..=MAX_MDNS_LABEL).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
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
        if self.peer_candidates.len() > usize::from(crate::MAX_PARTIES - 1)
            || self.peer_candidates.iter().map(Vec::len).sum::<usize>() > MAX_PEER_CANDIDATES
            || self.peer_candidates.iter().any(|list| {
                list.len() > MAX_CANDIDATES || !list.iter().all(|c| browser_candidate_ok(c))
            })
        {
            return Err(BadWebRtc::PeerCandidates);
        }
        Ok(())
    }

    /// A browser's offer as the rules allow it: drops the candidates no
    /// party would accept (what a browser gathers is not ours to choose) and
    /// keeps the first of each list within the limits, the most in total
    /// shared evenly between the lists.
    pub fn keep_valid_peer_candidates(&mut self) {
        let lists = self.peer_candidates.len().max(1);
        let per_list = MAX_CANDIDATES.min(MAX_PEER_CANDIDATES / lists);
        for list in &mut self.peer_candidates {
            list.retain(|c| browser_candidate_ok(c));
            list.truncate(per_list);
        }
    }

    /// Whether this is a browser's offer: candidates per peer connection,
    /// none of a listening socket.
    pub fn is_browser(&self) -> bool {
        self.candidates.is_empty()
    }

    /// A browser's candidates for its peer connection to the party at
    /// `peer`, itself at `own` (see [`peer_list_index`]); `None` if it
    /// announced no such list.
    pub fn candidates_for(&self, own: usize, peer: usize) -> Option<&[String]> {
        self.peer_candidates
            .get(peer_list_index(own, peer))
            .map(Vec::as_slice)
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
            peer_candidates: Vec::new(),
        }
    }

    /// A browser's offer in a session of `parties`, `each` candidates per list.
    fn browser_offer(parties: usize, each: usize) -> WebRtcOffer {
        let candidate = format!("{}.local:65535", "a".repeat(MAX_MDNS_LABEL));
        WebRtcOffer {
            candidates: Vec::new(),
            peer_candidates: vec![vec![candidate; each]; parties - 1],
            ..offer()
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

    #[test]
    fn a_browsers_per_peer_candidates_may_name_mdns_hosts() {
        let mut o = browser_offer(3, 1);
        o.peer_candidates = vec![
            vec![
                "be43be20-3310-4e4a-97e6-d774f0076588.local:42563".into(),
                "192.0.2.2:4000".into(),
                "[fd00::2]:4001".into(),
            ],
            Vec::new(),
        ];
        assert_eq!(o.check(), Ok(()));
        assert!(o.is_browser());
        assert_eq!(o.candidates_for(0, 1), Some(&o.peer_candidates[0][..]));
        assert_eq!(o.candidates_for(2, 1), Some(&o.peer_candidates[1][..]));
        assert_eq!(o.candidates_for(0, 3), None);
    }

    #[test]
    fn bad_per_peer_candidates_are_refused() {
        for candidate in [
            "x.local:1\r\na=candidate:1",
            "x y.local:1",
            "x.local 1 typ host:1",
            "host.example:1",
            ".local:1",
            "x.local:0",
            "x.local:65536",
            "x.local:+1",
            "x.local",
            "[fe80::1%eth0]:1",
            "127.0.0.1",
        ] {
            let mut o = browser_offer(3, 1);
            o.peer_candidates[1].push(candidate.into());
            assert_eq!(o.check(), Err(BadWebRtc::PeerCandidates), "{candidate:?}");
        }
        let label = format!("{}.local:1", "a".repeat(MAX_MDNS_LABEL + 1));
        assert!(!browser_candidate_ok(&label));
    }

    #[test]
    fn too_many_per_peer_candidates_are_refused() {
        assert_eq!(browser_offer(3, MAX_CANDIDATES).check(), Ok(()));
        assert_eq!(
            browser_offer(3, MAX_CANDIDATES + 1).check(),
            Err(BadWebRtc::PeerCandidates)
        );
        let parties = usize::from(crate::MAX_PARTIES);
        assert_eq!(browser_offer(parties, 1).check(), Ok(()));
        assert_eq!(
            browser_offer(parties + 1, 1).check(),
            Err(BadWebRtc::PeerCandidates)
        );
        assert_eq!(
            browser_offer(MAX_PEER_CANDIDATES / 2 + 2, 2).check(),
            Err(BadWebRtc::PeerCandidates)
        );
    }

    #[test]
    fn a_browsers_gathered_candidates_are_cut_to_what_parties_accept() {
        let mut o = browser_offer(usize::from(crate::MAX_PARTIES), MAX_CANDIDATES);
        o.peer_candidates[0].insert(0, "tcp candidate".into());
        o.keep_valid_peer_candidates();
        assert_eq!(o.check(), Ok(()));
        assert!(o.peer_candidates.iter().all(|list| list.len() == 1));
        let mut few = browser_offer(3, MAX_CANDIDATES + 4);
        few.keep_valid_peer_candidates();
        assert_eq!(few.check(), Ok(()));
        assert_eq!(few.peer_candidates[0].len(), MAX_CANDIDATES);
    }

    #[test]
    fn the_largest_browser_announcement_fits_the_servers_limit() {
        use crate::announce::{Announcement, MAX_ANNOUNCEMENT_BYTES};
        let mut webrtc = browser_offer(usize::from(crate::MAX_PARTIES), MAX_CANDIDATES);
        webrtc.keep_valid_peer_candidates();
        let announcement = Announcement {
            session: crate::SessionId([1; 16]),
            name: "\u{10FFFF}".repeat(crate::announce::MAX_NAME_CHARS),
            endpoint: crate::EndpointKey([2; 32]),
            relay_url: Some(format!("https://{}:65535", "r".repeat(200))),
            // A browser has no sockets of its own to announce.
            addrs: Vec::new(),
            joined_at_ms: u64::MAX,
            identity: Some(crate::Identity::generate().prove(
                &crate::SessionId([1; 16]),
                "x",
                &crate::EndpointKey([2; 32]),
            )),
            webrtc: Some(webrtc),
        };
        let body = serde_json::to_string(&announcement).unwrap();
        assert!(body.len() < MAX_ANNOUNCEMENT_BYTES, "{} bytes", body.len());
    }
}
