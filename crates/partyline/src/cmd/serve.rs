//! `partyline serve`: the coordinator and relay until Ctrl-C.
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use partyline_server::{Quotas, RelayInfo, RelayToken, ServerConfig, StunPort};

use crate::cli::{QuotaArgs, ServeArgs};

pub async fn run(args: ServeArgs) -> anyhow::Result<i32> {
    // A directory given wins; then the web app built into this binary; then
    // a source tree's build of it.
    let web_dir = match partyline_server::WEB_APP_EMBEDDED {
        true => args.web_dir,
        false => args.web_dir.or_else(default_web_dir),
    };
    let browsers = match &web_dir {
        Some(dir) => format!("invite links open the web app (from {})", dir.display()),
        None if partyline_server::WEB_APP_EMBEDDED => {
            "invite links open the web app (built into this binary)".to_string()
        }
        None => "no web app: build it with scripts/build-web.sh or pass --web-dir; \
                 or build partyline with it inside: scripts/build-web.sh, then \
                 cargo build --release --features embed-web (README: Self-hosting)"
            .to_string(),
    };
    let relays = args
        .relays
        .iter()
        .map(|link| {
            let pin = link.pin.with_context(|| {
                format!(
                    "--relay {link} needs the pin: give the whole link `partyline relay` prints"
                )
            })?;
            Ok(RelayInfo {
                url: link.url.to_string(),
                // A relay of its own runs address discovery on its own port number.
                quic_port: Some(link.url.port().unwrap_or(443)),
                pin,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let relay_token = args
        .relay_token
        .as_deref()
        .map(RelayToken::new)
        .transpose()
        .context("--relay-token")?;
    let config = ServerConfig {
        listen: args.listen,
        relay_listen: args.relay_listen,
        public_url: args.public_url,
        public_relay_url: args.public_relay_url,
        stun_port: match (args.no_stun, args.stun_port) {
            (true, _) | (false, Some(0)) => StunPort::Off,
            (false, Some(port)) => StunPort::Port(port),
            (false, None) => StunPort::Standard,
        },
        data_dir: args.data_dir,
        database_url: args.database,
        session_ttl: Duration::from_secs(args.session_hours * 3600),
        done_ttl: Duration::from_secs(args.keep_done_secs),
        quotas: quotas(&args.quotas),
        max_announcement_bytes: args.quotas.announcement_mb.saturating_mul(1 << 20),
        web_dir,
        tls_files: args.tls_cert.zip(args.tls_key),
        relays,
        relay_token,
        ..ServerConfig::default()
    };
    let server = partyline_server::start(config)
        .await
        .context("the server did not start")?;
    // Scripts read the first line and may close the pipe: a failed write must
    // not take the server down.
    let link = server.server_link();
    let more_relays: String = args
        .relays
        .iter()
        .map(|relay| format!("  relay:       {}\n", relay.url))
        .collect();
    let stun = match server.stun_port() {
        Some(port) => format!("UDP port {port} (open it with the relay's ports)"),
        None => "off".to_string(),
    };
    let _ = writeln!(
        std::io::stdout(),
        "partyline server ready: {link}\n  coordinator: {}\n  relay:       {}\n{more_relays}  \
         stun:        {stun}\n  \
         browsers:    {browsers}\n  \
         create a session with: partyline create --parties N --server '{link}'",
        server.url(),
        server.relay_url()
    );
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    eprintln!("partyline: stopping the server");
    server.shutdown().await;
    Ok(0)
}

fn quotas(args: &QuotaArgs) -> Quotas {
    if args.no_quotas {
        return Quotas {
            relay_gated: true,
            ..Quotas::unlimited()
        };
    }
    Quotas {
        creates_per_minute_per_ip: args.creates_per_minute,
        creates_per_minute: args.creates_per_minute_total,
        live_sessions_per_ip: args.live_sessions_per_ip,
        live_sessions: args.live_sessions,
        requests_per_minute_per_ip: args.requests_per_minute_per_ip,
        requests_per_minute: args.requests_per_minute,
        writes_per_minute_per_ip: args.writes_per_minute_per_ip,
        writes_per_minute: args.writes_per_minute,
        waits_per_ip: args.waits_per_ip,
        waits: args.waits,
        connections_per_ip: args.connections_per_ip,
        connections: args.connections,
        relay_bytes_per_second: args.relay_kib_per_second.saturating_mul(1024),
        relay_gated: true,
        header_timeout: Duration::from_secs(args.header_timeout),
    }
}

/// Where scripts/build-web.sh puts the web app: `target/web` of the source
/// tree, found from the current directory or from the binary's own location
/// (`target/debug/partyline`).
fn default_web_dir() -> Option<PathBuf> {
    let from_binary = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("web")));
    [Some(PathBuf::from("target/web")), from_binary]
        .into_iter()
        .flatten()
        .find(|dir| dir.join("index.html").is_file())
}
