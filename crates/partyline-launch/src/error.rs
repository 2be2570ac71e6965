//! [`LaunchError`]: every way finding Python or starting the program can fail.
//!
//! Each message says what went wrong and what the user can do about it,
//! because the CLI shows it as is.

use std::io;
use std::path::PathBuf;

use crate::mpyc::VERSION as MPYC_VERSION;

/// Why Python with MPyC could not be provided or the program could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    #[error(
        "the Python given with --python or PARTYLINE_PYTHON ({}) cannot be used: {reason}; install MPyC into it with `{} -m pip install mpyc=={v}`, or drop --python (and unset PARTYLINE_PYTHON) so that partyline sets up its own Python",
        python.display(), python.display(), v = MPYC_VERSION
    )]
    PythonUnusable { python: PathBuf, reason: String },

    #[error(
        "python3 was not found on PATH; partyline needs it once to set up its own Python with MPyC {v}: install Python 3 (on Debian/Ubuntu: `apt install python3 python3-venv`), or pass --python with a Python that has mpyc=={v}",
        v = MPYC_VERSION
    )]
    NoPython3,

    #[error(
        "`python3 -m venv` could not create {}:\n{stderr}\ninstall Python's venv module (on Debian/Ubuntu: `apt install python3-venv`), or pass --python with a Python that has mpyc=={v}",
        path.display(), v = MPYC_VERSION
    )]
    VenvFailed { path: PathBuf, stderr: String },

    #[error(
        "`pip install --only-binary :all: {r}` failed:\n{stderr}\ncheck that this machine can reach PyPI (or set PIP_INDEX_URL to a mirror) and that PyPI has wheels of these releases for this Python (CPython 3.11 to 3.14); or install mpyc=={v} yourself and pass --python",
        r = crate::mpyc::managed_requirements().join(" "), v = MPYC_VERSION
    )]
    PipFailed { stderr: String },

    #[error(
        "the Python environment partyline just set up in {} still cannot import MPyC {v}: {reason}; delete that directory and try again, or pass --python with a Python that has mpyc=={v}",
        path.display(), v = MPYC_VERSION
    )]
    ManagedPythonBroken { path: PathBuf, reason: String },

    #[error(
        "cannot tell where to keep partyline's Python: none of PARTYLINE_HOME, XDG_CACHE_HOME and HOME is set; set PARTYLINE_HOME to a writable directory, or pass --python"
    )]
    NoHome,

    #[error(
        "could not {action} {}: {source}; check that the directory is writable, or set PARTYLINE_HOME to another one",
        path.display()
    )]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },

    #[error(
        "no program to run: give the program and its arguments, e.g. `examples/secretsanta.py`"
    )]
    NoProgram,

    #[error(
        "party {index} of {parties} was given {addrs} addresses instead of one per party; this is a bug in partyline, please report it"
    )]
    InconsistentSpec {
        index: usize,
        parties: usize,
        addrs: usize,
    },

    #[error(
        "could not reserve a port on 127.0.0.1 for the program: {source}; check that the loopback interface is up"
    )]
    ListenerBind { source: io::Error },

    #[error(
        "party {index}'s listening socket is at {listener} but its own address is {addr}; this is a bug in partyline, please report it"
    )]
    ListenerMismatch {
        index: usize,
        listener: std::net::SocketAddr,
        addr: std::net::SocketAddr,
    },

    #[error(
        "{program} was not found: check the path (a program in the current directory needs `./`; otherwise it must be on PATH)"
    )]
    ProgramNotFound { program: String },

    #[error(
        "{program} cannot be run (permission denied): make it executable with `chmod +x`, or name its interpreter first, e.g. `sh {program}`"
    )]
    ProgramNotExecutable { program: String },

    #[error("could not start {program}: {source}; check that it is a program this machine can run")]
    ProgramSpawn { program: String, source: io::Error },
}
