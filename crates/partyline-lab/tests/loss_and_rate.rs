//! Loss and rate settings show in measurements: ping loses about the
//! configured share, and a TCP transfer runs at about the configured rate.
mod common;

use std::time::{Duration, Instant};

use common::*;
use partyline_lab::process::NsProcess;
use partyline_lab::{Lab, NatKind, Scenario, TopologySpec};

#[test]
fn configured_loss_shows_in_ping() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    // 20 % per direction: a ping and its reply both survive with 0.8² = 64 %.
    let scenario = Scenario::find("one-region").unwrap().with_loss(0.2);
    let spec = TopologySpec::new(scenario, 2, &[NatKind::Public], None).unwrap();
    let lab = Lab::build(spec, &exe(), dir.path()).unwrap();
    let prefix = lab.prefix.clone();
    // ping exits 1 when replies are missing: its summary line is what counts.
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            lab.parties[0].ns.as_deref().expect("a namespace"),
            "ping",
            "-q",
            "-c",
            "400",
            "-i",
            "0.005",
            "-W",
            "1",
        ])
        .arg(lab.parties[1].ip.to_string())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let loss: f64 = text
        .split(", ")
        .find(|p| p.ends_with("packet loss"))
        .and_then(|p| p.trim_end_matches("% packet loss").parse().ok())
        .unwrap_or_else(|| panic!("no loss figure in {text}"));
    eprintln!("round-trip loss {loss} % (expected about 36 %)");
    assert!(
        (20.0..=52.0).contains(&loss),
        "round-trip loss {loss} %, expected about 36 %"
    );
    lab.teardown();
    assert_nothing_left(&prefix);
}

const RECEIVER: &str = "import socket,sys,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); s.bind(('0.0.0.0',5001)); s.listen(1)
print('listening',flush=True)
c,_=s.accept(); n=0; t=None
while True:
    d=c.recv(65536)
    if not d: break
    if t is None: t=time.monotonic()
    n+=len(d)
print(n, time.monotonic()-t, flush=True)";

const SENDER: &str = "import socket,sys
s=socket.create_connection((sys.argv[1],5001)); s.sendall(b'x'*int(sys.argv[2])); s.close()";

#[test]
fn configured_rate_shows_in_a_tcp_transfer() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let rate = 8.0;
    let spec = TopologySpec::new(
        Scenario::find("one-region").unwrap(),
        2,
        &[NatKind::Public],
        Some(rate),
    )
    .unwrap();
    let lab = Lab::build(spec, &exe(), dir.path()).unwrap();
    let prefix = lab.prefix.clone();
    let python = std::path::PathBuf::from("python3");
    let mut receiver = NsProcess::spawn(
        "receiver",
        lab.parties[1].ns.as_deref(),
        dir.path(),
        &python,
        &["-c".into(), RECEIVER.into()],
        &[],
    )
    .unwrap();
    assert_eq!(
        receiver
            .wait_for_line(Instant::now() + Duration::from_secs(10))
            .unwrap(),
        "listening"
    );
    let bytes = 3_000_000u64;
    let mut sender = NsProcess::spawn(
        "sender",
        lab.parties[0].ns.as_deref(),
        dir.path(),
        &python,
        &[
            "-c".into(),
            SENDER.into(),
            lab.parties[1].ip.to_string(),
            bytes.to_string(),
        ],
        &[],
    )
    .unwrap();
    assert!(
        sender
            .wait_until(Instant::now() + Duration::from_secs(30))
            .unwrap()
            .success(),
        "{}",
        sender.stderr_text()
    );
    assert!(
        receiver
            .wait_until(Instant::now() + Duration::from_secs(30))
            .unwrap()
            .success()
    );
    let out = receiver.stdout_text();
    let last = out.lines().last().unwrap();
    let mut parts = last.split_whitespace();
    let received: u64 = parts.next().unwrap().parse().unwrap();
    let seconds: f64 = parts.next().unwrap().parse().unwrap();
    assert_eq!(received, bytes);
    let mbit = received as f64 * 8.0 / seconds / 1e6;
    eprintln!("measured {mbit:.2} Mbit/s with the rate set to {rate} Mbit/s");
    assert!(
        (0.7 * rate..=1.1 * rate).contains(&mbit),
        "measured {mbit:.2} Mbit/s, configured {rate}"
    );
    drop((sender, receiver));
    lab.teardown();
    assert_nothing_left(&prefix);
}
