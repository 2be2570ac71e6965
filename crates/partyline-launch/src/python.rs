//! A Python that can `import mpyc` at [`mpyc::VERSION`]: the one the user
//! named, or a virtual environment that partyline builds once in its cache
//! and reuses.
//!
//! Several partyline processes on one machine may need the managed
//! environment at the same moment (the demo starts every party at once), so
//! it is built under an exclusive file lock, in a staging directory that is
//! renamed into place only once MPyC imports from it: a crash half-way never
//! leaves something that looks usable.

use std::ffi::OsString;
use std::fs::{self, File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use tokio::process::Command;

use crate::error::LaunchError;
use crate::mpyc::{self, VERSION as MPYC_VERSION};

/// How many of a failed tool's last stderr lines an error quotes.
const STDERR_TAIL_LINES: usize = 12;

/// Where the Python that runs MPyC programs comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PythonSource {
    /// The user's choice, from `--python` or `PARTYLINE_PYTHON`.
    Explicit(PathBuf),
    /// A virtual environment partyline builds and keeps in its cache.
    Managed,
}

/// Returns a Python executable that can `import mpyc` at [`mpyc::VERSION`].
///
/// An explicit Python is only checked. The managed one lives in
/// `<home>/python-mpyc-VERSION`, where home is `$PARTYLINE_HOME`, else
/// `$XDG_CACHE_HOME/partyline`, else `~/.cache/partyline`; see
/// [`ensure_managed_python`]. `progress` receives human-readable status lines
/// while something slow happens.
pub async fn ensure_python(
    source: PythonSource,
    progress: &dyn Fn(&str),
) -> Result<PathBuf, LaunchError> {
    match source {
        PythonSource::Explicit(python) => {
            // A relative path like `venv/bin/python` must keep meaning the
            // same file when the program runs in another working directory.
            let python = if python.components().count() > 1 {
                std::path::absolute(&python).unwrap_or(python)
            } else {
                python
            };
            match mpyc_problem(&python).await {
                None => Ok(python),
                Some(reason) => Err(LaunchError::PythonUnusable { python, reason }),
            }
        }
        PythonSource::Managed => {
            let home = home_from(|name| std::env::var_os(name)).ok_or(LaunchError::NoHome)?;
            ensure_managed_python(&home, progress).await
        }
    }
}

/// Returns the Python of the virtual environment `<home>/python-mpyc-VERSION`,
/// reusing it if MPyC imports from it and (re)building it otherwise with
/// `python3 -m venv` from PATH and `pip install mpyc==VERSION`.
///
/// Concurrent calls for the same `home`, from this or other processes, build
/// it once: the others wait for the lock and reuse the result.
pub async fn ensure_managed_python(
    home: &Path,
    progress: &dyn Fn(&str),
) -> Result<PathBuf, LaunchError> {
    let home = std::path::absolute(home).map_err(io_error("resolve", home))?;
    let name = format!("python-mpyc-{MPYC_VERSION}");
    let venv = home.join(&name);
    let python = venv_python(&venv);
    if mpyc_problem(&python).await.is_none() {
        return Ok(python);
    }
    fs::create_dir_all(&home).map_err(io_error("create", &home))?;
    let _lock = lock_exclusive(&home.join(format!("{name}.lock")), progress).await?;
    // Another process may have built it while this one waited for the lock.
    if mpyc_problem(&python).await.is_none() {
        return Ok(python);
    }
    build_venv(&venv, &home.join(format!(".{name}.building")), progress).await?;
    Ok(python)
}

/// partyline's home for cached state, from the environment as `var` reads it.
fn home_from(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let nonempty = |name| {
        var(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    nonempty("PARTYLINE_HOME")
        // The XDG spec says to ignore a relative XDG_CACHE_HOME.
        .or_else(|| {
            nonempty("XDG_CACHE_HOME")
                .filter(|dir| dir.is_absolute())
                .map(|dir| dir.join("partyline"))
        })
        .or_else(|| nonempty("HOME").map(|dir| dir.join(".cache").join("partyline")))
}

fn venv_python(venv: &Path) -> PathBuf {
    venv.join("bin").join("python")
}

/// Why `python` cannot import the right MPyC, or `None` if it can.
async fn mpyc_problem(python: &Path) -> Option<String> {
    let output = Command::new(python)
        .args(["-c", mpyc::PRINT_VERSION])
        .stdin(Stdio::null())
        .output()
        .await;
    let output = match output {
        Ok(output) => output,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Some("it does not exist".to_owned());
        }
        Err(err) => return Some(format!("it could not be run ({err})")),
    };
    if !output.status.success() {
        return Some(format!(
            "importing mpyc failed: {}",
            stderr_tail(&output, 1)
        ));
    }
    // Importing MPyC logs hints (missing numpy, gmpy2) to stdout first.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let version = stdout.lines().last().unwrap_or_default().trim();
    if mpyc::is_pinned_release(version) {
        None
    } else {
        Some(format!("it has mpyc {version}, not {MPYC_VERSION}"))
    }
}

/// Takes an exclusive lock on `path`, held until the returned file is dropped.
async fn lock_exclusive(path: &Path, progress: &dyn Fn(&str)) -> Result<File, LaunchError> {
    let file = File::options()
        .create(true)
        .write(true)
        .truncate(false)
        .open(path)
        .map_err(io_error("open the lock file", path))?;
    match file.try_lock() {
        Ok(()) => return Ok(file),
        Err(TryLockError::WouldBlock) => {}
        Err(TryLockError::Error(err)) => return Err(io_error("lock", path)(err)),
    }
    progress("waiting for another partyline to finish setting up Python…");
    tokio::task::spawn_blocking(move || file.lock().map(|()| file))
        .await
        .map_err(io::Error::other)
        .flatten()
        .map_err(io_error("lock", path))
}

/// Builds the environment in `staging` and renames it to `venv`. The caller
/// holds the lock, so `staging` can only be left over from a build that died.
async fn build_venv(
    venv: &Path,
    staging: &Path,
    progress: &dyn Fn(&str),
) -> Result<(), LaunchError> {
    remove_dir_if_present(staging)?;
    progress(&format!(
        "creating Python environment with MPyC {MPYC_VERSION} in {}",
        venv.display()
    ));
    let output = Command::new("python3")
        .args(["-m", "venv"])
        .arg(staging)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|err| match err.kind() {
            io::ErrorKind::NotFound => LaunchError::NoPython3,
            _ => io_error("run python3 to create", staging)(err),
        })?;
    if !output.status.success() {
        return Err(LaunchError::VenvFailed {
            path: venv.to_owned(),
            stderr: stderr_tail(&output, STDERR_TAIL_LINES),
        });
    }

    progress(&format!("installing mpyc {MPYC_VERSION} (first run only)…"));
    let staged_python = venv_python(staging);
    let output = Command::new(&staged_python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
        ])
        .arg(mpyc::requirement())
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(io_error("run", &staged_python))?;
    if !output.status.success() {
        return Err(LaunchError::PipFailed {
            stderr: stderr_tail(&output, STDERR_TAIL_LINES),
        });
    }
    if let Some(reason) = mpyc_problem(&staged_python).await {
        return Err(LaunchError::ManagedPythonBroken {
            path: staging.to_owned(),
            reason,
        });
    }

    // Renaming is safe for a venv used only through bin/python, which finds
    // its environment via the pyvenv.cfg beside it; only the shebangs of
    // bin/pip and friends keep the staging path, and partyline never runs them.
    remove_dir_if_present(venv)?;
    fs::rename(staging, venv).map_err(io_error("move the new Python environment to", venv))
}

fn remove_dir_if_present(dir: &Path) -> Result<(), LaunchError> {
    match fs::remove_dir_all(dir) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(io_error("remove", dir)(err)),
        _ => Ok(()),
    }
}

/// The last `lines` non-empty lines of a tool's stderr.
fn stderr_tail(output: &Output, lines: usize) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let kept: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    if kept.is_empty() {
        return format!("no error output ({})", output.status);
    }
    kept[kept.len().saturating_sub(lines)..].join("\n")
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> LaunchError {
    let path = path.to_owned();
    move |source| LaunchError::Io {
        action,
        path,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let vars: Vec<(String, OsString)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn home_prefers_partyline_home_then_xdg_then_home() {
        let all = [
            ("PARTYLINE_HOME", "/ph"),
            ("XDG_CACHE_HOME", "/xdg"),
            ("HOME", "/home/u"),
        ];
        assert_eq!(home_from(env(&all)), Some(PathBuf::from("/ph")));
        assert_eq!(
            home_from(env(&all[1..])),
            Some(PathBuf::from("/xdg/partyline"))
        );
        assert_eq!(
            home_from(env(&all[2..])),
            Some(PathBuf::from("/home/u/.cache/partyline"))
        );
        assert_eq!(home_from(env(&[])), None);
    }

    #[test]
    fn home_ignores_empty_and_relative_settings() {
        let vars = [
            ("PARTYLINE_HOME", ""),
            ("XDG_CACHE_HOME", "relative"),
            ("HOME", "/home/u"),
        ];
        assert_eq!(
            home_from(env(&vars)),
            Some(PathBuf::from("/home/u/.cache/partyline"))
        );
    }
}
