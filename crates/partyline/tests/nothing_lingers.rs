//! Nothing of a session lingers on a party's machine: however it ends (success,
//! a program failure, Ctrl-C, SIGKILL of a party), no process of the session is
//! left and partyline's temporary directory (the private `sitecustomize` hook)
//! is gone. Each party gets a temporary directory of its own (`TMPDIR`) that
//! must be empty afterwards; a killed party's hook is removed by the next
//! `join` on that machine.
mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use tempfile::TempDir;

/// A party whose `TMPDIR` is a fresh directory of its own.
fn join_isolated(invite: &str, name: &str, program: &[String]) -> (Party, TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let party = Party::start(name, &[], program, |command| {
        command.arg(invite).env("TMPDIR", tmp.path());
    });
    (party, tmp)
}

fn left_in(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn assert_nothing_left(tmps: &[TempDir]) {
    for tmp in tmps {
        let left = left_in(tmp.path());
        assert!(
            left.is_empty(),
            "left in {}: {left:?}",
            tmp.path().display()
        );
    }
}

fn marker() -> String {
    let nanos = std::time::UNIX_EPOCH.elapsed().unwrap().as_nanos();
    format!("partyline-lingers-{}-{nanos}", std::process::id())
}

fn rounds(marker: &str) -> Vec<String> {
    vec![
        repo_file("crates/partyline/tests/programs/rounds.py"),
        marker.to_string(),
    ]
}

/// Three parties running `rounds.py` until stopped, each with its own `TMPDIR`.
fn running(server: &Server, marker: &str) -> (Vec<Party>, Vec<TempDir>) {
    let invite = server.create(3);
    let (mut parties, tmps): (Vec<Party>, Vec<TempDir>) = ["alice", "bob", "carol"]
        .iter()
        .map(|name| join_isolated(&invite, name, &rounds(marker)))
        .unzip();
    for party in &mut parties {
        party.wait_for_stdout("running", Duration::from_secs(120));
    }
    (parties, tmps)
}

#[test]
fn after_success() {
    let server = Server::start();
    let invite = server.create(3);
    let marker = marker();
    let program = vec![
        repo_file("crates/partyline/tests/programs/timed_rounds.py"),
        "10".to_string(),
        marker.clone(),
    ];
    let (parties, tmps): (Vec<Party>, Vec<TempDir>) = ["alice", "bob", "carol"]
        .iter()
        .map(|name| join_isolated(&invite, name, &program))
        .unzip();
    for party in parties {
        let run = party.finish(Duration::from_secs(120));
        run.assert_success();
        assert_eq!(run.result_lines(&["sum"]), ["sum: 3"]);
    }
    assert_no_process_with(&marker);
    assert_nothing_left(&tmps);
}

#[test]
fn after_a_program_failure() {
    let server = Server::start();
    let invite = server.create(3);
    let marker = marker();
    let (alice, alice_tmp) = join_isolated(&invite, "alice", &rounds(&marker));
    let (bob, bob_tmp) = join_isolated(&invite, "bob", &rounds(&marker));
    let failing = [
        "sh".to_string(),
        "-c".into(),
        "exit 3".into(),
        marker.clone(),
    ];
    let (carol, carol_tmp) = join_isolated(&invite, "carol", &failing);
    let carol = carol.finish(Duration::from_secs(120));
    assert_eq!(carol.out.status.code(), Some(3), "{}", carol.stderr());
    others_stop_naming_carol(vec![alice, bob], Instant::now(), Duration::from_secs(20));
    assert_no_process_with(&marker);
    assert_nothing_left(&[alice_tmp, bob_tmp, carol_tmp]);
}

#[test]
fn after_ctrl_c() {
    let server = Server::start();
    let marker = marker();
    let (mut parties, tmps) = running(&server, &marker);
    let carol = parties.pop().unwrap();
    let pid = carol.child.id().to_string();
    let sent = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(sent.success());
    let interrupted = Instant::now();
    let carol = carol.finish(Duration::from_secs(15));
    assert_eq!(carol.out.status.code(), Some(130), "{}", carol.stderr());
    others_stop_naming_carol(parties, interrupted, Duration::from_secs(20));
    assert_no_process_with(&marker);
    assert_nothing_left(&tmps);
}

#[test]
fn after_sigkill_of_a_party_the_next_join_clears_its_hook() {
    let server = Server::start();
    let marker = marker();
    let (mut parties, mut tmps) = running(&server, &marker);
    let mut carol = parties.pop().unwrap();
    let carol_tmp = tmps.pop().unwrap();
    carol.child.kill().unwrap();
    carol.child.wait().unwrap();
    others_stop_naming_carol(parties, Instant::now(), Duration::from_secs(20));
    assert_no_process_with(&marker);
    assert_nothing_left(&tmps);

    // SIGKILL skips every clean-up: carol's hook directory is still there...
    let left = left_in(carol_tmp.path());
    assert!(
        left.len() == 1 && left[0].starts_with("partyline-hook-"),
        "{left:?}"
    );
    // ...until the next join on her machine starts a program.
    let invite = server.create(1);
    let next = Party::start("carol", &["--no-mpyc-flags"], &["true".to_string()], |c| {
        c.arg(&invite).env("TMPDIR", carol_tmp.path());
    });
    next.finish(Duration::from_secs(60)).assert_success();
    assert_nothing_left(&[carol_tmp]);
}
