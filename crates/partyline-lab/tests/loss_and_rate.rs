//! Loss and rate settings show in measurements: ping loses about the
//! configured share, and a TCP transfer runs at about the configured rate.
//! A `loss` fault step shows in ping while it lasts and is gone after; 5 %
//! loss with reordering jitter on every path leaves MPyC's results as they
//! are, and the lab's summary shows the cost against plain TCP under it.
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use partyline_lab::fault::{Fault, FaultKind, Schedule};
use partyline_lab::process::NsProcess;
use partyline_lab::{Lab, NatKind, Scenario, TopologySpec};

/// ping's summary from `from` to `to`: round-trip loss in percent and the
/// spread (mdev) of the round-trip times in ms.
fn ping(lab: &Lab, from: usize, to: usize, count: u32) -> (f64, f64) {
    // ping exits 1 when replies are missing: its summary line is what counts.
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            lab.parties[from].ns.as_deref().expect("a namespace"),
            "ping",
            "-q",
            "-c",
            &count.to_string(),
            "-i",
            "0.005",
            "-W",
            "1",
        ])
        .arg(lab.parties[to].ip.to_string())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let loss: f64 = text
        .split(", ")
        .find(|p| p.ends_with("packet loss"))
        .and_then(|p| p.trim_end_matches("% packet loss").parse().ok())
        .unwrap_or_else(|| panic!("no loss figure in {text}"));
    // rtt min/avg/max/mdev = 0.1/0.2/0.3/0.05 ms, and ", pipe N" after it when
    // replies overtook the next pings (as jitter makes them); none when every
    // reply was lost.
    let mdev = text
        .lines()
        .find_map(|l| l.split(" = ").nth(1))
        .and_then(|v| v.split('/').nth(3))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    (loss, mdev)
}

#[test]
fn configured_loss_shows_in_ping() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    // 20 % per direction: a ping and its reply both survive with 0.8² = 64 %.
    let scenario = Scenario::find("one-region").unwrap().with_loss(0.2);
    let spec = TopologySpec::new(scenario, 2, &[NatKind::Public], None).unwrap();
    let lab = Lab::build(spec, &exe(), dir.path()).unwrap();
    let prefix = lab.prefix.clone();
    let (loss, _) = ping(&lab, 0, 1, 400);
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

#[test]
fn a_loss_fault_shows_in_ping_while_it_lasts() {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab("one-region", &[NatKind::Public; 2], dir.path());
    let prefix = lab.prefix.clone();
    let (before_loss, before_mdev) = ping(&lab, 0, 1, 200);
    // 20 % per direction on party 1's paths, and ±4 ms of reordering jitter.
    let faults = [Fault::new(FaultKind::Loss, Duration::ZERO)
        .party(1)
        .loss(20.0, 4.0)];
    let mut schedule = Schedule::new(&lab, &faults, None, Instant::now(), dir.path()).unwrap();
    schedule.poll().unwrap();
    let (loss, mdev) = ping(&lab, 0, 1, 400);
    schedule.finish().unwrap();
    let (after_loss, after_mdev) = ping(&lab, 0, 1, 200);
    eprintln!(
        "round-trip loss {before_loss} % / {loss} % / {after_loss} %, mdev {before_mdev} / {mdev} / {after_mdev} ms (before / during / after)"
    );
    assert!(
        (20.0..=52.0).contains(&loss),
        "round-trip loss {loss} %, expected about 36 %"
    );
    // Uniform ±4 ms each way: a round trip spreads by about 2.3 ms.
    assert!(mdev > 1.0, "no jitter: mdev {mdev} ms");
    assert!(
        before_loss == 0.0 && after_loss == 0.0,
        "loss outside the fault"
    );
    assert!(
        after_mdev < 1.0,
        "jitter left after the fault: {after_mdev} ms"
    );
    let log = std::fs::read_to_string(dir.path().join("faults.log")).unwrap();
    assert!(log.contains("loss and jitter over"), "{log}");
    drop(schedule);
    lab.teardown();
    assert_nothing_left(&prefix);
}

/// A scenario file: one region, 5 % loss and ±`jitter_ms` of reordering
/// jitter on every path, from the start of every run.
fn lossy_scenario(dir: &Path, jitter_ms: f64) -> String {
    let path = dir.join("lossy.toml");
    let text = format!(
        r#"name = "lossy"
description = "one region, 5 % loss and reordering on every path"
regions = ["ams"]
links = [{{ a = "ams", b = "ams", rtt_ms = 2.0 }}]

[[fault]]
at = "0s"
kind = "loss"
percent = 5
jitter_ms = {jitter_ms}
"#
    );
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn five_percent_loss_with_reordering_leaves_mpyc_results_unchanged() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let scenario = lossy_scenario(dir.path(), 3.0);
    let (stdout, rows) = lab_run(
        &[
            "--scenario",
            &scenario,
            "--parties",
            "3",
            "--demo",
            "securesum,sort",
            "--size",
            "low",
            "--solutions",
            "tcp,partyline,partyline-relay",
            "--timeout",
            "300",
        ],
        dir.path(),
        &[],
    );
    assert_eq!(rows.len(), 6, "{stdout}");
    assert!(rows.iter().all(|r| r.contains(",ok,")), "{rows:#?}");
    let runs = dir.path().join("results/runs/lossy-3");
    let results = |run: &str| -> Vec<Vec<String>> {
        (0..3)
            .map(|i| {
                let out = runs.join(run).join(format!("party{i}/party{i}.out"));
                result_lines(&std::fs::read_to_string(out).unwrap())
            })
            .collect()
    };
    let tcp = results("securesum-low-0-tcp");
    assert_eq!(tcp[0].len(), 3, "{tcp:?}");
    assert!(tcp.iter().all(|r| *r == tcp[0]), "{tcp:?}");
    for solution in ["partyline", "partyline-relay"] {
        assert_eq!(results(&format!("securesum-low-0-{solution}")), tcp);
        let log = std::fs::read_to_string(runs.join(format!("sort-low-0-{solution}/faults.log")))
            .unwrap();
        assert!(log.contains("loss ") && log.contains("over"), "{log}");
    }
    assert!(
        stdout.contains("Faults in lossy") && stdout.contains("loss 5% jitter 3 ms at 0s"),
        "{stdout}"
    );
    eprintln!("{stdout}");
}
