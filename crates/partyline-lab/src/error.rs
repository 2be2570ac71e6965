//! [`LabError`]: what went wrong while building, using or tearing down a lab.
use std::path::PathBuf;

/// Errors of the lab. Each says what to do about it where that is not obvious.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("the lab needs root (network namespaces, iptables, tc): run it with sudo or as root")]
    NotRoot,
    #[error("`{tool}` is not installed; run scripts/setup-test-deps.sh (as root) to install it")]
    MissingTool { tool: String },
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("{what} did not happen within {seconds} s")]
    Timeout { what: String, seconds: u64 },
    #[error("interrupted (Ctrl-C or SIGTERM); the lab was cleaned up")]
    Interrupted,
    #[error("invalid {what}: {reason}")]
    Invalid { what: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the delay stage failed: {0}")]
    DelayStage(String),
    #[error("plotting failed: {0}")]
    Plot(String),
}

impl LabError {
    pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

pub type Result<T> = std::result::Result<T, LabError>;
