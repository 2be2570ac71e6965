//! The JSON report of `partyline join --report FILE`.
use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Report {
    pub session: String,
    pub index: usize,
    pub parties: usize,
    pub fingerprint: String,
    pub peers: Vec<PeerReport>,
    /// The relay this party announced: the nearest of the server's relays
    /// when it went online, as iroh's net report found.
    pub home_relay: String,
    /// The round trip to each of the server's relays, in milliseconds, as
    /// iroh's latest net report measured it.
    pub relay_rtt_ms: BTreeMap<String, f64>,
    /// The `ip:port` candidates this party announced for browser parties'
    /// WebRTC data channels: its own addresses at its WebRTC port, and the
    /// address the server's STUN responder saw that port come from; empty
    /// relay-only.
    pub webrtc_candidates: Vec<String>,
    /// Milliseconds from the moment the roster was complete to the mesh being ready.
    pub setup_ms: u64,
    pub exit_code: i32,
    /// CPU seconds (user plus system) partyline itself used, up to the
    /// program's end and the forwarding's drain.
    pub partyline_cpu_s: f64,
    /// CPU seconds the program (with its own children) used.
    pub program_cpu_s: f64,
}

#[derive(Debug, Serialize)]
pub struct PeerReport {
    pub index: usize,
    pub name: String,
    /// The 12 words of the party's identity, if it has one.
    pub identity: Option<String>,
    /// How the address book knew the party when the session started, as
    /// the roster shows it: "known, 4 sessions since 2026-11-20", "new", …
    pub standing: String,
    /// "direct" or "relay": the path in use when the program ended.
    pub path: &'static str,
    pub rtt_ms: Option<f64>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}
