//! Finding and building a Python with MPyC, with real interpreters and PyPI.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use partyline_launch::mpyc::{self, EXTRAS, VERSION as MPYC_VERSION};
use partyline_launch::{LaunchError, PythonSource, ensure_managed_python, ensure_python};

fn no_progress(_: &str) {}

/// A virtual environment at `venv` without pip whose only package is a
/// stand-in `mpyc` of `version`: what an old managed Python or a user's
/// Python without MPyC's extras looks like to partyline, made without PyPI.
fn venv_with_stand_in_mpyc(venv: &Path, version: &str) -> PathBuf {
    let created = std::process::Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(venv)
        .status()
        .unwrap();
    assert!(created.success());
    let python = venv.join("bin/python");
    let purelib = std::process::Command::new(&python)
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ])
        .output()
        .unwrap();
    let package = PathBuf::from(String::from_utf8(purelib.stdout).unwrap().trim()).join("mpyc");
    std::fs::create_dir_all(&package).unwrap();
    std::fs::write(
        package.join("__init__.py"),
        format!("__version__ = '{version}'\n"),
    )
    .unwrap();
    python
}

#[tokio::test]
async fn explicit_python_without_the_extras_is_used_with_a_one_line_hint() {
    let dir = tempfile::tempdir().unwrap();
    let python = venv_with_stand_in_mpyc(&dir.path().join("venv"), MPYC_VERSION);
    let found = ensure_python(PythonSource::Explicit(python.clone()), &no_progress)
        .await
        .unwrap();
    assert_eq!(found.path, python);
    assert_eq!(found.lacks, EXTRAS.iter().collect::<Vec<_>>());
    let hint = found.hint().unwrap();
    assert_eq!(hint.lines().count(), 1, "{hint}");
    assert!(
        hint.contains("no gmpy2") && hint.contains("no numpy"),
        "{hint}"
    );
}

#[tokio::test]
async fn explicit_python_with_another_mpyc_release_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let python = venv_with_stand_in_mpyc(&dir.path().join("venv"), "0.9");
    let message = ensure_python(PythonSource::Explicit(python), &no_progress)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains(&format!("it has mpyc 0.9, not {MPYC_VERSION}")),
        "{message}"
    );
}

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

/// Needs PyPI and takes about half a minute: in a home holding a managed
/// environment as older partylines left it (MPyC without its extras), two
/// setups at once rebuild it once, with MPyC, gmpy2 and numpy at their pins.
#[tokio::test]
async fn concurrent_managed_setups_upgrade_an_old_environment_once() {
    let home = tempfile::tempdir().unwrap();
    let venv = format!("python-mpyc-{MPYC_VERSION}");
    venv_with_stand_in_mpyc(&home.path().join(&venv), MPYC_VERSION);
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
    let count = |prefix: &str| {
        messages
            .iter()
            .filter(|line| line.starts_with(prefix))
            .count()
    };
    assert_eq!(count("creating Python environment"), 1, "{messages:?}");
    assert_eq!(
        count("updating the Python environment in"),
        1,
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|line| line.ends_with("it has no gmpy2, no numpy")),
        "{messages:?}"
    );
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

    // MPyC imports with gmpy2 and numpy at their pins, and so logs no hint
    // about either.
    let output = std::process::Command::new(&python)
        .args(["-c", &mpyc::print_versions()])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let pins = format!("{MPYC_VERSION} {} {}", EXTRAS[0].version, EXTRAS[1].version);
    assert_eq!(stdout, format!("{pins}\n"));
    let imports = std::process::Command::new(&python)
        .args([
            "-c",
            "import gmpy2, numpy; print(gmpy2.mpz(2) ** 100, numpy.arange(4).sum())",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&imports.stdout),
        "1267650600228229401496703205376 6\n",
        "{}",
        String::from_utf8_lossy(&imports.stderr)
    );

    let mut entries: Vec<String> = std::fs::read_dir(home.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    entries.sort();
    assert_eq!(entries, [venv.clone(), format!("{venv}.lock")]);

    // Reuse is silent, and the result also passes as an explicit --python.
    let again = ensure_managed_python(home.path(), &|line: &str| panic!("rebuilt: {line}"));
    assert_eq!(again.await.unwrap(), python);
    let explicit = ensure_python(PythonSource::Explicit(python.clone()), &no_progress);
    assert_eq!(explicit.await.unwrap(), python.into());
}
