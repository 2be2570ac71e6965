//! `partyline join`: announce, wait for everyone, build the mesh, run the program.
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use partyline_launch::{ProgramSpec, PythonSource, RunningProgram, ensure_python, exit_code};
use partyline_mesh::ending::watch_peers;
use partyline_mesh::{
    CloseCode, Forwarder, MeshConfig, PartyEndpoint, PeerEventKind, PeerLink, connect_all,
};
use partyline_session::{Coordinator, SessionError, announce_and_wait};
use partyline_wire::announce::{check_name, normalize_name};
use partyline_wire::{Announcement, Invite, Roster};

use crate::cli::{JoinArgs, PythonArgs};
use crate::config::Config;
use crate::progress::spinner;
use crate::report::{PeerReport, Report};

/// How long our program gets to exit after SIGTERM before it is killed.
const TERMINATE_GRACE: Duration = Duration::from_secs(3);
/// How long, after our program exited, we wait for peers to receive what it sent.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);
/// Exit code after Ctrl-C, as shells use for SIGINT.
const INTERRUPTED: i32 = 130;

pub async fn run(args: JoinArgs, config: &Config) -> anyhow::Result<i32> {
    let invite: Invite = args.invite.parse()?;
    let name = args
        .name
        .clone()
        .or_else(|| config.name.clone())
        .unwrap_or_else(default_name);
    let name = normalize_name(&name);
    check_name(&name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    let timeout = Duration::from_secs(args.timeout);

    let coordinator = Coordinator::new(&invite.server, invite.pin);
    let info = coordinator.info().await?;

    let python = if args.program[0].ends_with(".py") {
        Some(find_python(&args.python, config).await?)
    } else {
        None
    };

    let party = PartyEndpoint::bind(&MeshConfig {
        relay_url: info.relay_url.clone(),
        relay_quic_port: info.relay_quic_port,
        pin: invite.pin,
        relay_only: args.relay_only,
    })
    .await?;
    let own = Announcement {
        session: invite.session,
        name: name.clone(),
        endpoint: party.key(),
        relay_url: Some(party.relay_url()),
        addrs: if args.relay_only {
            Vec::new()
        } else {
            party.direct_addrs()
        },
        joined_at_ms: unix_millis(),
    };

    let waiting = spinner(format!("joining session {} as {name}", invite.session));
    let wait = announce_and_wait(&coordinator, &invite, &own, timeout, |p| {
        waiting.set_message(format!(
            "{} of {} parties joined: {}",
            p.joined.len(),
            p.expected,
            p.joined.join(", ")
        ));
    });
    let roster = tokio::select! {
        roster = wait => roster,
        _ = tokio::signal::ctrl_c() => {
            waiting.finish_and_clear();
            let _ = coordinator.leave(&invite.session, &own.endpoint).await;
            party.close().await;
            eprintln!("partyline: interrupted while waiting; left the session");
            return Ok(INTERRUPTED);
        }
    };
    waiting.finish_and_clear();
    let roster = match roster {
        Ok(roster) => roster,
        Err(error) => {
            // Giving up frees our seat for a retry. After a refused roster the
            // session is spoiled for everyone, and withdrawing would only hide
            // the forged roster from the parties still waiting for it.
            if matches!(error, SessionError::JoinTimeout { .. }) {
                let _ = coordinator.leave(&invite.session, &own.endpoint).await;
            }
            party.close().await;
            return Err(error.into());
        }
    };
    let roster_complete = Instant::now();
    print_roster(&roster);

    let connecting = spinner(format!("connecting to {} peers", roster.members.len() - 1));
    let links = tokio::select! {
        links = connect_all(&party, &roster, timeout) => links,
        _ = tokio::signal::ctrl_c() => {
            connecting.finish_and_clear();
            party.close().await;
            eprintln!("partyline: interrupted while connecting");
            return Ok(INTERRUPTED);
        }
    };
    connecting.finish_and_clear();
    let links = match links {
        Ok(links) => links,
        Err(error) => {
            party.close().await;
            return Err(error.into());
        }
    };
    let setup_ms = roster_complete.elapsed().as_millis() as u64;

    let program_addr = free_local_port()?;
    let forwarder = Forwarder::start(&links, roster.own_index, program_addr).await?;
    for link in &links {
        let (path, rtt) = link.path();
        eprintln!(
            "partyline: connected to party {} ({}) via {}{}",
            link.member.index,
            link.member.name,
            path.as_str(),
            rtt.map(|r| format!(", rtt {:.1} ms", r.as_secs_f64() * 1000.0))
                .unwrap_or_default()
        );
    }
    eprintln!(
        "partyline: mesh ready in {setup_ms} ms; starting {}",
        args.program.join(" ")
    );

    let spec = ProgramSpec {
        program: args.program.clone(),
        mpyc_flags: !args.no_mpyc_flags,
        parties: roster.members.len(),
        index: roster.own_index,
        addrs: forwarder.addrs.clone(),
        python,
        workdir: None,
    };
    let outcome = run_program(&spec, &links, &name).await;

    let code = match &outcome {
        Outcome::Exited(code) => {
            forwarder.drain(DRAIN_LIMIT).await;
            let (close, reason) = if *code == 0 {
                (CloseCode::Finished, "program finished".to_string())
            } else {
                (
                    CloseCode::ProgramFailed,
                    format!("its program exited with code {code}"),
                )
            };
            for link in &links {
                close.close(&link.conn, &reason);
            }
            *code
        }
        Outcome::Aborted { reason, code } => {
            for link in &links {
                CloseCode::Aborted.close(&link.conn, reason);
            }
            *code
        }
    };
    let report = build_report(&roster, &links, setup_ms, code);
    party.close().await;
    if code == 0 {
        let _ = coordinator.done(&invite.session).await;
    }
    if let Some(path) = &args.report {
        let json = serde_json::to_string_pretty(&report).expect("reports serialize");
        std::fs::write(path, json)
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
    }
    Ok(code)
}

enum Outcome {
    /// Our program ended by itself with this exit code.
    Exited(i32),
    /// We stopped the program; `reason` is told to the peers.
    Aborted { reason: String, code: i32 },
}

/// Runs the program until it exits, a peer ends the session, or Ctrl-C.
async fn run_program(spec: &ProgramSpec, links: &[PeerLink], name: &str) -> Outcome {
    let mut program = match RunningProgram::spawn(spec) {
        Ok(program) => program,
        Err(error) => {
            eprintln!("partyline: error: {error}");
            return Outcome::Aborted {
                reason: format!("{name} could not start its program"),
                code: 2,
            };
        }
    };
    let mut peer_events = watch_peers(links);
    let mut interrupted = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        tokio::select! {
            status = program.wait() => {
                let code = status.map(exit_code).unwrap_or(1);
                if code != 0 {
                    eprintln!("partyline: the program exited with code {code}");
                }
                return Outcome::Exited(code);
            }
            Some(event) = peer_events.recv() => {
                if event.kind == PeerEventKind::Finished {
                    tracing::info!("{event}");
                    continue;
                }
                eprintln!("partyline: {event}; stopping the program");
                let _ = program.terminate(TERMINATE_GRACE).await;
                return Outcome::Aborted { reason: format!("{name} stopped because {event}"), code: 1 };
            }
            _ = &mut interrupted => {
                eprintln!("partyline: interrupted; ending the session for every party");
                let _ = program.terminate(TERMINATE_GRACE).await;
                return Outcome::Aborted { reason: format!("{name} pressed Ctrl-C"), code: INTERRUPTED };
            }
        }
    }
}

fn print_roster(roster: &Roster) {
    eprintln!("partyline: all {} parties joined:", roster.members.len());
    for m in &roster.members {
        let you = if m.index == roster.own_index {
            "  (you)"
        } else {
            ""
        };
        eprintln!("  party {}: {}{you}", m.index, m.name);
    }
    eprintln!(
        "partyline: session fingerprint {}: every party sees the same one; compare it with the others out of band",
        roster.fingerprint()
    );
}

fn build_report(roster: &Roster, links: &[PeerLink], setup_ms: u64, exit_code: i32) -> Report {
    Report {
        session: roster.session.to_string(),
        index: roster.own_index,
        parties: roster.members.len(),
        fingerprint: roster.fingerprint().to_string(),
        peers: links
            .iter()
            .map(|link| {
                let (path, rtt) = link.path();
                PeerReport {
                    index: link.member.index,
                    name: link.member.name.clone(),
                    path: path.as_str(),
                    rtt_ms: rtt.map(|r| r.as_secs_f64() * 1000.0),
                    bytes_sent: link.bytes_sent.load(Ordering::Relaxed),
                    bytes_received: link.bytes_received.load(Ordering::Relaxed),
                }
            })
            .collect(),
        setup_ms,
        exit_code,
    }
}

pub async fn find_python(args: &PythonArgs, config: &Config) -> anyhow::Result<PathBuf> {
    let source = match args.python.clone().or_else(|| config.python.clone()) {
        Some(path) => PythonSource::Explicit(path),
        None => PythonSource::Managed,
    };
    let bar = spinner("looking for Python with MPyC");
    let python = ensure_python(source, &|status| bar.set_message(status.to_string())).await;
    bar.finish_and_clear();
    Ok(python?)
}

/// A free port on loopback for our program to listen on. The port is released
/// before the program binds it; another process could take it in between,
/// which the program then reports as "address in use".
fn free_local_port() -> anyhow::Result<SocketAddr> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot find a free local port")?;
    Ok(listener.local_addr()?)
}

fn default_name() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| check_name(u).is_ok())
        .unwrap_or_else(|| "party".to_string())
}

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}
