//! `partyline lab`: the emulated Internet and the benchmark matrix (the
//! `partyline-lab` crate does the work; this file only parses and wires).
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use partyline_lab::runner::Matrix;
use partyline_lab::workload::Sources;
use partyline_lab::{
    Demo, Lab, NatKind, Scenario, Size, Solution, TopologySpec, cleanup, interrupt,
};
use partyline_launch::{PythonSource, ensure_python};

#[derive(Args, Debug)]
#[command(
    about = "Emulated Internet on this machine (network namespaces, NATs, latency) and the MPC benchmark matrix",
    after_help = "Needs root. Everything a lab creates is named pllab-XXXXXX-… and removed at the end, \
also after an error or Ctrl-C; `partyline lab clean` removes what a killed lab left.\n\n\
Examples:\n  partyline lab scenarios\n  \
partyline lab run --scenario one-region,two-far --parties 3,5 --demo mpyc-secretsanta --out results\n  \
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
    /// Remove the namespaces, processes and sockets of labs that were killed.
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
    /// Scenarios: built-in names (see `partyline lab scenarios`) or TOML files.
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
#[command(after_help = "Demos and sizes:\n  \
mpyc-secretsanta  MPyC's secretsanta.py (from the mpyc-web wheel), N = 4 / 8 / 12\n  \
mpyc-cnn          MPyC's np_cnnmnist.py, batch 1 / 2 / 4 images (needs --cnn-data; numpy venv built once)\n  \
secretsanta       examples/secretsanta.py, n = 4 / 8 / 16\n  \
securesum         examples/securesum.py (deterministic: sum, product, max)\n  \
bulk              examples/bulk.py, 1 / 10 / 50 MB per party\n\n\
With 8 or more parties every solution runs MPyC with -T 1.\n\
Output in --out: results.csv (one row per run, failures included), summary.md (medians, ratio to \
tcp), plots/*.png and *.svg (wall time vs parties), runs/ (every process's output).")]
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
    /// Seconds one run may take before it counts as failed.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// MNIST data and CNN weights for mpyc-cnn (default: ../shared/data/cnn if it exists).
    #[arg(long, env = "PARTYLINE_CNN_DATA")]
    pub cnn_data: Option<PathBuf>,
    #[arg(long, env = "PARTYLINE_PYTHON", help = crate::cli::python_help())]
    pub python: Option<PathBuf>,
    /// No progress bar (for logs).
    #[arg(long)]
    pub quiet: bool,
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

pub async fn run(args: LabArgs) -> anyhow::Result<i32> {
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
        LabCommand::Run(args) => run_matrix(args).await,
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
    let nats: Vec<NatKind> = parse_all(&args.topology.nat)?;
    let spec = TopologySpec::new(scenario, args.parties, &nats, args.topology.rate)?;
    tokio::task::spawn_blocking(move || -> anyhow::Result<i32> {
        let dir = tempfile::Builder::new()
            .prefix("partyline-lab-")
            .tempdir()?;
        let lab = Lab::build(spec, &exe, dir.path())?;
        println!("lab {} is up (Ctrl-C removes it):", lab.prefix);
        println!("  internet router: {}", lab.inet);
        println!("  server:  {}  {}", lab.server.ns, lab.server.ip);
        for (i, p) in lab.parties.iter().enumerate() {
            println!(
                "  party {i}: {}  {} (public {}, {}, {})",
                p.ns, p.ip, p.public_ip, p.nat, p.region
            );
        }
        println!(
            "try: ip netns exec {} ping {}",
            lab.parties[0].ns, lab.server.ip
        );
        while !interrupt::requested() {
            std::thread::sleep(Duration::from_millis(100));
        }
        lab.teardown();
        Ok(0)
    })
    .await?
}

async fn run_matrix(args: RunArgs) -> anyhow::Result<i32> {
    partyline_lab::shell::check_prerequisites()?;
    let exe = std::env::current_exe().context("cannot find the partyline executable")?;
    let source = match args.python.clone() {
        Some(python) => PythonSource::Explicit(python),
        None => PythonSource::Managed,
    };
    let python = ensure_python(source, &|status| eprintln!("partyline lab: {status}")).await?;
    let cnn_data = args.cnn_data.clone().or_else(|| {
        let default = PathBuf::from("../shared/data/cnn");
        default
            .is_dir()
            .then(|| std::path::absolute(&default).unwrap_or(default))
    });
    let matrix = Matrix {
        scenarios: scenarios(&args.topology)?,
        parties: args.parties.clone(),
        solutions: parse_all::<Solution>(&args.solutions)?,
        demos: parse_all::<Demo>(&args.demo)?,
        sizes: parse_all::<Size>(&args.size)?,
        repeat: args.repeat as usize,
        nats: parse_all(&args.topology.nat)?,
        rate_mbit: args.topology.rate,
        timeout: Duration::from_secs(args.timeout),
        out: std::path::absolute(&args.out)?,
        exe,
        sources: Sources {
            python,
            cache: lab_cache()?,
            cnn_data,
        },
        show_progress: !args.quiet,
        command: std::env::args().collect::<Vec<_>>().join(" "),
    };
    let results =
        tokio::task::spawn_blocking(move || partyline_lab::runner::run(&matrix)).await??;
    let failed = results.rows.iter().filter(|r| !r.ok()).count();
    println!(
        "{}",
        std::fs::read_to_string(&results.summary).unwrap_or_default()
    );
    eprintln!(
        "partyline lab: {} runs ({failed} failed): {}, {}, {} plots",
        results.rows.len(),
        results.csv.display(),
        results.summary.display(),
        results.plots.len()
    );
    Ok(0)
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
