//! `partyline join`: announce, wait for everyone, build the mesh, run the program.
//!
//! [`run`] is a driver of phases (find Python, bind the endpoint, announce and
//! wait, check the roster (--expect, --confirm), connect, forward, run the
//! program), each a function of its own. Two
//! small types keep the exits in one place, after mini-redis' `Shutdown` and
//! `DbDropGuard`:
//! - [`Shutdown`] catches Ctrl-C once for the whole run; every phase races against it.
//! - [`Seat`] owns what we hold in the session (the endpoint, our announcement,
//!   the peer links). A phase that stops the run returns an [`End`] saying how
//!   to leave, and the driver hands it to [`Seat::leave`], the one place that
//!   withdraws, tells the peers and closes.
use std::future::Future;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use partyline_launch::{
    ProgramListener, ProgramSpec, PythonSource, RunningProgram, ensure_python, exit_code,
};
use partyline_mesh::ending::watch_peers;
use partyline_mesh::{
    CloseCode, Forwarder, MeshConfig, PartyEndpoint, PeerEventKind, PeerLink, connect_all,
};
use partyline_session::{Coordinator, SessionError, announce_and_wait};
use partyline_wire::announce::{check_name, normalize_name};
use partyline_wire::api::ServerInfo;
use partyline_wire::{Announcement, Fingerprint, Invite, Roster};
use tokio::sync::watch;

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
/// The environment variable that can hold the invite, off the command line.
const INVITE_VAR: &str = "PARTYLINE_INVITE";

pub async fn run(args: JoinArgs, config: &Config) -> anyhow::Result<i32> {
    let invite = read_invite(&args)?;
    let name = party_name(args.name.as_deref(), config)?;
    let checks = Checks::from_args(&args)?;
    let coordinator = Coordinator::new(&invite.server, invite.pin);
    let info = coordinator.info().await?;
    let python = python_for(&args.program, &args.python, config).await?;
    let party = bind_endpoint(&info, &invite, args.relay_only).await?;
    let mut shutdown = Shutdown::listen();
    let mut seat = Seat::take(&coordinator, &invite, name, party, args.relay_only);

    let end = match drive(&mut seat, &args, &invite, &checks, python, &mut shutdown).await {
        Ok(end) | Err(end) => end,
    };
    seat.leave(end.how).await;
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
    python: Option<PathBuf>,
    shutdown: &mut Shutdown,
) -> Result<End, End> {
    let timeout = Duration::from_secs(args.timeout);
    let roster = wait_for_roster(seat, invite, timeout, shutdown).await?;
    let roster_complete = Instant::now();
    print_roster(&roster);
    if let Some(refusal) = checks.run(&roster, shutdown).await? {
        return Err(refuse(seat, &roster, refusal, timeout, shutdown).await);
    }

    seat.links = connect(seat, &roster, timeout, shutdown).await?;
    let setup_ms = roster_complete.elapsed().as_millis() as u64;
    let (forwarder, listener) = forward(&seat.links, &roster, &seat.own.name).await?;
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
    let (how, code) = match run_program(&spec, &seat.links, &seat.own.name, shutdown).await {
        Outcome::Exited(code) => {
            forwarder.drain(DRAIN_LIMIT).await;
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
    Ok(End {
        report: Some(build_report(&roster, &seat.links, setup_ms, code)),
        ..End::with(how, Ok(code))
    })
}

/// What the user asked to check before the program starts (--expect, --confirm).
struct Checks {
    expected: Option<Vec<String>>,
    confirm: bool,
}

/// Why we will not start the program with this roster.
#[derive(Debug)]
enum Refusal {
    /// The roster's names are not those of --expect.
    Unexpected {
        missing: Vec<String>,
        extra: Vec<String>,
    },
    /// The fingerprint typed for --confirm is not this roster's.
    WrongFingerprint,
    /// Stdin ended before a fingerprint was typed.
    NotConfirmed,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Unexpected { missing, extra } => {
                let mut differences = Vec::new();
                if !missing.is_empty() {
                    differences.push(format!("missing: {}", missing.join(", ")));
                }
                if !extra.is_empty() {
                    differences.push(format!("not expected: {}", extra.join(", ")));
                }
                write!(
                    f,
                    "the roster is not the one --expect names ({})",
                    differences.join("; ")
                )
            }
            Refusal::WrongFingerprint => {
                write!(f, "the fingerprint typed is not this session's fingerprint")
            }
            Refusal::NotConfirmed => write!(f, "stdin ended before a fingerprint was typed"),
        }
    }
}

impl Refusal {
    /// The refusal as our exit error, with what to do next.
    fn error(&self) -> anyhow::Error {
        let advice = match self {
            Refusal::Unexpected { .. } => {
                "Agree with the others on who takes part, then start a new session; if a stranger \
                 joined, the invite has leaked: share the new one more carefully"
            }
            Refusal::WrongFingerprint | Refusal::NotConfirmed => {
                "If you typed what the others read out, someone sees a different roster: start a \
                 new session and share its invite only with the parties"
            }
        };
        anyhow::anyhow!("{self}; the program did not start. {advice}")
    }
}

impl Checks {
    /// --expect's names are normalised as every party normalises its own.
    fn from_args(args: &JoinArgs) -> anyhow::Result<Self> {
        let expected = match &args.expect {
            Some(names) => {
                let names: Vec<String> = names.iter().map(|n| normalize_name(n.trim())).collect();
                for name in &names {
                    check_name(name).map_err(|e| anyhow::anyhow!("--expect: {e}"))?;
                }
                Some(names)
            }
            None => None,
        };
        Ok(Self {
            expected,
            confirm: args.confirm,
        })
    }

    /// `None` if the roster may be used, else why not. Asks the user only
    /// when the names agree.
    async fn run(&self, roster: &Roster, shutdown: &mut Shutdown) -> Result<Option<Refusal>, End> {
        if let Some(expected) = &self.expected {
            let (missing, extra) = differences(expected, roster);
            if !missing.is_empty() || !extra.is_empty() {
                return Ok(Some(Refusal::Unexpected { missing, extra }));
            }
        }
        if !self.confirm {
            return Ok(None);
        }
        eprintln!(
            "partyline: type the fingerprint the other parties read out (at least its first {} words) and press Enter:",
            Fingerprint::SHORT_WORDS
        );
        let read = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map(|_| line)
        });
        match shutdown.race(read).await {
            Err(Interrupted) => Err(End::interrupted(
                Leave::Close,
                "interrupted while waiting for the fingerprint",
            )),
            Ok(Ok(Ok(typed))) if typed.trim().is_empty() => Ok(Some(Refusal::NotConfirmed)),
            Ok(Ok(Ok(typed))) if roster.fingerprint().matches(&typed) => Ok(None),
            Ok(Ok(Ok(_))) => Ok(Some(Refusal::WrongFingerprint)),
            Ok(Ok(Err(error))) => Err(End::with(
                Leave::Close,
                Err(anyhow::Error::new(error).context("cannot read the fingerprint from stdin")),
            )),
            Ok(Err(error)) => Err(End::with(Leave::Close, Err(error.into()))),
        }
    }
}

/// The names `expected` has and the roster lacks, and those the roster has
/// beyond them; both empty when they agree. Order does not matter.
fn differences(expected: &[String], roster: &Roster) -> (Vec<String>, Vec<String>) {
    let mut extra: Vec<String> = roster.members.iter().map(|m| m.name.clone()).collect();
    let mut missing = Vec::new();
    for name in expected {
        match extra.iter().position(|n| n == name) {
            Some(found) => {
                extra.remove(found);
            }
            None => missing.push(name.clone()),
        }
    }
    (missing, extra)
}

/// Ctrl-C, caught once for the whole run, so that no phase misses it.
struct Shutdown(watch::Receiver<bool>);

/// The user pressed Ctrl-C while a phase ran.
struct Interrupted;

impl Shutdown {
    fn listen() -> Self {
        let (pressed, rx) = watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = pressed.send(true);
            }
        });
        Self(rx)
    }

    /// Resolves once Ctrl-C was pressed; never, if the signal cannot be caught.
    async fn pressed(&mut self) {
        if self.0.wait_for(|pressed| *pressed).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    async fn race<T>(&mut self, phase: impl Future<Output = T>) -> Result<T, Interrupted> {
        tokio::select! {
            out = phase => Ok(out),
            () = self.pressed() => Err(Interrupted),
        }
    }
}

/// Our place in the session from the moment our endpoint exists: the
/// endpoint, our announcement, and once connected the links to the peers.
///
/// Every run ends in [`Seat::leave`]. Leaving is async (withdrawing, flushing
/// the close frames), which `Drop` cannot do; so `Drop` is only a safety net
/// for a seat never left (a panic): it aborts the links, which is synchronous.
struct Seat<'a> {
    coordinator: &'a Coordinator,
    own: Announcement,
    party: PartyEndpoint,
    links: Vec<PeerLink>,
    left: bool,
}

/// How we let go of our seat.
enum Leave {
    /// Take our announcement back, so that the seat can be taken again
    /// (Ctrl-C or a timeout while waiting for the others).
    Withdraw,
    /// Only close the endpoint: no peer is connected yet. After a refused
    /// roster the session is spoiled for everyone, and withdrawing would only
    /// hide the forged roster from the parties still waiting for it.
    Close,
    /// Tell every peer why we end, with this close code; then close.
    End(CloseCode, String),
}

/// How a run ends: how to leave the seat, what to say once left, the report
/// and the exit code (or error).
struct End {
    how: Leave,
    note: Option<&'static str>,
    report: Option<Report>,
    outcome: anyhow::Result<i32>,
}

impl End {
    fn with(how: Leave, outcome: anyhow::Result<i32>) -> Self {
        Self {
            how,
            note: None,
            report: None,
            outcome,
        }
    }

    fn interrupted(how: Leave, note: &'static str) -> Self {
        Self {
            note: Some(note),
            ..Self::with(how, Ok(INTERRUPTED))
        }
    }
}

impl<'a> Seat<'a> {
    fn take(
        coordinator: &'a Coordinator,
        invite: &Invite,
        name: String,
        party: PartyEndpoint,
        relay_only: bool,
    ) -> Self {
        let own = Announcement {
            session: invite.session,
            name,
            endpoint: party.key(),
            relay_url: Some(party.relay_url()),
            addrs: if relay_only {
                Vec::new()
            } else {
                party.direct_addrs()
            },
            joined_at_ms: unix_millis(),
        };
        Self {
            coordinator,
            own,
            party,
            links: Vec::new(),
            left: false,
        }
    }

    async fn leave(mut self, how: Leave) {
        self.left = true;
        match &how {
            Leave::Withdraw => {
                let _ = self
                    .coordinator
                    .leave(&self.own.session, &self.own.endpoint)
                    .await;
            }
            Leave::Close => {}
            Leave::End(code, reason) => {
                for link in &self.links {
                    code.close(&link.conn, reason);
                }
            }
        }
        self.party.close().await;
        if matches!(how, Leave::End(CloseCode::Finished, _)) {
            let _ = self.coordinator.done(&self.own.session).await;
        }
    }
}

impl Drop for Seat<'_> {
    fn drop(&mut self) {
        if !self.left {
            for link in &self.links {
                CloseCode::Aborted.close(&link.conn, "its partyline stopped unexpectedly");
            }
        }
    }
}

/// Reads the invite from the one place it was given: the argument, `-` (a line
/// on stdin), --invite-file or the environment. Every local user can read a
/// command line; the other three stay private to us.
fn read_invite(args: &JoinArgs) -> anyhow::Result<Invite> {
    let from_env = std::env::var(INVITE_VAR)
        .ok()
        .filter(|text| !text.trim().is_empty());
    if args.confirm && args.invite.as_deref() == Some("-") {
        bail!(
            "--confirm reads the fingerprint from stdin, so the invite cannot come from stdin too: \
             give it in {INVITE_VAR} or with --invite-file"
        );
    }
    let text = match (&args.invite, &args.invite_file, from_env) {
        (Some(arg), None, None) if arg == "-" => read_invite_line()?,
        (Some(arg), None, None) => arg.clone(),
        (None, Some(path), None) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the invite from {}", path.display()))?,
        (None, None, Some(text)) => text,
        (None, None, None) => bail!(
            "no invite given: pass it as the argument, `-` to read it from stdin, \
             --invite-file FILE, or set {INVITE_VAR}; on a shared machine use one of the last three"
        ),
        (arg, file, env) => {
            let given = [
                arg.as_ref().map(|_| "the INVITE argument"),
                file.as_ref().map(|_| "--invite-file"),
                env.as_ref().map(|_| INVITE_VAR),
            ];
            let given: Vec<&str> = given.into_iter().flatten().collect();
            bail!(
                "the invite is given more than once ({}); give it in exactly one way",
                given.join(" and ")
            )
        }
    };
    Ok(text.trim().parse()?)
}

/// One line from stdin. Blocking is fine here: nothing else runs yet.
fn read_invite_line() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("partyline: paste the invite and press Enter:");
    }
    let mut line = String::new();
    stdin
        .read_line(&mut line)
        .context("cannot read the invite from stdin")?;
    if line.trim().is_empty() {
        bail!("stdin ended before an invite was read: give the invite as one line on stdin");
    }
    Ok(line)
}

fn party_name(flag: Option<&str>, config: &Config) -> anyhow::Result<String> {
    let name = flag
        .map(str::to_string)
        .or_else(|| config.name.clone())
        .unwrap_or_else(default_name);
    let name = normalize_name(&name);
    check_name(&name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    Ok(name)
}

/// A Python with MPyC, if the program is a Python script.
async fn python_for(
    program: &[String],
    args: &PythonArgs,
    config: &Config,
) -> anyhow::Result<Option<PathBuf>> {
    if program[0].ends_with(".py") {
        Ok(Some(find_python(args, config).await?))
    } else {
        Ok(None)
    }
}

async fn bind_endpoint(
    info: &ServerInfo,
    invite: &Invite,
    relay_only: bool,
) -> anyhow::Result<PartyEndpoint> {
    Ok(PartyEndpoint::bind(&MeshConfig {
        relay_url: info.relay_url.clone(),
        relay_quic_port: info.relay_quic_port,
        pin: invite.pin,
        relay_only,
    })
    .await?)
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

/// Connects only to end the session for the peers with our reason: without
/// that they would wait for us until their --timeout.
async fn refuse(
    seat: &mut Seat<'_>,
    roster: &Roster,
    refusal: Refusal,
    timeout: Duration,
    shutdown: &mut Shutdown,
) -> End {
    eprintln!(
        "partyline: not starting the program: {refusal}; ending the session for the other parties"
    );
    match connect(seat, roster, timeout, shutdown).await {
        Ok(links) => {
            seat.links = links;
            let reason = format!("{} refused to start: {refusal}", seat.own.name);
            End::with(Leave::End(CloseCode::Aborted, reason), Err(refusal.error()))
        }
        Err(interrupted) if interrupted.note.is_some() => interrupted,
        // Our refusal is the news, not that we could not pass it on.
        Err(_) => End::with(Leave::Close, Err(refusal.error())),
    }
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

/// Binds our program's listening socket, starts the local tunnel ends for
/// our program and says how each peer is reached.
async fn forward(
    links: &[PeerLink],
    roster: &Roster,
    name: &str,
) -> Result<(Forwarder, ProgramListener), End> {
    let started = match ProgramListener::bind() {
        Ok(listener) => Forwarder::start(links, roster.own_index, listener.addr())
            .await
            .map(|forwarder| (forwarder, listener))
            .map_err(anyhow::Error::from),
        Err(error) => Err(error.into()),
    };
    let (forwarder, listener) = started.map_err(|error| {
        let reason = format!("{name} could not set up its program's connections");
        End::with(Leave::End(CloseCode::Aborted, reason), Err(error))
    })?;
    for link in links {
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
    Ok((forwarder, listener))
}

enum Outcome {
    /// Our program ended by itself with this exit code.
    Exited(i32),
    /// We stopped the program; `reason` is told to the peers.
    Aborted { reason: String, code: i32 },
}

/// Runs the program until it exits, a peer ends the session, or Ctrl-C.
async fn run_program(
    spec: &ProgramSpec,
    links: &[PeerLink],
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
            () = shutdown.pressed() => {
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
