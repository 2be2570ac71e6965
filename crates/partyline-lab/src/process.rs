//! Long-running processes inside the lab's namespaces: started with
//! `ip netns exec` (or directly, on loopback), output to files, waited for
//! with a deadline, and killed when dropped so that none outlives the lab.
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};
use crate::{interrupt, shell};

/// How often a wait looks at the process (and at Ctrl-C).
const POLL: Duration = Duration::from_millis(20);

/// A process in a namespace; killed on drop unless it already exited.
pub struct NsProcess {
    pub name: String,
    child: Child,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    pub started: Instant,
}

impl NsProcess {
    /// Starts `program args` in namespace `ns` (`None`: this machine's own
    /// network), in working directory `dir`, with stdout and stderr to
    /// `dir/<name>.out` and `dir/<name>.err`.
    pub fn spawn(
        name: &str,
        ns: Option<&str>,
        dir: &Path,
        program: &Path,
        args: &[String],
        env: &[(String, String)],
    ) -> Result<Self> {
        let stdout = dir.join(format!("{name}.out"));
        let stderr = dir.join(format!("{name}.err"));
        let mut command = shell::command_on_host(ns, program);
        command
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).map_err(LabError::io(&stdout))?)
            .stderr(File::create(&stderr).map_err(LabError::io(&stderr))?);
        Self::start(name, command, stdout, stderr)
    }

    fn start(name: &str, mut command: Command, stdout: PathBuf, stderr: PathBuf) -> Result<Self> {
        tracing::debug!("{name}: {}", shell::show(&command));
        let child = command.spawn().map_err(|source| LabError::Spawn {
            command: shell::show(&command),
            source,
        })?;
        Ok(Self {
            name: name.to_string(),
            child,
            stdout,
            stderr,
            started: Instant::now(),
        })
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the process has ended.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        self.child.try_wait().map_err(|source| LabError::Spawn {
            command: format!("wait for {}", self.name),
            source,
        })
    }

    /// Waits until the process exits or `deadline` passes (then it is
    /// killed and this is a timeout), returning early on Ctrl-C.
    pub fn wait_until(&mut self, deadline: Instant) -> Result<ExitStatus> {
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            interrupt::check()?;
            if Instant::now() >= deadline {
                self.kill();
                return Err(LabError::Timeout {
                    what: format!("{} exiting", self.name),
                    seconds: self.started.elapsed().as_secs(),
                });
            }
            std::thread::sleep(POLL);
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn stdout_text(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Polls `path` until it has a first line, for processes that announce
    /// readiness on stdout.
    pub fn wait_for_line(&mut self, deadline: Instant) -> Result<String> {
        loop {
            let text = self.stdout_text();
            if let Some(line) = text.lines().next().filter(|_| text.contains('\n')) {
                return Ok(line.to_string());
            }
            if let Some(status) = self.try_wait()? {
                return Err(LabError::Command {
                    command: self.name.clone(),
                    status: status.to_string(),
                    stderr: tail(&self.stderr_text(), 10),
                });
            }
            interrupt::check()?;
            if Instant::now() >= deadline {
                return Err(LabError::Timeout {
                    what: format!("{} becoming ready", self.name),
                    seconds: self.started.elapsed().as_secs(),
                });
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for NsProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
