//! The connection solutions compared on one topology, and what they share:
//! starting one process per party in its namespace and timing them.
//!
//! - [`tcp`]: MPyC's own TCP between public addresses, plain or with
//!   `--ssl` (a CA and party certificates generated per run).
//! - [`partyline`]: `partyline join` in every party namespace against a
//!   `partyline serve` in the server namespace, direct or `--relay-only`.
//! - [`wireguard`]: a userspace WireGuard mesh (boringtun), MPyC over it.
//!
//! All but wireguard also run in the loopback scenario (no namespaces, no
//! root), where every process runs on this machine.
pub mod partyline;
pub mod tcp;
pub mod wireguard;

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::str::FromStr;
use std::time::{Duration, Instant};

use partyline_launch::{CpuTimes, mpyc};

use self::partyline::Server;
use crate::error::{LabError, Result};
use crate::fault::{Fault, Schedule};
use crate::process::{NsProcess, tail};
use crate::topology::Lab;
use crate::workload::Workload;

/// After one party failed, how long the others get before they are stopped
/// (they usually wait for the failed one forever).
const AFTER_FAILURE: Duration = Duration::from_secs(5);
/// How often the waits look at the parties.
const POLL: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Solution {
    Tcp,
    TcpSsl,
    Partyline,
    PartylineRelay,
    Wireguard,
}

pub const ALL: [Solution; 5] = [
    Solution::Tcp,
    Solution::TcpSsl,
    Solution::Partyline,
    Solution::PartylineRelay,
    Solution::Wireguard,
];

impl Solution {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::TcpSsl => "tcp-ssl",
            Self::Partyline => "partyline",
            Self::PartylineRelay => "partyline-relay",
            Self::Wireguard => "wireguard",
        }
    }
}

impl fmt::Display for Solution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Solution {
    type Err = LabError;
    fn from_str(s: &str) -> Result<Self> {
        ALL.into_iter().find(|x| x.as_str() == s).ok_or_else(|| {
            LabError::invalid(
                "solution",
                format!("{s:?}; use tcp, tcp-ssl, partyline, partyline-relay or wireguard"),
            )
        })
    }
}

/// Everything one run needs.
pub struct Context<'a> {
    pub lab: &'a Lab,
    /// The partyline binary.
    pub exe: &'a Path,
    pub workload: &'a Workload,
    /// This run's directory; party i works in `party{i}/`.
    pub dir: PathBuf,
    pub timeout: Duration,
    /// The TCP port each party's MPyC listens on (see [`Lab::mpyc_ports`]).
    pub ports: Vec<u16>,
    /// MPyC flags every party gets, e.g. a threshold.
    pub mpyc_extra: Vec<String>,
    /// Applied during the run, counted from its start (see [`crate::fault`]).
    pub faults: &'a [Fault],
}

impl Context<'_> {
    pub fn parties(&self) -> usize {
        self.lab.parties.len()
    }

    pub fn party_dir(&self, i: usize) -> PathBuf {
        self.dir.join(format!("party{i}"))
    }

    /// The program and its arguments, without MPyC's connection flags.
    pub fn program(&self) -> Vec<String> {
        std::iter::once(self.workload.program.to_string_lossy().into_owned())
            .chain(self.workload.args.iter().cloned())
            .chain(self.mpyc_extra.iter().cloned())
            .collect()
    }

    /// Fails unless every party has a public address, as MPyC's own TCP
    /// and a WireGuard mesh with fixed endpoints need.
    pub fn require_public(&self, solution: Solution) -> Result<()> {
        match self.lab.parties.iter().position(|p| p.public_ip != p.ip) {
            None => Ok(()),
            Some(i) => Err(LabError::invalid(
                solution.as_str(),
                format!("needs every party on a public address, party {i} is behind a NAT"),
            )),
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// From starting the parties to the last one exiting.
    pub wall: Duration,
    /// Connection set-up the solution needed before or within the run.
    pub setup: Option<Duration>,
    /// Payload bytes MPyC sent, over all parties (MPyC's own count).
    pub bytes: Option<u64>,
    /// MPyC's own run time (start to shutdown) of the slowest party, from
    /// its log: the computation without process start-up and joining.
    pub mpyc: Option<Duration>,
    /// Which paths carried the traffic, e.g. `direct:6` or `relay:2 direct:4`.
    pub paths: String,
    /// CPU time of each party's program (MPyC), the mean over parties.
    pub program_cpu: Option<Duration>,
    /// CPU time of each party's connection software where it is a process
    /// of its own (partyline), the mean over parties.
    pub carrier_cpu: Option<Duration>,
    /// Why the run failed; `None` if every party exited with 0.
    pub error: Option<String>,
    /// Each party's stdout.
    pub stdout: Vec<String>,
}

/// Waits for all parties, killing the rest when one fails or the run's
/// timeout passes, and gathers the outcome. Meanwhile the run's faults are
/// applied as they come due (`server` is what a relay restart restarts) and
/// undone at the end.
pub fn finish(
    ctx: &Context,
    mut parties: Vec<NsProcess>,
    started: Instant,
    server: Option<&Server>,
) -> Result<Outcome> {
    let mut faults = Schedule::new(ctx.lab, ctx.faults, server, started, &ctx.dir)?;
    let deadline = started + ctx.timeout;
    let n = parties.len();
    // The parties are not reaped yet: what they use is counted when they are.
    let children_cpu = CpuTimes::now().programs;
    let mut statuses: Vec<Option<ExitStatus>> = vec![None; n];
    let mut error: Option<String> = None;
    let mut stop_at = deadline;
    loop {
        for (i, p) in parties.iter_mut().enumerate() {
            if statuses[i].is_none()
                && let Some(status) = p.try_wait()?
            {
                statuses[i] = Some(status);
                if !status.success() && error.is_none() {
                    error = Some(format!(
                        "{} exited with {status}: {}",
                        p.name,
                        tail(&(p.stderr_text() + &p.stdout_text()), 4).replace('\n', " | ")
                    ));
                    stop_at = stop_at.min(Instant::now() + AFTER_FAILURE);
                }
            }
        }
        if statuses.iter().all(Option::is_some) {
            break;
        }
        crate::interrupt::check()?;
        faults.poll()?;
        if Instant::now() >= stop_at {
            let waiting: Vec<&str> = parties
                .iter()
                .zip(&statuses)
                .filter(|(_, s)| s.is_none())
                .map(|(p, _)| p.name.as_str())
                .collect();
            if error.is_none() {
                error = Some(format!(
                    "timeout after {} s waiting for {}",
                    started.elapsed().as_secs(),
                    waiting.join(", ")
                ));
            }
            for p in &mut parties {
                p.kill();
            }
            break;
        }
        std::thread::sleep(POLL);
    }
    let wall = started.elapsed();
    let party_cpu = CpuTimes::now().programs.saturating_sub(children_cpu) / n.max(1) as u32;
    faults.finish()?;
    let outputs: Vec<(String, String)> = parties
        .iter()
        .map(|p| (p.stdout_text(), p.stderr_text()))
        .collect();
    let bytes = from_every_log(&outputs, mpyc::bytes_sent).map(|counts| counts.iter().sum());
    let mpyc = from_every_log(&outputs, mpyc::elapsed).and_then(|times| times.into_iter().max());
    Ok(Outcome {
        wall,
        setup: None,
        bytes,
        mpyc,
        paths: String::new(),
        // Each party's process is its program, unless the solution says otherwise.
        program_cpu: Some(party_cpu),
        carrier_cpu: None,
        error,
        stdout: outputs.into_iter().map(|(o, _)| o).collect(),
    })
}

/// What `read` finds in every party's log (stdout, else stderr: MPyC logs to
/// stdout, but a program may send its log elsewhere); `None` unless all have it.
fn from_every_log<T>(outputs: &[(String, String)], read: fn(&str) -> Option<T>) -> Option<Vec<T>> {
    outputs
        .iter()
        .map(|(stdout, stderr)| read(stdout).or_else(|| read(stderr)))
        .collect()
}
