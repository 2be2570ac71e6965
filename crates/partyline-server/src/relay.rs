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
use std::collections::HashMap;
use std::error::Error;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use iroh_base::EndpointId;
use iroh_relay::server::http_server::RelayService;
use iroh_relay::server::{
    Access, AccessControl, CertConfig, ClientRateLimit, ClientRequest, ConnectionId, Limits,
    QuicConfig, RelayConfig, Server, ServerConfig, TlsConfig,
};
use partyline_wire::{EndpointKey, SessionId};

use crate::ServerError;
use crate::api::unix_secs;
use crate::store::Store;
use crate::upstream::Upstream;

/// How many seconds of a client's rate it may send at once.
const BURST_SECONDS: NonZeroU32 = NonZeroU32::new(4).expect("4 is not 0");
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
    /// `gate` decides who may use it; `bytes_per_second` (0: no limit) is
    /// how fast one client may send through it, with bursts of a few seconds.
    pub(crate) async fn spawn(
        listen: SocketAddr,
        tls: rustls::ServerConfig,
        gate: Arc<RelayGate>,
        bytes_per_second: u32,
    ) -> Result<Self, ServerError> {
        let mut relay_config = RelayConfig::new(SocketAddr::new(listen.ip(), 0));
        relay_config.tls = Some(TlsConfig::new(
            listen,
            CertConfig::Manual {
                server_config: tls.clone(),
            },
        ));
        relay_config.access = gate.clone();
        let mut limits = Limits::default();
        limits.client_rx = NonZeroU32::new(bytes_per_second).map(|rate| {
            let mut limit = ClientRateLimit::new(rate);
            limit.max_burst_bytes = rate.checked_mul(BURST_SECONDS);
            limit
        });
        relay_config.limits = limits;
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
        let _ = gate.service.set(service.clone());
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
pub(crate) fn error_chain(error: &dyn Error) -> String {
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

/// Where the gate learns which sessions are live.
enum Sessions {
    /// This server's own database.
    Store(Store),
    /// The coordinator of a relay of its own (`partyline relay`), asked over
    /// HTTPS with the relay token.
    Coordinator(Arc<Upstream>),
}

/// Who may use the relay: the parties of live sessions on its coordinator,
/// and no one else (a public relay would carry strangers' traffic on our bill).
///
/// An endpoint is admitted when it is announced in a session that is alive
/// and not done, or when it shows the id of such a session as its relay
/// token (only invite holders know it): a party connects to the relay before
/// it announces, so that peers can reach it as soon as they learn its id. A
/// session admits at most [`CONNECTIONS_PER_PARTY`] connections per party.
/// The gate remembers which session admitted each connection and drops them
/// when the session ends: at once for a party that withdraws, a grace after
/// `done` (the others' last packets may still be on their way), and when the
/// session expires.
pub(crate) struct RelayGate {
    sessions: Sessions,
    /// Off for a server only this machine uses (`Quotas::unlimited`).
    gated: bool,
    service: OnceLock<RelayService>,
    admitted: Mutex<Admitted>,
}

impl std::fmt::Debug for RelayGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayGate")
            .field("gated", &self.gated)
            .finish_non_exhaustive()
    }
}

/// How many relay connections one party may hold: iroh may open a new one
/// before the old one is gone, and a browser party counts like a native one.
const CONNECTIONS_PER_PARTY: usize = 3;

#[derive(Debug, Default)]
struct Admitted {
    sessions: HashMap<SessionId, Vec<(EndpointId, ConnectionId)>>,
    connections: HashMap<ConnectionId, SessionId>,
}

impl RelayGate {
    pub(crate) fn new(store: Store, gated: bool) -> Arc<Self> {
        Self::with_sessions(Sessions::Store(store), gated)
    }

    /// The gate of a relay of its own, which asks `coordinator`.
    pub(crate) fn asking(coordinator: Arc<Upstream>) -> Arc<Self> {
        Self::with_sessions(Sessions::Coordinator(coordinator), true)
    }

    fn with_sessions(sessions: Sessions, gated: bool) -> Arc<Self> {
        Arc::new(Self {
            sessions,
            gated,
            service: OnceLock::new(),
            admitted: Mutex::default(),
        })
    }

    /// Drops every relay connection that session `id` admitted.
    pub(crate) fn end_session(&self, id: SessionId) {
        let ended = self
            .admitted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .sessions
            .remove(&id)
            .unwrap_or_default();
        self.disconnect(ended);
    }

    /// Drops the relay connections of one party of session `id`.
    pub(crate) fn end_party(&self, id: SessionId, endpoint: EndpointKey) {
        let mut admitted = self.admitted.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(connections) = admitted.sessions.get_mut(&id) else {
            return;
        };
        let (ended, kept) = std::mem::take(connections)
            .into_iter()
            .partition(|(admitted, _)| *admitted.as_bytes() == endpoint.0);
        *connections = kept;
        drop(admitted);
        self.disconnect(ended);
    }

    fn disconnect(&self, connections: Vec<(EndpointId, ConnectionId)>) {
        let Some(service) = self.service.get() else {
            return;
        };
        for (endpoint, connection) in connections {
            service.clients().disconnect(endpoint, Some(connection));
        }
    }

    /// The sessions that admitted the connections the relay holds.
    pub(crate) fn sessions_served(&self) -> Vec<SessionId> {
        let admitted = self.admitted.lock().unwrap_or_else(PoisonError::into_inner);
        admitted.sessions.keys().copied().collect()
    }

    /// The live session that lets `request` in, with its party count.
    async fn session_for(&self, request: &ClientRequest) -> Option<(SessionId, u16)> {
        let endpoint = EndpointKey(*request.endpoint_id().as_bytes());
        let token = request.auth_token();
        match &self.sessions {
            Sessions::Store(store) => live_session_for(store, endpoint, token.as_deref()).await,
            Sessions::Coordinator(coordinator) => coordinator.admit(endpoint, token).await,
        }
    }
}

/// The live session that admits `endpoint` to a relay: the one whose id it
/// shows as `token`, else one it is announced in; with its party count.
pub(crate) async fn live_session_for(
    store: &Store,
    endpoint: EndpointKey,
    token: Option<&str>,
) -> Option<(SessionId, u16)> {
    let now = unix_secs();
    if let Some(id) = token.and_then(|token| token.parse().ok())
        && let Ok(Some(parties)) = store.relay_session(id, now).await
    {
        return Some((id, parties));
    }
    store.session_of(endpoint, now).await.ok().flatten()
}

impl AccessControl for RelayGate {
    async fn on_connect(&self, request: &ClientRequest) -> Access {
        if !self.gated {
            return Access::Allow;
        }
        let Some((id, parties)) = self.session_for(request).await else {
            tracing::debug!(endpoint = %request.endpoint_id().fmt_short(), "relay refused a stranger");
            return Access::Deny {
                reason: Some(
                    "this relay serves only the parties of live sessions on its coordinator".into(),
                ),
            };
        };
        let mut admitted = self.admitted.lock().unwrap_or_else(PoisonError::into_inner);
        let connections = admitted.sessions.entry(id).or_default();
        if connections.len() >= usize::from(parties) * CONNECTIONS_PER_PARTY {
            return Access::Deny {
                reason: Some(format!(
                    "session {id} holds all the relay connections it may"
                )),
            };
        }
        connections.push((request.endpoint_id(), request.connection_id()));
        admitted.connections.insert(request.connection_id(), id);
        Access::Allow
    }

    fn on_disconnect(&self, _endpoint: EndpointId, connection: ConnectionId) {
        let mut admitted = self.admitted.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(id) = admitted.connections.remove(&connection)
            && let Some(connections) = admitted.sessions.get_mut(&id)
        {
            connections.retain(|(_, admitted)| *admitted != connection);
            if connections.is_empty() {
                admitted.sessions.remove(&id);
            }
        }
    }
}
