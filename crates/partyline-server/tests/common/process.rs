//! The server in a process of its own, for tests that measure it (memory,
//! files) apart from the clients that load it.
//!
//! The test binary runs itself again as the server: the test file defines
//! `#[test] #[ignore] fn server_process() { common::process::serve_if_asked() }`,
//! which serves only when the parent asked for it (an environment variable
//! holds the configuration) and stops when the parent closes its stdin, so a
//! dying test never leaves a server behind.
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use partyline_server::{CertPin, Quotas, ServerConfig};

const CONFIG_VAR: &str = "PARTYLINE_TEST_SERVER";
const READY: &str = "partyline-test-server ";

/// What the child runs with: the data and web directories and the quotas
/// the test sets (the others keep their defaults).
pub struct ProcessConfig {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub web_dir: Option<PathBuf>,
    pub quotas: Vec<(&'static str, u64)>,
}

impl ProcessConfig {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_path_buf(),
            database_url: super::test_database(data_dir),
            web_dir: None,
            quotas: Vec::new(),
        }
    }

    fn encode(&self) -> String {
        let mut parts = vec![format!("data={}", self.data_dir.display())];
        parts.extend(
            self.database_url
                .iter()
                .map(|url| format!("database={url}")),
        );
        if let Some(web) = &self.web_dir {
            parts.push(format!("web={}", web.display()));
        }
        parts.extend(self.quotas.iter().map(|(k, v)| format!("{k}={v}")));
        parts.join("\n")
    }
}

/// A running server process; dropping it stops the server.
pub struct ServerProcess {
    child: Child,
    pub url: String,
    pub pin: CertPin,
}

impl ServerProcess {
    /// Starts the test binary's `server_process` test as the server.
    pub fn start(config: &ProcessConfig) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["server_process", "--exact", "--ignored", "--nocapture"])
            .env(CONFIG_VAR, config.encode())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let ready = loop {
            let line = lines
                .next()
                .expect("the server process ended before it was ready")
                .unwrap();
            if let Some(ready) = line.strip_prefix(READY) {
                break ready.to_string();
            }
        };
        // Keep reading so that the child never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let (url, pin) = ready.split_once(' ').unwrap();
        Self {
            child,
            url: url.to_string(),
            pin: pin.parse().unwrap(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory, in bytes.
    pub fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kib * 1024
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child's side: serves until stdin closes, if the parent asked for a
/// server; otherwise (a plain `cargo test -- --ignored`) does nothing.
pub fn serve_if_asked() {
    let Ok(encoded) = std::env::var(CONFIG_VAR) else {
        return;
    };
    let mut config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..ServerConfig::default()
    };
    for line in encoded.lines() {
        let (key, value) = line.split_once('=').unwrap();
        let number = || value.parse::<u64>().unwrap();
        let count = || u32::try_from(number()).unwrap();
        let quotas: &mut Quotas = &mut config.quotas;
        match key {
            "data" => config.data_dir = value.into(),
            "database" => config.database_url = Some(value.into()),
            "web" => config.web_dir = Some(value.into()),
            "announcement_bytes" => config.max_announcement_bytes = number(),
            "creates_per_minute_per_ip" => quotas.creates_per_minute_per_ip = count(),
            "live_sessions_per_ip" => quotas.live_sessions_per_ip = count(),
            "requests_per_minute_per_ip" => quotas.requests_per_minute_per_ip = count(),
            "writes_per_minute_per_ip" => quotas.writes_per_minute_per_ip = count(),
            "waits_per_ip" => quotas.waits_per_ip = count(),
            "connections_per_ip" => quotas.connections_per_ip = count(),
            "header_timeout_secs" => quotas.header_timeout = Duration::from_secs(number()),
            other => panic!("unknown server setting {other}"),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let server = partyline_server::start(config).await.unwrap();
        println!("{READY}{} {}", server.url(), server.pin());
        tokio::task::spawn_blocking(|| {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        })
        .await
        .unwrap();
        server.shutdown().await;
    });
}
