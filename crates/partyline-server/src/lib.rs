//! partyline's server: the session coordinator and an iroh relay, in one process.
//!
//! A party creates a session here and puts its id in the invite. Every party
//! then announces itself (name, iroh endpoint, addresses) and waits until all
//! have; after that the parties talk to each other directly with iroh, or
//! through the relay when they cannot. The announcements are authenticated
//! with a key derived from the invite secret, which the server never sees: it
//! stores and forwards them, and can neither forge nor check them.
//!
//! Both the coordinator and the relay serve one self-signed certificate;
//! parties trust it because the invite carries its SHA-256 (the pin).
//!
//! ```no_run
//! # async fn run() -> Result<(), partyline_server::ServerError> {
//! let server = partyline_server::start(partyline_server::ServerConfig::default()).await?;
//! println!("partyline create --server '{}'", server.server_link());
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - this file: the configuration, [`start`], which binds the ports and wires
//!   the parts together, and [`RunningServer`], which stops them.
//! - `tls`: the certificate, made on first start and kept in the data directory.
//! - `store`: sessions and announcements in the database; all state lives there.
//! - `database`: the two databases the store runs on (SQLite, the embedded
//!   default, and PostgreSQL, shared by several processes), and migrations.
//! - `api`: the HTTP handlers of the coordinator's JSON API.
//! - `code_relay`: the HTTP handlers of short codes: nameplates, and the
//!   PAKE messages relayed between a code's host and its joiners.
//! - `nameplates`: nameplates and code exchanges in the database.
//! - `changes`: in-memory doorbells that wake long-polls when a session changes.
//! - `cluster`: the events (changes, parties leaving, sessions ending) that
//!   processes sharing a PostgreSQL database tell each other (LISTEN/NOTIFY).
//! - `limits`: the quotas: rates per client and in all, things held open.
//! - `admission`: what each request costs before it reaches a handler.
//! - `connections`: the connection quota and the first-byte timeout.
//! - `expiry`: the background sweep that deletes expired sessions.
//! - `relay`: iroh's relay server and its QUIC address discovery.
//! - `relay_only`: a relay of its own for another region (`start_relay`).
//! - `upstream`: how such a relay asks its coordinator whom to admit.
//! - `relay_api`: the coordinator's answers to those questions.
//! - `stun`: STUN's Binding responder (UDP), which tells parties the address
//!   their packets come from: browsers' ICE server, natives' reflexive address.
//! - `web`: the browser party's web app (from disk, or built in with the
//!   feature `embed-web`: `web/embedded`), and the relay on the coordinator's origin.
#![forbid(unsafe_code)]

mod admission;
mod api;
mod changes;
mod cluster;
mod code_relay;
mod connections;
mod database;
mod expiry;
mod limits;
mod nameplates;
mod relay;
mod relay_api;
mod relay_only;
mod store;
mod stun;
mod tls;
mod upstream;
mod web;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
pub use limits::Quotas;
pub use partyline_wire::CertPin;
use partyline_wire::ServerUrl;
pub use partyline_wire::api::RelayInfo;
use partyline_wire::api::ServerInfo;
pub use partyline_wire::{RelayToken, WeakRelayToken};
pub use relay_only::{LIVE_CHECK, RelayOnlyConfig, RunningRelay, start_relay};
pub use stun::{STANDARD_PORT as STUN_STANDARD_PORT, StunPort};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};
pub use web::EMBEDDED as WEB_APP_EMBEDDED;

use crate::relay::Relay;
use crate::tls::{Identity, certificate_error};

/// How long open connections get to finish when the server stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Requests one HTTP/2 connection carries at once: a page loads about a
/// dozen files in parallel.
const MAX_STREAMS_PER_CONNECTION: u32 = 32;
/// The most hyper buffers per HTTP/1 connection, either way: a request head,
/// or a chunk of a file (see `web`).
const HTTP1_BUFFER_BYTES: usize = 16 * 1024;
/// How long a server on PostgreSQL waits at start to listen to the others;
/// it has just connected to the same database, so this takes milliseconds.
const FIRST_LISTEN_WAIT: Duration = Duration::from_secs(10);
/// The database file in the data directory.
const DATABASE_FILE: &str = "partyline.sqlite3";

/// How to run the server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Where the coordinator serves HTTPS; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Where the relay serves HTTPS (TCP); its QUIC address discovery takes
    /// the same port number on UDP if it is free. By default the IP of
    /// `listen` and the next port (or any free port when `listen` asks for one).
    pub relay_listen: Option<SocketAddr>,
    /// The coordinator's URL as parties reach it, `https://host:port`. By
    /// default the listening address, with loopback for an unspecified IP.
    pub public_url: Option<String>,
    /// The relay's URL as parties reach it. By default the host of
    /// `public_url` with the relay's port.
    pub public_relay_url: Option<String>,
    /// The UDP port of the STUN responder, on the relay's IP address.
    pub stun_port: StunPort,
    /// Holds the database and the TLS certificate; created if missing.
    pub data_dir: PathBuf,
    /// A PostgreSQL database (`postgres://user@host/name`) to keep the
    /// sessions in instead of SQLite in `data_dir`: several servers that
    /// share it (and a certificate) serve the same sessions.
    pub database_url: Option<String>,
    /// How long the server keeps a session.
    pub session_ttl: Duration,
    /// How long a done session stays visible, so that every party sees that
    /// it ended, before it is deleted.
    pub done_ttl: Duration,
    /// What one client (an IP address, an IPv6 /64) and everybody together
    /// may ask of the server.
    pub quotas: Quotas,
    /// The most the announcements of all sessions may take together, in
    /// bytes (the database file grows with them); `0` is no limit.
    pub max_announcement_bytes: u64,
    /// How long the parties of a done session keep their relay connections,
    /// so that the last packets between the others still arrive.
    pub relay_grace: Duration,
    /// The browser party's files, served at `/join` and `/web/…`; none: the
    /// web app built into the binary ([`WEB_APP_EMBEDDED`]), else no web app.
    pub web_dir: Option<PathBuf>,
    /// A certificate (PEM chain) and key to serve instead of the self-signed
    /// one, e.g. one browsers trust; invites then pin this certificate.
    pub tls_files: Option<(PathBuf, PathBuf)>,
    /// Relays besides this server's own (`partyline relay`, e.g. in other
    /// regions), listed to parties in `/v1/info`.
    pub relays: Vec<RelayInfo>,
    /// The token relays of their own show to ask whom to admit; none: they
    /// are not answered.
    pub relay_token: Option<RelayToken>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 7700),
            relay_listen: None,
            public_url: None,
            public_relay_url: None,
            stun_port: StunPort::default(),
            data_dir: default_data_dir(),
            database_url: None,
            session_ttl: Duration::from_secs(6 * 60 * 60),
            done_ttl: Duration::from_secs(10 * 60),
            quotas: Quotas::default(),
            max_announcement_bytes: 1 << 30,
            relay_grace: Duration::from_secs(30),
            web_dir: None,
            tls_files: None,
            relays: Vec::new(),
            relay_token: None,
        }
    }
}

/// `$XDG_DATA_HOME/partyline`, else `~/.local/share/partyline`, else
/// `./partyline-data`.
pub(crate) fn default_data_dir() -> PathBuf {
    let xdg = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|path| path.is_absolute());
    let home = || std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share"));
    xdg.or_else(home).map_or_else(
        || PathBuf::from("partyline-data"),
        |base| base.join("partyline"),
    )
}

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("port {port} is in use: pass --listen with another port")]
    ListenPortInUse { port: u16 },
    #[error("relay port {port} is in use: pass --relay-listen with another port")]
    RelayPortInUse { port: u16 },
    #[error("STUN port {port} is in use (UDP): pass --stun-port with another port, or --no-stun")]
    StunPortInUse { port: u16 },
    #[error(
        "STUN did not start on UDP port {port}: {reason}; pass --stun-port with another port, or --no-stun"
    )]
    Stun { port: u16, reason: String },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot use {} as the data directory: {source}; pass --data-dir with a writable directory", path.display())]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the database {}: {reason}; if it is damaged, move it away to start with no sessions", path.display())]
    Database { path: PathBuf, reason: String },
    #[error(
        "cannot use the PostgreSQL database {url}: {reason}; check that PostgreSQL runs there \
         and that the user may create tables in that database"
    )]
    Postgres { url: String, reason: String },
    #[error(
        "the TLS certificate in {} is unusable: {reason}; restore cert.pem and key.pem from a backup, \
         or delete both to make a new certificate (invites and server links made before then stop working)",
        dir.display()
    )]
    Certificate { dir: PathBuf, reason: String },
    #[error(
        "{url:?} is not a usable public URL: write it like https://example.org:7700, without a path"
    )]
    PublicUrl { url: String },
    #[error("the relay did not start: {reason}")]
    Relay { reason: String },
    #[error(
        "the coordinator {coordinator} does not take this relay token: give `partyline serve` \
         the same --relay-token as `partyline relay --token`"
    )]
    RelayTokenRefused { coordinator: String },
}

/// A running server; [`RunningServer::shutdown`] stops it. Dropping it
/// stops it too, without waiting for open requests.
pub struct RunningServer {
    url: ServerUrl,
    relay_url: String,
    pin: CertPin,
    stop: DropGuard,
    coordinator: JoinHandle<std::io::Result<()>>,
    sweeper: JoinHandle<()>,
    listener: JoinHandle<()>,
    relay: Relay,
    stun: Option<stun::StunResponder>,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("url", &self.url)
            .field("relay_url", &self.relay_url)
            .field("pin", &self.pin)
            .finish_non_exhaustive()
    }
}

impl RunningServer {
    /// The coordinator's public URL, `https://host:port`.
    pub fn url(&self) -> &ServerUrl {
        &self.url
    }

    /// The relay's public URL, `https://host:port`.
    pub fn relay_url(&self) -> &str {
        &self.relay_url
    }

    /// The UDP port of the STUN responder, if it runs.
    pub fn stun_port(&self) -> Option<u16> {
        self.stun.as_ref().map(|stun| stun.port)
    }

    /// The SHA-256 of the certificate both the coordinator and the relay serve.
    pub fn pin(&self) -> CertPin {
        self.pin
    }

    /// `https://host:port#sha256=<pin>`: what `partyline create --server` takes.
    pub fn server_link(&self) -> String {
        format!("{}#sha256={}", self.url, self.pin)
    }

    /// Stops taking requests, lets open ones finish (long-polls answer at
    /// once), and stops the relay.
    pub async fn shutdown(self) {
        let Self {
            stop,
            coordinator,
            sweeper,
            listener,
            relay,
            stun,
            ..
        } = self;
        drop(stop);
        drop(stun);
        match coordinator.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("coordinator stopped with an error: {e}"),
            Err(e) => tracing::warn!("coordinator task failed: {e}"),
        }
        if let Err(e) = sweeper.await {
            tracing::warn!("expiry task failed: {e}");
        }
        if let Err(e) = listener.await {
            tracing::warn!("notification task failed: {e}");
        }
        relay.shutdown().await;
        tracing::info!("server stopped");
    }
}

/// Starts the coordinator and the relay.
pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
    let retention = expiry::retention(&config);
    let data_dir = config.data_dir;
    std::fs::create_dir_all(&data_dir).map_err(|source| ServerError::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    let public_url = config.public_url.as_deref().map(check_url).transpose()?;
    let public_relay_url = config
        .public_relay_url
        .as_deref()
        .map(check_url)
        .transpose()?;

    let listener = bind(config.listen)?;
    let listen = listener
        .local_addr()
        .map_err(|source| ServerError::Listen {
            addr: config.listen,
            source,
        })?;
    let url = public_url.unwrap_or_else(|| local_url(listen));

    let mut names = vec![url.host()];
    names.extend(public_relay_url.as_ref().map(ServerUrl::host));
    let names: Vec<String> = names
        .into_iter()
        .map(|host| {
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string()
        })
        .collect();
    let identity = match &config.tls_files {
        Some((cert, key)) => Identity::from_files(cert, key)?,
        None => Identity::load_or_create(&data_dir, &names)?,
    };
    let api_tls = identity
        .server_config(&[b"h2", b"http/1.1"])
        .map_err(|reason| certificate_error(&data_dir, reason))?;
    let relay_tls = identity
        .server_config(&[])
        .map_err(|reason| certificate_error(&data_dir, reason))?;

    let database = data_dir.join(DATABASE_FILE);
    let quotas = config.quotas;
    let store_limits = store::StoreLimits {
        live_sessions_per_client: quotas.live_sessions_per_ip,
        live_sessions: quotas.live_sessions,
        announcement_bytes: config.max_announcement_bytes,
    };
    let store = match &config.database_url {
        Some(url) => store::Store::connect(url, store_limits)
            .await
            .map_err(|e| ServerError::Postgres {
                url: without_password(url),
                reason: e.to_string(),
            })?,
        None => store::Store::open(&database, store_limits).map_err(|e| ServerError::Database {
            path: database,
            reason: e.to_string(),
        })?,
    };

    let relay_listen = config.relay_listen.unwrap_or_else(|| {
        let port = match config.listen.port() {
            0 => 0,
            port => port.checked_add(1).unwrap_or(0),
        };
        SocketAddr::new(listen.ip(), port)
    });
    let relay_gate = relay::RelayGate::new(store.clone(), quotas.relay_gated);
    let relay = Relay::spawn(
        relay_listen,
        relay_tls,
        relay_gate.clone(),
        quotas.relay_bytes_per_second,
    )
    .await?;
    let relay_url = public_relay_url
        .unwrap_or_else(|| url.with_port(relay.https_addr.port()))
        .to_string();
    let stun = stun::StunResponder::spawn(
        relay_listen.ip(),
        config.stun_port,
        config.listen.port() == 0,
    )
    .await?;
    let stun_port = stun.as_ref().map(|stun| stun.port);

    // Before the first client: other servers on the database name this one
    // from now on (the sweep says it again every round).
    if let Err(e) = store
        .coordinator_alive(url.to_string(), api::unix_secs())
        .await
    {
        tracing::warn!("cannot record this coordinator as alive: {e}");
    }
    let stopping = CancellationToken::new();
    let app = Arc::new(api::App {
        store,
        changes: changes::Changes::default(),
        cluster: cluster::Cluster::new(config.database_url.clone()),
        limits: limits::Limits::new(&quotas),
        relay_gate,
        relay_grace: config.relay_grace,
        info: ServerInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            protocol: partyline_proto::PROTOCOL.to_string(),
            relay_url: relay_url.clone(),
            relay_quic_port: relay.quic_port,
            stun_port,
            relays: config.relays,
            retention: Some(retention),
            coordinators: Vec::new(),
            client_ip: None,
        },
        url: url.to_string(),
        relay_token: config.relay_token.as_ref().map(RelayToken::hash),
        session_ttl: config.session_ttl,
        done_ttl: config.done_ttl,
        stopping: stopping.clone(),
    });
    let handle = axum_server::Handle::new();
    let places = limits::Concurrency::new(quotas.connections_per_ip, quotas.connections);
    let mut server =
        axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(Arc::new(api_tls)))
            .map_err(|source| ServerError::Listen {
                addr: listen,
                source,
            })?
            .handle(handle.clone())
            .map(|tls| {
                // Relay traffic passes through this port (`web`): Nagle's algorithm
                // would hold its small packets back for tens of milliseconds.
                let tls = tls
                    .handshake_timeout(quotas.header_timeout)
                    .acceptor(axum_server::accept::NoDelayAcceptor::new());
                connections::Admit::new(tls, places, quotas.header_timeout)
            });
    let http = server.http_builder();
    // hyper times out slow request heads, and idle kept-alive connections,
    // only with a timer.
    http.http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(quotas.header_timeout)
        // hyper buffers up to 400 KB of a response per connection by default;
        // streamed files need only a chunk or two.
        .max_buf_size(HTTP1_BUFFER_BYTES);
    // HTTP/2 has no head timeout: pings find dead peers, and a connection
    // carries a bounded number of requests at once (waits are counted too).
    http.http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(quotas.header_timeout)
        .keep_alive_timeout(quotas.header_timeout)
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION);
    let service = api::router(app.clone())
        .merge(web::router(
            config.web_dir,
            relay.loopback_http,
            config.tls_files.is_some(),
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            admission::admit,
        ))
        .into_make_service_with_connect_info::<SocketAddr>();
    let coordinator = tokio::spawn({
        let stopping = stopping.clone();
        async move {
            let serve = server.serve(service);
            tokio::pin!(serve);
            tokio::select! {
                result = &mut serve => result,
                () = stopping.cancelled() => {
                    handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
                    serve.await
                }
            }
        }
    });
    let sweeper = tokio::spawn(expiry::sweep_until_stopped(app.clone()));
    let listener = tokio::spawn(cluster::listen_until_stopped(app.clone()));
    if !app.cluster.listening(FIRST_LISTEN_WAIT).await {
        tracing::warn!(
            "not listening for the other servers' notifications after {} s: until it is, \
             long-polls that wait for changes made through another server wait out their hold",
            FIRST_LISTEN_WAIT.as_secs()
        );
    }

    tracing::info!(
        %url,
        %relay_url,
        relay_quic_port = ?relay.quic_port,
        ?stun_port,
        pin = %identity.pin,
        "partyline server running"
    );
    Ok(RunningServer {
        url,
        relay_url,
        pin: identity.pin,
        stop: stopping.drop_guard(),
        coordinator,
        sweeper,
        listener,
        relay,
        stun,
    })
}

/// `https://ip:port` of a listening address, with loopback for an unspecified IP.
pub(crate) fn local_url(listen: SocketAddr) -> ServerUrl {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => Ipv4Addr::LOCALHOST.into(),
        IpAddr::V6(ip) if ip.is_unspecified() => Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    format!("https://{}", SocketAddr::new(ip, listen.port()))
        .parse()
        .expect("a socket address makes a server address")
}

fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, ServerError> {
    let listener = std::net::TcpListener::bind(addr).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AddrInUse {
            ServerError::ListenPortInUse { port: addr.port() }
        } else {
            ServerError::Listen { addr, source }
        }
    })?;
    // tokio takes over the socket and needs it non-blocking.
    listener
        .set_nonblocking(true)
        .map_err(|source| ServerError::Listen { addr, source })?;
    Ok(listener)
}

/// A database URL as it may be shown: its password, if any, left out. A
/// connection string of `key=value` pairs is not shown at all.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(the connection string given)".to_string();
    };
    match rest.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_string(),
    }
}

/// Parses a public URL given on the command line.
pub(crate) fn check_url(url: &str) -> Result<ServerUrl, ServerError> {
    url.parse().map_err(|_| ServerError::PublicUrl {
        url: url.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_are_not_shown() {
        assert_eq!(
            without_password("postgres://party:secret@db.example/partyline"),
            "postgres://party@db.example/partyline"
        );
        assert_eq!(
            without_password("postgres://party@127.0.0.1:5432/p"),
            "postgres://party@127.0.0.1:5432/p"
        );
        assert!(!without_password("host=db password=secret").contains("secret"));
    }

    #[test]
    fn public_urls_are_checked() {
        assert_eq!(
            check_url("https://example.org:7700/").unwrap().as_str(),
            "https://example.org:7700"
        );
        assert_eq!(
            check_url("https://[::1]:7700").unwrap().as_str(),
            "https://[::1]:7700"
        );
        assert_eq!(
            check_url("https://example.org").unwrap().as_str(),
            "https://example.org"
        );
        for bad in [
            "http://example.org",
            "https://",
            "https://example.org/path",
            "https://example.org:port",
            "https://:7700",
            "https://::1:7700",
            "https://[::1]x",
            "example.org:7700",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
