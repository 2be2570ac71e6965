//! Test harness: real namespaces, real `partyline` processes. Needs root;
//! without it every test fails with a message saying so.
#![allow(dead_code)] // each test file uses a different part of the harness

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use partyline_lab::solutions::{Context, Outcome};
use partyline_lab::workload::{Demo, Size, Sources, Workload};
use partyline_lab::{Lab, NatKind, Scenario, TopologySpec, cleanup};

/// Fails the test (never skips it) unless we are root with the lab's tools.
pub fn require_root() {
    if let Err(e) = partyline_lab::shell::check_prerequisites() {
        panic!(
            "the lab tests need root and iproute2/iptables (CI runs them as root; run scripts/setup-test-deps.sh, then cargo test as root): {e}"
        );
    }
}

/// The `partyline` binary next to this test's executable (built by
/// `cargo test --workspace`, or `cargo build -p partyline` first).
pub fn exe() -> PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let test = std::env::current_exe().expect("test executable");
        let exe = test
            .parent()
            .and_then(Path::parent)
            .map(|d| d.join("partyline"))
            .expect("target folder");
        let ok = Command::new(&exe)
            .args(["lab", "--help"])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(ok, "{} is missing or has no `lab` command: run `cargo build -p partyline` (cargo test --workspace does)", exe.display());
        exe
    })
    .clone()
}

/// partyline's managed Python with the pinned mpyc, built on first use.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(partyline_launch::ensure_python(
                    partyline_launch::PythonSource::Managed,
                    &|status| eprintln!("{status}"),
                ))
                .expect("a Python with the pinned mpyc")
                .path
        })
        .clone()
}

pub fn sources(cache: &Path) -> Sources {
    Sources {
        python: python(),
        cache: cache.to_path_buf(),
        cnn_data: None,
    }
}

/// A lab with `nats` (one per party) in `scenario`, logs in `dir`.
pub fn lab(scenario: &str, nats: &[NatKind], dir: &Path) -> Lab {
    require_root();
    let spec =
        TopologySpec::new(Scenario::find(scenario).unwrap(), nats.len(), nats, None).unwrap();
    Lab::build(spec, &exe(), dir).unwrap()
}

/// Runs securesum (deterministic output) with `run` on `lab`.
pub fn securesum(
    lab: &Lab,
    dir: &Path,
    run: impl FnOnce(&Context) -> partyline_lab::Result<Outcome>,
) -> Outcome {
    let cache = dir.join("cache");
    let workload = Workload::prepare(Demo::SecureSum, Size::Low, &sources(&cache)).unwrap();
    let ctx = Context {
        lab,
        exe: &exe(),
        workload: &workload,
        dir: dir.join("run"),
        timeout: Duration::from_secs(120),
        ports: lab.mpyc_ports(20000).unwrap(),
        mpyc_extra: Vec::new(),
    };
    std::fs::create_dir_all(&ctx.dir).unwrap();
    let outcome = run(&ctx).unwrap();
    assert!(
        outcome.error.is_none(),
        "the run failed: {:?}",
        outcome.error
    );
    outcome
}

/// The result lines (`sum:`, `product:`, `max:`) of each party.
pub fn results(outcome: &Outcome) -> Vec<Vec<String>> {
    outcome.stdout.iter().map(|out| result_lines(out)).collect()
}

/// securesum's result lines (`sum:`, `product:`, `max:`) in one party's stdout.
pub fn result_lines(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| {
            ["sum:", "product:", "max:"]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .map(str::to_string)
        .collect()
}

/// Asserts that nothing with `prefix` is left: namespaces, processes, sockets.
pub fn assert_nothing_left(prefix: &str) {
    let namespaces = cleanup::namespaces_with_prefix(prefix);
    assert!(namespaces.is_empty(), "left behind: {namespaces:?}");
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    let procs: Vec<&str> = ps
        .lines()
        .filter(|l| l.contains(prefix) && !l.contains("ps -eo"))
        .collect();
    assert!(procs.is_empty(), "processes left behind: {procs:?}");
}

/// `partyline lab run ARGS --quiet --out DIR/results --python P` with its
/// own home in `dir` and `extra_env`; fails the test unless it succeeded.
/// Returns its stdout and the CSV's rows (without the header).
pub fn lab_run(args: &[&str], dir: &Path, extra_env: &[(&str, &str)]) -> (String, Vec<String>) {
    let out_dir = dir.join("results");
    let out = Command::new(exe())
        .args(["lab", "run"])
        .args(args)
        .args(["--quiet", "--out"])
        .arg(&out_dir)
        .arg("--python")
        .arg(python())
        .env("PARTYLINE_HOME", dir.join("home"))
        .envs(extra_env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "lab run failed\n{stdout}\n{stderr}");
    let csv = std::fs::read_to_string(out_dir.join("results.csv")).unwrap();
    (stdout, csv.lines().skip(1).map(str::to_string).collect())
}
