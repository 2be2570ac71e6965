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

use std::time::Duration;

use iroh_relay::server::http_server::RelayService;
use iroh_relay::server::{CertConfig, QuicConfig, RelayConfig, Server, ServerConfig, TlsConfig};

use crate::ServerError;

/// How long a passed-through connection may take to become a relay connection.
const LOOPBACK_ESTABLISH: Duration = Duration::from_secs(30);

/// A running relay.
pub(crate) struct Relay {
    relay: Server,
    quic: Option<Server>,
    /// Plain HTTP on loopback into the same relay service, for the
    /// coordinator's same-origin `/relay` pass-through (see `web`).
    pub(crate) loopback_http: SocketAddr,
    loopback_task: tokio::task::JoinHandle<()>,
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
        let service = relay
            .relay_service()
            .cloned()
            .ok_or_else(|| ServerError::Relay {
                reason: "it runs no relay service".into(),
            })?;
        let loopback = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| ServerError::Relay {
                reason: format!("cannot open its loopback port: {e}"),
            })?;
        let loopback_http = loopback.local_addr().map_err(|e| ServerError::Relay {
            reason: format!("cannot open its loopback port: {e}"),
        })?;
        let loopback_task = tokio::spawn(serve_loopback(loopback, service));
        Ok(Self {
            relay,
            quic,
            loopback_http,
            loopback_task,
            https_addr,
            quic_port,
        })
    }

    /// Stops the relay and QUIC address discovery.
    pub(crate) async fn shutdown(self) {
        self.loopback_task.abort();
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

/// Serves relay connections passed through by the coordinator (already out of TLS).
async fn serve_loopback(listener: tokio::net::TcpListener, service: RelayService) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(
                    service
                        .clone()
                        .handle_connection(stream, None, LOOPBACK_ESTABLISH),
                );
            }
            Err(e) => tracing::warn!("relay loopback port: {e}"),
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
