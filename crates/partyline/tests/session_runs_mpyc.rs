//! Whole sessions: `partyline serve`, `create` and one `join` process per party,
//! each running a real MPyC program, compared with MPyC over plain TCP or
//! with the results worked out here; up to ten parties, direct and relayed.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

fn securesum() -> Vec<String> {
    vec![repo_file("examples/securesum.py")]
}

fn check_securesum(parties: u16, flags: &[&str]) -> Vec<Finished> {
    let server = Server::start();
    let runs = run_session(&server, parties, flags, &securesum());
    let plain = run_plain_tcp(usize::from(parties), &securesum());
    let expected = lines_with(&plain[0].stdout, &["sum", "product", "max"]);
    assert_eq!(expected.len(), 3, "plain TCP printed {expected:?}");
    for run in &runs {
        run.assert_success();
        assert_eq!(
            run.result_lines(&["sum", "product", "max"]),
            expected,
            "{}",
            run.name
        );
        // partyline's own Python has gmpy2 and numpy, so MPyC finds both.
        assert!(
            !run.stdout().contains("Install package"),
            "{}: {}",
            run.name,
            run.stdout()
        );
    }
    runs
}

/// securesum.py's result lines for `parties` parties with the default inputs
/// (party i's is (i+1)*1000 + 7).
fn securesum_results(parties: u128) -> Vec<String> {
    let inputs: Vec<u128> = (1..=parties).map(|i| i * 1000 + 7).collect();
    vec![
        format!("sum: {}", inputs.iter().sum::<u128>()),
        format!("product: {}", inputs.iter().product::<u128>()),
        format!("max: {}", parties * 1000 + 7),
    ]
}

/// Ten parties, each its own `join` and MPyC process, compute securesum with
/// MPyC's `-T 1` (its default threshold t = 4 would make every party set up
/// C(10, 4) = 210 PRSS keys and multiply the session's run time).
fn check_ten_parties(flags: &[&str]) -> Vec<Finished> {
    let server = Server::start();
    let program = [securesum(), vec!["-T".into(), "1".into()]].concat();
    let runs = run_session(&server, 10, flags, &program);
    for run in &runs {
        run.assert_success();
        assert_eq!(
            run.result_lines(&["sum", "product", "max"]),
            securesum_results(10),
            "{}",
            run.name
        );
        let report = run.report.as_ref().expect("a report");
        assert_eq!(report["parties"], 10, "{}", run.name);
        assert_eq!(report["peers"].as_array().unwrap().len(), 9, "{}", run.name);
    }
    runs
}

#[test]
fn ten_parties_compute_the_right_results() {
    check_ten_parties(&[]);
}

#[test]
fn ten_parties_compute_the_right_results_over_the_relay_only() {
    assert_all_paths(&check_ten_parties(&["--relay-only"]), "relay");
}

/// A `--python` without gmpy2 and numpy still runs the session; each party
/// says so in one line of its own, and MPyC's two hints per party are gone.
#[test]
fn a_python_without_gmpy2_and_numpy_gets_one_hint_line_instead_of_mpycs() {
    let dir = tempfile::tempdir().unwrap();
    let python = python_with_mpyc_only(&dir.path().join("venv"));
    let server = Server::start();
    let invite = server.create(2);
    let parties: Vec<Party> = ["alice", "bob"]
        .iter()
        .map(|name| Party::join_with_python(&python, &invite, name, &[], &securesum()))
        .collect();
    for party in parties {
        let run = party.finish(Duration::from_secs(120));
        run.assert_success();
        assert_eq!(
            run.result_lines(&["sum", "product", "max"]),
            securesum_results(2)
        );
        assert!(
            !run.stdout().contains("Install package"),
            "{}",
            run.stdout()
        );
        let stderr = run.stderr();
        let hints: Vec<&str> = stderr
            .lines()
            .filter(|line| line.contains("no gmpy2"))
            .collect();
        assert_eq!(hints.len(), 1, "{}: {stderr}", run.name);
        assert!(hints[0].starts_with("partyline: "), "{}", hints[0]);
        assert!(hints[0].contains("no numpy"), "{}", hints[0]);
        assert!(hints[0].contains("-m pip install gmpy2=="), "{}", hints[0]);
    }
}

/// A virtual environment with the real MPyC of partyline's own Python (linked
/// in, so no download) and nothing else: no gmpy2, no numpy.
fn python_with_mpyc_only(venv: &Path) -> PathBuf {
    let created = Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(venv)
        .status()
        .unwrap();
    assert!(created.success());
    let print = |python: &Path, statement: &str| {
        let out = Command::new(python)
            .args(["-c", statement])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        PathBuf::from(stdout.lines().last().unwrap())
    };
    let mpyc = print(
        &python(),
        "import mpyc, os; print(os.path.dirname(mpyc.__file__))",
    );
    let python = venv.join("bin/python");
    let purelib = print(
        &python,
        "import sysconfig; print(sysconfig.get_paths()['purelib'])",
    );
    std::os::unix::fs::symlink(mpyc, purelib.join("mpyc")).unwrap();
    python
}

fn assert_all_paths(runs: &[Finished], path: &str) {
    for run in runs {
        let report = run.report.as_ref().expect("a report");
        for peer in report["peers"].as_array().unwrap() {
            assert_eq!(peer["path"], path, "{}: {peer}", run.name);
        }
    }
}

#[test]
fn three_parties_compute_what_plain_tcp_computes() {
    check_securesum(3, &[]);
}

#[test]
fn five_parties_compute_what_plain_tcp_computes() {
    check_securesum(5, &[]);
}

#[test]
fn relay_only_sessions_compute_the_same_and_use_the_relay() {
    assert_all_paths(&check_securesum(3, &["--relay-only"]), "relay");
    assert_all_paths(&check_securesum(5, &["--relay-only"]), "relay");
}

fn check_secret_santa(parties: u16, flags: &[&str]) -> Vec<Finished> {
    let server = Server::start();
    let runs = run_session(
        &server,
        parties,
        flags,
        &[repo_file("examples/secretsanta.py")],
    );
    let first = runs[0].result_lines(&["derangement"]);
    assert_eq!(first.len(), 1, "{}\n{}", runs[0].stdout(), runs[0].stderr());
    assert_derangement(&first[0]);
    for run in &runs {
        run.assert_success();
        assert_eq!(
            run.result_lines(&["derangement"]),
            first,
            "{} disagrees",
            run.name
        );
    }
    runs
}

#[test]
fn secret_santa_gives_every_party_the_same_derangement() {
    check_secret_santa(3, &[]);
    check_secret_santa(5, &[]);
}

#[test]
fn secret_santa_over_the_relay_only() {
    assert_all_paths(&check_secret_santa(3, &["--relay-only"]), "relay");
    assert_all_paths(&check_secret_santa(5, &["--relay-only"]), "relay");
}

fn check_bulk(flags: &[&str]) -> Vec<Finished> {
    let server = Server::start();
    let runs = run_session(
        &server,
        3,
        flags,
        &[repo_file("examples/bulk.py"), "10".into()],
    );
    for run in &runs {
        run.assert_success();
        let received = run.result_lines(&["received"]);
        let expected = run.result_lines(&["expected"]);
        let digest = received[0].rsplit("digest: ").next().unwrap();
        assert_eq!(format!("expected: {digest}"), expected[0], "{}", run.name);
        let report = run.report.as_ref().unwrap();
        let sent: u64 = report["peers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["bytes_sent"].as_u64().unwrap())
            .sum();
        assert!(
            sent >= 20_000_000,
            "{} forwarded only {sent} bytes",
            run.name
        );
    }
    runs
}

#[test]
fn ten_megabytes_move_between_parties_intact() {
    check_bulk(&[]);
}

#[test]
fn ten_megabytes_move_intact_through_the_relay() {
    assert_all_paths(&check_bulk(&["--relay-only"]), "relay");
}
