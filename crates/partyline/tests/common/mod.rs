//! Test harness: real `partyline` processes and real MPyC on loopback.
#![allow(dead_code)] // each test file uses a different part of the harness

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{OnceLock, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_partyline");

pub fn repo_file(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
        .canonicalize()
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .to_string_lossy()
        .into_owned()
}

/// A Python with the pinned mpyc: partyline's own managed venv, built once.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime
                .block_on(partyline_launch::ensure_python(
                    partyline_launch::PythonSource::Managed,
                    &|status| eprintln!("{status}"),
                ))
                .expect("a Python with the pinned mpyc")
                .path
        })
        .clone()
}

/// A `partyline serve` process on loopback, killed when dropped.
pub struct Server {
    child: Child,
    pub link: String,
    pub data: tempfile::TempDir,
    flags: Vec<String>,
}

impl Server {
    pub fn start() -> Self {
        Self::start_with(&["--listen", "127.0.0.1:0"])
    }

    /// `partyline serve` with these flags (at least `--listen`).
    pub fn start_with(flags: &[&str]) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), flags)
    }

    /// `partyline serve` with these flags and data directory, which may
    /// hold a certificate already.
    pub fn start_in(data: tempfile::TempDir, flags: &[&str]) -> Self {
        let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        let (child, link) = serve(&flags, data.path());
        Self {
            child,
            link,
            data,
            flags,
        }
    }

    /// Kills the server with SIGKILL, as a crash or an operator would.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Starts the server again with the same flags and data directory (for
    /// the same addresses, give fixed ports in the flags).
    pub fn start_again(&mut self) {
        (self.child, self.link) = serve(&self.flags, self.data.path());
    }

    /// Starts the server again with the same data directory and flags, and `more`.
    pub fn start_again_with(&mut self, more: &[&str]) {
        self.flags.extend(more.iter().map(|f| f.to_string()));
        self.start_again();
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The coordinator URL without the pin.
    pub fn url(&self) -> &str {
        self.link.split('#').next().unwrap()
    }

    pub fn create(&self, parties: u16) -> String {
        create(&self.link, parties)
    }
}

/// Starts `partyline serve` and returns it with the link it prints when ready.
fn serve(flags: &[String], data: &Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .arg("serve")
        .args(flags)
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let link = first
        .trim()
        .strip_prefix("partyline server ready: ")
        .unwrap_or_else(|| panic!("unexpected first line from serve: {first:?}"))
        .to_string();
    (child, link)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `partyline create` and returns the invite (its last stdout line).
pub fn create(link: &str, parties: u16) -> String {
    let out = Command::new(BIN)
        .args([
            "create",
            "--parties",
            &parties.to_string(),
            "--server",
            link,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .expect("an invite line")
        .to_string()
}

/// A `partyline create --code` process: the host of a short code, killed
/// when dropped.
pub struct CodeHost {
    /// The code it printed.
    pub code: String,
    child: Child,
    stderr: OutputTap,
}

impl CodeHost {
    /// Starts hosting a session of `parties` on the server `link`, with
    /// `flags`, and returns once the code is printed.
    pub fn start(link: &str, parties: u16, flags: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["create", "--code", "--timeout", "300", "--server", link])
            .args(["--parties", &parties.to_string()])
            .args(flags)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut code = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut code)
            .unwrap();
        let stderr = OutputTap::start(child.stderr.take().unwrap());
        let code = code.trim().to_string();
        assert!(!code.is_empty(), "create --code printed no code");
        Self {
            code,
            child,
            stderr,
        }
    }

    /// A `join` of this code through the server `link` (no invite anywhere on its command line).
    pub fn join(&self, link: &str, name: &str, flags: &[&str], program: &[String]) -> Party {
        let flags = [&["--server", link], flags].concat();
        Party::start(name, &flags, program, |command| {
            command.arg(&self.code);
        })
    }

    /// Waits until the host writes a line to stderr containing `needle`, and returns it.
    pub fn wait_for_stderr(&self, needle: &str, limit: Duration) -> String {
        self.stderr.wait_for(needle, limit, "the host's stderr")
    }

    /// Waits for the host to exit, failing the test after `limit`; returns
    /// whether it succeeded.
    pub fn finish(mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            assert!(
                Instant::now() < deadline,
                "the host did not finish within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for CodeHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serves `app` over HTTPS with this certificate on a loopback port, until
/// the test's runtime ends; returns the address.
pub fn serve_https(
    app: axum::Router,
    cert: rustls::pki_types::CertificateDer<'static>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> SocketAddr {
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let tls = axum_server::tls_rustls::RustlsConfig::from_config(std::sync::Arc::new(config));
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        axum_server::from_tcp_rustls(listener, tls)
            .unwrap()
            .serve(app.into_make_service()),
    );
    addr
}

/// Which body a man in the middle is rewriting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leg {
    /// A party's request, on its way to the server.
    Request,
    /// The server's answer, on its way back.
    Answer,
}

/// How a man in the middle rewrites what it relays: called with the
/// request's method and path, which leg, and the body (JSON), which it may change.
pub type Rewrite = std::sync::Arc<dyn Fn(&str, &str, Leg, &mut Vec<u8>) + Send + Sync>;

/// Starts a man in the middle in front of `server`, with the server's own
/// certificate and key (as a malicious operator has them): it forwards every
/// request to the real server, the write token included, and passes each
/// body through `rewrite`. Returns its server link, which pins the server's
/// certificate. Call it inside a tokio runtime.
pub fn start_middle(server: &Server, rewrite: Rewrite) -> String {
    use rustls::pki_types::pem::PemObject;
    let cert =
        rustls::pki_types::CertificateDer::from_pem_file(server.data.path().join("cert.pem"))
            .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(server.data.path().join("key.pem"))
        .unwrap();
    let pin = server.link.split("#sha256=").nth(1).unwrap().to_string();
    let upstream = server.url().to_string();
    let http = partyline_session::tls::pinned_http_client(pin.parse().unwrap());
    let app = axum::Router::new().fallback(
        move |method: axum::http::Method,
              uri: axum::http::Uri,
              headers: axum::http::HeaderMap,
              body: axum::body::Bytes| {
            let (http, upstream, rewrite) = (http.clone(), upstream.clone(), rewrite.clone());
            async move {
                let path = uri.path().to_string();
                let mut body = body.to_vec();
                rewrite(method.as_str(), &path, Leg::Request, &mut body);
                let target = uri.path_and_query().map_or("/", |p| p.as_str());
                let mut request = http
                    .request(method.clone(), format!("{upstream}{target}"))
                    .header("content-type", "application/json");
                if let Some(token) = headers.get("authorization") {
                    request = request.header("authorization", token.as_bytes());
                }
                let answer = request
                    .body(body)
                    .send()
                    .await
                    .expect("the real server answers");
                let status = answer.status().as_u16();
                let mut bytes = answer.bytes().await.unwrap().to_vec();
                if (200..300).contains(&status) {
                    rewrite(method.as_str(), &path, Leg::Answer, &mut bytes);
                }
                axum::response::Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(bytes))
                    .unwrap()
            }
        },
    );
    let addr = serve_https(app, cert, key);
    format!("https://{addr}#sha256={pin}")
}

/// A `partyline join` process.
pub struct Party {
    pub name: String,
    pub child: Child,
    pub report: PathBuf,
    stdout: Option<OutputTap>,
    stderr: Option<OutputTap>,
    _dir: tempfile::TempDir,
}

/// A party's stdout or stderr, read as it comes so that a test can wait for a line.
struct OutputTap {
    lines: mpsc::Receiver<String>,
    /// Everything read, returned when the stream ends.
    reader: JoinHandle<Vec<u8>>,
}

impl OutputTap {
    fn start(output: impl Read + Send + 'static) -> Self {
        let (tx, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            for line in BufReader::new(output).lines().map_while(Result::ok) {
                all.extend_from_slice(line.as_bytes());
                all.push(b'\n');
                let _ = tx.send(line);
            }
            all
        });
        Self { lines, reader }
    }

    /// Waits for the next line containing `needle` and returns it.
    fn wait_for(&self, needle: &str, limit: Duration, what: &str) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("{what} never wrote {needle:?}"),
            }
        }
    }
}

impl Party {
    pub fn join(invite: &str, name: &str, flags: &[&str], program: &[String]) -> Self {
        Self::start(name, flags, program, |command| {
            command.arg(invite);
        })
    }

    /// A `join` whose invite (and stdin) `give_invite` sets up.
    pub fn start(
        name: &str,
        flags: &[&str],
        program: &[String],
        give_invite: impl FnOnce(&mut Command),
    ) -> Self {
        Self::start_with_python(&python(), name, flags, program, give_invite)
    }

    /// A `join` of `invite` that runs `program` with `--python PYTHON`.
    pub fn join_with_python(
        python: &Path,
        invite: &str,
        name: &str,
        flags: &[&str],
        program: &[String],
    ) -> Self {
        Self::start_with_python(python, name, flags, program, |command| {
            command.arg(invite);
        })
    }

    fn start_with_python(
        python: &Path,
        name: &str,
        flags: &[&str],
        program: &[String],
        give_invite: impl FnOnce(&mut Command),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("report.json");
        let mut command = Command::new(BIN);
        command
            .env_remove("PARTYLINE_INVITE")
            .arg("join")
            .stdin(Stdio::null());
        give_invite(&mut command);
        if !flags.contains(&"--timeout") {
            command.args(["--timeout", "120"]);
        }
        // A configuration directory of its own unless the test gives one, so
        // that no identity or address book of the user running the tests is used.
        if !flags.contains(&"--config-dir") {
            command.env("PARTYLINE_CONFIG_DIR", dir.path().join("config"));
        }
        let child = command
            .args(["--name", name])
            .arg("--python")
            .arg(python)
            .arg("--report")
            .arg(&report)
            .args(flags)
            .arg("--")
            .args(program)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Self {
            name: name.to_string(),
            child,
            report,
            stdout: None,
            stderr: None,
            _dir: dir,
        }
    }

    /// Waits until the party writes a line to stderr containing `needle`, and returns it.
    pub fn wait_for_stderr(&mut self, needle: &str, limit: Duration) -> String {
        let child = &mut self.child;
        let tap = self
            .stderr
            .get_or_insert_with(|| OutputTap::start(child.stderr.take().unwrap()));
        tap.wait_for(needle, limit, &format!("{}'s stderr", self.name))
    }

    /// Waits until the party (its program) writes a line to stdout containing
    /// `needle`, and returns it.
    pub fn wait_for_stdout(&mut self, needle: &str, limit: Duration) -> String {
        let child = &mut self.child;
        let tap = self
            .stdout
            .get_or_insert_with(|| OutputTap::start(child.stdout.take().unwrap()));
        tap.wait_for(needle, limit, &format!("{}'s stdout", self.name))
    }

    /// Waits for the process, failing the test if it takes longer than `limit`.
    pub fn finish(self, limit: Duration) -> Finished {
        let Party {
            name,
            mut child,
            report,
            stdout,
            stderr,
            _dir,
        } = self;
        let deadline = Instant::now() + limit;
        let mut timed_out = false;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                timed_out = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut out = child.wait_with_output().unwrap();
        if let Some(tap) = stdout {
            out.stdout = tap.reader.join().unwrap();
        }
        if let Some(tap) = stderr {
            out.stderr = tap.reader.join().unwrap();
        }
        assert!(
            !timed_out,
            "{name} did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let report = std::fs::read_to_string(&report).ok().map(|text| {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{name}'s report is not JSON ({e}): {text:?}"))
        });
        Finished { name, out, report }
    }
}

pub struct Finished {
    pub name: String,
    pub out: Output,
    pub report: Option<serde_json::Value>,
}

impl Finished {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }

    pub fn assert_success(&self) {
        assert!(
            self.out.status.success(),
            "{} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
            self.name,
            self.out.status,
            self.stdout(),
            self.stderr()
        );
    }

    /// The program's result lines: those starting with one of `keys` and a colon.
    pub fn result_lines(&self, keys: &[&str]) -> Vec<String> {
        self.stdout()
            .lines()
            .filter(|l| keys.iter().any(|k| l.starts_with(&format!("{k}:"))))
            .map(str::to_string)
            .collect()
    }
}

/// A program that only says `program-started`: for sessions that must be
/// refused before any program starts.
pub fn says_started() -> Vec<String> {
    vec!["sh".into(), "-c".into(), "echo program-started".into()]
}

/// Asserts that `run` (of [`says_started`]) failed with a message containing
/// every one of `needles` and that its program never started.
pub fn assert_refused(run: &Finished, needles: &[&str]) {
    assert!(!run.out.status.success(), "{} started", run.name);
    assert!(
        !run.stdout().contains("program-started"),
        "{} ran its program",
        run.name
    );
    for needle in needles {
        assert!(
            run.stderr().contains(needle),
            "{}'s message lacks {needle:?}: {}",
            run.name,
            run.stderr()
        );
    }
}

/// Runs a whole session: `parties` joins of `program`, all waited for.
pub fn run_session(
    server: &Server,
    parties: u16,
    flags: &[&str],
    program: &[String],
) -> Vec<Finished> {
    let invite = server.create(parties);
    let names = [
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    ];
    let started: Vec<Party> = (0..usize::from(parties))
        .map(|i| Party::join(&invite, names[i], flags, program))
        .collect();
    started
        .into_iter()
        .map(|p| p.finish(Duration::from_secs(180)))
        .collect()
}

/// Starts the parties one after another, each once the previous one is in the
/// coordinator's list, so that the seats follow the order given (seats are
/// ordered by join time).
pub fn join_in_seat_order(invite: &str, parties: &[(&str, &[&str], &[String])]) -> Vec<Party> {
    let count = parties.len();
    parties
        .iter()
        .enumerate()
        .map(|(seat, (name, flags, program))| {
            let mut party = Party::join(invite, name, flags, program);
            let joined = format!("{} of {count} parties joined", seat + 1);
            party.wait_for_stderr(&joined, Duration::from_secs(60));
            party
        })
        .collect()
}

/// A loopback address no one listens on at the moment.
pub fn free_addr() -> SocketAddr {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
}

/// `N` loopback addresses for a server that is restarted on them: free now,
/// and below Linux's ephemeral ports (32768 and up), which `free_addr`
/// gives. While the server is down, a client's own connection can take an
/// ephemeral port: a connect to a port no one listens on may pick that very
/// port as its source and connect to itself, and the restart then fails.
pub fn restart_addrs<const N: usize>() -> [SocketAddr; N] {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        ^ std::process::id();
    // Held until all are chosen, so that no two are the same.
    let held: Vec<(TcpListener, std::net::UdpSocket)> = (0..4000u32)
        .map(|i| 20_000 + (seed.wrapping_add(i.wrapping_mul(7919)) % 12_000) as u16)
        .filter_map(|port| {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            Some((
                TcpListener::bind(addr).ok()?,
                std::net::UdpSocket::bind(addr).ok()?,
            ))
        })
        .take(N)
        .collect();
    assert_eq!(
        held.len(),
        N,
        "no {N} free loopback ports between 20000 and 32000"
    );
    std::array::from_fn(|i| held[i].0.local_addr().unwrap())
}

/// The same program over MPyC's own plain TCP, one process per party.
pub fn run_plain_tcp(parties: usize, program: &[String]) -> Vec<Output> {
    let addrs: Vec<SocketAddr> = (0..parties).map(|_| free_addr()).collect();
    let children: Vec<Child> = (0..parties)
        .map(|i| {
            Command::new(python())
                .args(program)
                .args(partyline_launch::mpyc::connection_flags(&addrs, i))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "plain TCP run failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out
        })
        .collect()
}

pub fn lines_with(output: &[u8], keys: &[&str]) -> Vec<String> {
    String::from_utf8_lossy(output)
        .lines()
        .filter(|l| keys.iter().any(|k| l.starts_with(&format!("{k}:"))))
        .map(str::to_string)
        .collect()
}

/// Parses `derangement: [..]` and checks it is a permutation without fixed points.
pub fn assert_derangement(line: &str) {
    let list = line
        .trim_start_matches("derangement:")
        .trim()
        .trim_matches(['[', ']']);
    let perm: Vec<usize> = list.split(',').map(|x| x.trim().parse().unwrap()).collect();
    let mut sorted = perm.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        (0..perm.len()).collect::<Vec<_>>(),
        "not a permutation: {line}"
    );
    assert!(
        perm.iter().enumerate().all(|(i, &p)| i != p),
        "has a fixed point: {line}"
    );
}

/// Starts a 3-party session of a long program (`join` with `flags`) and returns the parties once
/// every program runs, with the marker found on all their command lines.
pub fn running_session(server: &Server, flags: &[&str]) -> (Vec<Party>, String) {
    let invite = server.create(3);
    let nanos = std::time::UNIX_EPOCH.elapsed().unwrap().as_nanos();
    let marker = format!("partyline-test-{}-{nanos}", std::process::id());
    let program = vec![
        repo_file("crates/partyline/tests/programs/rounds.py"),
        marker.clone(),
    ];
    let mut parties: Vec<Party> = ["alice", "bob", "carol"]
        .iter()
        .map(|name| Party::join(&invite, name, flags, &program))
        .collect();
    // Each program prints 'running' once MPyC is connected.
    for party in &mut parties {
        let stdout = party.child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        assert!(
            lines.any(|l| l.map(|l| l == "running").unwrap_or(false)),
            "{} never ran its program",
            party.name
        );
        // Keep draining so the child never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
    }
    (parties, marker)
}

/// The other parties stop, non-zero and naming carol, each within `limit`
/// of `since`; says how long each took.
pub fn others_stop_naming_carol(parties: Vec<Party>, since: Instant, limit: Duration) {
    for party in parties {
        let run = party.finish(limit + Duration::from_secs(10));
        let took = since.elapsed();
        eprintln!("{} stopped {took:?} after carol's fault", run.name);
        assert!(!run.out.status.success(), "{} exited 0", run.name);
        assert!(
            run.stderr().contains("carol"),
            "{} does not name carol: {}",
            run.name,
            run.stderr()
        );
        assert!(took < limit, "{} took {took:?}", run.name);
    }
}

/// No process may outlive the session: polls briefly, since the kernel
/// delivers the parent-death signal asynchronously.
pub fn assert_no_process_with(marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = Command::new("pgrep").args(["-f", marker]).output().unwrap();
        if !found.status.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes left behind: {}",
            String::from_utf8_lossy(&found.stdout)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
