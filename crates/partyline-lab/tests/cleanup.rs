//! Nothing is left behind: not after a test that fails half-way, not after
//! Ctrl-C, and `partyline lab clean` removes what a killed lab left.
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use partyline_lab::{NatKind, cleanup};

/// Polls `check` every 50 ms until it holds or `limit` passes.
fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

#[test]
fn a_panicking_test_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut prefix = String::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let lab = lab(
            "two-far",
            &[NatKind::Cone, NatKind::Cgnat, NatKind::UdpBlocked],
            dir.path(),
        );
        prefix = lab.prefix.clone();
        assert_eq!(
            cleanup::namespaces_with_prefix(&prefix).len(),
            2 + 3 + 2 + 1 + 1
        );
        panic!("a test failing half-way");
    }));
    assert!(result.is_err());
    assert!(!prefix.is_empty());
    assert_nothing_left(&prefix);
}

/// The prefix of the lab that `partyline lab up` (stdout) announced.
fn announced_prefix(stdout: &str) -> Option<String> {
    stdout.lines().find_map(|l| {
        l.strip_prefix("lab ")?
            .split_whitespace()
            .next()
            .map(str::to_string)
    })
}

#[test]
fn ctrl_c_removes_the_lab() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("up.out");
    let mut child = Command::new(exe())
        .args([
            "lab",
            "up",
            "--scenario",
            "two-near",
            "--parties",
            "2",
            "--nat",
            "cone,symmetric",
        ])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let up = eventually(Duration::from_secs(30), || {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .contains("Ctrl-C removes it")
    });
    let prefix = announced_prefix(&std::fs::read_to_string(&out).unwrap()).unwrap_or_default();
    if !up {
        let _ = child.kill();
        let _ = child.wait();
        cleanup::clean(&prefix);
        panic!("`lab up` did not come up");
    }
    assert!(!cleanup::namespaces_with_prefix(&prefix).is_empty());
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let exited = eventually(Duration::from_secs(30), || {
        child.try_wait().unwrap().is_some()
    });
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(exited, "`lab up` did not exit after Ctrl-C");
    assert_nothing_left(&prefix);
}

#[test]
fn clean_removes_what_a_killed_lab_left() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("up.out");
    let mut child = Command::new(exe())
        .args(["lab", "up", "--scenario", "two-far", "--parties", "2"])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let up = eventually(Duration::from_secs(30), || {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .contains("Ctrl-C removes it")
    });
    let prefix = announced_prefix(&std::fs::read_to_string(&out).unwrap()).unwrap_or_default();
    // SIGKILL: no handler runs, the namespaces and the delay stage stay.
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "`lab up` did not come up");
    assert!(
        !cleanup::namespaces_with_prefix(&prefix).is_empty(),
        "nothing was left to clean"
    );
    let status = Command::new(exe())
        .args(["lab", "clean", "--prefix", &prefix])
        .status()
        .unwrap();
    assert!(status.success());
    assert_nothing_left(&prefix);
}
