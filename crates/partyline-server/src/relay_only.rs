//! A relay of its own, without a coordinator (`partyline relay`): one more
//! region's relay for the sessions of a coordinator elsewhere.
//!
//! It has its own certificate, pinned like the coordinator's (the
//! coordinator lists it with its pin in `/v1/info`, which parties read from
//! the pinned coordinator), and it keeps the coordinator's rule that only
//! the parties of live sessions may use a relay: it asks the coordinator,
//! with the relay token, whom to admit (`upstream`), and every
//! [`LIVE_CHECK`] which of the sessions it serves are still live. A session
//! that has not been live for the grace loses its connections, as on the
//! coordinator's own relay.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use partyline_wire::{CertPin, RelayToken, ServerUrl, SessionId};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::relay::{Relay, RelayGate};
use crate::tls::{Identity, certificate_error};
use crate::upstream::Upstream;
use crate::{ServerError, check_url, default_data_dir, local_url};

/// How often the relay asks which of its sessions are still live.
pub const LIVE_CHECK: Duration = Duration::from_secs(10);

/// How to run a relay of its own.
#[derive(Clone, Debug)]
pub struct RelayOnlyConfig {
    /// Where the relay serves HTTPS (TCP); its QUIC address discovery takes
    /// the same port number on UDP if it is free.
    pub listen: SocketAddr,
    /// The relay's URL as parties reach it. By default the listening address.
    pub public_url: Option<String>,
    /// Holds the relay's TLS certificate; created if missing.
    pub data_dir: PathBuf,
    /// The coordinator whose sessions the relay serves, and its pin.
    pub coordinator: ServerUrl,
    pub coordinator_pin: CertPin,
    /// The token the coordinator was given with `--relay-token`.
    pub token: RelayToken,
    /// How fast one client may send through the relay (0: no limit).
    pub bytes_per_second: u32,
    /// How long the parties of a session that is no longer live keep their
    /// relay connections.
    pub grace: Duration,
    /// A certificate (PEM chain) and key to serve instead of the self-signed one.
    pub tls_files: Option<(PathBuf, PathBuf)>,
}

impl RelayOnlyConfig {
    pub fn new(coordinator: ServerUrl, coordinator_pin: CertPin, token: RelayToken) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7702)),
            public_url: None,
            data_dir: default_data_dir().join("relay"),
            coordinator,
            coordinator_pin,
            token,
            bytes_per_second: 0,
            grace: Duration::from_secs(30),
            tls_files: None,
        }
    }
}

/// A running relay of its own; [`RunningRelay::shutdown`] stops it.
pub struct RunningRelay {
    url: ServerUrl,
    pin: CertPin,
    quic_port: Option<u16>,
    relay: Relay,
    stop: DropGuard,
    checker: JoinHandle<()>,
}

impl std::fmt::Debug for RunningRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningRelay")
            .field("url", &self.url)
            .field("pin", &self.pin)
            .finish_non_exhaustive()
    }
}

impl RunningRelay {
    /// The relay's public URL, `https://host:port`.
    pub fn url(&self) -> &ServerUrl {
        &self.url
    }

    /// The SHA-256 of the relay's certificate.
    pub fn pin(&self) -> CertPin {
        self.pin
    }

    /// The UDP port of its QUIC address discovery, if it runs.
    pub fn quic_port(&self) -> Option<u16> {
        self.quic_port
    }

    /// `https://host:port#sha256=<pin>`: what `partyline serve --relay` takes.
    pub fn relay_link(&self) -> String {
        format!("{}#sha256={}", self.url, self.pin)
    }

    pub async fn shutdown(self) {
        let Self {
            relay,
            stop,
            checker,
            ..
        } = self;
        drop(stop);
        if let Err(e) = checker.await {
            tracing::warn!("live-session check failed: {e}");
        }
        relay.shutdown().await;
        tracing::info!("relay stopped");
    }
}

/// Starts a relay of its own. It refuses to start if the coordinator
/// refuses its token; a coordinator it cannot reach yet only delays its
/// first admissions.
pub async fn start_relay(config: RelayOnlyConfig) -> Result<RunningRelay, ServerError> {
    let data_dir = &config.data_dir;
    std::fs::create_dir_all(data_dir).map_err(|source| ServerError::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    let public_url = config.public_url.as_deref().map(check_url).transpose()?;
    let names: Vec<String> = public_url
        .iter()
        .map(|url| {
            let host = url.host();
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string()
        })
        .collect();
    let identity = match &config.tls_files {
        Some((cert, key)) => Identity::from_files(cert, key)?,
        None => Identity::load_or_create(data_dir, &names)?,
    };
    let tls = identity
        .server_config(&[])
        .map_err(|reason| certificate_error(data_dir, reason))?;

    let upstream = Arc::new(Upstream::new(
        config.coordinator.clone(),
        config.coordinator_pin,
        &config.token,
    ));
    match upstream.live(Vec::new()).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return Err(ServerError::RelayTokenRefused {
                coordinator: config.coordinator.to_string(),
            });
        }
        Err(reason) => tracing::warn!(
            coordinator = %config.coordinator,
            "cannot reach the coordinator yet ({reason}); the relay admits no one until it can"
        ),
    }
    let gate = RelayGate::asking(upstream.clone());
    let relay = Relay::spawn(config.listen, tls, gate.clone(), config.bytes_per_second).await?;
    if relay.quic_port != Some(relay.https_addr.port()) {
        tracing::warn!(
            quic_port = ?relay.quic_port,
            "QUIC address discovery does not run on the relay's port number, where parties look for it: free UDP port {}",
            relay.https_addr.port()
        );
    }
    let url = public_url.unwrap_or_else(|| local_url(relay.https_addr));
    let stopping = CancellationToken::new();
    let checker = tokio::spawn(check_live_sessions(
        gate,
        upstream,
        config.grace,
        stopping.clone(),
    ));
    tracing::info!(%url, pin = %identity.pin, coordinator = %config.coordinator, "partyline relay running");
    Ok(RunningRelay {
        url,
        pin: identity.pin,
        quic_port: relay.quic_port,
        relay,
        stop: stopping.drop_guard(),
        checker,
    })
}

/// Drops the connections of sessions that have not been live for `grace`.
async fn check_live_sessions(
    gate: Arc<RelayGate>,
    upstream: Arc<Upstream>,
    grace: Duration,
    stopping: CancellationToken,
) {
    let mut not_live_since: HashMap<SessionId, Instant> = HashMap::new();
    let mut every = tokio::time::interval(LIVE_CHECK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = stopping.cancelled() => return,
        }
        let served = gate.sessions_served();
        not_live_since.retain(|id, _| served.contains(id));
        if served.is_empty() {
            continue;
        }
        let live = match upstream.live(served.clone()).await {
            Ok(Some(live)) => live,
            Ok(None) => {
                tracing::warn!(coordinator = %upstream.url(), "the coordinator no longer takes this relay's token");
                continue;
            }
            Err(reason) => {
                tracing::warn!(coordinator = %upstream.url(), "cannot ask which sessions are live: {reason}");
                continue;
            }
        };
        let now = Instant::now();
        for id in served {
            if live.contains(&id) {
                not_live_since.remove(&id);
                continue;
            }
            let since = *not_live_since.entry(id).or_insert(now);
            if now.duration_since(since) >= grace {
                tracing::debug!(session = %id, "session over: dropping its relay connections");
                gate.end_session(id);
                not_live_since.remove(&id);
            }
        }
    }
}
