//! One seat, one stream: a roster member whose streams break MPyC's
//! connection pattern is named by every honest party and ends the session
//! before any result; a local connection to a tunnel end from another user,
//! or a second one in MPyC mode, is refused and the session goes on.
//!
//! The attacker is a real party: `partyline join --no-mpyc-flags`, whose
//! program (`programs/seat_attacker.py`) dials its tunnel ends as it likes,
//! among honest parties running MPyC.
mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

/// The honest parties' outcome when party 1, mallory, runs `attack`: each
/// exits non-zero, its stderr names mallory with `what_it_did`, and no
/// result was printed.
fn attack_is_named_by_every_honest_party(attack: &str, what_it_did: &str) {
    let server = Server::start();
    let invite = server.create(3);
    let honest = vec![repo_file("examples/securesum.py")];
    let attacker = vec![
        repo_file("crates/partyline/tests/programs/seat_attacker.py"),
        attack.to_string(),
    ];
    let parties = join_in_seat_order(
        &invite,
        &[
            ("alice", &[], &honest),
            ("mallory", &["--no-mpyc-flags"], &attacker),
            ("carol", &[], &honest),
        ],
    );
    let runs: Vec<Finished> = parties
        .into_iter()
        .map(|p| p.finish(Duration::from_secs(90)))
        .collect();
    assert!(
        runs[1].stdout().contains(&format!("attacking: {attack}")),
        "the attack did not run: {}",
        runs[1].stderr()
    );
    let named = format!("party 1 (mallory) {what_it_did}");
    for run in [&runs[0], &runs[2]] {
        assert!(!run.out.status.success(), "{} exited 0", run.name);
        assert!(
            run.stderr().contains(&named),
            "{} does not say {named:?}:\n{}",
            run.name,
            run.stderr()
        );
        assert_eq!(
            run.result_lines(&["sum", "product", "max"]),
            Vec::<String>::new(),
            "{} printed results",
            run.name
        );
    }
}

#[test]
fn a_party_claiming_another_seat_is_named_and_ends_the_session() {
    attack_is_named_by_every_honest_party(
        "wrong-pid",
        "claimed MPyC party id 0 on its stream, but its seat is 1",
    );
}

#[test]
fn a_party_opening_a_second_stream_is_named_and_ends_the_session() {
    attack_is_named_by_every_honest_party("second-stream", "opened a second stream");
}

#[test]
fn a_party_opening_a_stream_towards_a_lower_seat_is_named_and_ends_the_session() {
    attack_is_named_by_every_honest_party(
        "wrong-direction",
        "opened a stream towards party 0, a lower seat",
    );
}

/// Connects to `host` `port` and prints whether partyline took the connection:
/// `refused` if it is closed within 10 s without a byte, else `accepted`.
/// Plain bash (`/dev/tcp`), so that any user can run it, wherever the
/// repository and the test's Python are.
const PROBE: &str = r#"exec 3<>"/dev/tcp/$1/$2" || exit 2
if read -r -t 10 -n 1 byte <&3; then echo accepted
elif [ $? -gt 128 ]; then echo accepted
else echo refused
fi"#;

/// Connects to a tunnel end as user `uid` (ours when `None`).
fn probe(tunnel_end: &str, uid: Option<u32>) -> String {
    let (host, port) = tunnel_end.rsplit_once(':').expect("host:port");
    let mut command = Command::new("bash");
    command
        .args(["-c", PROBE, "probe", host, port])
        .current_dir("/");
    if let Some(uid) = uid {
        command.uid(uid).gid(uid);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "probe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A FIFO a test program waits at until the test writes a line to it.
fn gate(dir: &Path) -> String {
    let path = dir.join("gate");
    assert!(
        Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap()
            .success()
    );
    path.to_string_lossy().into_owned()
}

/// Writes the line the program waits for at its gate. A FIFO's writer
/// waits for a reader, so this opens it without waiting and tries again
/// while no program has it open: bounded, so a program that never got
/// there (its party ended) fails the test instead of hanging it.
fn open_gate(path: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut gate = loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
        {
            Ok(gate) => break gate,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no program opened its gate {path} within 60 s"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("cannot open the gate {path}: {e}"),
        }
    };
    std::io::Write::write_all(&mut gate, b"go\n").unwrap();
}

/// The user id of a process that is not us: `nobody`. Needs root to start one.
const OTHER_USER: u32 = 65534;

fn assert_root() {
    let uid = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next().map(str::to_string))
        .unwrap();
    assert_eq!(
        uid, "0",
        "this test starts a process as another user and must run as root"
    );
}

/// The tunnel end towards party 1 of party 0's program, from its `tunnels:` line.
fn tunnel_towards_party_1(alice: &mut Party) -> String {
    let line = alice.wait_for_stdout("tunnels:", Duration::from_secs(60));
    let addrs = line.trim_start_matches("tunnels:").trim();
    addrs
        .split(',')
        .nth(1)
        .expect("an address per party")
        .to_string()
}

#[test]
fn mpyc_tunnel_ends_refuse_other_users_and_a_second_connection() {
    assert_root();
    let server = Server::start();
    let invite = server.create(2);
    let dir = tempfile::tempdir().unwrap();
    let gate = gate(dir.path());
    let program = vec![
        repo_file("crates/partyline/tests/programs/gated_sum.py"),
        gate.clone(),
    ];
    let mut parties =
        join_in_seat_order(&invite, &[("alice", &[], &program), ("bob", &[], &program)]);
    let towards_bob = tunnel_towards_party_1(&mut parties[0]);
    assert_eq!(probe(&towards_bob, Some(OTHER_USER)), "refused");
    // MPyC connects, then a second connection of our own user is refused.
    open_gate(&gate);
    parties[0].wait_for_stdout("connected", Duration::from_secs(60));
    assert_eq!(probe(&towards_bob, None), "refused");
    open_gate(&gate);

    let runs: Vec<Finished> = parties
        .into_iter()
        .map(|p| p.finish(Duration::from_secs(90)))
        .collect();
    for run in &runs {
        run.assert_success();
        assert_eq!(run.result_lines(&["sum"]), ["sum: 1"], "{}", run.name);
    }
    let alice = runs[0].stderr();
    assert!(
        alice.contains(&format!("user id {OTHER_USER}")),
        "alice does not log the other user: {alice}"
    );
    assert!(
        alice.contains("our program already has its one connection to party 1"),
        "alice does not log the second connection: {alice}"
    );
}

#[test]
fn generic_tunnel_ends_take_several_connections_either_way_but_only_from_our_user() {
    assert_root();
    let server = Server::start();
    let invite = server.create(2);
    let dir = tempfile::tempdir().unwrap();
    let gate = gate(dir.path());
    let program = vec![
        repo_file("crates/partyline/tests/programs/many_streams.py"),
        gate.clone(),
    ];
    let flags: &[&str] = &["--no-mpyc-flags"];
    let mut parties = join_in_seat_order(
        &invite,
        &[("alice", flags, &program), ("bob", flags, &program)],
    );
    let towards_bob = tunnel_towards_party_1(&mut parties[0]);
    assert_eq!(probe(&towards_bob, Some(OTHER_USER)), "refused");
    open_gate(&gate);

    let runs: Vec<Finished> = parties
        .into_iter()
        .map(|p| p.finish(Duration::from_secs(90)))
        .collect();
    for (run, heard) in runs.iter().zip(["heard: [1, 1]", "heard: [0, 0]"]) {
        run.assert_success();
        assert_eq!(run.result_lines(&["heard"]), [heard], "{}", run.name);
    }
    assert!(runs[0].stderr().contains(&format!("user id {OTHER_USER}")));
}
