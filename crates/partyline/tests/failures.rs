//! What a party sees when things go wrong: bad invites, no server, a party killed mid-run.
mod common;

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
    let (stderr, took) = alice_fails_alone(
        &invite,
        &["--timeout", "6", "--no-mpyc-flags", "--", "true"],
    );
    assert!(
        stderr.contains("1 of 2 parties joined (alice)") && stderr.contains("Raise --timeout"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(6 + 3), "took {took:?}");
    assert_no_announcements(&invite);
}

/// Python is looked for while the party joins; a Python without MPyC stops
/// the party with what to do, long before its --timeout, and leaves its seat
/// free whether the search failed before or after it announced.
#[test]
fn a_party_without_a_usable_python_stops_and_leaves_its_seat_free() {
    let server = Server::start();
    let invite = server.create(2);
    let args = [
        "--timeout",
        "60",
        "--python",
        "/bin/false",
        "--",
        "program.py",
    ];
    let (stderr, took) = alice_fails_alone(&invite, &args);
    assert!(
        stderr.contains("(/bin/false) cannot be used") && stderr.contains("pip install mpyc"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert_no_announcements(&invite);
}

/// alice joins `invite` with `args` as its only party and fails: her
/// stderr, and how long she ran.
fn alice_fails_alone(invite: &str, args: &[&str]) -> (String, Duration) {
    let started = Instant::now();
    let out = Command::new(BIN)
        .args(["join", invite, "--name", "alice"])
        .args(args)
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{stderr}");
    (stderr, took)
}

/// The session of `invite` as the coordinator sees it holds no announcement.
fn assert_no_announcements(invite: &str) {
    let invite: Invite = invite.parse().unwrap();
    let view = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(Coordinator::new(&invite.server, invite.pin).session(&invite.session, None))
        .unwrap();
    assert!(view.announcements.is_empty(), "{view:?}");
}

#[test]
fn killing_one_party_stops_the_others_naming_it() {
    let server = Server::start();
    let (mut parties, marker) = running_session(&server, &[]);
    let mut carol = parties.pop().unwrap();
    carol.child.kill().unwrap();
    carol.child.wait().unwrap();
    others_stop_naming_carol(parties, Instant::now(), Duration::from_secs(20));
    assert_no_process_with(&marker);
}

#[test]
fn ctrl_c_on_one_party_ends_the_session_everywhere() {
    let server = Server::start();
    let (mut parties, marker) = running_session(&server, &[]);
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
    others_stop_naming_carol(parties, interrupted_at, Duration::from_secs(20));
    assert_no_process_with(&marker);
}
