//! The delay stage: measured round-trip times between hosts match the
//! scenario's within ±10 % or ±1 ms.
mod common;

use common::*;
use partyline_lab::{NatKind, shell};

/// Average RTT in ms of `count` pings from namespace `ns` to `ip`.
fn ping_ms(ns: &Option<String>, ip: &str, count: u32) -> f64 {
    let out = shell::on_host(
        ns.as_deref(),
        "ping",
        ["-q", "-c", &count.to_string(), "-i", "0.1", "-W", "2", ip],
    )
    .unwrap();
    let line = out
        .lines()
        .find(|l| l.contains("min/avg/max"))
        .unwrap_or_else(|| panic!("no summary: {out}"));
    let numbers = line.split('=').nth(1).unwrap().trim();
    numbers.split('/').nth(1).unwrap().parse().unwrap()
}

fn assert_close(measured: f64, configured: f64, what: &str) {
    let tolerance = (configured * 0.1).max(1.0);
    assert!(
        (measured - configured).abs() <= tolerance,
        "{what}: measured RTT {measured:.2} ms, configured {configured} ms (±{tolerance:.1})"
    );
    eprintln!("{what}: measured {measured:.2} ms, configured {configured} ms");
}

#[test]
fn measured_rtt_matches_the_scenario() {
    let dir = tempfile::tempdir().unwrap();
    // three-far places party 0 in Amsterdam, 1 in New York, 2 in Singapore,
    // behind a NAT each, so that the path through NAT routers is measured too
    // (pings go to the peers' hosts from the NAT side: the server and the
    // public party 0 receive).
    let lab = lab(
        "three-far",
        &[NatKind::Public, NatKind::Cone, NatKind::Symmetric],
        dir.path(),
    );
    let prefix = lab.prefix.clone();
    let (p0, p1, p2) = (&lab.parties[0], &lab.parties[1], &lab.parties[2]);
    let server = lab.server.ip.to_string();
    assert_close(ping_ms(&p0.ns, &server, 10), 1.0, "ams–ams (server)");
    assert_close(
        ping_ms(&p1.ns, &p0.public_ip.to_string(), 10),
        75.0,
        "nyc–ams",
    );
    assert_close(
        ping_ms(&p2.ns, &p0.public_ip.to_string(), 10),
        160.0,
        "sgp–ams",
    );
    assert_close(ping_ms(&p2.ns, &server, 5), 160.0, "sgp–ams (server)");
    assert_close(ping_ms(&p1.ns, &server, 10), 75.0, "nyc–ams (server)");
    lab.teardown();
    assert_nothing_left(&prefix);
}

#[test]
fn two_regions_from_a_scenario_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pair.toml");
    std::fs::write(
        &file,
        "name = \"pair\"\nregions = [\"x\", \"y\"]\n\
         [[links]]\na = \"x\"\nb = \"x\"\nrtt_ms = 0\n\
         [[links]]\na = \"y\"\nb = \"y\"\nrtt_ms = 0\n\
         [[links]]\na = \"x\"\nb = \"y\"\nrtt_ms = 230\n",
    )
    .unwrap();
    let lab = lab(
        file.to_str().unwrap(),
        &[NatKind::Public, NatKind::Public],
        dir.path(),
    );
    let prefix = lab.prefix.clone();
    let rtt = ping_ms(&lab.parties[1].ns, &lab.parties[0].ip.to_string(), 10);
    assert_close(rtt, 230.0, "x–y");
    let same = ping_ms(&lab.parties[0].ns, &lab.server.ip.to_string(), 10);
    assert!(same < 1.0, "no delay configured, yet {same} ms");
    lab.teardown();
    assert_nothing_left(&prefix);
}
