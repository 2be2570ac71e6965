//! `partyline serve`: the coordinator and relay until Ctrl-C.
use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use partyline_server::ServerConfig;

use crate::cli::ServeArgs;

pub async fn run(args: ServeArgs) -> anyhow::Result<i32> {
    let config = ServerConfig {
        listen: args.listen,
        relay_listen: args.relay_listen,
        public_url: args.public_url,
        public_relay_url: args.public_relay_url,
        data_dir: args.data_dir,
        session_ttl: Duration::from_secs(args.session_hours * 3600),
        max_creates_per_minute_per_ip: args.creates_per_minute,
    };
    let server = partyline_server::start(config)
        .await
        .context("the server did not start")?;
    // Tests and scripts read the first line; people read the rest.
    println!("partyline server ready: {}", server.server_link());
    println!("  coordinator: {}", server.url());
    println!("  relay:       {}", server.relay_url());
    println!(
        "  create a session with: partyline create --parties N --server '{}'",
        server.server_link()
    );
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    eprintln!("partyline: stopping the server");
    server.shutdown().await;
    Ok(0)
}
