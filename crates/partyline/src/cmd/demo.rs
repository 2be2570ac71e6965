//! `partyline demo`: a whole session on this machine.
//!
//! An in-process server, then every party as its own `partyline join`
//! process running its own copy of the program, exactly as on separate
//! machines, with each line of output prefixed by the party's name.
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use partyline_launch::mpyc;
use partyline_server::{RunningServer, ServerConfig};
use partyline_session::Coordinator;
use partyline_wire::{Invite, InviteSecret};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

use crate::cli::DemoArgs;
use crate::config::Config;

const NAMES: [&str; 16] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil",
];

pub async fn run(args: DemoArgs, verbose: u8) -> anyhow::Result<i32> {
    let dir = tempfile::Builder::new()
        .prefix("partyline-demo-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let program = if args.program.is_empty() {
        let path = dir.path().join("secretsanta.py");
        let source = mpyc::example("secretsanta.py").context("secretsanta.py is built in")?;
        std::fs::write(&path, source)
            .with_context(|| format!("cannot write {}", path.display()))?;
        vec![path.to_string_lossy().into_owned()]
    } else {
        args.program.clone()
    };
    let python = if program[0].ends_with(".py") {
        Some(
            super::join::find_python(&args.python, &Config::default())
                .await?
                .path,
        )
    } else {
        None
    };

    let server = start_local_server(dir.path()).await?;
    let parties = args.parties;
    let invite = local_invite(&server, parties, "demo").await?;
    eprintln!(
        "partyline demo: server at {}, session {}",
        server.url(),
        invite.session
    );
    eprintln!("partyline demo: starting {parties} parties, each its own `partyline join` process");

    let exe = std::env::current_exe().context("cannot find the partyline executable")?;
    let mut children = Vec::new();
    for name in NAMES.iter().take(usize::from(parties)) {
        let mut extra = vec![
            "--report".to_string(),
            report_path(dir.path(), name),
            "--peer-timeout".to_string(),
            args.peer_timeout.to_string(),
            // Parties of their own: not the user's identity or address book.
            "--config-dir".to_string(),
            dir.path()
                .join(format!("{name}-config"))
                .to_string_lossy()
                .into_owned(),
        ];
        if verbose > 0 {
            extra.push(format!("-{}", "v".repeat(usize::from(verbose))));
        }
        let mut command = join_command(
            &exe,
            &invite,
            name,
            args.relay_only,
            python.as_deref(),
            &extra,
            &program,
        );
        let mut child = command.spawn().context("cannot start a party process")?;
        let out = tokio::spawn(prefix_lines(
            child.stdout.take().expect("piped"),
            name,
            false,
        ));
        let err = tokio::spawn(prefix_lines(
            child.stderr.take().expect("piped"),
            name,
            true,
        ));
        children.push((name, child, out, err));
    }

    let mut worst = 0;
    for (name, mut child, out, err) in children {
        let status = child.wait().await?;
        let _ = tokio::join!(out, err);
        let code = status.code().unwrap_or(1);
        if code != 0 {
            eprintln!("partyline demo: {name} exited with code {code}");
            worst = worst.max(code);
        }
    }
    print_summary(dir.path(), parties);
    server.shutdown().await;
    if worst == 0 {
        eprintln!("partyline demo: all {parties} parties finished successfully");
    }
    Ok(worst)
}

/// A server on loopback for a session on this machine, its data in `dir`.
pub(super) async fn start_local_server(dir: &Path) -> anyhow::Result<RunningServer> {
    partyline_server::start(ServerConfig {
        listen: "127.0.0.1:0".parse().expect("valid address"),
        data_dir: dir.join("server"),
        session_ttl: Duration::from_secs(3600),
        quotas: partyline_server::Quotas::unlimited(),
        ..ServerConfig::default()
    })
    .await
    .context("the local session server did not start")
}

/// Creates a session on the local server and returns its invite.
pub(super) async fn local_invite(
    server: &RunningServer,
    parties: u16,
    label: &str,
) -> anyhow::Result<Invite> {
    let coordinator = Coordinator::new(server.url(), server.pin());
    let secret = InviteSecret::random();
    let token = partyline_wire::WriteToken::derive(&secret);
    let created = coordinator
        .create(parties, Some(label.into()), &token)
        .await?;
    Ok(Invite::new(
        server.url(),
        created.session,
        parties,
        server.pin(),
        secret,
    )?)
}

/// The `partyline join` process of one local party, its output piped.
pub(super) fn join_command(
    exe: &Path,
    invite: &Invite,
    name: &str,
    relay_only: bool,
    python: Option<&Path>,
    flags: &[String],
    program: &[String],
) -> Command {
    let mut command = Command::new(exe);
    // In the environment, not on the command line, where other local users could read it.
    command
        .env("PARTYLINE_INVITE", invite.to_string())
        .arg("join")
        .args(["--name", name]);
    command.args(flags);
    if relay_only {
        command.arg("--relay-only");
    }
    if let Some(python) = python {
        command.arg("--python").arg(python);
    }
    command.arg("--").args(program);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn report_path(dir: &Path, name: &str) -> String {
    dir.join(format!("{name}.json"))
        .to_string_lossy()
        .into_owned()
}

async fn prefix_lines(stream: impl AsyncRead + Unpin, name: &str, to_stderr: bool) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if to_stderr {
            eprintln!("[{name:>7}] {line}");
        } else {
            println!("[{name:>7}] {line}");
        }
    }
}

/// One line per party and peer from the join reports: which path, how fast, how much.
fn print_summary(dir: &Path, parties: u16) {
    eprintln!("partyline demo: connections (from each party's --report):");
    for name in NAMES.iter().take(usize::from(parties)) {
        let Ok(text) = std::fs::read_to_string(report_path(dir, name)) else {
            eprintln!("  {name}: no report");
            continue;
        };
        let Ok(report) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        for peer in report["peers"].as_array().into_iter().flatten() {
            eprintln!(
                "  {name:>7} -> {:<7} {:<6} rtt {:>6} ms  sent {:>9} B  received {:>9} B",
                peer["name"].as_str().unwrap_or("?"),
                peer["path"].as_str().unwrap_or("?"),
                peer["rtt_ms"]
                    .as_f64()
                    .map(|r| format!("{r:.2}"))
                    .unwrap_or("?".into()),
                peer["bytes_sent"],
                peer["bytes_received"],
            );
        }
    }
}
