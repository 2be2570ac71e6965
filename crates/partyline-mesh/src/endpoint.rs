//! Our iroh endpoint for one session.
use std::sync::Arc;

use iroh::endpoint::presets;
use iroh::tls::CaTlsConfig;
use iroh::{Endpoint, RelayConfig, RelayMode, RelayUrl, SecretKey};
use iroh_relay::RelayQuicConfig;
use partyline_proto::pin::PinnedCertVerifier;
use partyline_proto::transport::{CLOSE_LIMIT, ONLINE_TIMEOUT, PeerTimeout};
use partyline_wire::{CertPin, EndpointKey};

use crate::{ALPN, MeshError};

/// Where our session's relay is and how to trust it.
#[derive(Clone, Debug)]
pub struct MeshConfig {
    pub relay_url: String,
    pub relay_quic_port: Option<u16>,
    pub pin: CertPin,
    /// No direct paths at all: every packet goes through the relay.
    pub relay_only: bool,
    /// Shown to the relay, which serves only the parties of live sessions on
    /// its server: the session id, which only invite holders know.
    pub relay_token: Option<String>,
    /// How long a silent peer is given before it counts as gone.
    pub peer_timeout: PeerTimeout,
}

/// Our endpoint: a fresh key for every session, our relay only.
#[derive(Clone, Debug)]
pub struct PartyEndpoint {
    pub(crate) endpoint: Endpoint,
    pub(crate) relay_url: RelayUrl,
}

impl PartyEndpoint {
    /// Binds the endpoint and waits until it is connected to its relay, so that
    /// peers can reach it the moment they learn its id.
    pub async fn bind(config: &MeshConfig) -> Result<Self, MeshError> {
        let party = Self::bind_offline(config).await?;
        // Named as configured, not as iroh normalises it.
        party
            .online()
            .await
            .map_err(|_| MeshError::RelayUnreachable {
                url: config.relay_url.clone(),
                secs: ONLINE_TIMEOUT.as_secs(),
            })?;
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
        let quic = config.relay_quic_port.map(RelayQuicConfig::new);
        let mut relay = RelayConfig::new(relay_url.clone(), quic);
        if let Some(token) = &config.relay_token {
            relay = relay.with_auth_token(token.clone());
        }
        let relay_map = relay.into();
        let pin = config.pin;
        let ca = CaTlsConfig::custom_server_cert_verifier(Arc::new(move |provider| {
            Ok(Arc::new(PinnedCertVerifier::new(pin, &provider)) as _)
        }));
        let mut builder = Endpoint::builder(presets::Minimal)
            .secret_key(SecretKey::generate())
            .relay_mode(RelayMode::Custom(relay_map))
            .ca_tls_config(ca)
            .transport_config(config.peer_timeout.transport_config())
            .alpns(vec![ALPN.to_vec()]);
        if config.relay_only {
            builder = builder.clear_ip_transports();
        }
        let endpoint = builder
            .bind()
            .await
            .map_err(|e| MeshError::Bind(e.to_string()))?;
        Ok(Self {
            endpoint,
            relay_url,
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

    pub fn relay_url(&self) -> String {
        self.relay_url.to_string()
    }

    /// The direct addresses peers may try, as `ip:port` strings.
    pub fn direct_addrs(&self) -> Vec<String> {
        self.endpoint
            .addr()
            .ip_addrs()
            .map(|a| a.to_string())
            .collect()
    }

    /// Closes every connection and waits briefly for the closes to be sent.
    pub async fn close(&self) {
        let _ = tokio::time::timeout(CLOSE_LIMIT, self.endpoint.close()).await;
    }
}
