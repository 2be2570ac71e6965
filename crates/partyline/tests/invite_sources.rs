//! The invite can stay off the command line: from PARTYLINE_INVITE, a file or
//! stdin, a real session runs, and while `join` waits for the others its
//! secret is in neither `/proc/PID/cmdline` nor `ps` output.
mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// One way of handing `join` the invite without putting it on argv.
#[derive(Clone, Copy, Debug)]
enum Source {
    Env,
    File,
    Stdin,
}

/// Starts `name`'s join with the invite from `source`.
fn join_from(source: Source, invite: &str, name: &str, dir: &std::path::Path) -> Party {
    let path = dir.join(format!("{name}.invite"));
    std::fs::write(&path, format!("{invite}\n")).unwrap();
    let mut party = Party::start(name, &[], &securesum(), |command| {
        match source {
            Source::Env => command.env("PARTYLINE_INVITE", invite),
            Source::File => command.arg("--invite-file").arg(&path),
            Source::Stdin => command.arg("-").stdin(Stdio::piped()),
        };
    });
    if let Source::Stdin = source {
        let mut stdin = party.child.stdin.take().unwrap();
        writeln!(stdin, "{invite}").unwrap();
    }
    party
}

fn securesum() -> Vec<String> {
    vec![repo_file("examples/securesum.py")]
}

fn assert_secret_not_visible(secret: &str, pid: u32, source: Source) {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains(secret),
        "{source:?}: the secret is in /proc/{pid}/cmdline"
    );
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    assert!(ps.status.success());
    let ps = String::from_utf8_lossy(&ps.stdout);
    assert!(ps.contains("partyline"), "ps shows no partyline: {ps}");
    assert!(
        !ps.contains(secret),
        "{source:?}: the secret is in ps output"
    );
}

#[test]
fn invite_from_env_file_or_stdin_runs_and_stays_off_the_command_line() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    for source in [Source::Env, Source::File, Source::Stdin] {
        let invite = server.create(2);
        let secret = invite.split('#').nth(1).unwrap();
        assert!(secret.starts_with("pl1."), "{invite}");

        let mut alice = join_from(source, &invite, "alice", dir.path());
        alice.wait_for_stderr("1 of 2 parties joined", Duration::from_secs(120));
        assert_secret_not_visible(secret, alice.child.id(), source);

        let bob = join_from(source, &invite, "bob", dir.path());
        for run in [alice, bob].map(|p| p.finish(Duration::from_secs(120))) {
            run.assert_success();
            assert_eq!(
                run.result_lines(&["sum"]),
                ["sum: 3014"],
                "{source:?}: {}",
                run.name
            );
        }
    }
}

#[test]
fn no_invite_or_two_invites_are_refused_clearly() {
    let server = Server::start();
    let invite = server.create(2);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &invite).unwrap();
    let join = |setup: &dyn Fn(&mut Command)| {
        let mut command = Command::new(BIN);
        command.env_remove("PARTYLINE_INVITE").arg("join");
        setup(&mut command);
        let out = command
            .args(["--", "sh", "-c", "echo program-started"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(!String::from_utf8_lossy(&out.stdout).contains("program-started"));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let none = join(&|_| {});
    assert!(none.contains("no invite given"), "{none}");
    assert!(none.contains("PARTYLINE_INVITE"), "{none}");
    let twice = join(&|c| {
        c.arg(&invite).env("PARTYLINE_INVITE", &invite);
    });
    assert!(
        twice.contains("given more than once (the INVITE argument and PARTYLINE_INVITE)"),
        "{twice}"
    );
    let twice = join(&|c| {
        c.arg("--invite-file")
            .arg(file.path())
            .env("PARTYLINE_INVITE", &invite);
    });
    assert!(
        twice.contains("--invite-file and PARTYLINE_INVITE"),
        "{twice}"
    );
    let empty_stdin = join(&|c| {
        c.arg("-");
    });
    assert!(empty_stdin.contains("stdin ended"), "{empty_stdin}");
}
