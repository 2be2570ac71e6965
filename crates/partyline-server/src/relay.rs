//! The iroh relay parties fall back on when they cannot reach each other
//! directly, and its QUIC address discovery.
//!
//! The relay is iroh's own server, run in this process with the coordinator's
//! certificate, so the pin in an invite covers the relay too. It runs as two
//! iroh servers: the relay proper (HTTPS over TCP, plus a plain-HTTP captive
//! portal probe on a port of its own), and QUIC address discovery (UDP),
//! which tells endpoints the address they are seen from. Keeping them apart
//! lets QUIC fall back to another port when the relay's port number is taken
//! on UDP, without restarting the relay.
use std::error::Error;
use std::net::SocketAddr;

use iroh_relay::server::{CertConfig, QuicConfig, RelayConfig, Server, ServerConfig, TlsConfig};

use crate::ServerError;

/// A running relay.
pub(crate) struct Relay {
    relay: Server,
    quic: Option<Server>,
    /// Where the relay serves HTTPS.
    pub(crate) https_addr: SocketAddr,
    /// The UDP port of QUIC address discovery, if it runs.
    pub(crate) quic_port: Option<u16>,
}

impl Relay {
    /// Starts the relay on `listen` (TCP), and QUIC address discovery on the
    /// same port number (UDP) if it is free, else on any port.
    pub(crate) async fn spawn(
        listen: SocketAddr,
        tls: rustls::ServerConfig,
    ) -> Result<Self, ServerError> {
        let mut relay_config = RelayConfig::new(SocketAddr::new(listen.ip(), 0));
        relay_config.tls = Some(TlsConfig::new(
            listen,
            CertConfig::Manual {
                server_config: tls.clone(),
            },
        ));
        let mut config = ServerConfig::default();
        config.relay = Some(relay_config);
        let relay = Server::spawn(config).await.map_err(|e| {
            if is_addr_in_use(&e) {
                ServerError::RelayPortInUse {
                    port: listen.port(),
                }
            } else {
                ServerError::Relay {
                    reason: error_chain(&e),
                }
            }
        })?;
        let https_addr = relay.https_addr().ok_or_else(|| ServerError::Relay {
            reason: "it serves no HTTPS".into(),
        })?;

        let mut quic = None;
        for port in [https_addr.port(), 0] {
            match spawn_quic(SocketAddr::new(listen.ip(), port), tls.clone()).await {
                Ok(server) => {
                    quic = Some(server);
                    break;
                }
                Err(e) => tracing::warn!(port, "QUIC address discovery did not start: {e}"),
            }
        }
        let quic_port = quic.as_ref().and_then(|q| q.quic_addr()).map(|a| a.port());
        Ok(Self {
            relay,
            quic,
            https_addr,
            quic_port,
        })
    }

    /// Stops the relay and QUIC address discovery.
    pub(crate) async fn shutdown(self) {
        if let Err(e) = self.relay.shutdown().await {
            tracing::warn!("relay did not stop cleanly: {e}");
        }
        if let Some(quic) = self.quic
            && let Err(e) = quic.shutdown().await
        {
            tracing::warn!("QUIC address discovery did not stop cleanly: {e}");
        }
    }
}

async fn spawn_quic(bind: SocketAddr, tls: rustls::ServerConfig) -> Result<Server, String> {
    let mut quic = QuicConfig::new(bind);
    quic.server_config = Some(tls);
    let mut config = ServerConfig::default();
    config.quic = Some(quic);
    Server::spawn(config).await.map_err(|e| error_chain(&e))
}

/// iroh's errors say what failed at each level; the whole chain says why.
fn error_chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn is_addr_in_use(error: &(dyn Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::AddrInUse)
        {
            return true;
        }
        current = e.source();
    }
    false
}
