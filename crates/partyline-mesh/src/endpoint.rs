//! Our iroh endpoint for one session.
//!
//! With several relays (the server's own and those it lists, e.g. in other
//! regions) iroh's net report measures each and makes the nearest our home
//! relay; peers reach us through the home relay we announce. One certificate
//! verifier checks every relay, so it accepts any of their pins: each came
//! from the pinned coordinator.
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use iroh::endpoint::presets;
use iroh::tls::CaTlsConfig;
use iroh::{Endpoint, RelayConfig, RelayMap, RelayMode, RelayUrl, SecretKey, Watcher};
use iroh_relay::RelayQuicConfig;
use partyline_proto::pin::PinnedCertVerifier;
use partyline_proto::relay_batches::RelayBatches;
use partyline_proto::transport::{CLOSE_LIMIT, ONLINE_TIMEOUT, PeerTimeout};
use partyline_wire::api::RelayInfo;
use partyline_wire::{CertPin, EndpointKey, WebRtcOffer};
use tokio_util::task::AbortOnDropHandle;

use crate::webrtc::WebRtcHost;
use crate::{ALPN, MeshError};

/// Where our session's relay is and how to trust it.
#[derive(Clone, Debug)]
pub struct MeshConfig {
    pub relay_url: String,
    pub relay_quic_port: Option<u16>,
    /// The UDP port of the server's STUN responder, on the relay's host: our
    /// WebRTC socket asks it for its server-reflexive address.
    pub stun_port: Option<u16>,
    pub pin: CertPin,
    /// More relays the server lists, each with its own pin.
    pub more_relays: Vec<RelayInfo>,
    /// No direct paths at all: every packet goes through the relay.
    pub relay_only: bool,
    /// The UDP port browser parties reach us on over WebRTC; `None` for
    /// any free one.
    pub webrtc_port: Option<u16>,
    /// Shown to the relay, which serves only the parties of live sessions on
    /// its server: the session id, which only invite holders know.
    pub relay_token: Option<String>,
    /// How long a silent peer is given before it counts as gone.
    pub peer_timeout: PeerTimeout,
}

/// Our endpoint: a fresh key for every session, our server's relays only.
#[derive(Clone, Debug)]
pub struct PartyEndpoint {
    pub(crate) endpoint: Endpoint,
    /// The relay we announce (see [`PartyEndpoint::relay_url`]).
    pub(crate) relay_url: RelayUrl,
    /// Every relay of the server: those a peer may announce.
    server_relays: Vec<RelayUrl>,
    /// Our end of browser parties' WebRTC data channels; `None` relay-only.
    pub(crate) webrtc: Option<WebRtc>,
}

/// The WebRTC host and its driver task, which ends with the last clone.
#[derive(Clone, Debug)]
pub(crate) struct WebRtc {
    pub(crate) host: WebRtcHost,
    _driver: Arc<AbortOnDropHandle<()>>,
}

/// How long we wait for the server's STUN answer, if it has not come by the
/// time we announce, before we announce without it: a round trip to a
/// server far away, with room. The question went out when we bound.
pub const REFLEXIVE_WAIT: Duration = Duration::from_millis(500);

/// How long finding the STUN responder's address (the relay's host name)
/// may take before we give up asking it.
const STUN_LOOKUP_LIMIT: Duration = Duration::from_secs(5);

impl PartyEndpoint {
    /// Binds the endpoint and waits until it is connected to its relay, so that
    /// peers can reach it the moment they learn its id.
    pub async fn bind(config: &MeshConfig) -> Result<Self, MeshError> {
        let mut party = Self::bind_offline(config).await?;
        // Named as configured, not as iroh normalises it.
        party
            .online()
            .await
            .map_err(|_| MeshError::RelayUnreachable {
                url: std::iter::once(config.relay_url.as_str())
                    .chain(config.more_relays.iter().map(|relay| relay.url.as_str()))
                    .collect::<Vec<_>>()
                    .join(", "),
                secs: ONLINE_TIMEOUT.as_secs(),
            })?;
        // With several relays, the one to announce is known only now.
        if let Some(home) = party.home_relay() {
            party.relay_url = home;
        }
        Ok(party)
    }

    /// Binds the endpoint and returns at once, while it connects to its relay
    /// (see [`PartyEndpoint::online`]): a party far from the relay announces
    /// itself and dials the roster's direct addresses meanwhile, instead of
    /// first waiting out the relay's probes and handshakes (ten round trips).
    pub async fn bind_offline(config: &MeshConfig) -> Result<Self, MeshError> {
        let relay_url: RelayUrl = config
            .relay_url
            .parse()
            .map_err(|_| MeshError::BadRelayUrl(config.relay_url.clone()))?;
        let relay_map = relay_map(config)?;
        let server_relays = relay_map.urls();
        let pin = config.pin;
        let more_pins: Vec<CertPin> = config.more_relays.iter().map(|relay| relay.pin).collect();
        let ca = CaTlsConfig::custom_server_cert_verifier(Arc::new(move |provider| {
            Ok(Arc::new(PinnedCertVerifier::any_of(
                pin,
                more_pins.clone(),
                &provider,
            )) as _)
        }));
        let mut builder = Endpoint::builder(presets::Minimal)
            .secret_key(SecretKey::generate())
            .relay_mode(RelayMode::Custom(relay_map))
            .ca_tls_config(ca)
            .transport_config(config.peer_timeout.transport_config())
            .alpns(vec![ALPN.to_vec()]);
        let webrtc = if config.relay_only {
            // Without UDP sockets iroh would relay every packet alone.
            builder = builder
                .clear_ip_transports()
                .add_custom_transport(Arc::new(RelayBatches));
            None
        } else {
            let port = config.webrtc_port.unwrap_or(0);
            let host = WebRtcHost::bind(port).map_err(|e| {
                MeshError::Bind(format!(
                    "cannot open UDP port {port} for browser parties' WebRTC: {e}"
                ))
            })?;
            builder = builder.add_custom_transport(Arc::new(host.clone()));
            let driver = Arc::new(AbortOnDropHandle::new(host.drive()));
            if let Some(port) = config.stun_port {
                host.ask_reflexive(stun_responder(relay_url.clone(), port));
            }
            Some(WebRtc {
                host,
                _driver: driver,
            })
        };
        let endpoint = builder
            .bind()
            .await
            .map_err(|e| MeshError::Bind(e.to_string()))?;
        Ok(Self {
            endpoint,
            relay_url,
            server_relays,
            webrtc,
        })
    }

    /// Waits until the endpoint is connected to its relay, at most
    /// [`ONLINE_TIMEOUT`]; on timeout the endpoint is closed.
    pub async fn online(&self) -> Result<(), MeshError> {
        if tokio::time::timeout(ONLINE_TIMEOUT, self.endpoint.online())
            .await
            .is_err()
        {
            self.endpoint.close().await;
            return Err(MeshError::RelayUnreachable {
                url: self.relay_url.to_string(),
                secs: ONLINE_TIMEOUT.as_secs(),
            });
        }
        Ok(())
    }

    pub fn key(&self) -> EndpointKey {
        EndpointKey(*self.endpoint.id().as_bytes())
    }

    /// The relay iroh made our home, once it is connected to it.
    fn home_relay(&self) -> Option<RelayUrl> {
        self.endpoint
            .home_relay_status()
            .get()
            .into_iter()
            .find(|status| status.is_connected())
            .map(|status| status.url().clone())
    }

    /// The relay we announce: our home relay if we waited for it
    /// ([`PartyEndpoint::bind`]), else the server's own.
    pub fn relay_url(&self) -> String {
        self.relay_url.to_string()
    }

    /// The relays a peer may be reached through: ours first, then every
    /// other relay of the server.
    pub(crate) fn relays(&self) -> Vec<RelayUrl> {
        std::iter::once(self.relay_url.clone())
            .chain(
                self.server_relays
                    .iter()
                    .filter(|relay| **relay != self.relay_url)
                    .cloned(),
            )
            .collect()
    }

    /// The round trip to each relay as iroh's latest net report measured
    /// it (the fastest of its probes), by relay URL; empty before the first
    /// report.
    pub fn relay_latencies(&self) -> BTreeMap<String, Duration> {
        let mut latencies = BTreeMap::new();
        if let Some(report) = self.endpoint.net_report().get() {
            for (_, url, latency) in report.relay_latency.iter() {
                latencies
                    .entry(url.to_string())
                    .and_modify(|best: &mut Duration| *best = (*best).min(latency))
                    .or_insert(latency);
            }
        }
        latencies
    }

    /// The direct addresses peers may try, as `ip:port` strings.
    pub fn direct_addrs(&self) -> Vec<String> {
        self.endpoint
            .addr()
            .ip_addrs()
            .map(|a| a.to_string())
            .collect()
    }

    /// What we announce so that browser parties can open a WebRTC data
    /// channel to us: candidates on our direct addresses, and the address
    /// the server's STUN responder saw our WebRTC socket come from (if its
    /// answer is not there yet, waited for [`REFLEXIVE_WAIT`] at most);
    /// `None` relay-only.
    pub async fn webrtc_offer(&self) -> Option<WebRtcOffer> {
        let webrtc = self.webrtc.as_ref()?;
        let reflexive = webrtc.host.reflexive_addr(REFLEXIVE_WAIT).await;
        let ips = self
            .endpoint
            .addr()
            .ip_addrs()
            .map(|a| a.ip())
            .collect::<Vec<_>>();
        Some(webrtc.host.offer(ips, reflexive))
    }

    /// Whether `ip` is one of our direct addresses: if the server saw our
    /// requests come from it, no NAT is on the way to us. Until iroh's first
    /// net report adds the public address it found, these are our
    /// interfaces' own.
    pub fn has_ip(&self, ip: IpAddr) -> bool {
        self.endpoint.addr().ip_addrs().any(|addr| addr.ip() == ip)
    }

    /// Closes every connection and waits briefly for the closes to be sent.
    pub async fn close(&self) {
        let _ = tokio::time::timeout(CLOSE_LIMIT, self.endpoint.close()).await;
    }
}

/// The server's STUN responder: `port` at the IPv4 address of the relay's
/// host (where it listens; our WebRTC socket is IPv4), if it can be found.
async fn stun_responder(relay: RelayUrl, port: u16) -> Option<std::net::SocketAddr> {
    let name = relay.host_str()?;
    let name = name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let lookup = tokio::net::lookup_host((name, port));
    let found = match tokio::time::timeout(STUN_LOOKUP_LIMIT, lookup).await {
        Ok(Ok(mut addrs)) => addrs.find(std::net::SocketAddr::is_ipv4),
        Ok(Err(e)) => {
            tracing::debug!("cannot find the STUN responder at {relay}: {e}");
            return None;
        }
        Err(_) => {
            tracing::debug!("looking up the STUN responder at {relay} took too long");
            return None;
        }
    };
    if found.is_none() {
        tracing::debug!("the relay's host has no IPv4 address to ask STUN");
    }
    found
}

/// The server's relay and the further relays it lists; every one of them is
/// shown the relay token.
fn relay_map(config: &MeshConfig) -> Result<RelayMap, MeshError> {
    let parse = |url: &str| -> Result<RelayUrl, MeshError> {
        url.parse()
            .map_err(|_| MeshError::BadRelayUrl(url.to_string()))
    };
    let mut relays = vec![RelayConfig::new(
        parse(&config.relay_url)?,
        config.relay_quic_port.map(RelayQuicConfig::new),
    )];
    for relay in &config.more_relays {
        relays.push(RelayConfig::new(
            parse(&relay.url)?,
            relay.quic_port.map(RelayQuicConfig::new),
        ));
    }
    let map: RelayMap = relays.into_iter().collect();
    Ok(match &config.relay_token {
        Some(token) => map.with_auth_token(token.clone()),
        None => map,
    })
}
