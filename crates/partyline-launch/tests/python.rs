//! Finding and building a Python with MPyC, with real interpreters and PyPI.

use std::path::PathBuf;
use std::sync::Mutex;

use partyline_launch::mpyc::{self, VERSION as MPYC_VERSION};
use partyline_launch::{LaunchError, PythonSource, ensure_managed_python, ensure_python};

fn no_progress(_: &str) {}

#[tokio::test]
async fn explicit_python_that_does_not_exist_points_at_the_python_flag() {
    let source = PythonSource::Explicit(PathBuf::from("/nonexistent/bin/python"));
    let err = ensure_python(source, &no_progress).await.unwrap_err();
    assert!(matches!(err, LaunchError::PythonUnusable { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("--python"), "{message}");
    assert!(message.contains("it does not exist"), "{message}");
}

#[tokio::test]
async fn explicit_python_without_mpyc_says_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let venv = dir.path().join("venv");
    let created = tokio::process::Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .await
        .unwrap();
    assert!(created.success());
    let source = PythonSource::Explicit(venv.join("bin/python"));
    let message = ensure_python(source, &no_progress)
        .await
        .unwrap_err()
        .to_string();
    assert!(message.contains("No module named 'mpyc'"), "{message}");
    assert!(
        message.contains(&format!("-m pip install {}", mpyc::requirement())),
        "{message}"
    );
}

/// Needs PyPI and takes about half a minute: builds the managed environment
/// twice at once in a fresh home and checks that only one build happened.
#[tokio::test]
async fn concurrent_managed_setups_build_one_environment_that_imports_mpyc() {
    let home = tempfile::tempdir().unwrap();
    let messages = Mutex::new(Vec::new());
    let record = |line: &str| messages.lock().unwrap().push(line.to_owned());

    let (a, b) = tokio::join!(
        ensure_managed_python(home.path(), &record),
        ensure_managed_python(home.path(), &record),
    );
    let python = a.unwrap();
    assert_eq!(python, b.unwrap());
    assert_eq!(
        python,
        home.path()
            .join(format!("python-mpyc-{MPYC_VERSION}/bin/python"))
    );

    let messages = messages.into_inner().unwrap();
    let builds = messages
        .iter()
        .filter(|line| line.starts_with("creating Python environment"))
        .count();
    assert_eq!(builds, 1, "{messages:?}");
    assert!(
        messages
            .iter()
            .any(|line| line.starts_with("waiting for another partyline")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|line| line.starts_with(&format!("installing mpyc {MPYC_VERSION}"))),
        "{messages:?}"
    );

    let output = std::process::Command::new(&python)
        .args(["-c", mpyc::PRINT_VERSION])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().last(), Some(MPYC_VERSION), "{stdout}");

    let mut entries: Vec<String> = std::fs::read_dir(home.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    entries.sort();
    let venv = format!("python-mpyc-{MPYC_VERSION}");
    assert_eq!(entries, [venv.clone(), format!("{venv}.lock")]);

    // Reuse is silent, and the result also passes as an explicit --python.
    let again = ensure_managed_python(home.path(), &|line: &str| panic!("rebuilt: {line}"));
    assert_eq!(again.await.unwrap(), python);
    let explicit = ensure_python(PythonSource::Explicit(python.clone()), &no_progress);
    assert_eq!(explicit.await.unwrap(), python);
}
