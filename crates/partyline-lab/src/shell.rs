//! Running the system tools the lab is made of (`ip`, `iptables`, `tc`), in
//! the root namespace or inside one of the lab's namespaces.
use std::ffi::OsStr;
use std::process::{Command, Stdio};

use crate::error::{LabError, Result};

/// Runs `program args…` and returns its stdout; a non-zero exit is an error
/// that quotes the command and its stderr.
pub fn run<I, S>(program: &str, args: I) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(program);
    command.args(args).stdin(Stdio::null());
    output(command)
}

/// Runs `program args…` inside network namespace `ns`.
pub fn in_ns<I, S>(ns: &str, program: &str, args: I) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", ns, program])
        .args(args)
        .stdin(Stdio::null());
    output(command)
}

/// Runs `program args…` on a host: inside namespace `ns`, or, for `None`
/// (the loopback scenario), right here.
pub fn on_host<I, S>(ns: Option<&str>, program: &str, args: I) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    match ns {
        Some(ns) => in_ns(ns, program, args),
        None => run(program, args),
    }
}

/// `ip netns exec NS PROGRAM`, not yet spawned, for long-running processes.
pub fn command_in_ns(ns: &str, program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", ns]).arg(program);
    command
}

/// [`command_in_ns`], or for `None` (the loopback scenario) the program itself.
pub fn command_on_host(ns: Option<&str>, program: impl AsRef<OsStr>) -> Command {
    match ns {
        Some(ns) => command_in_ns(ns, program),
        None => Command::new(program),
    }
}

fn output(mut command: Command) -> Result<String> {
    let shown = show(&command);
    tracing::debug!("{shown}");
    let out = command.output().map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            LabError::MissingTool {
                tool: command.get_program().to_string_lossy().into_owned(),
            }
        } else {
            LabError::Spawn {
                command: shown.clone(),
                source,
            }
        }
    })?;
    if !out.status.success() {
        return Err(LabError::Command {
            command: shown,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The command line as a human would type it.
pub fn show(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Fails with a clear message unless we are root and the tools exist.
pub fn check_prerequisites() -> Result<()> {
    if !crate::sys::is_root() {
        return Err(LabError::NotRoot);
    }
    for tool in ["ip", "iptables", "tc"] {
        let found = std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()));
        if !found {
            return Err(LabError::MissingTool { tool: tool.into() });
        }
    }
    Ok(())
}
