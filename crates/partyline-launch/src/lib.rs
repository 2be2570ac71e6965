//! Runs a party's unmodified MPC program once partyline's mesh is ready.
//!
//! partyline does not change the program: it starts it as a child process
//! whose MPyC flags point at local ports that partyline forwards over the
//! mesh, passes its output through, and makes sure it never outlives
//! partyline. MPyC programs are Python, so this crate also finds (or sets up
//! once, in partyline's cache) a Python that can import the pinned MPyC
//! release, [`mpyc::VERSION`].
//!
//! Unix only: the program is stopped with SIGTERM and, on Linux, tied to
//! partyline's lifetime with a parent-death signal.
//!
//! # Layout
//! - [`mpyc`]: everything partyline knows about MPyC: the pinned release and
//!   its optional packages (from `versions.env`), its flags, its threshold
//!   rule, its log lines.
//! - [`python`]: a Python that can `import mpyc` at [`mpyc::VERSION`]: the
//!   one the user gave (and which of MPyC's extras, gmpy2 and numpy, it
//!   lacks), or a virtual environment partyline builds and reuses, with them.
//! - [`program`]: [`ProgramSpec`], the program's command line (with MPyC's
//!   connection flags) and environment.
//! - [`listener`]: [`ProgramListener`], the loopback socket partyline binds
//!   for the program and hands to it, and the Python hook (`sitecustomize.py`)
//!   that makes MPyC listen on it instead of on every interface.
//! - [`run`]: [`RunningProgram`], starting, waiting for and stopping the
//!   program, [`exit_code`], the code partyline exits with, and
//!   [`CpuTimes`], the CPU time partyline and the program used.
//! - [`error`]: [`LaunchError`], what went wrong and what to do about it.
//! - `sys`: the crate's only unsafe code, thin libc calls (parent-death
//!   signal, keeping the listening socket open across exec, SIGTERM, whether
//!   a process exists, CPU time) that std
//!   and tokio do not offer.
#![deny(unsafe_code)]

pub mod error;
pub mod listener;
pub mod mpyc;
pub mod program;
pub mod python;
pub mod run;
mod sys;

pub use error::LaunchError;
pub use listener::{LISTEN_FD_ENV, LISTEN_FDS_ENV, ProgramListener};
pub use program::ProgramSpec;
pub use python::{Python, PythonSource, ensure_managed_python, ensure_python};
pub use run::{CpuTimes, RunningProgram, exit_code};
