//! Starting, waiting for and stopping real programs.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use partyline_launch::{LaunchError, ProgramSpec, RunningProgram, exit_code};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

fn spec(program: &[&str]) -> ProgramSpec {
    ProgramSpec {
        program: program.iter().map(|s| s.to_string()).collect(),
        mpyc_flags: false,
        parties: 3,
        index: 1,
        addrs: vec![
            "127.0.0.1:7000".parse().unwrap(),
            "127.0.0.1:7001".parse().unwrap(),
            "127.0.0.1:7002".parse().unwrap(),
        ],
        python: None,
        workdir: None,
        listener: None,
    }
}

fn sh(script: &str, arg0: &Path) -> ProgramSpec {
    spec(&["sh", "-c", script, arg0.to_str().unwrap()])
}

#[tokio::test]
async fn program_gets_partyline_env_and_mpyc_flags_after_its_args() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // `sh -c SCRIPT OUT FLAGS...`: $0 is the output file, $@ the MPyC flags.
    let script = r#"printf '%s\n' "$PARTYLINE_PARTIES" "$PARTYLINE_INDEX" "$PARTYLINE_ADDRS" "$PYTHONUNBUFFERED" "$*" > "$0""#;
    let mut spec = sh(script, &out);
    spec.mpyc_flags = true;
    let mut program = RunningProgram::spawn(&spec).unwrap();
    assert!(program.wait().await.unwrap().success());
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "3\n1\n127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002\n1\n\
         -M 3 -I 1 -P 127.0.0.1:7000 -P 127.0.0.1:7001 -P 127.0.0.1:7002\n"
    );
}

#[tokio::test]
async fn py_program_runs_under_python_in_its_workdir() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("party.py"),
        "import os, sys\nopen('out', 'w').write(os.getcwd() + '\\n' + ' '.join(sys.argv))\n",
    )
    .unwrap();
    let mut spec = spec(&["party.py", "8"]);
    spec.python = Some(PathBuf::from("python3").into());
    spec.workdir = Some(dir.path().to_owned());
    let mut program = RunningProgram::spawn(&spec).unwrap();
    assert!(program.wait().await.unwrap().success());
    let cwd = dir.path().canonicalize().unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out")).unwrap(),
        format!("{}\nparty.py 8", cwd.display())
    );
}

#[tokio::test]
async fn terminate_stops_a_program_with_sigterm_within_the_grace() {
    let mut program = RunningProgram::spawn(&spec(&["sleep", "60"])).unwrap();
    let grace = Duration::from_secs(20);
    let started = Instant::now();
    let status = program.terminate(grace).await.unwrap();
    assert!(started.elapsed() < grace);
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    assert_eq!(program.id(), None);
}

#[tokio::test]
async fn terminate_kills_a_program_that_ignores_sigterm_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&ready)
            .status()
            .unwrap()
            .success()
    );
    // An ignored signal stays ignored across exec, so `sleep` inherits it. The
    // FIFO tells the test that the trap is in place before SIGTERM is sent.
    let script = r#"trap '' TERM; echo ready > "$0"; exec sleep 60"#;
    let mut program = RunningProgram::spawn(&sh(script, &ready)).unwrap();
    let mut fifo = tokio::net::unix::pipe::OpenOptions::new()
        .open_receiver(&ready)
        .unwrap();
    let mut line = String::new();
    fifo.read_to_string(&mut line).await.unwrap();
    assert_eq!(line, "ready\n");

    let grace = Duration::from_millis(300);
    let started = Instant::now();
    let status = program.terminate(grace).await.unwrap();
    assert!(started.elapsed() >= grace);
    assert_eq!(status.signal(), Some(libc::SIGKILL));
}

#[tokio::test]
async fn terminate_returns_the_status_of_a_program_that_already_exited() {
    let mut program = RunningProgram::spawn(&spec(&["true"])).unwrap();
    let exited = program.wait().await.unwrap();
    assert_eq!(program.terminate(Duration::ZERO).await.unwrap(), exited);
}

#[tokio::test]
async fn exit_code_passes_codes_through_and_maps_signals_to_128_plus() {
    for (script, code) in [
        ("exit 3", 3),
        ("exit 0", 0),
        ("kill -KILL $$", 137),
        ("kill -TERM $$", 143),
    ] {
        let status = RunningProgram::spawn(&spec(&["sh", "-c", script]))
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert_eq!(exit_code(status), code, "{script}");
    }
}

#[test]
fn spawn_errors_name_the_program_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-program");
    let err = RunningProgram::spawn(&spec(&[missing.to_str().unwrap()])).unwrap_err();
    assert!(matches!(err, LaunchError::ProgramNotFound { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("no-such-program was not found: check the path")
    );

    let err = RunningProgram::spawn(&spec(&["missing-script.py"])).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("missing-script.py was not found"),
        "{err}"
    );

    let plain = dir.path().join("not-executable");
    std::fs::write(&plain, "echo hi\n").unwrap();
    let err = RunningProgram::spawn(&spec(&[plain.to_str().unwrap()])).unwrap_err();
    assert!(
        matches!(err, LaunchError::ProgramNotExecutable { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("chmod +x"));
}

/// Set in the environment of the helper process that
/// `program_dies_with_partyline` starts from this test binary.
const HELPER_ENV: &str = "PARTYLINE_LAUNCH_TEST_HELPER";

/// Stands in for partyline in `program_dies_with_partyline`: starts a
/// program that would run for a minute, says so, and waits to be killed.
/// Run normally it does nothing.
#[tokio::test]
async fn helper_partyline_that_gets_killed() {
    if std::env::var_os(HELPER_ENV).is_none() {
        return;
    }
    let mut program = RunningProgram::spawn(&spec(&["sleep", "60"])).unwrap();
    let mut stdout = std::io::stdout();
    stdout.write_all(b"ready\n").unwrap();
    stdout.flush().unwrap();
    program.wait().await.unwrap();
}

#[tokio::test]
async fn program_dies_with_partyline() {
    let mut helper = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_partyline_that_gets_killed",
            "--nocapture",
        ])
        .env(HELPER_ENV, "1")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // The helper's program inherits this pipe, so it reaches end-of-file only
    // once both the helper and its program are gone.
    let mut pipe = BufReader::new(helper.stdout.take().unwrap());
    // The test harness prints its own lines around the helper's.
    let mut line = String::new();
    while line != "ready\n" {
        line.clear();
        assert_ne!(
            pipe.read_line(&mut line).await.unwrap(),
            0,
            "the helper failed"
        );
    }

    helper.start_kill().unwrap();
    helper.wait().await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), pipe.read_to_end(&mut rest))
        .await
        .expect("the program outlived partyline")
        .unwrap();
}
