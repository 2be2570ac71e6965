//! `--peer-timeout`: a party whose link goes silent (its `join` stopped with
//! SIGSTOP, which silences every packet it would send or answer, without
//! root) ends the session within the timeout; a silence shorter than the
//! timeout is ridden out.
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn signal(party: &Party, signal: &str) {
    let pid = party.child.id().to_string();
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{signal} {pid}");
}

#[test]
fn a_silent_party_is_named_within_the_peer_timeout() {
    let server = Server::start();
    let (mut parties, marker) = running_session(&server, &["--peer-timeout", "3"]);
    let carol = parties.pop().unwrap();
    signal(&carol, "STOP");
    let stopped = Instant::now();
    // The timeout, plus the time to stop the program and leave.
    others_stop_naming_carol(parties, stopped, Duration::from_secs(3 + 4));
    // Woken up, carol finds her connections timed out and ends too.
    signal(&carol, "CONT");
    let carol = carol.finish(Duration::from_secs(15));
    assert!(!carol.out.status.success(), "carol exited 0");
    assert_no_process_with(&marker);
}

#[test]
fn a_silence_shorter_than_the_peer_timeout_is_ridden_out() {
    let server = Server::start();
    let invite = server.create(3);
    let program = vec![
        repo_file("crates/partyline/tests/programs/timed_rounds.py"),
        "3000".to_string(),
    ];
    let mut parties: Vec<Party> = ["alice", "bob", "carol"]
        .iter()
        .map(|name| Party::join(&invite, name, &["--peer-timeout", "5"], &program))
        .collect();
    for party in &mut parties {
        party.wait_for_stdout("running", Duration::from_secs(120));
    }
    signal(&parties[2], "STOP");
    // The fault itself: carol's link stays silent for 2 s.
    std::thread::sleep(Duration::from_secs(2));
    signal(&parties[2], "CONT");
    let runs: Vec<Finished> = parties
        .into_iter()
        .map(|party| party.finish(Duration::from_secs(120)))
        .collect();
    for run in &runs {
        run.assert_success();
        assert_eq!(run.result_lines(&["sum"]), ["sum: 3"], "{}", run.name);
    }
    // The stall happened mid-run: some round waited for carol about 2 s.
    let alice = &runs[0].result_lines(&["longest round"])[0];
    let longest: f64 = alice["longest round:".len()..].trim().parse().unwrap();
    eprintln!("alice's longest round: {longest} s");
    assert!(longest >= 1.5, "no round stalled: {alice}");
}
