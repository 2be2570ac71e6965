//! [`ProgramListener`]: the socket the party's program listens on (one per
//! port, with several), bound by partyline on loopback and handed to the
//! program.
//!
//! MPyC 0.11 listens with `loop.create_server(factory, port=PORT)` and no
//! host, so on every interface, IPv4 and IPv6, until its peers are connected;
//! and it believes the party id in the first two bytes a peer sends. Anyone
//! who could reach that port (the coordinator, anyone on the party's network)
//! could take a seat. Picking a free port and letting the program bind it
//! later is also a race another local process can win.
//!
//! So partyline binds the program's address itself (the party's own
//! `127.X.Y.Z` of the session, or `127.0.0.1:0`), before the mesh forwards anything
//! to the program, keeps the socket open and lets the program inherit it: its
//! descriptor number is in [`LISTEN_FD_ENV`] and its address is the program's
//! own entry in `-P`/`PARTYLINE_ADDRS`. Only the child inherits it (partyline's
//! own copy stays close-on-exec). For Python programs a `sitecustomize`
//! module, written to a private directory put first on `PYTHONPATH`, makes
//! asyncio's `create_server` with no host on that port serve on the handed
//! socket: MPyC and the user's program stay unmodified.
//!
//! While partyline and the program hold the socket, nothing else can bind the
//! port, on loopback or on any other interface (the kernel refuses a wildcard
//! bind over a listening socket): a program that ignores the handed socket
//! and binds the port itself fails with "address in use" instead of listening
//! on every interface.
use std::ffi::OsString;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use tempfile::TempDir;
use tokio::process::Command;

use crate::error::LaunchError;
use crate::sys;

/// The variable that tells the program which inherited descriptor is its
/// listening socket.
pub const LISTEN_FD_ENV: &str = "PARTYLINE_LISTEN_FD";

/// The variable that lists every inherited listening descriptor, one per
/// port of the party (`join --ports N`), in port order, comma-separated.
pub const LISTEN_FDS_ENV: &str = "PARTYLINE_LISTEN_FDS";

/// The variable that says how many consecutive ports, from its address's,
/// each party has.
pub const PORTS_ENV: &str = "PARTYLINE_PORTS";

/// The Python module that hands the socket to asyncio (see the module docs).
const SITECUSTOMIZE: &str = include_str!("sitecustomize.py");

/// A TCP socket listening on a loopback address, reserved for the party's program.
///
/// Cloning shares the socket; it closes when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct ProgramListener {
    socket: Arc<TcpListener>,
    addr: SocketAddr,
    /// The sockets of the party's further ports, if it has several.
    more: Arc<[TcpListener]>,
}

impl ProgramListener {
    /// Binds and listens on a free port of `127.0.0.1`.
    pub fn bind() -> Result<Self, LaunchError> {
        let socket = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|source| LaunchError::ListenerBind { source })?;
        Self::from_listening(socket)
    }

    /// Takes a socket partyline already listens on, e.g. at the party's
    /// session address (`partyline_mesh::addrs`).
    pub fn from_listening(socket: TcpListener) -> Result<Self, LaunchError> {
        let addr = socket
            .local_addr()
            .map_err(|source| LaunchError::ListenerBind { source })?;
        Ok(Self {
            socket: Arc::new(socket),
            addr,
            more: Arc::new([]),
        })
    }

    /// Also hands the program `more` sockets: those of its further ports.
    pub fn with_more(mut self, more: Vec<TcpListener>) -> Self {
        self.more = more.into();
        self
    }

    /// Where the program listens: its own entry in MPyC's `-P` flags.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Lets `cmd`'s child inherit the sockets and tells it the descriptors
    /// in [`LISTEN_FD_ENV`] and [`LISTEN_FDS_ENV`] and their count in
    /// [`PORTS_ENV`]; puts `hook` first on the child's `PYTHONPATH`.
    pub(crate) fn hand_to(&self, cmd: &mut Command, hook: &PythonHook) -> Result<(), LaunchError> {
        let fd: RawFd = self.socket.as_raw_fd();
        let fds: Vec<RawFd> = std::iter::once(fd)
            .chain(self.more.iter().map(AsRawFd::as_raw_fd))
            .collect();
        let list: Vec<String> = fds.iter().map(RawFd::to_string).collect();
        cmd.env(LISTEN_FD_ENV, fd.to_string())
            .env(LISTEN_FDS_ENV, list.join(","))
            .env(PORTS_ENV, list.len().to_string())
            .env(
                "PYTHONPATH",
                hook.python_path(std::env::var_os("PYTHONPATH"))?,
            );
        for fd in fds {
            sys::keep_open_across_exec(cmd, fd);
        }
        Ok(())
    }
}

/// Two specs name the same listener when they name the same address: only
/// one socket can listen there.
impl PartialEq for ProgramListener {
    fn eq(&self, other: &Self) -> bool {
        self.addr == other.addr
    }
}

impl Eq for ProgramListener {}

/// partyline's `sitecustomize.py` in a fresh private directory (mode 0700),
/// removed when this is dropped.
///
/// The directory's name carries partyline's process id, so that one left
/// behind by a partyline that was killed (SIGKILL skips the drop) is removed
/// by the next one that installs a hook: see [`remove_stale_hooks`].
#[derive(Debug)]
pub(crate) struct PythonHook {
    dir: TempDir,
}

/// The start of every hook directory's name; the owner's process id follows.
const HOOK_PREFIX: &str = "partyline-hook-";

impl PythonHook {
    pub(crate) fn install() -> Result<Self, LaunchError> {
        remove_stale_hooks(&std::env::temp_dir());
        let dir = tempfile::Builder::new()
            .prefix(&format!("{HOOK_PREFIX}{}-", std::process::id()))
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir()
            .map_err(|source| LaunchError::Io {
                action: "create a private directory in",
                path: std::env::temp_dir(),
                source,
            })?;
        let file = dir.path().join("sitecustomize.py");
        std::fs::write(&file, SITECUSTOMIZE).map_err(|source| LaunchError::Io {
            action: "write",
            path: file.clone(),
            source,
        })?;
        Ok(Self { dir })
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `PYTHONPATH` with the hook's directory first and the user's entries after it.
    fn python_path(&self, user: Option<OsString>) -> Result<OsString, LaunchError> {
        let mut entries = vec![self.dir().to_owned()];
        // An empty PYTHONPATH has no entries (split_paths would yield one, "").
        if let Some(user) = user.filter(|user| !user.is_empty()) {
            entries.extend(std::env::split_paths(&user));
        }
        std::env::join_paths(entries).map_err(|e| LaunchError::Io {
            action: "put on PYTHONPATH",
            path: self.dir().to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidInput, e),
        })
    }
}

/// Removes the hook directories in `tmp` whose partyline is gone. One whose
/// process id was taken by another process since is only kept longer; one of
/// another user stays, as the sticky temporary directory has it.
pub(crate) fn remove_stale_hooks(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(HOOK_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !sys::process_exists(pid) && std::fs::remove_dir_all(entry.path()).is_ok() {
            tracing::debug!(dir = %entry.path().display(), "removed a hook left by a killed partyline");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_is_on_loopback_with_a_port_of_its_own() {
        let a = ProgramListener::bind().unwrap();
        let b = ProgramListener::bind().unwrap();
        assert!(a.addr().ip().is_loopback());
        assert_ne!(a.addr().port(), 0);
        assert_ne!(a, b);
        assert_eq!(a, a.clone());
        // Listening already: a connection is queued before any program runs.
        std::net::TcpStream::connect(a.addr()).unwrap();
    }

    #[test]
    fn hook_dir_is_private_holds_the_module_and_goes_away() {
        let hook = PythonHook::install().unwrap();
        let dir = hook.dir().to_owned();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let module = std::fs::read_to_string(dir.join("sitecustomize.py")).unwrap();
        assert!(module.contains(LISTEN_FD_ENV));
        drop(hook);
        assert!(!dir.exists());
    }

    #[test]
    fn hooks_of_gone_processes_are_removed_and_live_ones_kept() {
        let tmp = tempfile::tempdir().unwrap();
        // A child that has exited and been reaped: its pid names no process.
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let gone_pid = gone.id();
        gone.wait().unwrap();
        let stale = tmp.path().join(format!("{HOOK_PREFIX}{gone_pid}-abc"));
        let live = tmp
            .path()
            .join(format!("{HOOK_PREFIX}{}-def", std::process::id()));
        let other = tmp.path().join("partyline-hook-unrelated");
        for dir in [&stale, &live, &other] {
            std::fs::create_dir(dir).unwrap();
            std::fs::write(dir.join("sitecustomize.py"), "").unwrap();
        }
        remove_stale_hooks(tmp.path());
        assert!(!stale.exists());
        assert!(live.exists());
        assert!(other.exists());
    }

    #[test]
    fn python_path_puts_the_hook_first_and_keeps_the_users() {
        let hook = PythonHook::install().unwrap();
        let first = hook.dir().to_str().unwrap().to_owned();
        assert_eq!(hook.python_path(None).unwrap(), OsString::from(&first));
        assert_eq!(
            hook.python_path(Some("".into())).unwrap(),
            OsString::from(&first)
        );
        assert_eq!(
            hook.python_path(Some("/a:rel/b".into())).unwrap(),
            OsString::from(format!("{first}:/a:rel/b"))
        );
    }
}
