//! [`ProgramSpec`]: the command line and environment of the party's program.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

use crate::error::LaunchError;
use crate::listener::ProgramListener;
use crate::python::Python;
use crate::{mpyc, sys};

/// The interpreter for a `.py` program when [`ProgramSpec::python`] is unset.
const DEFAULT_PYTHON: &str = "python3";

/// What to run for this party, and where the other parties are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramSpec {
    /// `PROGRAM ARGS...` as the user gave them; must not be empty. Relative
    /// paths are taken relative to [`ProgramSpec::workdir`] when it is set.
    pub program: Vec<String>,
    /// Whether to append MPyC's `-M N -I i -P host:port ...` after the
    /// user's arguments (MPyC picks its flags out of `sys.argv` wherever they
    /// are and leaves the program's own arguments alone).
    pub mpyc_flags: bool,
    /// How many parties take part.
    pub parties: usize,
    /// This party's index, `0 <= index < parties`.
    pub index: usize,
    /// One address per party, in index order: `addrs[index]` is where this
    /// program must listen (also in `PARTYLINE_ADDR`), the others are the
    /// local ends of the tunnels to the other parties.
    pub addrs: Vec<SocketAddr>,
    /// The Python that runs `program[0]` when it ends with `.py`; `python3`
    /// from PATH when unset. MPyC is told not to look for the extras it
    /// lacks (see [`Python::mpyc_env`]).
    pub python: Option<Python>,
    /// The program's working directory; partyline's own when unset.
    pub workdir: Option<PathBuf>,
    /// The socket the program listens on, bound by partyline on loopback at
    /// `addrs[index]` and handed to the program by
    /// [`crate::RunningProgram::spawn`] (see [`crate::listener`]). `None`
    /// leaves the program to bind `addrs[index]` itself, on whatever
    /// interfaces it likes.
    pub listener: Option<ProgramListener>,
}

impl ProgramSpec {
    /// The full command line, interpreter first, for display and tests.
    pub fn argv(&self) -> Vec<String> {
        self.interpreter()
            .map(|python| python.to_string_lossy().into_owned())
            .into_iter()
            .chain(self.program.iter().cloned())
            .chain(self.mpyc_args())
            .collect()
    }

    /// The command that starts the program, without the listening socket
    /// (which [`crate::RunningProgram::spawn`] adds): stdin is closed, stdout and
    /// stderr are partyline's own (MPyC logs to stdout), and the program is
    /// killed when partyline drops it or dies.
    ///
    /// The program stays in partyline's process group on purpose: a Ctrl-C in
    /// the terminal then reaches both at once, so an MPyC program stops with
    /// its usual KeyboardInterrupt instead of partyline having to relay it,
    /// and the terminal's job control (Ctrl-Z, `fg`) treats the two as one job.
    ///
    /// # Panics
    /// If [`ProgramSpec::program`] is empty; [`crate::RunningProgram::spawn`]
    /// checks that first and returns an error instead.
    pub fn command(&self) -> Command {
        let (first, rest) = self
            .program
            .split_first()
            .expect("ProgramSpec::program must name the program to run");
        let mut cmd = match self.interpreter() {
            Some(python) => {
                let mut cmd = Command::new(python);
                cmd.arg(first);
                if let Some(python) = &self.python {
                    cmd.envs(python.mpyc_env());
                }
                cmd
            }
            None => Command::new(first),
        };
        cmd.args(rest)
            .args(self.mpyc_args())
            .env("PARTYLINE_PARTIES", self.parties.to_string())
            .env("PARTYLINE_INDEX", self.index.to_string())
            .env("PARTYLINE_ADDRS", self.addrs_list())
            .env("PARTYLINE_ADDR", self.addrs[self.index].to_string())
            // Python buffers stdout when it is not a terminal; the user should
            // see the program's progress as it happens.
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(dir) = &self.workdir {
            cmd.current_dir(dir);
        }
        sys::kill_with_parent(&mut cmd);
        cmd
    }

    /// Checks what [`ProgramSpec::command`] cannot: that there is a program,
    /// that a `.py` program exists (Python would only say so after starting),
    /// and that the addresses match the parties.
    pub(crate) fn check(&self) -> Result<(), LaunchError> {
        let Some(first) = self.program.first() else {
            return Err(LaunchError::NoProgram);
        };
        if self.index >= self.parties || self.addrs.len() != self.parties {
            return Err(LaunchError::InconsistentSpec {
                index: self.index,
                parties: self.parties,
                addrs: self.addrs.len(),
            });
        }
        if let Some(listener) = &self.listener
            && listener.addr() != self.addrs[self.index]
        {
            return Err(LaunchError::ListenerMismatch {
                index: self.index,
                listener: listener.addr(),
                addr: self.addrs[self.index],
            });
        }
        if self.interpreter().is_some() {
            let script = match &self.workdir {
                Some(dir) => dir.join(first),
                None => PathBuf::from(first),
            };
            if !script.is_file() {
                return Err(LaunchError::ProgramNotFound {
                    program: first.clone(),
                });
            }
        }
        Ok(())
    }

    /// How to name what was actually executed in an error message.
    pub(crate) fn display_name(&self) -> String {
        let first = self.program.first().map_or("", String::as_str);
        match self.interpreter() {
            Some(python) => format!("{} (to run {first})", python.display()),
            None => first.to_owned(),
        }
    }

    /// The Python to run the program with, if it is a `.py` file.
    fn interpreter(&self) -> Option<&Path> {
        self.program
            .first()
            .filter(|first| first.ends_with(".py"))
            .map(|_| {
                self.python
                    .as_ref()
                    .map_or(Path::new(DEFAULT_PYTHON), |python| python.path.as_path())
            })
    }

    fn mpyc_args(&self) -> Vec<String> {
        if self.mpyc_flags {
            mpyc::connection_flags(&self.addrs, self.index)
        } else {
            Vec::new()
        }
    }

    fn addrs_list(&self) -> OsString {
        let list: Vec<String> = self.addrs.iter().map(SocketAddr::to_string).collect();
        list.join(",").into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(program: &[&str]) -> ProgramSpec {
        ProgramSpec {
            program: program.iter().map(|s| s.to_string()).collect(),
            mpyc_flags: true,
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

    #[test]
    fn py_program_runs_under_the_given_python_with_flags_after_user_args() {
        let mut spec = spec(&["examples/secretsanta.py", "8", "-T", "1"]);
        spec.python = Some(PathBuf::from("/opt/venv/bin/python").into());
        assert_eq!(
            spec.argv(),
            [
                "/opt/venv/bin/python",
                "examples/secretsanta.py",
                "8",
                "-T",
                "1",
                "-M",
                "3",
                "-I",
                "1",
                "-P",
                "127.0.0.1:7000",
                "-P",
                "127.0.0.1:7001",
                "-P",
                "127.0.0.1:7002",
            ]
        );
    }

    #[test]
    fn py_program_without_python_uses_python3() {
        assert_eq!(spec(&["demo.py"]).argv()[..2], ["python3", "demo.py"]);
    }

    #[test]
    fn other_programs_run_directly_even_when_python_is_set() {
        let mut spec = spec(&["./party", "x"]);
        spec.python = Some(PathBuf::from("/opt/venv/bin/python").into());
        assert_eq!(spec.argv()[..4], ["./party", "x", "-M", "3"]);
    }

    #[test]
    fn mpyc_is_told_not_to_look_for_the_extras_its_python_lacks() {
        let mpyc_env = |spec: &ProgramSpec| -> Vec<(String, String)> {
            let command = spec.command();
            command
                .as_std()
                .get_envs()
                .filter_map(|(key, value)| Some((key.to_str()?, value?.to_str()?)))
                .filter(|(key, _)| key.starts_with("MPYC_"))
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect()
        };
        let mut spec = spec(&["demo.py"]);
        spec.python = Some(Python {
            path: PathBuf::from("/opt/venv/bin/python"),
            lacks: vec![&mpyc::EXTRAS[0]],
        });
        assert_eq!(
            mpyc_env(&spec),
            [(mpyc::EXTRAS[0].off_env.to_owned(), "1".to_owned())]
        );
        spec.python = Some(PathBuf::from("/opt/venv/bin/python").into());
        assert_eq!(mpyc_env(&spec), []);
    }

    #[test]
    fn no_mpyc_flags_leaves_the_command_line_as_given() {
        let mut spec = spec(&["demo.py", "--port", "9"]);
        spec.mpyc_flags = false;
        assert_eq!(spec.argv(), ["python3", "demo.py", "--port", "9"]);
    }

    #[test]
    fn ipv6_addresses_lose_their_brackets_only_in_mpyc_flags() {
        let mut spec = spec(&["prog"]);
        spec.addrs[2] = "[::1]:7002".parse().unwrap();
        assert_eq!(spec.argv().last().unwrap(), "::1:7002");
        assert_eq!(
            spec.addrs_list(),
            "127.0.0.1:7000,127.0.0.1:7001,[::1]:7002"
        );
    }

    #[test]
    fn check_rejects_empty_program_and_mismatched_addresses() {
        assert!(matches!(spec(&[]).check(), Err(LaunchError::NoProgram)));
        let mut bad = spec(&["prog"]);
        bad.addrs.pop();
        assert!(matches!(
            bad.check(),
            Err(LaunchError::InconsistentSpec { addrs: 2, .. })
        ));
        let mut bad = spec(&["prog"]);
        bad.index = 3;
        assert!(bad.check().is_err());
        let mut bad = spec(&["prog"]);
        bad.listener = Some(ProgramListener::bind().unwrap());
        assert!(matches!(
            bad.check(),
            Err(LaunchError::ListenerMismatch { index: 1, .. })
        ));
    }
}
