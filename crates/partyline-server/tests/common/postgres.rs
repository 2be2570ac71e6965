//! A throw-away PostgreSQL server on loopback, one per test process, from
//! Debian's `postgresql` package (scripts/setup-test-deps.sh installs it).
//!
//! `initdb` makes a cluster in a fresh directory, owned by the `postgres`
//! user when the tests run as root (PostgreSQL refuses to run as root). The
//! server runs under a small shell that holds its stdin: when the test
//! process ends, however it ends, the pipe closes, and the shell stops the
//! server (fast shutdown) and removes the directory. So nothing outlives the
//! tests, although the server is shared by every test of the process.
//!
//! Each test gets a database of its own ([`database_url`]).
//!
//! partyline's own tests use this file too (`#[path]`), without the backend switch.
#![allow(dead_code)]
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

/// Set to `postgres` to run the server tests on PostgreSQL instead of SQLite.
pub const BACKEND_VAR: &str = "PARTYLINE_TEST_DATABASE";
/// How long starting the server may take, `initdb` included.
const START_LIMIT: Duration = Duration::from_secs(60);

/// The server tests run on PostgreSQL (see [`BACKEND_VAR`]).
pub fn selected() -> bool {
    std::env::var(BACKEND_VAR).is_ok_and(|value| value == "postgres")
}

/// The running server: its port; the child is kept so that its stdin stays open.
struct Server {
    port: u16,
    _child: Child,
}

static SERVER: OnceLock<Server> = OnceLock::new();

/// The URL of a database for `key` (any text naming the test, e.g. its data
/// directory): made on first use, the same on later calls with the same key,
/// so that a test restarting a server finds its sessions again.
pub fn database_url(key: &str) -> String {
    let key = key.to_string();
    // The blocking client runs a runtime of its own, which tokio refuses
    // inside a test's runtime; a thread of its own has none.
    std::thread::spawn(move || create_database(&key))
        .join()
        .expect("the test database is made")
}

fn create_database(key: &str) -> String {
    let server = SERVER.get_or_init(start);
    let name = format!("t{}", &hex_digest(key)[..20]);
    let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", server.port);
    let mut client =
        postgres::Client::connect(&admin, postgres::NoTls).expect("connect to the test PostgreSQL");
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .unwrap()
        .is_some();
    if !exists {
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
    }
    format!("postgres://postgres@127.0.0.1:{}/{name}", server.port)
}

fn hex_digest(text: &str) -> String {
    use std::fmt::Write;
    <sha2::Sha256 as sha2::Digest>::digest(text)
        .iter()
        .fold(String::new(), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

/// Debian puts each version's programs in /usr/lib/postgresql/VERSION/bin;
/// the newest installed is taken.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect(
            "PostgreSQL is not installed (/usr/lib/postgresql is missing): \
             run scripts/setup-test-deps.sh",
        )
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let version = path.file_name()?.to_str()?.parse().ok()?;
            Some((version, path.join("bin")))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("no PostgreSQL version in /usr/lib/postgresql")
        .1
}

/// We run as root: /proc/self belongs to the process's effective user.
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

/// `program args…`, as the `postgres` user when we are root.
fn command_as_owner(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start() -> Server {
    let bin = bin_dir();
    // As root, in /tmp: the postgres user must reach it, which a $TMPDIR in
    // root's home would not let it.
    let parent = match is_root() {
        true => PathBuf::from("/tmp"),
        false => std::env::temp_dir(),
    };
    let dir = tempfile::Builder::new()
        .prefix("partyline-pg-")
        .tempdir_in(parent)
        .unwrap()
        // Removed by the server's shell when it stops, not by this process.
        .keep();
    if is_root() {
        let status = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "cannot give {} to postgres",
            dir.display()
        );
    }
    let data = dir.join("data");
    let output = command_as_owner(&bin.join("initdb"))
        .args(["--auth=trust", "--username=postgres", "--no-sync", "-D"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let port = free_port();
    // The shell stops the server when its stdin closes (the test process
    // ended), then removes the directory.
    let script = r#"
        "$1" -D "$2/data" -p "$3" -h 127.0.0.1 -k "$2" -c fsync=off -c full_page_writes=off &
        server=$!
        cat >/dev/null
        kill -INT "$server"
        wait "$server"
        rm -rf "$2"
    "#;
    let mut child = command_as_owner(Path::new("/bin/sh"))
        .args(["-c", script, "sh"])
        .arg(bin.join("postgres"))
        .arg(&dir)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut said = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("ready to accept connections") {
                let _ = ready_tx.send(Ok(()));
            }
            said.push(line);
        }
        let _ = ready_tx.send(Err(said.join("\n")));
    });
    match ready_rx.recv_timeout(START_LIMIT) {
        Ok(Ok(())) => {}
        Ok(Err(said)) => panic!("the test PostgreSQL did not start:\n{said}"),
        Err(_) => panic!("the test PostgreSQL was not ready within {START_LIMIT:?}"),
    }
    Server {
        port,
        _child: child,
    }
}
