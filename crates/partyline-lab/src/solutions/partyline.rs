//! partyline itself: `partyline serve` in the server namespace, and per run
//! `partyline create` there and `partyline join` in every party namespace
//! (on loopback: all on this machine), exactly the commands real parties type.
//! A scenario with a relay in every region also gets `partyline relay` in
//! each relay host, listed by the server (`serve --relay`).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Context, Outcome, finish};
use crate::error::{LabError, Result};
use crate::process::NsProcess;
use crate::shell;
use crate::topology::{Host, Lab};

/// The coordinator's port on the server's public address (the relay takes
/// the next). On loopback the server takes any free ports instead: 7700 may
/// be in use on this machine.
pub const PORT: u16 = 7700;
/// The port of each relay of its own (TCP, and UDP for address discovery).
pub const RELAY_PORT: u16 = 7702;
/// How long `partyline serve` may take to start.
const SERVE_START: Duration = Duration::from_secs(30);

/// A running `partyline serve`, stopped when dropped.
pub struct Server {
    /// The process, and how many times it was started.
    process: Mutex<(NsProcess, u32)>,
    /// `https://HOST:PORT#sha256=PIN`, as `partyline create --server` wants it.
    pub link: String,
    exe: PathBuf,
    dir: PathBuf,
    args: Vec<String>,
    /// The relay token the server and its relays share, in their environment.
    env: Vec<(String, String)>,
    /// `partyline relay` in each relay host, and the link each printed.
    pub relays: Vec<(NsProcess, String)>,
}

impl Server {
    pub fn start(lab: &Lab, exe: &Path, dir: &Path) -> Result<Self> {
        let data = dir.join("server-data");
        std::fs::create_dir_all(&data).map_err(LabError::io(&data))?;
        let port = if lab.is_loopback() { 0 } else { PORT };
        let args = vec![
            "serve".into(),
            "--listen".into(),
            format!("{}:{port}", lab.server.ip),
            "--data-dir".into(),
            data.to_string_lossy().into_owned(),
            // Every party of every run comes from the same address, and the
            // relay's throughput is measured: no quotas.
            "--no-quotas".into(),
        ];
        let env = vec![(
            "PARTYLINE_RELAY_TOKEN".to_string(),
            format!("{:032x}", rand::random::<u128>()),
        )];
        let (mut process, link) = Self::spawn(lab, exe, dir, &args, &env, "server")?;
        let mut args = args;
        let mut starts = 1;
        let mut relays = Vec::new();
        // Each relay needs the server's link (its pin), and the server the
        // relays' links: the server made its certificate on its first start.
        for (j, host) in lab.relays.iter().enumerate() {
            let relay = start_relay(j, host, &link, exe, dir, &env)?;
            args.extend(["--relay".to_string(), relay.1.clone()]);
            relays.push(relay);
        }
        if !relays.is_empty() {
            process.kill();
            let again;
            (process, again) = Self::spawn(lab, exe, dir, &args, &env, "server-2")?;
            starts = 2;
            same_link(&again, &link)?;
        }
        Ok(Self {
            process: Mutex::new((process, starts)),
            link,
            exe: exe.to_path_buf(),
            dir: dir.to_path_buf(),
            args,
            env,
            relays,
        })
    }

    fn spawn(
        lab: &Lab,
        exe: &Path,
        dir: &Path,
        args: &[String],
        env: &[(String, String)],
        name: &str,
    ) -> Result<(NsProcess, String)> {
        let ns = lab.server.ns.as_deref();
        spawn_until_ready(name, ns, dir, exe, args, env, "partyline server ready: ")
    }

    /// Kills the server (SIGKILL: nothing is closed gracefully), to be
    /// started again by [`Server::start_again`].
    pub fn kill(&self) -> Result<()> {
        self.process
            .lock()
            .map_err(|_| LabError::invalid("server", "a restart panicked"))?
            .0
            .kill();
        Ok(())
    }

    /// Starts the server again on the same ports and data directory (so with
    /// the same link) and returns once it is ready; its output goes to
    /// `server-N.out` for the N-th start. Refused in the loopback scenario,
    /// where its ports are picked anew.
    pub fn start_again(&self, lab: &Lab) -> Result<()> {
        if lab.is_loopback() {
            return Err(LabError::invalid(
                "server restart",
                "the loopback scenario's server takes new ports when started: pick a scenario with namespaces",
            ));
        }
        let mut guard = self
            .process
            .lock()
            .map_err(|_| LabError::invalid("server", "a restart panicked"))?;
        guard.0.kill();
        let name = format!("server-{}", guard.1 + 1);
        let (process, link) = Self::spawn(lab, &self.exe, &self.dir, &self.args, &self.env, &name)?;
        *guard = (process, guard.1 + 1);
        same_link(&link, &self.link)
    }

    pub fn alive(&mut self) -> bool {
        self.process
            .get_mut()
            .is_ok_and(|(p, _)| matches!(p.try_wait(), Ok(None)))
    }
}

/// A restarted server must show the certificate it had.
fn same_link(link: &str, was: &str) -> Result<()> {
    if link != was {
        return Err(LabError::invalid(
            "restarted partyline serve",
            format!("it has another link ({link}, was {was})"),
        ));
    }
    Ok(())
}

/// `partyline relay` number `j` on `host` for the server at `link`, and
/// the relay's own link.
fn start_relay(
    j: usize,
    host: &Host,
    link: &str,
    exe: &Path,
    dir: &Path,
    env: &[(String, String)],
) -> Result<(NsProcess, String)> {
    let data = dir.join(format!("relay{j}-data"));
    let args = vec![
        "relay".into(),
        "--listen".into(),
        format!("{}:{RELAY_PORT}", host.ip),
        "--coordinator".into(),
        link.to_string(),
        "--data-dir".into(),
        data.to_string_lossy().into_owned(),
        // The relay's throughput is measured, as the server's is (--no-quotas).
        "--relay-kib-per-second".into(),
        "0".into(),
    ];
    let name = format!("relay{j}");
    let ns = host.ns.as_deref();
    spawn_until_ready(&name, ns, dir, exe, &args, env, "partyline relay ready: ")
}

/// Starts `partyline args` as `name` in `ns` and waits for its first line,
/// which must be `ready` followed by the link it serves: `partyline serve`
/// and `partyline relay` both announce themselves so.
fn spawn_until_ready(
    name: &str,
    ns: Option<&str>,
    dir: &Path,
    exe: &Path,
    args: &[String],
    env: &[(String, String)],
    ready: &str,
) -> Result<(NsProcess, String)> {
    let mut process = NsProcess::spawn(name, ns, dir, exe, args, env)?;
    let line = process.wait_for_line(Instant::now() + SERVE_START)?;
    let link = line
        .strip_prefix(ready)
        .ok_or_else(|| {
            let command = args.first().map_or("", String::as_str);
            LabError::invalid(format!("partyline {command} output"), line.clone())
        })?
        .to_string();
    Ok((process, link))
}

pub fn run(ctx: &Context, server: &Server, relay_only: bool) -> Result<Outcome> {
    let n = ctx.parties();
    let created = shell::on_host(
        ctx.lab.server.ns.as_deref(),
        &ctx.exe.to_string_lossy(),
        [
            "create",
            "--parties",
            &n.to_string(),
            "--server",
            &server.link,
        ],
    )?;
    let invite = created
        .lines()
        .last()
        .ok_or_else(|| LabError::invalid("partyline create output", "it printed nothing"))?
        .trim()
        .to_string();
    let started = Instant::now();
    let mut parties = Vec::new();
    for (i, host) in ctx.lab.parties.iter().enumerate() {
        let dir = ctx.party_dir(i);
        ctx.workload.setup_dir(&dir)?;
        let mut args = vec![
            "join".to_string(),
            "--name".into(),
            format!("p{i}"),
            "--timeout".into(),
            ctx.timeout.as_secs().max(1).to_string(),
            "--python".into(),
            ctx.workload.python.to_string_lossy().into_owned(),
            "--report".into(),
            dir.join("report.json").to_string_lossy().into_owned(),
            // Not the identity or address book of the user running the lab.
            "--config-dir".into(),
            dir.join("config").to_string_lossy().into_owned(),
        ];
        if relay_only {
            args.push("--relay-only".into());
        }
        args.push("--".into());
        args.extend(ctx.program());
        parties.push(NsProcess::spawn(
            &format!("party{i}"),
            host.ns.as_deref(),
            &dir,
            ctx.exe,
            &args,
            // Off the command line, as the README recommends on shared machines.
            &[("PARTYLINE_INVITE".to_string(), invite.clone())],
        )?);
    }
    let mut outcome = finish(ctx, parties, started, Some(server))?;
    let reports: Vec<serde_json::Value> = (0..n)
        .filter_map(|i| std::fs::read_to_string(ctx.party_dir(i).join("report.json")).ok())
        .filter_map(|text| serde_json::from_str(&text).ok())
        .collect();
    outcome.setup = reports
        .iter()
        .filter_map(|r| r["setup_ms"].as_u64())
        .max()
        .map(Duration::from_millis);
    outcome.paths = paths(&reports);
    let mean = |field: &str| {
        let seconds: Vec<f64> = reports.iter().filter_map(|r| r[field].as_f64()).collect();
        (seconds.len() == n)
            .then(|| Duration::from_secs_f64(seconds.iter().sum::<f64>() / n as f64))
    };
    outcome.program_cpu = mean("program_cpu_s");
    outcome.carrier_cpu = mean("partyline_cpu_s");
    Ok(outcome)
}

/// How many party pairs used each path, e.g. `direct:2 relay:1`; a pair
/// counts once per end, so both ends' views are halved (rounded up).
fn paths(reports: &[serde_json::Value]) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for report in reports {
        for peer in report["peers"].as_array().into_iter().flatten() {
            let path = peer["path"].as_str().unwrap_or("unknown").to_string();
            *counts.entry(path).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .map(|(path, ends)| format!("{path}:{}", ends.div_ceil(2)))
        .collect::<Vec<_>>()
        .join(" ")
}
