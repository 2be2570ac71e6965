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
    run_demo(lab, dir, Demo::SecureSum, run)
}

/// Runs `demo` at its low size with `run` on `lab`; fails the test if the run failed.
pub fn run_demo(
    lab: &Lab,
    dir: &Path,
    demo: Demo,
    run: impl FnOnce(&Context) -> partyline_lab::Result<Outcome>,
) -> Outcome {
    let cache = dir.join("cache");
    let workload = Workload::prepare(demo, Size::Low, &sources(&cache)).unwrap();
    let ctx = Context {
        lab,
        exe: &exe(),
        workload: &workload,
        dir: dir.join("run"),
        timeout: Duration::from_secs(120),
        ports: lab.mpyc_ports(20000).unwrap(),
        mpyc_extra: Vec::new(),
        faults: &[],
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
    let dirs = cleanup::run_dirs_with_prefix(prefix);
    assert!(dirs.is_empty(), "folders left behind: {dirs:?}");
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

/// A test program of the partyline crate's (`crates/partyline/tests/programs`).
pub fn test_program(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../partyline/tests/programs")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// A lab of `nats` in one region, built for `faults` (a `network-switch`
/// needs its second network), with `partyline serve` running; party output
/// goes to the returned `runs` folder.
pub fn lab_with_server(
    nats: &[NatKind],
    faults: &[partyline_lab::fault::Fault],
    dir: &Path,
) -> (Lab, partyline_lab::solutions::partyline::Server, PathBuf) {
    require_root();
    let mut scenario = Scenario::find("one-region").unwrap();
    scenario.faults = faults.to_vec();
    let spec = TopologySpec::new(scenario, nats.len(), nats, None).unwrap();
    let lab = Lab::build(spec, &exe(), dir).unwrap();
    let server = partyline_lab::solutions::partyline::Server::start(&lab, &exe(), dir).unwrap();
    let runs = dir.join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    (lab, server, runs)
}

/// Every party of `lab` joined to one new session with `flags`, each
/// running `program` with a `--report` in `dir/pI.json`; returned once every
/// program prints `running`.
pub fn running_session(
    lab: &Lab,
    server: &partyline_lab::solutions::partyline::Server,
    dir: &Path,
    flags: &[&str],
    program: &[String],
) -> Vec<partyline_lab::process::NsProcess> {
    use std::time::Instant;
    let exe = exe();
    let n = lab.parties.len().to_string();
    let created = partyline_lab::shell::on_host(
        lab.server.ns.as_deref(),
        &exe.to_string_lossy(),
        ["create", "--parties", &n, "--server", &server.link],
    )
    .unwrap();
    let invite = created.lines().last().unwrap().trim().to_string();
    let mut parties: Vec<partyline_lab::process::NsProcess> = lab
        .parties
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let report = dir.join(format!("p{i}.json"));
            let mut args: Vec<String> = ["join", "--name", &format!("p{i}"), "--timeout", "120"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            args.extend(["--python".into(), python().to_string_lossy().into_owned()]);
            args.extend(["--report".into(), report.to_string_lossy().into_owned()]);
            args.extend(flags.iter().map(|s| s.to_string()));
            args.push("--".into());
            args.extend(program.iter().cloned());
            let env = [("PARTYLINE_INVITE".to_string(), invite.clone())];
            partyline_lab::process::NsProcess::spawn(
                &format!("p{i}"),
                host.ns.as_deref(),
                dir,
                &exe,
                &args,
                &env,
            )
            .unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    for party in &mut parties {
        while !party.stdout_text().lines().any(|l| l == "running") {
            assert!(
                party.try_wait().unwrap().is_none(),
                "{}",
                party.stderr_text()
            );
            assert!(Instant::now() < deadline, "{}", party.stderr_text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    parties
}

/// Waits for every party of a `timed_rounds.py` session to succeed with the
/// fault-free result (`sum:` of the indices); returns the longest round any
/// party saw, in seconds: the stall.
pub fn finish_timed_rounds(parties: &mut [partyline_lab::process::NsProcess]) -> f64 {
    use std::time::Instant;
    let n = parties.len();
    let expected = format!("sum: {}", n * (n - 1) / 2);
    let mut longest = 0.0f64;
    let mut statuses = Vec::with_capacity(n);
    for party in parties.iter_mut() {
        statuses.push(
            party
                .wait_until(Instant::now() + Duration::from_secs(120))
                .unwrap(),
        );
    }
    if statuses.iter().any(|s| !s.success()) {
        let all: Vec<String> = parties
            .iter()
            .zip(&statuses)
            .map(|(p, s)| format!("{} ({s}):\n{}", p.name, p.stderr_text()))
            .collect();
        panic!("a party failed\n{}", all.join("\n"));
    }
    for party in parties.iter_mut() {
        let stdout = party.stdout_text();
        assert!(
            stdout.lines().any(|l| l == expected),
            "{}: {stdout}",
            party.name
        );
        let round: f64 = stdout
            .lines()
            .find_map(|l| l.strip_prefix("longest round:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        longest = longest.max(round);
    }
    longest
}
