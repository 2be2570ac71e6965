//! Connecting to exactly the parties of the verified roster.
//!
//! Party i dials every party j > i and accepts from every party j < i, the
//! same pattern MPyC uses, so each pair has exactly one connection and no one
//! has to break ties. An incoming connection is kept only if its key belongs
//! to a lower seat of the roster; the QUIC handshake has already proven the
//! key. Anyone else is closed at once with [`CloseCode::NotInRoster`].
//!
//! Nothing is spawned, so the same code runs on a multi-threaded runtime and
//! in the browser's single thread.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use iroh::endpoint::Connection;
use iroh::{Endpoint, EndpointAddr, EndpointId, RelayUrl};
use n0_future::{FuturesUnordered, StreamExt};
use partyline_wire::{EndpointKey, Member, Roster};

use crate::{ALPN, CloseCode};

/// How we reach a member of the roster.
#[derive(Clone, Debug)]
pub enum Dialing {
    /// By what the member announced: its relay and its direct addresses
    /// (native parties).
    AsAnnounced,
    /// Through this relay only, whatever the member announced: a browser may
    /// talk to its own origin only, where the session's relay is served, and
    /// every member is connected to that relay.
    ThroughRelay(RelayUrl),
}

impl Dialing {
    fn addr(&self, member: &Member) -> Result<EndpointAddr, String> {
        let id = EndpointId::from_bytes(&member.endpoint.0)
            .map_err(|e| format!("its endpoint id is not a valid key: {e}"))?;
        let mut addr = EndpointAddr::new(id);
        match self {
            Dialing::ThroughRelay(relay) => addr = addr.with_relay_url(relay.clone()),
            Dialing::AsAnnounced => {
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
            }
        }
        Ok(addr)
    }
}

/// Why the connections to the roster's peers could not all be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error("could not connect to party {index} ({name}): {reason}")]
    Dial {
        index: usize,
        name: String,
        reason: String,
    },
    #[error("the network endpoint closed while connecting")]
    EndpointClosed,
    #[error(
        "gave up after {secs}s waiting for connections from: {missing}; they may have lost their network or quit"
    )]
    Timeout { secs: u64, missing: String },
}

/// Connects to every peer of the roster within `timeout` and returns the
/// connections in seat order.
///
/// On failure the connections already made are closed with
/// [`CloseCode::Aborted`] and the reason, so those peers learn at once why
/// the session will not start.
pub async fn connect_all(
    endpoint: &Endpoint,
    roster: &Roster,
    dialing: &Dialing,
    timeout: Duration,
) -> Result<Vec<(Member, Connection)>, ConnectError> {
    let own = roster.own_index;
    let mut links: Vec<(Member, Connection)> = Vec::new();
    let mut expected_incoming: BTreeMap<EndpointKey, Member> = roster
        .peers()
        .filter(|m| m.index < own)
        .map(|m| (m.endpoint, m.clone()))
        .collect();
    let mut dials: FuturesUnordered<_> = roster
        .peers()
        .filter(|m| m.index > own)
        .map(|member| async move {
            let result = match dialing.addr(member) {
                Ok(addr) => endpoint
                    .connect(addr, ALPN)
                    .await
                    .map_err(|e| e.to_string()),
                Err(reason) => Err(reason),
            };
            (member, result)
        })
        .collect();

    let connecting = async {
        while !dials.is_empty() || !expected_incoming.is_empty() {
            tokio::select! {
                biased;
                Some((member, result)) = dials.next(), if !dials.is_empty() => {
                    let conn = result.map_err(|reason| ConnectError::Dial {
                        index: member.index,
                        name: member.name.clone(),
                        reason,
                    })?;
                    links.push((member.clone(), conn));
                }
                incoming = endpoint.accept(), if !expected_incoming.is_empty() => {
                    let Some(incoming) = incoming else {
                        return Err(ConnectError::EndpointClosed);
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
                        Some(member) => links.push((member, conn)),
                        None => {
                            tracing::warn!("refused a connection from {}: not a party of this session", key.short());
                            CloseCode::NotInRoster.close(&conn, "you are not in this session's roster");
                        }
                    }
                }
            }
        }
        Ok(())
    };
    let result = match n0_future::time::timeout(timeout, connecting).await {
        Ok(result) => result,
        Err(_) => {
            let missing: Vec<String> = roster
                .peers()
                .filter(|m| !links.iter().any(|(l, _)| l.index == m.index))
                .map(|m| format!("party {} ({})", m.index, m.name))
                .collect();
            Err(ConnectError::Timeout {
                secs: timeout.as_secs(),
                missing: missing.join(", "),
            })
        }
    };
    match result {
        Ok(()) => {
            links.sort_by_key(|(m, _)| m.index);
            Ok(links)
        }
        Err(error) => {
            let reason = format!(
                "{} could not connect to every party: {error}",
                roster.own().name
            );
            for (_, conn) in &links {
                CloseCode::Aborted.close(conn, &reason);
            }
            Err(error)
        }
    }
}
