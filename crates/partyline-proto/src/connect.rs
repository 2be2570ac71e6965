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
use std::collections::{BTreeMap, BTreeSet};
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::time::Duration;

use iroh::endpoint::Connection;
use iroh::{Endpoint, EndpointAddr, EndpointId, RelayUrl, TransportAddr};
use n0_future::{FuturesUnordered, StreamExt};
use partyline_wire::{EndpointKey, Member, Roster};

use crate::{ALPN, CloseCode, webrtc};

/// Incoming handshakes in progress at once: strangers dialling our endpoint
/// can hold no more of our memory than this.
const MAX_HANDSHAKES: usize = 64;

/// How we reach a member of the roster.
///
/// Never through a relay a member announces unless the server lists it
/// (the server's info, read from the pinned server): so no party can make
/// the others connect to a relay of its choosing (one that logs who talks
/// to whom, or stalls the handshake).
#[derive(Clone, Debug)]
pub enum Dialing {
    /// Through one of the server's relays and the direct addresses the
    /// member announced (native parties): the relay it announced if it is
    /// one of these (a server may list relays in several regions, and each
    /// party is at home at its nearest), else the first.
    RelayAndDirect(Vec<RelayUrl>),
    /// Through this relay only, whatever the member announced: a browser may
    /// talk to its own origin only, where the session's relay is served, and
    /// every member is connected to that relay.
    ThroughRelay(RelayUrl),
    /// By the direct addresses the member announced only: endpoints without
    /// a relay (on one host, in tests).
    Direct,
}

impl Dialing {
    /// The member over its open WebRTC data channel only: were the relay
    /// also given, iroh would send the first packet both ways and keep
    /// whichever path answered first, often the relay.
    fn webrtc_addr(member: &Member) -> Result<EndpointAddr, String> {
        let id = EndpointId::from_bytes(&member.endpoint.0)
            .map_err(|e| format!("its endpoint id is not a valid key: {e}"))?;
        Ok(EndpointAddr::from_parts(
            id,
            [TransportAddr::Custom(webrtc::peer_addr(&member.endpoint))],
        ))
    }

    fn addr(&self, member: &Member) -> Result<EndpointAddr, String> {
        let id = EndpointId::from_bytes(&member.endpoint.0)
            .map_err(|e| format!("its endpoint id is not a valid key: {e}"))?;
        let announced = member
            .relay_url
            .as_deref()
            .and_then(|url| url.parse::<RelayUrl>().ok());
        let relay = match self {
            Dialing::ThroughRelay(relay) => Some(relay),
            Dialing::RelayAndDirect(relays) => announced
                .as_ref()
                .and_then(|announced| relays.iter().find(|relay| *relay == announced))
                .or(relays.first()),
            Dialing::Direct => None,
        };
        if let Some(announced) = &member.relay_url
            && announced.parse::<RelayUrl>().ok().as_ref() != relay
        {
            tracing::warn!(
                "party {} ({}) announced the relay {announced:?}; not dialling it",
                member.index,
                member.name
            );
        }
        let mut addr = EndpointAddr::new(id);
        if let Some(relay) = relay {
            addr = addr.with_relay_url(relay.clone());
        }
        if !matches!(self, Dialing::ThroughRelay(_)) {
            for ip in &member.addrs {
                if let Ok(sock) = ip.parse::<SocketAddr>() {
                    addr = addr.with_ip_addr(sock);
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
/// connections in seat order. Peers in `over_webrtc` (their data channel is
/// open) are dialled over it, and through the relay if that fails.
///
/// On failure the connections already made are closed with
/// [`CloseCode::Aborted`] and the reason, so those peers learn at once why
/// the session will not start.
pub async fn connect_all(
    endpoint: &Endpoint,
    roster: &Roster,
    dialing: &Dialing,
    over_webrtc: &BTreeSet<EndpointKey>,
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
            if over_webrtc.contains(&member.endpoint) {
                let direct = match Dialing::webrtc_addr(member) {
                    Ok(addr) => endpoint
                        .connect(addr, ALPN)
                        .await
                        .map_err(|e| e.to_string()),
                    Err(reason) => Err(reason),
                };
                match direct {
                    Ok(conn) => return (member, Ok(conn)),
                    Err(reason) => tracing::warn!(
                        "could not connect to party {} ({}) over WebRTC: {reason}; trying the relay",
                        member.index,
                        member.name
                    ),
                }
            }
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

    // Incoming handshakes run side by side: one at a time, a party that
    // accepts from k peers across an ocean would wait k round trips.
    let mut handshakes = FuturesUnordered::new();
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
                Some(handshake) = handshakes.next(), if !handshakes.is_empty() => {
                    let conn: Connection = match handshake {
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
                incoming = endpoint.accept(),
                    if !expected_incoming.is_empty() && handshakes.len() < MAX_HANDSHAKES =>
                {
                    let Some(incoming) = incoming else {
                        return Err(ConnectError::EndpointClosed);
                    };
                    handshakes.push(incoming.into_future());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn member(relay_url: Option<&str>, addrs: &[&str]) -> Member {
        Member {
            index: 1,
            name: "mallory".into(),
            endpoint: EndpointKey(*iroh::SecretKey::from_bytes(&[3; 32]).public().as_bytes()),
            relay_url: relay_url.map(str::to_string),
            addrs: addrs.iter().map(|a| a.to_string()).collect(),
            identity: None,
            webrtc: None,
        }
    }

    fn server_relay() -> RelayUrl {
        "https://127.0.0.1:7701".parse().unwrap()
    }

    #[test]
    fn an_announced_foreign_relay_is_never_dialled() {
        let foreign = member(Some("https://relay.attacker.example"), &["192.0.2.7:4433"]);
        for dialing in [
            Dialing::RelayAndDirect(vec![server_relay()]),
            Dialing::ThroughRelay(server_relay()),
        ] {
            let addr = dialing.addr(&foreign).unwrap();
            assert_eq!(
                addr.relay_urls().collect::<Vec<_>>(),
                vec![&server_relay()],
                "{dialing:?}"
            );
        }
    }

    #[test]
    fn a_member_is_dialled_at_the_servers_relay_it_announced() {
        let regional: RelayUrl = "https://10.0.0.9:7702".parse().unwrap();
        let relays = Dialing::RelayAndDirect(vec![server_relay(), regional.clone()]);
        let there = relays
            .addr(&member(Some("https://10.0.0.9:7702"), &[]))
            .unwrap();
        assert_eq!(there.relay_urls().collect::<Vec<_>>(), vec![&regional]);
        let foreign = relays
            .addr(&member(Some("https://relay.attacker.example"), &[]))
            .unwrap();
        assert_eq!(
            foreign.relay_urls().collect::<Vec<_>>(),
            vec![&server_relay()]
        );
    }

    #[test]
    fn natives_also_dial_announced_direct_addresses_browsers_do_not() {
        let honest = member(
            Some("https://127.0.0.1:7701"),
            &["192.0.2.7:4433", "not an address"],
        );
        let direct = Dialing::RelayAndDirect(vec![server_relay()])
            .addr(&honest)
            .unwrap();
        assert_eq!(
            direct.ip_addrs().map(|a| a.to_string()).collect::<Vec<_>>(),
            vec!["192.0.2.7:4433"]
        );
        let relayed = Dialing::ThroughRelay(server_relay()).addr(&honest).unwrap();
        assert_eq!(relayed.ip_addrs().count(), 0);
        assert_eq!(
            relayed.relay_urls().collect::<Vec<_>>(),
            vec![&server_relay()]
        );
    }

    #[test]
    fn without_a_relay_only_direct_addresses_are_dialled() {
        let foreign = member(Some("https://relay.attacker.example"), &["192.0.2.7:4433"]);
        let addr = Dialing::Direct.addr(&foreign).unwrap();
        assert_eq!(addr.relay_urls().count(), 0);
        assert_eq!(addr.ip_addrs().count(), 1);
    }

    #[test]
    fn a_member_without_a_relay_is_reached_through_the_servers() {
        let addr = Dialing::RelayAndDirect(vec![server_relay()])
            .addr(&member(None, &[]))
            .unwrap();
        assert_eq!(addr.relay_urls().collect::<Vec<_>>(), vec![&server_relay()]);
    }
}
