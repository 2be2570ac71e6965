//! `partyline lab`: the emulated Internet and the benchmark matrix (the
//! `partyline-lab` crate does the work; this file only parses and wires).
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use partyline_lab::runner::{Case, Matrix};
use partyline_lab::workload::Sources;
use partyline_lab::{Demo, Lab, NatKind, Scenario, Size, TopologySpec, cleanup, interrupt};
use partyline_launch::mpyc;

use crate::cli::PythonArgs;
use crate::config::Config;

#[derive(Args, Debug)]
#[command(
    about = "Emulated Internet on this machine (network namespaces, NATs, latency) and the MPC benchmark matrix",
    after_help = "Needs root, except for the loopback scenario (every party a process on this machine, \
nothing emulated; what `partyline bench` runs). Everything a lab creates is named pllab-XXXXXX-… \
and removed at the end, also after an error or Ctrl-C; `partyline lab clean` removes what a \
killed lab left.\n\n\
Examples:\n  partyline lab scenarios\n  \
partyline lab run --scenario one-region,two-far --parties 3,5 --demo mpyc-secretsanta --out results\n  \
partyline lab run --scenario loopback --demo sort --size low,medium --solutions tcp,partyline   (no root)\n  \
partyline lab up --scenario two-far --parties 2 --nat cone,symmetric     (explore with ip netns exec)"
)]
pub struct LabArgs {
    #[command(subcommand)]
    pub command: LabCommand,
}

#[derive(Subcommand, Debug)]
pub enum LabCommand {
    /// Run every scenario × parties × demo × size × solution, write CSV, summary and plots.
    Run(RunArgs),
    /// Build one topology and keep it until Ctrl-C, to explore by hand.
    Up(UpArgs),
    /// Remove the namespaces, processes, sockets and `lab up` log folders of labs that were killed.
    Clean(CleanArgs),
    /// List the built-in scenarios and their round-trip times.
    Scenarios,
    /// Internal: the NFQUEUE delay stage the lab runs in its internet namespace.
    #[command(hide = true)]
    DelayStage {
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct TopologyArgs {
    /// Scenarios: built-in names (see `partyline lab scenarios`) or TOML files; a file may
    /// script faults into every run (`[[fault]]`: at, kind = link-down, address-change,
    /// nat-reset, network-switch, relay-restart or loss, party, duration, percent, jitter_ms;
    /// see the README).
    #[arg(long, value_delimiter = ',', default_value = "one-region")]
    pub scenario: Vec<String>,
    /// Per party, in order, what it sits behind: public, cone, symmetric, cgnat,
    /// udp-blocked. The last one repeats for the remaining parties.
    #[arg(long, value_delimiter = ',', default_value = "public")]
    pub nat: Vec<String>,
    /// Uplink and downlink rate of every party, in Mbit/s (default: unlimited).
    #[arg(long, value_name = "MBIT")]
    pub rate: Option<f64>,
    /// Packet loss on every path, per direction, 0–1 (overrides the scenario's).
    #[arg(long)]
    pub loss: Option<f64>,
    /// Jitter in ms on every path (overrides the scenario's; at most half the RTT).
    #[arg(long)]
    pub jitter: Option<f64>,
}

#[derive(Args, Debug)]
#[command(after_help = format!("Demos and sizes:\n  \
mpyc-secretsanta  MPyC's secretsanta.py (from the mpyc-web wheel), N = 4 / 8 / 12\n  \
mpyc-cnn          MPyC's np_cnnmnist.py, batch 1 / 2 / 4 images (MNIST shipped; weights of its large layer seeded noise)\n  \
secretsanta       examples/secretsanta.py, n = 4 / 8 / 16\n  \
securesum         examples/securesum.py (deterministic: sum, product, max)\n  \
bulk              examples/bulk.py, 1 / 10 / 50 MB per party\n  \
sort              examples/sort.py, n = 8 / 16 / 32 numbers per party (fixed cost)\n\n\
With {} or more parties every solution runs MPyC with -T 1. In the loopback scenario every \
solution but wireguard runs, without root.\n\
Output in --out: results.csv (one row per run, failures included), summary.md (medians of wall \
time and of MPyC's own time, ratios to tcp), plots/*.png and *.svg (wall time vs parties), runs/ \
(every process's output).\n\n\
Examples:\n  partyline lab run --scenario two-far --parties 3,5 --out results\n  \
partyline lab run --scenario loopback --demo secretsanta,bulk --size medium --repeat 3",
    mpyc::LOW_THRESHOLD_FROM
))]
pub struct RunArgs {
    #[command(flatten)]
    pub topology: TopologyArgs,
    /// Numbers of parties.
    #[arg(long, value_delimiter = ',', default_value = "3")]
    pub parties: Vec<usize>,
    /// Solutions: tcp, tcp-ssl, partyline, partyline-relay, wireguard.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "tcp,tcp-ssl,partyline,partyline-relay,wireguard"
    )]
    pub solutions: Vec<String>,
    /// Demos (see below).
    #[arg(long, value_delimiter = ',', default_value = "mpyc-secretsanta")]
    pub demo: Vec<String>,
    /// Sizes: low, medium, high.
    #[arg(long, value_delimiter = ',', default_value = "low")]
    pub size: Vec<String>,
    /// Runs per combination.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
    /// Output folder.
    #[arg(long, default_value = "lab-results")]
    pub out: PathBuf,
    /// MNIST data and CNN weights for mpyc-cnn (np_cnnmnist.py's data/cnn); default: the MNIST
    /// test set and MPyC's weights shipped with partyline, and a seeded stand-in for W_fc1.npy.
    #[arg(long, env = "PARTYLINE_CNN_DATA")]
    pub cnn_data: Option<PathBuf>,
    #[command(flatten)]
    pub run: RunFlags,
}

/// The flags `lab run` and `bench` share.
#[derive(Args, Debug)]
pub struct RunFlags {
    /// Seconds one run may take before it counts as failed.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// No progress bar (for logs).
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub python: PythonArgs,
}

#[derive(Args, Debug)]
pub struct UpArgs {
    #[command(flatten)]
    pub topology: TopologyArgs,
    /// Number of parties.
    #[arg(long, default_value_t = 3)]
    pub parties: usize,
}

#[derive(Args, Debug)]
pub struct CleanArgs {
    /// Remove only what starts with this prefix (default: every lab's).
    #[arg(long, default_value = partyline_lab::topology::PREFIX_ROOT)]
    pub prefix: String,
}

pub async fn run(args: LabArgs, config: &Config) -> anyhow::Result<i32> {
    match args.command {
        LabCommand::DelayStage { config } => {
            tokio::task::spawn_blocking(move || partyline_lab::delay::run_stage(&config)).await??;
            Ok(0)
        }
        LabCommand::Scenarios => {
            for s in partyline_lab::scenario::builtin() {
                println!("{}: {}", s.name, s.description);
                for l in &s.links {
                    println!("  {}–{}: RTT {} ms", l.a, l.b, l.rtt_ms);
                }
            }
            Ok(0)
        }
        LabCommand::Clean(args) => {
            partyline_lab::shell::check_prerequisites()?;
            let removed = cleanup::clean(&args.prefix);
            eprintln!("partyline lab: removed {} namespaces", removed.len());
            for ns in removed {
                eprintln!("  {ns}");
            }
            Ok(0)
        }
        LabCommand::Up(args) => up(args).await,
        LabCommand::Run(args) => run_matrix(args, config).await,
    }
}

fn scenarios(args: &TopologyArgs) -> anyhow::Result<Vec<Scenario>> {
    args.scenario
        .iter()
        .map(|name| {
            let mut s = Scenario::find(name)?;
            if let Some(loss) = args.loss {
                s = s.with_loss(loss);
            }
            if let Some(jitter) = args.jitter {
                s = s.with_jitter(jitter);
            }
            s.validate()?;
            Ok(s)
        })
        .collect()
}

fn parse_all<T: std::str::FromStr<Err = partyline_lab::LabError>>(
    items: &[String],
) -> anyhow::Result<Vec<T>> {
    Ok(items
        .iter()
        .map(|s| s.trim().parse())
        .collect::<Result<Vec<T>, _>>()?)
}

async fn up(args: UpArgs) -> anyhow::Result<i32> {
    let exe = std::env::current_exe().context("cannot find the partyline executable")?;
    let scenario = scenarios(&args.topology)?
        .into_iter()
        .next()
        .context("give one --scenario")?;
    if scenario.loopback {
        anyhow::bail!(
            "the loopback scenario has no namespaces to explore: pick another --scenario \
             (see `partyline lab scenarios`)"
        );
    }
    let nats: Vec<NatKind> = parse_all(&args.topology.nat)?;
    let spec = TopologySpec::new(scenario, args.parties, &nats, args.topology.rate)?;
    tokio::task::spawn_blocking(move || -> anyhow::Result<i32> {
        let dir = tempfile::Builder::new()
            .prefix(cleanup::RUN_DIR_PREFIX)
            .tempdir()?;
        let lab = Lab::build(spec, &exe, dir.path())?;
        std::fs::write(dir.path().join(cleanup::LAB_NAME_FILE), &lab.prefix)?;
        println!("lab {} is up (Ctrl-C removes it):", lab.prefix);
        let ns = |ns: &Option<String>| ns.clone().unwrap_or_default();
        println!("  internet router: {}", ns(&lab.inet));
        println!("  server:  {}  {}", ns(&lab.server.ns), lab.server.ip);
        for (i, p) in lab.parties.iter().enumerate() {
            println!(
                "  party {i}: {}  {} (public {}, {}, {})",
                ns(&p.ns),
                p.ip,
                p.public_ip,
                p.nat,
                p.region
            );
        }
        println!(
            "try: ip netns exec {} ping {}",
            ns(&lab.parties[0].ns),
            lab.server.ip
        );
        while !interrupt::requested() {
            std::thread::sleep(Duration::from_millis(100));
        }
        lab.teardown();
        Ok(0)
    })
    .await?
}

async fn run_matrix(args: RunArgs, config: &Config) -> anyhow::Result<i32> {
    let scenarios = scenarios(&args.topology)?;
    // Only namespaces need root: fail early, before anything is prepared.
    if scenarios.iter().any(|s| !s.loopback) {
        partyline_lab::shell::check_prerequisites()?;
    }
    // Every topology (and every scripted fault against its parties) is
    // checked before any is built.
    let nats: Vec<NatKind> = parse_all(&args.topology.nat)?;
    for scenario in &scenarios {
        for &n in &args.parties {
            TopologySpec::new(scenario.clone(), n, &nats, args.topology.rate)?;
        }
    }
    let cnn_data = args
        .cnn_data
        .as_deref()
        .map(std::path::absolute)
        .transpose()
        .context("--cnn-data: cannot resolve the path")?;
    let cases = Case::all(
        &args.parties,
        &parse_all::<Demo>(&args.demo)?,
        &parse_all::<Size>(&args.size)?,
    );
    let mut matrix = matrix(
        scenarios,
        cases,
        &args.solutions,
        (args.repeat, &args.out),
        &args.run,
        config,
    )
    .await?;
    matrix.nats = nats;
    matrix.rate_mbit = args.topology.rate;
    matrix.sources.cnn_data = cnn_data;
    run_and_print(matrix, "partyline lab").await?;
    Ok(0)
}

/// A matrix of `cases` with the shared flags, `repeat` repetitions and its
/// results in `out`; every party public and no rate limit.
pub(super) async fn matrix(
    scenarios: Vec<Scenario>,
    cases: Vec<Case>,
    solutions: &[String],
    (repeat, out): (u32, &Path),
    flags: &RunFlags,
    config: &Config,
) -> anyhow::Result<Matrix> {
    Ok(Matrix {
        scenarios,
        cases,
        solutions: parse_all(solutions)?,
        repeat: repeat as usize,
        nats: Vec::new(),
        rate_mbit: None,
        timeout: Duration::from_secs(flags.timeout),
        out: std::path::absolute(out)?,
        exe: std::env::current_exe().context("cannot find the partyline executable")?,
        sources: Sources {
            python: super::join::find_python(&flags.python, config).await?.path,
            cache: lab_cache()?,
            cnn_data: None,
        },
        show_progress: !flags.quiet,
        command: std::env::args().collect::<Vec<_>>().join(" "),
    })
}

/// Runs `matrix`, prints its summary on stdout and where the files went on
/// stderr, and returns how many runs failed.
pub(super) async fn run_and_print(matrix: Matrix, who: &str) -> anyhow::Result<usize> {
    let results =
        tokio::task::spawn_blocking(move || partyline_lab::runner::run(&matrix)).await??;
    let failed = results.rows.iter().filter(|r| !r.ok()).count();
    println!(
        "{}",
        std::fs::read_to_string(&results.summary).unwrap_or_default()
    );
    eprintln!(
        "{who}: {} runs ({failed} failed): {}, {}, {} plots",
        results.rows.len(),
        results.csv.display(),
        results.summary.display(),
        results.plots.len()
    );
    Ok(failed)
}

/// The lab's cache beside partyline's managed Python: `$PARTYLINE_HOME/lab`,
/// else `$XDG_CACHE_HOME/partyline/lab`, else `~/.cache/partyline/lab`.
fn lab_cache() -> anyhow::Result<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let home = var("PARTYLINE_HOME")
        .or_else(|| {
            var("XDG_CACHE_HOME")
                .filter(|d| d.is_absolute())
                .map(|d| d.join("partyline"))
        })
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("partyline")))
        .context("cannot find a cache folder: set PARTYLINE_HOME")?;
    Ok(home.join("lab"))
}
