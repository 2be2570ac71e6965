//! `partyline`: ad hoc secure multiparty computation sessions.
//!
//! The binary is thin: it parses flags, shows progress and wires the libraries
//! together (`partyline-wire` → `partyline-session` → `partyline-mesh` →
//! `partyline-launch`, and `partyline-server` for `serve` and `demo`).
#![forbid(unsafe_code)]

mod cli;
mod cmd;
mod config;
mod identity;
mod progress;
mod report;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    init_tracing(cli.verbose);
    // A party forwards small MPC messages back and forth: one thread halves the
    // tunnel's round-trip time (no wake-ups across threads; measured with
    // `partyline bench`). The server and the benchmark serve many streams at
    // once and use every core.
    let runtime = match cli.command {
        cli::Command::Join(_) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    }
    .enable_all()
    .build()
    .expect("the tokio runtime starts");
    let code = match runtime.block_on(cmd::run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("partyline: error: {error:#}");
            2
        }
    };
    // Background tasks (forwarders, the relay client) must not delay the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    std::process::exit(code);
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn,iroh=off,noq=off,iroh_relay=off",
        1 => "info,iroh=warn,noq=warn,iroh_relay=warn",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PARTYLINE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
