//! `partyline relay`: a relay alone, for one more region, until Ctrl-C.
use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use partyline_server::{RelayOnlyConfig, RelayToken};

use crate::cli::RelayArgs;

pub async fn run(args: RelayArgs) -> anyhow::Result<i32> {
    let pin = args.coordinator.pin.context(
        "--coordinator needs the pin: give the whole link `partyline serve` prints, \
         https://HOST:PORT#sha256=PIN",
    )?;
    let token = RelayToken::new(&args.token).context("--token")?;
    let config = RelayOnlyConfig {
        listen: args.listen,
        public_url: args.public_url,
        data_dir: args.data_dir,
        bytes_per_second: args.relay_kib_per_second.saturating_mul(1024),
        tls_files: args.tls_cert.zip(args.tls_key),
        grace: Duration::from_secs(30),
        ..RelayOnlyConfig::new(args.coordinator.url.clone(), pin, token)
    };
    let relay = partyline_server::start_relay(config)
        .await
        .context("the relay did not start")?;
    // Scripts read the first line and may close the pipe: a failed write must
    // not take the relay down.
    let link = relay.relay_link();
    let _ = writeln!(
        std::io::stdout(),
        "partyline relay ready: {link}\n  coordinator: {}\n  \
         list it on the coordinator with: partyline serve --relay '{link}' (and the same relay token)",
        args.coordinator.url
    );
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    eprintln!("partyline: stopping the relay");
    relay.shutdown().await;
    Ok(0)
}
