//! Several relays: a coordinator lists a relay of its own (`partyline relay`,
//! a process with its own certificate and pin), parties measure every relay
//! and make the one they reach best their home relay, and a whole session
//! runs through it. A relay the coordinator does not share its token with
//! does not start.
mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

use common::*;

const TOKEN: &str = "relay-token-for-tests-0123456789";

/// A `partyline relay` process on loopback, killed when dropped.
struct RelayProcess {
    child: Child,
    link: String,
    _data: tempfile::TempDir,
}

impl RelayProcess {
    /// Starts a relay for the coordinator `link`; its stderr if it stops
    /// before it is ready (it gives up on a coordinator within seconds).
    fn start(coordinator: &str, token: &str) -> Result<Self, String> {
        let data = tempfile::tempdir().unwrap();
        let mut child = Command::new(BIN)
            .args([
                "relay",
                "--listen",
                "127.0.0.1:0",
                "--coordinator",
                coordinator,
            ])
            .args(["--token", token])
            .arg("--data-dir")
            .arg(data.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        match first.trim().strip_prefix("partyline relay ready: ") {
            Some(link) => Ok(Self {
                link: link.to_string(),
                child,
                _data: data,
            }),
            None => {
                let mut stderr = String::new();
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut stderr)
                    .unwrap();
                child.wait().unwrap();
                Err(stderr)
            }
        }
    }

    /// The relay's URL as iroh writes it, without the pin.
    fn url(&self) -> String {
        format!("{}/", self.link.split('#').next().unwrap())
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_session_runs_through_a_relay_of_its_own() {
    // The coordinator's own relay is announced where nothing listens, so
    // that the relay of its own is the only one the parties reach.
    let listen = free_addr().to_string();
    let mut server = Server::start_with(&[
        "--listen",
        &listen,
        "--relay-listen",
        "127.0.0.1:0",
        "--public-relay-url",
        "https://127.0.0.2:9",
        "--relay-token",
        TOKEN,
    ]);
    // The relay needs the coordinator's pin, the coordinator the relay's:
    // the coordinator made its certificate on its first start.
    let relay = RelayProcess::start(&server.link, TOKEN).unwrap();
    server.kill();
    server.start_again_with(&["--relay", &relay.link]);

    let program = vec![repo_file("examples/securesum.py")];
    let runs = run_session(&server, 2, &["--relay-only"], &program);
    for run in &runs {
        run.assert_success();
        let report = run.report.as_ref().expect("a report");
        assert_eq!(report["home_relay"], relay.url(), "{}", run.name);
        assert!(
            report["relay_rtt_ms"][relay.url()].as_f64().is_some(),
            "{}: {report}",
            run.name
        );
        for peer in report["peers"].as_array().unwrap() {
            assert_eq!(peer["path"], "relay", "{}: {peer}", run.name);
        }
    }
    let sums: Vec<Vec<String>> = runs.iter().map(|run| run.result_lines(&["sum"])).collect();
    assert_eq!(sums[0].len(), 1, "{}", runs[0].stdout());
    assert_eq!(sums[0], sums[1]);
}

#[test]
fn a_relay_with_a_wrong_token_does_not_start() {
    let server = Server::start_with(&["--listen", "127.0.0.1:0", "--relay-token", TOKEN]);
    let stderr = RelayProcess::start(&server.link, "another-token-0123456789")
        .err()
        .expect("a relay with a wrong token started");
    assert!(
        stderr.contains("does not take this relay token"),
        "{stderr}"
    );
}
