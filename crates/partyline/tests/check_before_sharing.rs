//! `join --expect` and `join --confirm`: the program starts only once the
//! roster is the one the user expects; otherwise the party refuses before its
//! program starts, and the other parties stop, naming it, with no result.
mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(120);
/// How long the person at `--confirm` takes to type (not a synchronisation:
/// the wait the test is about).
const HUMAN_PAUSE: Duration = Duration::from_secs(8);

fn securesum() -> Vec<String> {
    vec![repo_file("examples/securesum.py")]
}

/// A two-party session in which alice joins with `alice_flags` and bob plainly.
fn alice_and_bob(server: &Server, alice_flags: &[&str]) -> (Party, Party) {
    let invite = server.create(2);
    let alice = Party::start("alice", alice_flags, &securesum(), |command| {
        command
            .env("PARTYLINE_INVITE", &invite)
            .stdin(Stdio::piped());
    });
    let bob = Party::join(&invite, "bob", &[], &securesum());
    (alice, bob)
}

/// alice refused with `says` before her program started; bob stopped naming her; no one computed.
fn assert_alice_refused(alice: Party, bob: Party, says: &[&str]) {
    let alice = alice.finish(LIMIT);
    let bob = bob.finish(LIMIT);
    assert_eq!(alice.out.status.code(), Some(2), "{}", alice.stderr());
    for text in says {
        assert!(
            alice.stderr().contains(text),
            "alice does not say {text:?}: {}",
            alice.stderr()
        );
    }
    assert!(
        alice.stderr().contains("the program did not start"),
        "{}",
        alice.stderr()
    );
    assert!(!alice.stderr().contains("mesh ready"), "{}", alice.stderr());
    assert!(!bob.out.status.success(), "bob exited 0: {}", bob.stderr());
    assert!(
        bob.stderr()
            .contains("(alice) ended the session: alice refused to start"),
        "bob does not name alice's refusal: {}",
        bob.stderr()
    );
    for run in [&alice, &bob] {
        assert_eq!(
            run.result_lines(&["sum", "product", "max"]),
            Vec::<String>::new(),
            "{}",
            run.name
        );
    }
}

#[test]
fn expect_refuses_a_missing_an_extra_or_a_renamed_party() {
    let server = Server::start();
    for (expect, says) in [
        ("alice,bob,carol", &["(missing: carol)"][..]),
        ("alice", &["(not expected: bob)"]),
        ("alice,robert", &["(missing: robert; not expected: bob)"]),
    ] {
        let (alice, bob) = alice_and_bob(&server, &["--expect", expect]);
        assert_alice_refused(alice, bob, says);
    }
}

#[test]
fn expect_with_exactly_the_roster_in_any_order_runs() {
    let server = Server::start();
    let runs = run_session(&server, 3, &["--expect", "carol,alice,bob"], &securesum());
    for run in &runs {
        run.assert_success();
        assert_eq!(run.result_lines(&["sum"]), ["sum: 6021"], "{}", run.name);
    }
}

/// The fingerprint alice was shown, as printed on her stderr.
fn shown_fingerprint(alice: &mut Party) -> Vec<String> {
    let line = alice.wait_for_stderr("session fingerprint", LIMIT);
    let words = line
        .split("session fingerprint ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("no fingerprint in {line:?}"));
    let words: Vec<String> = words.split_whitespace().map(str::to_string).collect();
    assert_eq!(words.len(), 12, "{line}");
    alice.wait_for_stderr("type the fingerprint", LIMIT);
    words
}

fn type_line(party: &mut Party, line: &str) {
    let mut stdin = party.child.stdin.take().unwrap();
    writeln!(stdin, "{line}").unwrap();
}

#[test]
fn confirm_with_a_wrong_fingerprint_refuses() {
    let server = Server::start();
    let (mut alice, bob) = alice_and_bob(&server, &["--confirm"]);
    let mut words = shown_fingerprint(&mut alice);
    // One word off, as a fingerprint read out from a different roster would be.
    words[5] = if words[5] == "zoo" { "zone" } else { "zoo" }.to_string();
    type_line(&mut alice, &words[..6].join(" "));
    assert_alice_refused(alice, bob, &["the fingerprint typed is not this session's"]);
}

#[test]
fn confirm_with_the_right_fingerprint_runs() {
    let server = Server::start();
    let (mut alice, bob) = alice_and_bob(&server, &["--confirm"]);
    let words = shown_fingerprint(&mut alice);
    // A person reading words aloud takes longer than QUIC's 5 s idle timeout:
    // the parties are connected while alice reads, and stay connected.
    std::thread::sleep(HUMAN_PAUSE);
    // The short form, as read out on a call, in capitals.
    type_line(&mut alice, &words[..6].join(" ").to_uppercase());
    for run in [alice, bob].map(|p| p.finish(LIMIT)) {
        run.assert_success();
        assert_eq!(run.result_lines(&["sum"]), ["sum: 3014"], "{}", run.name);
    }
}

#[test]
fn confirm_cannot_share_stdin_with_the_invite() {
    let out = Command::new(BIN)
        .env_remove("PARTYLINE_INVITE")
        .args([
            "join",
            "-",
            "--confirm",
            "--",
            "sh",
            "-c",
            "echo program-started",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--confirm reads the fingerprint from stdin"),
        "{stderr}"
    );
    assert!(stderr.contains("--invite-file"), "{stderr}");
}

/// A program that says it started before anything else.
fn marker_program() -> Vec<String> {
    ["sh", "-c", "echo program-started"]
        .map(str::to_string)
        .to_vec()
}

/// alice refuses (`--expect` names a party that is not there) while bob and
/// carol check nothing: no party's program starts, not even for a moment,
/// and bob and carol name alice. Without the ready barrier bob's and carol's
/// programs started as soon as their connections were up, so the session
/// runs three times: the race was timing-dependent.
#[test]
fn a_refusal_keeps_every_partys_program_from_starting() {
    let server = Server::start();
    for round in 0..3 {
        let invite = server.create(3);
        let parties = [
            (
                "alice",
                &["--no-mpyc-flags", "--expect", "alice,bob,dave"][..],
            ),
            ("bob", &["--no-mpyc-flags"]),
            ("carol", &["--no-mpyc-flags"]),
        ]
        .map(|(name, flags)| Party::join(&invite, name, flags, &marker_program()));
        for run in parties.map(|p| p.finish(LIMIT)) {
            let said = format!(
                "round {round}, {}:\n{}\n{}",
                run.name,
                run.stdout(),
                run.stderr()
            );
            assert!(!run.out.status.success(), "exited 0: {said}");
            assert!(!run.stdout().contains("program-started"), "{said}");
            assert!(!run.stderr().contains("mesh ready"), "{said}");
            if run.name != "alice" {
                assert!(
                    run.stderr()
                        .contains("(alice) ended the session: alice refused to start"),
                    "does not name alice's refusal: {said}"
                );
            }
        }
    }
}
