//! Whole sessions: `partyline serve`, `create` and one `join` process per party,
//! each running a real MPyC program, compared with MPyC over plain TCP.
mod common;

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
    }
    runs
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
