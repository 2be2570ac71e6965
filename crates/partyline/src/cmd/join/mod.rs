//! `partyline join`: announce, wait for everyone, build the mesh, run the program.
//!
//! [`run`] is a driver of phases (bind the endpoint, announce and wait,
//! connect, check the roster, wait until every party accepted the roster,
//! forward, run the program), each a function of its own. Finding Python
//! ([`python`]) and the endpoint's first connection to its relay
//! ([`alongside`]) go on alongside binding, announcing, waiting and
//! connecting instead of before them: each costs a party far from the server
//! more than all of those. Every phase races against Ctrl-C, and every way
//! out goes through one place that leaves the session.
//!
//! # Layout
//! - [`invite`]: where the invite comes from (argument, stdin, file, environment).
//! - [`code`]: a short code instead of the invite, exchanged with the session's host.
//! - [`shutdown`]: Ctrl-C, caught once for the whole run (mini-redis' `Shutdown`).
//! - [`seat`]: what we hold in the session and [`seat::Seat::leave`], the one
//!   place that withdraws, tells the peers and closes (mini-redis' `DbDropGuard`).
//! - [`checks`]: `--expect` and `--confirm`, once connected, before the ready barrier.
//! - [`python`]: the program's Python, looked for while we join.
//! - [`alongside`]: the relay connection and the search for Python, advanced
//!   while we announce, wait and connect.
//! - [`known`]: our identity, the address book's view of every party (known,
//!   new, changed), the refusal of a changed key, and the book's update.
mod alongside;
mod checks;
mod code;
mod invite;
mod known;
mod python;
mod seat;
mod shutdown;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use partyline_launch::{
    CpuTimes, ProgramListener, ProgramSpec, Python, PythonSource, RunningProgram, ensure_python,
    exit_code,
};
use partyline_mesh::ending::watch_peers;
use partyline_mesh::{
    CloseCode, Forwarder, LocalEnds, MeshConfig, PartyEndpoint, PeerEventKind, PeerLink,
    connect_all, ready_barrier,
};
use partyline_session::{Coordinator, SessionError, announce_and_wait};
use partyline_wire::announce::{check_name, typed_name};
use partyline_wire::api::ServerInfo;
use partyline_wire::checks::Refusal;
use partyline_wire::seat::StreamRules;
use partyline_wire::{Invite, Roster};

use self::alongside::Alongside;
use self::checks::{Checks, refusal_error};
use self::invite::{Ticket, read_ticket};
use self::known::Known;
use self::python::PythonSearch;
use self::seat::{End, Leave, Seat};
use self::shutdown::{Interrupted, Shutdown};
use crate::cli::{JoinArgs, PythonArgs};
use crate::config::Config;
use crate::identity::book::Standing;
use crate::progress::spinner;
use crate::report::{PeerReport, Report};

/// How long our program gets to exit after SIGTERM before it is killed.
const TERMINATE_GRACE: Duration = Duration::from_secs(3);
/// Exit code after Ctrl-C, as shells use for SIGINT.
const INTERRUPTED: i32 = 130;

/// When `join` started, for [`phase`].
static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// Logs that a phase of the session is done, with the milliseconds since
/// `join` started (`PARTYLINE_LOG=partyline::phase=info`): what shows where
/// joining and ending spend their round trips.
fn phase(what: &str) {
    let started = STARTED.get_or_init(Instant::now);
    tracing::info!(target: "partyline::phase", ms = started.elapsed().as_millis() as u64, "{what}");
}

pub async fn run(args: JoinArgs, config: &Config) -> anyhow::Result<i32> {
    phase("started");
    let ticket = read_ticket(&args)?;
    let name = party_name(args.name.as_deref(), config)?;
    let checks = Checks::from_args(&args)?;
    let known = Known::load(&args, config)?;
    anyhow::ensure!(
        args.ports == 1 || args.no_mpyc_flags,
        "--ports {} needs --no-mpyc-flags: MPyC uses one port per party",
        args.ports
    );
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let invite = match ticket {
        Ticket::Invite(invite) => invite,
        Ticket::Code(code) => code::invite_by_code(&code, &args, config, deadline).await?,
    };
    let coordinator = Coordinator::new(&invite.server, invite.pin)
        .with_write_token(partyline_wire::WriteToken::derive(&invite.secret))
        .with_deadline(deadline);
    let mut python = PythonSearch::start(&args.program, &args.python, config);
    let endpoint = async {
        let info = coordinator.info().await?;
        phase("server info read");
        let party = bind_endpoint(&info, &invite, &args).await?;
        phase("endpoint bound");
        anyhow::Ok((party, info.client_ip))
    };
    let (party, client_ip) = match &mut python {
        Some(search) => search.unless_failed(endpoint).await??,
        None => endpoint.await?,
    };
    let relay_first = args.relay_only || behind_nat(&party, client_ip);
    if relay_first && !args.relay_only {
        phase("behind a NAT: announcing once the relay is up");
    }
    let mut alongside = Alongside::start(&party, relay_first, python);
    let mut shutdown = Shutdown::listen();
    let mut seat = Seat::take(
        &coordinator,
        &invite,
        name,
        party,
        args.relay_only,
        known.identity.as_ref(),
    )
    .await;

    let end = match drive(
        &mut seat,
        &args,
        &invite,
        &checks,
        &known,
        &mut alongside,
        &mut shutdown,
    )
    .await
    {
        Ok(end) | Err(end) => end,
    };
    seat.leave(end.how).await;
    phase("left the session");
    if let Some(note) = end.note {
        eprintln!("partyline: {note}");
    }
    if let (Some(report), Some(path)) = (end.report, &args.report) {
        let json = serde_json::to_string_pretty(&report).expect("reports serialize");
        std::fs::write(path, json)
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
    }
    end.outcome
}

/// The phases from announcing to the program's end. `Err` is an early end.
async fn drive(
    seat: &mut Seat<'_>,
    args: &JoinArgs,
    invite: &Invite,
    checks: &Checks,
    known: &Known,
    alongside: &mut Alongside,
    shutdown: &mut Shutdown,
) -> Result<End, End> {
    let timeout = Duration::from_secs(args.timeout);
    // The wait ends with the coordinator's deadline, so that the roster's
    // timeout, not a cut request, says why we gave up.
    let left = seat
        .coordinator
        .deadline()
        .map_or(timeout, |d| d.saturating_duration_since(Instant::now()));
    if let Err(unreachable) = alongside.reachable().await {
        return Err(End::with(Leave::Close, Err(unreachable.into())));
    }
    let waiting = wait_for_roster(seat, invite, left, shutdown);
    let roster = match alongside.unless_failed(waiting).await {
        Ok(waited) => waited?,
        Err(error) => return Err(End::with(Leave::Withdraw, Err(error))),
    };
    let roster_complete = Instant::now();
    phase("roster complete");
    let standings = known.standings(&roster);
    print_roster(&roster, &standings, checks.expects_names());
    known.unused_acceptances(&roster, &standings);
    // Connected first, so that a person taking their time over `--confirm`
    // keeps the connections (kept alive by QUIC) instead of making the
    // others' dials time out; nothing is forwarded before the barrier.
    let connecting = connect(seat, &roster, timeout, shutdown);
    seat.links = match alongside.unless_relay_failed(connecting).await {
        Ok(connected) => connected?,
        Err(unreachable) => return Err(End::with(Leave::Close, Err(unreachable.into()))),
    };
    phase("connected to every peer");
    if let Some(refusal) = known.refusal(&roster) {
        return Err(refuse(seat, refusal));
    }
    if let Some(refusal) = checks.run(&roster, shutdown).await? {
        return Err(refuse(seat, refusal));
    }
    let accepting = wait_until_all_accepted(seat, &roster, timeout, shutdown);
    alongside.while_searching(accepting).await?;
    phase("every party accepted the roster");
    known.record(&roster);
    let setup_ms = roster_complete.elapsed().as_millis() as u64;
    // Only now: the mesh's set-up does not count Python's start, and having
    // no Python is not a reason to refuse a roster.
    let python = match alongside.python.take() {
        Some(search) => Some(python_found(seat, search, shutdown).await?),
        None => None,
    };
    let rules = if args.no_mpyc_flags {
        StreamRules::Generic
    } else {
        StreamRules::Mpyc
    };
    let (forwarder, listener) = forward(&seat.links, &roster, rules, args, &seat.own.name).await?;
    print_roster_view(&roster, &standings, &seat.links);
    if !has_one_relay(&seat.party) {
        eprintln!("partyline: home relay {}", seat.party.relay_url());
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
        listener: Some(listener),
    };
    let (how, code) =
        match run_program(&spec, &seat.links, &forwarder, &seat.own.name, shutdown).await {
            Outcome::Exited(code) => {
                phase("program exited");
                forwarder
                    .drain(partyline_proto::transport::DRAIN_LIMIT)
                    .await;
                phase("peers received everything");
                let how = if code == 0 {
                    Leave::End(CloseCode::Finished, "program finished".to_string())
                } else {
                    let reason = format!("its program exited with code {code}");
                    Leave::End(CloseCode::ProgramFailed, reason)
                };
                (how, code)
            }
            Outcome::Aborted { reason, code } => (Leave::End(CloseCode::Aborted, reason), code),
        };
    let cpu = CpuTimes::now();
    Ok(End {
        report: Some(build_report(
            &roster,
            &standings,
            &seat.party,
            &seat.links,
            setup_ms,
            code,
            cpu,
        )),
        ..End::with(how, Ok(code))
    })
}

fn party_name(flag: Option<&str>, config: &Config) -> anyhow::Result<String> {
    let name = flag
        .map(str::to_string)
        .or_else(|| config.name.clone())
        .unwrap_or_else(default_name);
    typed_name(&name).map_err(|e| anyhow::anyhow!("--name: {e}"))
}

/// Whether the server saw our requests come from an address that is not
/// ours: a NAT (or a proxy) is on the way, so peers cannot dial our addresses
/// and reach us only through our relay until a hole is punched. Unknown
/// (an older server, or one on this machine) counts as no NAT. Asked right
/// after binding, before iroh adds the public address it found (with
/// several relays we are online by then anyway).
fn behind_nat(party: &PartyEndpoint, client_ip: Option<std::net::IpAddr>) -> bool {
    client_ip.is_some_and(|ip| !ip.is_loopback() && !party.has_ip(ip))
}

async fn bind_endpoint(
    info: &ServerInfo,
    invite: &Invite,
    args: &JoinArgs,
) -> anyhow::Result<PartyEndpoint> {
    let config = MeshConfig {
        relay_url: info.relay_url.clone(),
        relay_quic_port: info.relay_quic_port,
        stun_port: info.stun_port,
        pin: invite.pin,
        more_relays: info.relays.clone(),
        relay_only: args.relay_only,
        webrtc_port: args.webrtc_port,
        relay_token: Some(invite.session.to_string()),
        peer_timeout: args.peer_timeout,
    };
    // With several relays we announce the nearest, which iroh knows only
    // once it is online; with one there is nothing to wait for.
    let party = match info.relays.is_empty() {
        true => PartyEndpoint::bind_offline(&config).await?,
        false => PartyEndpoint::bind(&config).await?,
    };
    Ok(party)
}

async fn wait_for_roster(
    seat: &Seat<'_>,
    invite: &Invite,
    timeout: Duration,
    shutdown: &mut Shutdown,
) -> Result<Roster, End> {
    let waiting = spinner(format!(
        "joining session {} as {}",
        invite.session, seat.own.name
    ));
    let wait = announce_and_wait(seat.coordinator, invite, &seat.own, timeout, |p| {
        waiting.set_message(format!(
            "{} of {} parties joined: {}",
            p.joined.len(),
            p.expected,
            p.joined.join(", ")
        ));
    });
    let waited = shutdown.race(wait).await;
    waiting.finish_and_clear();
    match waited {
        Ok(Ok(roster)) => Ok(roster),
        Ok(Err(error)) => {
            // Giving up frees our seat for a retry; a refused roster must stay visible.
            let how = if matches!(error, SessionError::JoinTimeout { .. }) {
                Leave::Withdraw
            } else {
                Leave::Close
            };
            Err(End::with(how, Err(error.into())))
        }
        Err(Interrupted) => Err(End::interrupted(
            Leave::Withdraw,
            "interrupted while waiting; left the session",
        )),
    }
}

/// Our program's Python, once every party accepted the roster: a party
/// without one ends the session for every party.
async fn python_found(
    seat: &Seat<'_>,
    search: PythonSearch,
    shutdown: &mut Shutdown,
) -> Result<Python, End> {
    match shutdown.race(search.found()).await {
        Ok(Ok(python)) => Ok(python),
        Ok(Err(error)) => {
            let reason = format!("{} has no Python to run its program", seat.own.name);
            Err(End::with(
                Leave::End(CloseCode::Aborted, reason),
                Err(error.into()),
            ))
        }
        Err(Interrupted) => Err(End::interrupted(
            Leave::End(
                CloseCode::Aborted,
                format!("{} pressed Ctrl-C", seat.own.name),
            ),
            "interrupted while looking for Python",
        )),
    }
}

/// Ends the session for every party because our checks refused the roster:
/// the peers are told at once, before any ready was sent.
fn refuse(seat: &Seat<'_>, refusal: Refusal) -> End {
    eprintln!(
        "partyline: not starting the program: {refusal}; ending the session for the other parties"
    );
    let reason = format!("{} refused to start: {refusal}", seat.own.name);
    End::with(
        Leave::End(CloseCode::Aborted, reason),
        Err(refusal_error(&refusal)),
    )
}

async fn connect(
    seat: &Seat<'_>,
    roster: &Roster,
    timeout: Duration,
    shutdown: &mut Shutdown,
) -> Result<Vec<PeerLink>, End> {
    let connecting = spinner(format!("connecting to {} peers", roster.members.len() - 1));
    let connected = shutdown
        .race(connect_all(&seat.party, roster, timeout))
        .await;
    connecting.finish_and_clear();
    match connected {
        Ok(Ok(links)) => Ok(links),
        Ok(Err(error)) => Err(End::with(Leave::Close, Err(error.into()))),
        Err(Interrupted) => Err(End::interrupted(
            Leave::Close,
            "interrupted while connecting",
        )),
    }
}

/// Tells every peer we accept the roster and waits until every peer has said
/// the same of the same roster: no party's program starts before all accepted.
async fn wait_until_all_accepted(
    seat: &Seat<'_>,
    roster: &Roster,
    timeout: Duration,
    shutdown: &mut Shutdown,
) -> Result<(), End> {
    let waiting = spinner("waiting until every party has accepted the roster");
    let ready = shutdown
        .race(ready_barrier(&seat.links, roster, timeout))
        .await;
    waiting.finish_and_clear();
    match ready {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => {
            let reason = format!("{} did not start its program: {error}", seat.own.name);
            let outcome = Err(anyhow::anyhow!("{error}; the program did not start"));
            Err(End::with(Leave::End(error.close_code(), reason), outcome))
        }
        Err(Interrupted) => Err(End::interrupted(
            Leave::End(
                CloseCode::Aborted,
                format!("{} pressed Ctrl-C", seat.own.name),
            ),
            "interrupted while waiting for the others to accept the roster",
        )),
    }
}

/// Binds our program's listening socket and the local tunnel ends at the
/// session's addresses, starts forwarding and says how each peer is reached.
async fn forward(
    links: &[PeerLink],
    roster: &Roster,
    rules: StreamRules,
    args: &JoinArgs,
    name: &str,
) -> Result<(Forwarder, ProgramListener), End> {
    let started = || -> anyhow::Result<(Forwarder, ProgramListener)> {
        let mut ends = LocalEnds::bind(
            &roster.session,
            roster.members.len(),
            args.base_port,
            args.ports,
        )?;
        if let Some(fallback) = ends.fallback() {
            eprintln!("partyline: {fallback}");
        }
        let mut own = ends.take(roster.own_index).into_iter();
        let first = own
            .next()
            .context("no listening socket for our own program")?;
        let listener = ProgramListener::from_listening(first)?.with_more(own.collect());
        let forwarder = Forwarder::start(links, roster.own_index, ends, rules)?;
        Ok((forwarder, listener))
    };
    let (forwarder, listener) = started().map_err(|error| {
        let reason = format!("{name} could not set up its program's connections");
        End::with(Leave::End(CloseCode::Aborted, reason), Err(error))
    })?;
    Ok((forwarder, listener))
}

enum Outcome {
    /// Our program ended by itself with this exit code.
    Exited(i32),
    /// We stopped the program; `reason` is told to the peers.
    Aborted { reason: String, code: i32 },
}

/// Runs the program until it exits, a peer ends the session or breaks the
/// seat rules, or Ctrl-C.
async fn run_program(
    spec: &ProgramSpec,
    links: &[PeerLink],
    forwarder: &Forwarder,
    name: &str,
    shutdown: &mut Shutdown,
) -> Outcome {
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
    phase("program started");
    let mut peer_events = watch_peers(links);
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
            breach = forwarder.breach() => {
                // The forwarder has already closed every connection, saying why.
                eprintln!("partyline: {breach}; ended the session for every party");
                let _ = program.terminate(TERMINATE_GRACE).await;
                return Outcome::Aborted { reason: format!("{name} ended the session because {breach}"), code: 1 };
            }
            () = shutdown.pressed() => {
                eprintln!("partyline: interrupted; ending the session for every party");
                let _ = program.terminate(TERMINATE_GRACE).await;
                return Outcome::Aborted { reason: format!("{name} pressed Ctrl-C"), code: INTERRUPTED };
            }
        }
    }
}

/// The roster as soon as it is verified: every seat with its name and how
/// the address book knows it, and the fingerprint.
fn print_roster(roster: &Roster, standings: &[Standing], expects_names: bool) {
    eprintln!("partyline: all {} parties joined:", roster.members.len());
    for (m, standing) in roster.members.iter().zip(standings) {
        eprintln!("  party {}: {} ({standing})", m.index, m.name);
    }
    eprintln!(
        "partyline: session fingerprint {}: every party sees the same one; compare it with the others out of band",
        roster.fingerprint()
    );
    let unknown: Vec<&str> = roster
        .members
        .iter()
        .zip(standings)
        .filter(|(_, standing)| !matches!(standing, Standing::You | Standing::Known { .. }))
        .map(|(m, _)| m.name.as_str())
        .collect();
    if expects_names && unknown.is_empty() {
        eprintln!(
            "partyline: every other party is known by its identity and --expect names them all: \
             no fingerprint comparison needed"
        );
    } else if expects_names {
        eprintln!(
            "partyline: --expect checks only the names of {}: compare the fingerprint with them",
            unknown.join(", ")
        );
    }
}

/// The roster once connected, just before the program starts: every seat
/// with its name, how the address book knows it, and the path to it.
fn print_roster_view(roster: &Roster, standings: &[Standing], links: &[PeerLink]) {
    eprintln!("partyline: roster:");
    for (m, standing) in roster.members.iter().zip(standings) {
        let path = links
            .iter()
            .find(|link| link.member.index == m.index)
            .map(|link| {
                let (path, rtt) = link.path();
                format!(
                    ", connected via {}{}",
                    path.as_str(),
                    rtt.map(|r| format!(", rtt {:.1} ms", r.as_secs_f64() * 1000.0))
                        .unwrap_or_default()
                )
            })
            .unwrap_or_default();
        eprintln!("  party {}: {} ({standing}){path}", m.index, m.name);
    }
}

/// Whether the server has only its own relay, so there was no choice.
fn has_one_relay(party: &PartyEndpoint) -> bool {
    party.relay_latencies().len() <= 1
}

fn build_report(
    roster: &Roster,
    standings: &[Standing],
    party: &PartyEndpoint,
    links: &[PeerLink],
    setup_ms: u64,
    exit_code: i32,
    cpu: CpuTimes,
) -> Report {
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
                    identity: link.member.identity.map(|key| key.words().to_string()),
                    standing: standings
                        .get(link.member.index)
                        .map(Standing::to_string)
                        .unwrap_or_default(),
                    path: path.as_str(),
                    rtt_ms: rtt.map(|r| r.as_secs_f64() * 1000.0),
                    bytes_sent: link.bytes_sent.load(Ordering::Relaxed),
                    bytes_received: link.bytes_received.load(Ordering::Relaxed),
                }
            })
            .collect(),
        home_relay: party.relay_url(),
        relay_rtt_ms: party
            .relay_latencies()
            .into_iter()
            .map(|(url, rtt)| (url, rtt.as_secs_f64() * 1000.0))
            .collect(),
        webrtc_candidates: roster
            .own()
            .webrtc
            .as_ref()
            .map(|offer| offer.candidates.clone())
            .unwrap_or_default(),
        setup_ms,
        exit_code,
        partyline_cpu_s: cpu.own.as_secs_f64(),
        program_cpu_s: cpu.programs.as_secs_f64(),
    }
}

pub async fn find_python(args: &PythonArgs, config: &Config) -> anyhow::Result<Python> {
    let source = match args.python.clone().or_else(|| config.python.clone()) {
        Some(path) => PythonSource::Explicit(path),
        None => PythonSource::Managed,
    };
    let bar = spinner("looking for Python with MPyC");
    let python = ensure_python(source, &|status| bar.set_message(status.to_string())).await;
    bar.finish_and_clear();
    Ok(python?)
}

fn default_name() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| check_name(u).is_ok())
        .unwrap_or_else(|| "party".to_string())
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use partyline_wire::CertPin;

    use super::*;

    #[tokio::test]
    async fn only_an_address_not_ours_means_a_nat() {
        let config = MeshConfig {
            // Never reached: the endpoint is bound without waiting for it.
            relay_url: "https://127.0.0.1:1".into(),
            relay_quic_port: None,
            stun_port: None,
            pin: CertPin([0; 32]),
            more_relays: Vec::new(),
            relay_only: false,
            webrtc_port: None,
            relay_token: None,
            peer_timeout: Default::default(),
        };
        let party = PartyEndpoint::bind_offline(&config).await.unwrap();
        let own: IpAddr = party
            .direct_addrs()
            .first()
            .expect("a bound endpoint has an address")
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .ip();
        assert!(!behind_nat(&party, Some(own)), "{own} is ours");
        // TEST-NET-1: a NAT router's public address, as the server sees it.
        assert!(behind_nat(&party, Some(Ipv4Addr::new(192, 0, 2, 1).into())));
        // A server on this machine, or one that does not say, cannot tell.
        assert!(!behind_nat(&party, Some(Ipv4Addr::LOCALHOST.into())));
        assert!(!behind_nat(&party, None));
        party.close().await;
    }
}
