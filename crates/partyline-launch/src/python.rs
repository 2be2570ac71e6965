//! A Python that can `import mpyc` at [`mpyc::VERSION`]: the one the user
//! named, or a virtual environment that partyline builds once in its cache
//! and reuses, with MPyC's optional packages ([`mpyc::EXTRAS`]: gmpy2 and
//! numpy) at their pinned releases beside it.
//!
//! Several partyline processes on one machine may need the managed
//! environment at the same moment (the demo starts every party at once), so
//! it is built under an exclusive file lock, in a staging directory that is
//! renamed into place only once MPyC and its extras import from it: a crash
//! half-way never leaves something that looks usable. An environment that
//! misses a pin (one built by an older partyline, say) is rebuilt the same
//! way on its next use.
//!
//! Checking an environment means starting its Python and importing MPyC,
//! gmpy2 and numpy: about 0.1 s of CPU per party, which on loopback held
//! every party's program back by 0.1–0.9 s after its mesh was ready (50 ms
//! after the start; three parties checking at once on two cores, quiet to
//! busy). So a managed environment that passed records it
//! ([`CHECKED_FILE`]) and is not checked again while the pins and its
//! interpreter stay the same; only partyline installs into it.

use std::ffi::OsString;
use std::fs::{self, File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::UNIX_EPOCH;

use tokio::process::Command;

use crate::error::LaunchError;
use crate::mpyc::{self, EXTRAS, Extra, VERSION as MPYC_VERSION};

/// How many of a failed tool's last stderr lines an error quotes.
const STDERR_TAIL_LINES: usize = 12;
/// The file in a managed environment that says it passed the check, for
/// which pins and which interpreter ([`checked_stamp`]).
const CHECKED_FILE: &str = "partyline-checked";

/// Where the Python that runs MPyC programs comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PythonSource {
    /// The user's choice, from `--python` or `PARTYLINE_PYTHON`.
    Explicit(PathBuf),
    /// A virtual environment partyline builds and keeps in its cache.
    Managed,
}

/// A Python that imports the pinned MPyC, and which of MPyC's optional
/// packages it cannot import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Python {
    /// The interpreter.
    pub path: PathBuf,
    /// The [`EXTRAS`] it lacks; none for the managed Python.
    pub lacks: Vec<&'static Extra>,
}

impl From<PathBuf> for Python {
    /// A Python taken to have every extra (partyline's managed one, or one
    /// nobody checked).
    fn from(path: PathBuf) -> Self {
        Self {
            path,
            lacks: Vec::new(),
        }
    }
}

impl Python {
    /// One line for the user when this Python lacks extras: what MPyC loses
    /// and how to install them. MPyC would log a hint per package in every
    /// party's program; partyline says it once instead, and
    /// [`Python::mpyc_env`] quiets MPyC's own.
    pub fn hint(&self) -> Option<String> {
        if self.lacks.is_empty() {
            return None;
        }
        let losses: Vec<String> = self
            .lacks
            .iter()
            .map(|extra| format!("no {} ({})", extra.name, extra.without))
            .collect();
        let requirements: Vec<String> = self.lacks.iter().map(|e| e.requirement()).collect();
        Some(format!(
            "{python} has {losses}: install with `{python} -m pip install {requirements}`, or drop --python (and unset PARTYLINE_PYTHON) to use partyline's own Python, which has them",
            python = self.path.display(),
            losses = losses.join(" and "),
            requirements = requirements.join(" "),
        ))
    }

    /// Environment variables that tell MPyC not to look for the extras this
    /// Python lacks, so that it does not log its own hint for each.
    pub fn mpyc_env(&self) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
        self.lacks.iter().map(|extra| (extra.off_env, "1"))
    }
}

/// Returns a Python that can `import mpyc` at [`mpyc::VERSION`].
///
/// An explicit Python is only checked, and the extras it lacks are noted in
/// the result; one of a managed environment that passed the check is not
/// checked again. The managed one lives in `<home>/python-mpyc-VERSION`, where
/// home is `$PARTYLINE_HOME`, else `$XDG_CACHE_HOME/partyline`, else
/// `~/.cache/partyline`; see [`ensure_managed_python`]. `progress` receives
/// human-readable status lines while something slow happens.
pub async fn ensure_python(
    source: PythonSource,
    progress: &dyn Fn(&str),
) -> Result<Python, LaunchError> {
    match source {
        PythonSource::Explicit(python) => {
            // A relative path like `venv/bin/python` must keep meaning the
            // same file when the program runs in another working directory.
            let python = if python.components().count() > 1 {
                std::path::absolute(&python).unwrap_or(python)
            } else {
                python
            };
            // The lab and the bench name partyline's own Python explicitly.
            if python
                .parent()
                .and_then(Path::parent)
                .is_some_and(checked_before)
            {
                return Ok(Python::from(python));
            }
            match installed(&python)
                .await
                .and_then(Installed::with_pinned_mpyc)
            {
                Ok(found) => Ok(Python {
                    lacks: found.lacking(),
                    path: python,
                }),
                Err(reason) => Err(LaunchError::PythonUnusable { python, reason }),
            }
        }
        PythonSource::Managed => {
            let home = home_from(|name| std::env::var_os(name)).ok_or(LaunchError::NoHome)?;
            ensure_managed_python(&home, progress)
                .await
                .map(Python::from)
        }
    }
}

/// Returns the Python of the virtual environment `<home>/python-mpyc-VERSION`,
/// reusing it if it has MPyC and every extra at its pinned release, and
/// (re)building it otherwise with `python3 -m venv` from PATH and
/// `pip install --only-binary :all:` of the pins.
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
    if checked_before(&venv) {
        return Ok(python);
    }
    if managed_problem(&python).await.is_none() {
        record_checked(&venv);
        return Ok(python);
    }
    fs::create_dir_all(&home).map_err(io_error("create", &home))?;
    let _lock = lock_exclusive(&home.join(format!("{name}.lock")), progress).await?;
    // Another process may have built it while this one waited for the lock.
    let Some(problem) = managed_problem(&python).await else {
        record_checked(&venv);
        return Ok(python);
    };
    if venv.exists() {
        progress(&format!(
            "updating the Python environment in {}: {problem}",
            venv.display()
        ));
    }
    build_venv(&venv, &home, &name, progress).await?;
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

/// What [`CHECKED_FILE`] holds once the environment of `python` passed the
/// check: the pins, and the size and modification time of the interpreter
/// its `bin/python` leads to, which an upgrade of the system's Python
/// changes. `None` if the interpreter is missing.
fn checked_stamp(python: &Path) -> Option<String> {
    let interpreter = fs::metadata(python).ok()?;
    let modified = interpreter
        .modified()
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()?;
    Some(format!(
        "{}\ninterpreter of {} bytes modified at {} ns\n",
        mpyc::managed_requirements().join(" "),
        interpreter.len(),
        modified.as_nanos()
    ))
}

/// Whether the environment `venv` passed the check with today's pins and
/// interpreter.
fn checked_before(venv: &Path) -> bool {
    let recorded = fs::read_to_string(venv.join(CHECKED_FILE));
    match (recorded, checked_stamp(&venv_python(venv))) {
        (Ok(recorded), Some(now)) => recorded == now,
        _ => false,
    }
}

/// Records that the environment `venv` passed the check. If that fails, the
/// next use checks it again, as it would have anyway.
fn record_checked(venv: &Path) {
    if let Some(stamp) = checked_stamp(&venv_python(venv)) {
        let _ = fs::write(venv.join(CHECKED_FILE), stamp);
    }
}

/// What a Python has installed: its MPyC version and, for each of
/// [`EXTRAS`] in order, the extra's version if it can import it.
#[derive(Debug, PartialEq, Eq)]
struct Installed {
    mpyc: String,
    extras: Vec<Option<String>>,
}

impl Installed {
    /// Reads the last line of [`mpyc::print_versions`]'s output.
    fn parse(stdout: &str) -> Option<Self> {
        let mut fields = stdout.lines().last()?.split_whitespace();
        let mpyc = fields.next()?.to_owned();
        let extras: Vec<Option<String>> = fields
            .map(|field| (field != "-").then(|| field.to_owned()))
            .collect();
        (extras.len() == EXTRAS.len()).then_some(Self { mpyc, extras })
    }

    /// Itself if its MPyC is the pinned release, else why not.
    fn with_pinned_mpyc(self) -> Result<Self, String> {
        if mpyc::is_pinned_release(&self.mpyc) {
            Ok(self)
        } else {
            Err(format!("it has mpyc {}, not {MPYC_VERSION}", self.mpyc))
        }
    }

    /// The extras it cannot import.
    fn lacking(&self) -> Vec<&'static Extra> {
        EXTRAS
            .iter()
            .zip(&self.extras)
            .filter(|(_, version)| version.is_none())
            .map(|(extra, _)| extra)
            .collect()
    }

    /// Why it is not what the managed Python must be (every extra at its
    /// pinned release), or `None` if it is.
    fn managed_problem(&self) -> Option<String> {
        let wrong: Vec<String> = EXTRAS
            .iter()
            .zip(&self.extras)
            .filter(|(extra, version)| version.as_deref() != Some(extra.version))
            .map(|(extra, version)| match version {
                Some(version) => format!("{} {version}, not {}", extra.name, extra.version),
                None => format!("no {}", extra.name),
            })
            .collect();
        (!wrong.is_empty()).then(|| format!("it has {}", wrong.join(", ")))
    }
}

/// What `python` has installed, or why it cannot import MPyC.
async fn installed(python: &Path) -> Result<Installed, String> {
    let output = Command::new(python)
        .args(["-c", &mpyc::print_versions()])
        .stdin(Stdio::null())
        .output()
        .await;
    let output = match output {
        Ok(output) => output,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err("it does not exist".to_owned());
        }
        Err(err) => return Err(format!("it could not be run ({err})")),
    };
    if !output.status.success() {
        return Err(format!(
            "importing mpyc failed: {}",
            stderr_tail(&output, 1)
        ));
    }
    // Importing MPyC logs hints (missing numpy, gmpy2) to stdout first.
    let stdout = String::from_utf8_lossy(&output.stdout);
    Installed::parse(&stdout).ok_or_else(|| {
        format!(
            "asked for its versions of mpyc and its extras, it printed {:?}",
            stdout.lines().last().unwrap_or_default()
        )
    })
}

/// Why the managed Python at `python` must be (re)built, or `None` if it
/// has MPyC and every extra at its pinned release.
async fn managed_problem(python: &Path) -> Option<String> {
    match installed(python)
        .await
        .and_then(Installed::with_pinned_mpyc)
    {
        Ok(found) => found.managed_problem(),
        Err(reason) => Some(reason),
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

/// Builds the environment `home/name` in a staging directory beside it and
/// swaps it into place. The caller holds the lock, so the staging directory
/// can only be left over from a build that died.
async fn build_venv(
    venv: &Path,
    home: &Path,
    name: &str,
    progress: &dyn Fn(&str),
) -> Result<(), LaunchError> {
    let staging = home.join(format!(".{name}.building"));
    remove_dir_if_present(&staging)?;
    progress(&format!(
        "creating Python environment with MPyC {MPYC_VERSION} in {}",
        venv.display()
    ));
    let output = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&staging)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|err| match err.kind() {
            io::ErrorKind::NotFound => LaunchError::NoPython3,
            _ => io_error("run python3 to create", &staging)(err),
        })?;
    if !output.status.success() {
        return Err(LaunchError::VenvFailed {
            path: venv.to_owned(),
            stderr: stderr_tail(&output, STDERR_TAIL_LINES),
        });
    }

    let extras: Vec<String> = EXTRAS
        .iter()
        .map(|extra| format!("{} {}", extra.name, extra.version))
        .collect();
    progress(&format!(
        "installing mpyc {MPYC_VERSION}, {} (once)…",
        extras.join(", ")
    ));
    let staged_python = venv_python(&staging);
    let output = Command::new(&staged_python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            // Wheels only: building gmpy2 or numpy from source needs a
            // compiler and libraries most machines lack, and takes minutes.
            "--only-binary",
            ":all:",
        ])
        .args(mpyc::managed_requirements())
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(io_error("run", &staged_python))?;
    if !output.status.success() {
        return Err(LaunchError::PipFailed {
            stderr: stderr_tail(&output, STDERR_TAIL_LINES),
        });
    }
    let problem = match imports_everything(&staged_python).await {
        Err(reason) => Some(reason),
        Ok(()) => managed_problem(&staged_python).await,
    };
    if let Some(reason) = problem {
        return Err(LaunchError::ManagedPythonBroken {
            path: staging,
            reason,
        });
    }
    record_checked(&staging);

    // Renaming is safe for a venv used only through bin/python, which finds
    // its environment via the pyvenv.cfg beside it; only the shebangs of
    // bin/pip and friends keep the staging path, and partyline never runs
    // them. An old environment is moved aside first, so that the path is
    // missing only between two renames, not while a whole tree is deleted.
    let old = home.join(format!(".{name}.old"));
    remove_dir_if_present(&old)?;
    if venv.exists() {
        fs::rename(venv, &old).map_err(io_error("move aside the old Python environment", venv))?;
    }
    fs::rename(&staging, venv).map_err(io_error("move the new Python environment to", venv))?;
    remove_dir_if_present(&old)
}

/// Whether `python` really imports MPyC and every extra: package metadata
/// alone does not prove that a binary wheel loads on this machine.
async fn imports_everything(python: &Path) -> Result<(), String> {
    let names: Vec<&str> = std::iter::once("mpyc")
        .chain(EXTRAS.iter().map(|extra| extra.name))
        .collect();
    let output = Command::new(python)
        .args(["-c", &format!("import {}", names.join(", "))])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|err| format!("it could not be run ({err})"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "importing {} failed: {}",
            names.join(", "),
            stderr_tail(&output, 1)
        ))
    }
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
    fn reads_the_versions_after_mpycs_own_log_lines() {
        let stdout = "2026-11-28 05:00:00,000 Install package numpy for more functionality.\n\
                      0.11 2.3.2 -\n";
        let found = Installed::parse(stdout).unwrap();
        assert_eq!(found.mpyc, "0.11");
        assert_eq!(found.extras, [Some("2.3.2".to_owned()), None]);
        assert_eq!(found.lacking(), [&EXTRAS[1]]);
        assert_eq!(
            Installed::parse("0.11 2.3.2\n"),
            None,
            "one field per extra"
        );
        assert_eq!(Installed::parse(""), None);
    }

    #[test]
    fn the_managed_python_needs_every_extra_at_its_pin() {
        let with = |extras: [Option<&str>; 2]| Installed {
            mpyc: MPYC_VERSION.to_owned(),
            extras: extras.iter().map(|v| v.map(str::to_owned)).collect(),
        };
        let pinned = with([Some(EXTRAS[0].version), Some(EXTRAS[1].version)]);
        assert_eq!(pinned.managed_problem(), None);
        let old = with([None, None]);
        assert_eq!(
            old.managed_problem().unwrap(),
            format!("it has no {}, no {}", EXTRAS[0].name, EXTRAS[1].name)
        );
        let other = with([Some(EXTRAS[0].version), Some("1.0")]);
        assert_eq!(
            other.managed_problem().unwrap(),
            format!("it has {} 1.0, not {}", EXTRAS[1].name, EXTRAS[1].version)
        );
        let wrong_mpyc = Installed {
            mpyc: "0.10".to_owned(),
            ..pinned
        };
        assert!(wrong_mpyc.with_pinned_mpyc().is_err());
    }

    #[test]
    fn the_hint_is_one_line_naming_what_is_missing_and_how_to_install_it() {
        let full = Python::from(PathBuf::from("/opt/py/bin/python"));
        assert_eq!(full.hint(), None);
        let bare = Python {
            lacks: EXTRAS.iter().collect(),
            ..full
        };
        let hint = bare.hint().unwrap();
        assert_eq!(hint.lines().count(), 1, "{hint}");
        for extra in &EXTRAS {
            assert!(hint.contains(&format!("no {}", extra.name)), "{hint}");
            assert!(hint.contains(&extra.requirement()), "{hint}");
        }
        assert!(hint.contains("/opt/py/bin/python -m pip install"), "{hint}");
        let env: Vec<_> = bare.mpyc_env().collect();
        assert_eq!(env, [("MPYC_NOGMPY", "1"), ("MPYC_NONUMPY", "1")]);
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

    #[test]
    fn a_checked_environment_stays_checked_until_its_interpreter_changes() {
        let venv = tempfile::tempdir().unwrap();
        assert!(
            !checked_before(venv.path()),
            "no interpreter, nothing checked"
        );
        record_checked(venv.path());
        assert!(!venv.path().join(CHECKED_FILE).exists());

        let python = venv_python(venv.path());
        fs::create_dir_all(python.parent().unwrap()).unwrap();
        fs::write(&python, "interpreter 3.11.2").unwrap();
        assert!(!checked_before(venv.path()), "never checked");
        record_checked(venv.path());
        assert!(checked_before(venv.path()));

        fs::write(&python, "interpreter 3.11.14").unwrap();
        assert!(!checked_before(venv.path()), "the interpreter was upgraded");
    }
}
