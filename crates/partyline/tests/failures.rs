//! What a party sees when things go wrong: bad invites, no server, a party killed mid-run.
mod common;

use std::io::{BufRead, BufReader};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use partyline_session::Coordinator;
use partyline_wire::{Invite, InviteSecret};

#[test]
fn damaged_invite_is_rejected_before_anything_starts() {
    let server = Server::start();
    let invite = server.create(2);
    for damaged in [
        &invite[..invite.len() - 5],
        &invite.replace("/join#pl1.", "/join#pl1.x"),
    ] {
        let out = Command::new(BIN)
            .args(["join", damaged, "--", "sh", "-c", "echo started"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("copy"),
            "message does not say what to do: {stderr}"
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("started"));
    }
}

/// A forged secret gives a wrong write token: the server refuses the
/// intruder's announcement, so the honest party never even sees it (a lying
/// server that shows it anyway is `lying_coordinator`'s case). Neither starts
/// its program.
#[test]
fn wrong_secret_is_refused_and_nothing_starts() {
    let server = Server::start();
    let invite: Invite = server.create(2).parse().unwrap();
    let forged = Invite {
        secret: InviteSecret::random(),
        ..invite.clone()
    };
    let program = vec!["sh".to_string(), "-c".into(), "echo program-started".into()];
    let honest = Party::join(
        &invite.to_string(),
        "alice",
        &["--no-mpyc-flags", "--timeout", "10"],
        &program,
    );
    let intruder = Party::join(
        &forged.to_string(),
        "mallory",
        &["--no-mpyc-flags"],
        &program,
    );
    let intruder = intruder.finish(Duration::from_secs(60));
    assert!(
        intruder.stderr().contains("write token does not match"),
        "mallory: {}",
        intruder.stderr()
    );
    let honest = honest.finish(Duration::from_secs(60));
    for run in [honest, intruder] {
        assert!(!run.out.status.success(), "{} started", run.name);
        assert!(
            !run.stdout().contains("program-started"),
            "{} ran its program",
            run.name
        );
    }
}

#[test]
fn server_down_gives_a_clear_error_quickly() {
    let server = Server::start();
    let invite = server.create(2);
    let link = server.link.clone();
    drop(server);
    let started = Instant::now();
    let out = Command::new(BIN)
        .args(["join", &invite, "--", "sh", "-c", "true"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("cannot reach the partyline server"),
        "{stderr}"
    );
    let out = Command::new(BIN)
        .args(["create", "--parties", "2", "--server", &link])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the partyline server"));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
}

/// A party left alone gives up at its --timeout, saying who joined and who
/// did not: the coordinator's deadline (the same --timeout) ends the wait, not
/// a long poll cut as "too slow". It withdraws, so its seat is free again.
#[test]
fn a_party_left_alone_gives_up_at_its_timeout_and_withdraws() {
    let server = Server::start();
    let invite = server.create(2);
    let started = Instant::now();
    let out = Command::new(BIN)
        .args(["join", &invite, "--name", "alice", "--timeout", "6"])
        .args(["--no-mpyc-flags", "--", "true"])
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("1 of 2 parties joined (alice)") && stderr.contains("Raise --timeout"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(6 + 3), "took {took:?}");
    let invite: Invite = invite.parse().unwrap();
    let view = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(Coordinator::new(&invite.server, invite.pin).session(&invite.session, None))
        .unwrap();
    assert!(view.announcements.is_empty(), "{view:?}");
}

/// Starts a 3-party session of a long program and returns the parties once
/// every program runs, with the marker found on all their command lines.
fn running_session(server: &Server) -> (Vec<Party>, String) {
    let invite = server.create(3);
    let nanos = std::time::UNIX_EPOCH.elapsed().unwrap().as_nanos();
    let marker = format!("partyline-test-{}-{nanos}", std::process::id());
    let program = vec![
        repo_file("crates/partyline/tests/programs/rounds.py"),
        marker.clone(),
    ];
    let mut parties: Vec<Party> = ["alice", "bob", "carol"]
        .iter()
        .map(|name| Party::join(&invite, name, &[], &program))
        .collect();
    // Each program prints 'running' once MPyC is connected.
    for party in &mut parties {
        let stdout = party.child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        assert!(
            lines.any(|l| l.map(|l| l == "running").unwrap_or(false)),
            "{} never ran its program",
            party.name
        );
        // Keep draining so the child never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
    }
    (parties, marker)
}

/// The other parties stop within seconds, non-zero, naming carol, and leave no process.
fn others_stop_naming_carol(parties: Vec<Party>, since: Instant, marker: &str) {
    for party in parties {
        let run = party.finish(Duration::from_secs(30));
        assert!(!run.out.status.success(), "{} exited 0", run.name);
        assert!(
            run.stderr().contains("carol"),
            "{} does not name carol: {}",
            run.name,
            run.stderr()
        );
    }
    assert!(
        since.elapsed() < Duration::from_secs(20),
        "took {:?}",
        since.elapsed()
    );
    assert_no_process_with(marker);
}

#[test]
fn killing_one_party_stops_the_others_naming_it() {
    let server = Server::start();
    let (mut parties, marker) = running_session(&server);
    let mut carol = parties.pop().unwrap();
    carol.child.kill().unwrap();
    carol.child.wait().unwrap();
    others_stop_naming_carol(parties, Instant::now(), &marker);
}

#[test]
fn ctrl_c_on_one_party_ends_the_session_everywhere() {
    let server = Server::start();
    let (mut parties, marker) = running_session(&server);
    let carol = parties.pop().unwrap();
    let pid = carol.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let interrupted_at = Instant::now();
    let run = carol.finish(Duration::from_secs(15));
    assert_eq!(run.out.status.code(), Some(130), "{}", run.stderr());
    assert!(run.stderr().contains("interrupted"), "{}", run.stderr());
    others_stop_naming_carol(parties, interrupted_at, &marker);
}

/// No process may outlive the session: polls briefly, since the kernel
/// delivers the parent-death signal asynchronously.
fn assert_no_process_with(marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = Command::new("pgrep").args(["-f", marker]).output().unwrap();
        if !found.status.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes left behind: {}",
            String::from_utf8_lossy(&found.stdout)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
