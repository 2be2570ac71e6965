//! [`ProgramListener`]: the socket the party's program listens on, bound by
//! partyline on loopback and handed to the program.
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

/// The Python module that hands the socket to asyncio (see the module docs).
const SITECUSTOMIZE: &str = include_str!("sitecustomize.py");

/// A TCP socket listening on a loopback address, reserved for the party's program.
///
/// Cloning shares the socket; it closes when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct ProgramListener {
    socket: Arc<TcpListener>,
    addr: SocketAddr,
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
        })
    }

    /// Where the program listens: its own entry in MPyC's `-P` flags.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Lets `cmd`'s child inherit the socket and tells it the descriptor in
    /// [`LISTEN_FD_ENV`]; puts `hook` first on the child's `PYTHONPATH`.
    pub(crate) fn hand_to(&self, cmd: &mut Command, hook: &PythonHook) -> Result<(), LaunchError> {
        let fd: RawFd = self.socket.as_raw_fd();
        cmd.env(LISTEN_FD_ENV, fd.to_string()).env(
            "PYTHONPATH",
            hook.python_path(std::env::var_os("PYTHONPATH"))?,
        );
        sys::keep_open_across_exec(cmd, fd);
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
#[derive(Debug)]
pub(crate) struct PythonHook {
    dir: TempDir,
}

impl PythonHook {
    pub(crate) fn install() -> Result<Self, LaunchError> {
        let dir = tempfile::Builder::new()
            .prefix("partyline-hook-")
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
