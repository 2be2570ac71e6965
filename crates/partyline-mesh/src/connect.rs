//! Our links to exactly the parties of the verified roster: the connections
//! `partyline_proto::connect_all` makes, with what the forwarder counts, and
//! the ready barrier over them.
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use iroh::endpoint::Connection;
use partyline_proto::{Dialing, ReadyError, webrtc};
use partyline_wire::{EndpointKey, Member, Roster};

use crate::{MeshError, PartyEndpoint};

/// Our connection to one peer, with the byte counts of what we forwarded.
#[derive(Clone, Debug)]
pub struct PeerLink {
    pub member: Member,
    pub conn: Connection,
    pub bytes_sent: Arc<AtomicU64>,
    pub bytes_received: Arc<AtomicU64>,
}

/// Which way the packets to a peer currently go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathKind {
    Direct,
    /// A browser party's WebRTC data channel.
    WebRtc,
    Relay,
}

impl PathKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PathKind::Direct => "direct",
            PathKind::WebRtc => webrtc::PATH_NAME,
            PathKind::Relay => "relay",
        }
    }
}

impl PeerLink {
    fn new(member: Member, conn: Connection) -> Self {
        Self {
            member,
            conn,
            bytes_sent: Arc::default(),
            bytes_received: Arc::default(),
        }
    }

    /// The path QUIC currently sends on, and its round-trip time.
    pub fn path(&self) -> (PathKind, Option<Duration>) {
        let paths = self.conn.paths();
        match paths.iter().find(|p| p.is_selected()) {
            Some(p) if p.is_ip() => (PathKind::Direct, Some(p.rtt())),
            Some(p) if webrtc::is_webrtc(p.remote_addr()) => (PathKind::WebRtc, Some(p.rtt())),
            Some(p) => (PathKind::Relay, Some(p.rtt())),
            None => (PathKind::Relay, None),
        }
    }
}

/// Connects to every peer of the roster, within `timeout`, through the
/// server's relay each announced (ours if it announced another) and the
/// direct addresses they announced.
pub async fn connect_all(
    party: &PartyEndpoint,
    roster: &Roster,
    timeout: Duration,
) -> Result<Vec<PeerLink>, MeshError> {
    let dialing = Dialing::RelayAndDirect(party.relays());
    let over_webrtc = open_data_channels(party, roster).await;
    let links =
        partyline_proto::connect_all(&party.endpoint, roster, &dialing, &over_webrtc, timeout)
            .await?;
    Ok(links
        .into_iter()
        .map(|(member, conn)| PeerLink::new(member, conn))
        .collect())
}

/// Makes ready for the data channel of every browser peer and waits, at
/// most [`webrtc::CHANNEL_LIMIT`], until those of the browsers we dial are
/// open: those we dial over it (see `partyline_proto::webrtc`).
async fn open_data_channels(party: &PartyEndpoint, roster: &Roster) -> BTreeSet<EndpointKey> {
    let (Some(webrtc), Some(ours)) = (&party.webrtc, &roster.own().webrtc) else {
        return BTreeSet::new();
    };
    let browsers = webrtc.host.expect_browsers(ours, roster.peers());
    let dialled: BTreeSet<EndpointKey> = roster
        .peers()
        .filter(|m| m.index > roster.own_index && browsers.contains(&m.endpoint))
        .map(|m| m.endpoint)
        .collect();
    if dialled.is_empty() {
        return dialled;
    }
    webrtc.host.wait_open(&dialled, webrtc::CHANNEL_LIMIT).await
}

/// Tells every peer we accept the roster and waits, up to `timeout`, until
/// every peer has said the same of the same roster (`partyline_proto::ready`):
/// only then may our program start.
pub async fn ready_barrier(
    links: &[PeerLink],
    roster: &Roster,
    timeout: Duration,
) -> Result<(), ReadyError> {
    let links: Vec<(&Member, &Connection)> = links
        .iter()
        .map(|link| (&link.member, &link.conn))
        .collect();
    partyline_proto::ready_barrier(&links, roster, timeout).await
}
