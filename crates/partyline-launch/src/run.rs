//! [`RunningProgram`]: the started program, waited for or stopped, and
//! [`exit_code`], the code partyline passes on.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use tokio::process::Child;

use crate::error::LaunchError;
use crate::listener::PythonHook;
use crate::program::ProgramSpec;
use crate::sys;

/// The party's program while it runs.
#[derive(Debug)]
pub struct RunningProgram {
    child: Child,
    name: String,
    /// Kept until the program is done: Python processes it starts read it too.
    _hook: Option<PythonHook>,
}

impl RunningProgram {
    /// Starts the program described by `spec`, handing it `spec.listener`
    /// (with the Python hook that serves MPyC on it) when there is one.
    ///
    /// On Linux the program is killed when the calling thread's process dies;
    /// call this from a thread that lives as long as the program (see
    /// [`ProgramSpec::command`]).
    pub fn spawn(spec: &ProgramSpec) -> Result<Self, LaunchError> {
        spec.check()?;
        let name = spec.display_name();
        let mut command = spec.command();
        let hook = match &spec.listener {
            Some(listener) => {
                let hook = PythonHook::install()?;
                listener.hand_to(&mut command, &hook)?;
                Some(hook)
            }
            None => None,
        };
        let child = command.spawn().map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => LaunchError::ProgramNotFound {
                program: name.clone(),
            },
            io::ErrorKind::PermissionDenied => LaunchError::ProgramNotExecutable {
                program: name.clone(),
            },
            _ => LaunchError::ProgramSpawn {
                program: name.clone(),
                source,
            },
        })?;
        tracing::debug!(pid = ?child.id(), argv = ?spec.argv(), "started the program");
        Ok(Self {
            child,
            name,
            _hook: hook,
        })
    }

    /// The program's process id, until it has been waited for.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits for the program to exit.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// Asks the program to stop with SIGTERM and SIGKILLs it if it is still
    /// running after `grace`; returns its exit status. Returns at once if it
    /// has exited already.
    pub async fn terminate(&mut self, grace: Duration) -> io::Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        // try_wait just saw the child unreaped, so its pid is still ours.
        if let Some(pid) = self.child.id() {
            sys::send_sigterm(pid)?;
        }
        if let Ok(status) = tokio::time::timeout(grace, self.child.wait()).await {
            return status;
        }
        tracing::warn!(program = %self.name, ?grace, "the program ignored SIGTERM; killing it");
        self.child.start_kill()?;
        self.child.wait().await
    }
}

/// CPU time spent so far by partyline and by programs it started.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuTimes {
    /// This process: partyline itself.
    pub own: Duration,
    /// Children that have exited and been waited for, with their own
    /// children: the program, once [`RunningProgram::wait`] returned.
    pub programs: Duration,
}

impl CpuTimes {
    pub fn now() -> Self {
        let (own, programs) = sys::cpu_times();
        Self { own, programs }
    }
}

/// The code partyline should exit with for the program's `status`: its exit
/// code, or 128 + the signal that killed it, as shells report it.
pub fn exit_code(status: ExitStatus) -> i32 {
    // A status from wait is either an exit or a signal; 1 covers anything
    // else without pretending success.
    status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(1)
}
