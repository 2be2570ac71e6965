//! Connecting to exactly the parties of the verified roster.
//!
//! Party i dials every party j > i and accepts from every party j < i, the
//! same pattern MPyC uses, so each pair has exactly one connection and no one
//! has to break ties. An incoming connection is kept only if its key belongs
//! to a lower seat of the roster; the QUIC handshake has already proven the key.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use iroh::endpoint::Connection;
use iroh::{EndpointAddr, EndpointId, RelayUrl};
use partyline_wire::{EndpointKey, Member, Roster};
use tokio::task::JoinSet;

use crate::ending::CloseCode;
use crate::{ALPN, MeshError, PartyEndpoint};

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
    Relay,
}

impl PathKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PathKind::Direct => "direct",
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
            Some(p) => (PathKind::Relay, Some(p.rtt())),
            None => (PathKind::Relay, None),
        }
    }
}

fn endpoint_id(key: &EndpointKey) -> Result<EndpointId, String> {
    EndpointId::from_bytes(&key.0).map_err(|e| format!("its endpoint id is not a valid key: {e}"))
}

fn dial_addr(member: &Member) -> Result<EndpointAddr, String> {
    let mut addr = EndpointAddr::new(endpoint_id(&member.endpoint)?);
    if let Some(url) = &member.relay_url {
        let url: RelayUrl = url
            .parse()
            .map_err(|_| format!("its relay URL {url:?} is not valid"))?;
        addr = addr.with_relay_url(url);
    }
    for ip in &member.addrs {
        if let Ok(sock) = ip.parse::<SocketAddr>() {
            addr = addr.with_ip_addr(sock);
        }
    }
    Ok(addr)
}

/// Connects to every peer of the roster, within `timeout`.
pub async fn connect_all(
    party: &PartyEndpoint,
    roster: &Roster,
    timeout: Duration,
) -> Result<Vec<PeerLink>, MeshError> {
    let own = roster.own_index;
    let mut dials = JoinSet::new();
    for member in roster.peers().filter(|m| m.index > own).cloned() {
        let endpoint = party.endpoint.clone();
        dials.spawn(async move {
            let result = async {
                let addr = dial_addr(&member)?;
                endpoint
                    .connect(addr, ALPN)
                    .await
                    .map_err(|e| e.to_string())
            }
            .await;
            (member, result)
        });
    }
    let mut expected_incoming: BTreeMap<EndpointKey, Member> = roster
        .peers()
        .filter(|m| m.index < own)
        .map(|m| (m.endpoint, m.clone()))
        .collect();

    let mut links = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while !dials.is_empty() || !expected_incoming.is_empty() {
        tokio::select! {
            Some(joined) = dials.join_next(), if !dials.is_empty() => {
                let (member, result) = joined.expect("dial tasks do not panic");
                let conn = result.map_err(|reason| MeshError::Connect {
                    index: member.index,
                    name: member.name.clone(),
                    reason,
                })?;
                links.push(PeerLink::new(member, conn));
            }
            incoming = party.endpoint.accept(), if !expected_incoming.is_empty() => {
                let Some(incoming) = incoming else {
                    return Err(MeshError::Bind("the endpoint closed while connecting".into()));
                };
                let conn = match incoming.await {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::debug!("incoming connection failed: {e}");
                        continue;
                    }
                };
                let key = EndpointKey(*conn.remote_id().as_bytes());
                match expected_incoming.remove(&key) {
                    Some(member) => links.push(PeerLink::new(member, conn)),
                    None => {
                        tracing::warn!("refused a connection from {}: not a party of this session", key.short());
                        CloseCode::NotInRoster.close(&conn, "you are not in this session's roster");
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                let mut missing: Vec<String> = expected_incoming.values().map(describe).collect();
                let connected: Vec<usize> = links.iter().map(|l| l.member.index).collect();
                missing.extend(roster.peers().filter(|m| m.index > own && !connected.contains(&m.index)).map(describe));
                return Err(MeshError::Timeout { secs: timeout.as_secs(), missing: missing.join(", ") });
            }
        }
    }
    links.sort_by_key(|l| l.member.index);
    Ok(links)
}

fn describe(member: &Member) -> String {
    format!("party {} ({})", member.index, member.name)
}
