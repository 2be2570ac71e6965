//! NAT traversal in the lab: cone NATs give a direct path, a symmetric NAT
//! or a UDP-blocking firewall fall back to the relay, and the program's
//! output is what MPyC's plain TCP gives.
mod common;

use common::*;
use partyline_lab::NatKind;
use partyline_lab::solutions::{partyline, tcp};

#[test]
fn two_cone_nats_reach_a_direct_path_and_match_plain_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let reference = {
        let lab = lab(
            "one-region",
            &[NatKind::Public, NatKind::Public],
            &dir.path().join("tcp"),
        );
        let prefix = lab.prefix.clone();
        let outcome = securesum(&lab, &dir.path().join("tcp"), |ctx| tcp::run(ctx, false));
        lab.teardown();
        assert_nothing_left(&prefix);
        results(&outcome)
    };
    assert_eq!(
        reference[0].len(),
        3,
        "plain TCP printed no results: {reference:?}"
    );

    let lab_dir = dir.path().join("cone");
    let lab = lab("one-region", &[NatKind::Cone, NatKind::Cone], &lab_dir);
    let prefix = lab.prefix.clone();
    let server = partyline::Server::start(&lab, &exe(), &lab_dir).unwrap();
    let outcome = securesum(&lab, &lab_dir, |ctx| partyline::run(ctx, &server, false));
    assert_eq!(
        outcome.paths, "direct:1",
        "expected a direct path through two cone NATs"
    );
    assert_eq!(
        results(&outcome),
        reference,
        "partyline and plain TCP disagree"
    );
    drop(server);
    lab.teardown();
    assert_nothing_left(&prefix);
}

/// Behind a NAT that gives every destination another public port, a party
/// still announces the address the server's STUN responder saw its WebRTC
/// socket come from: the NAT's public address, with a port other than the
/// socket's own. Only STUN can have told it that port; iroh's own address
/// discovery tells the address of a different socket.
#[test]
fn a_party_behind_a_nat_announces_the_address_stun_saw() {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab("one-region", &[NatKind::Symmetric], dir.path());
    let prefix = lab.prefix.clone();
    let host = lab.parties[0].clone();
    let server = partyline::Server::start(&lab, &exe(), dir.path()).unwrap();
    securesum(&lab, dir.path(), |ctx| partyline::run(ctx, &server, false));
    let report = dir.path().join("run/party0/report.json");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let candidates: Vec<std::net::SocketAddrV4> = report["webrtc_candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().parse().unwrap())
        .collect();
    let own = candidates
        .iter()
        .find(|c| *c.ip() == host.ip)
        .unwrap_or_else(|| panic!("no candidate at its own address: {candidates:?}"));
    assert!(
        candidates
            .iter()
            .any(|c| *c.ip() == host.public_ip && c.port() != own.port()),
        "no candidate at the NAT's address with the port the NAT chose: {candidates:?}"
    );
    drop(server);
    lab.teardown();
    assert_nothing_left(&prefix);
}

#[test]
fn a_symmetric_nat_completes_via_the_relay() {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab(
        "one-region",
        &[NatKind::Cone, NatKind::Symmetric],
        dir.path(),
    );
    let prefix = lab.prefix.clone();
    let server = partyline::Server::start(&lab, &exe(), dir.path()).unwrap();
    let outcome = securesum(&lab, dir.path(), |ctx| partyline::run(ctx, &server, false));
    assert_eq!(outcome.paths, "relay:1");
    assert_eq!(results(&outcome)[0].len(), 3);
    drop(server);
    lab.teardown();
    assert_nothing_left(&prefix);
}

#[test]
fn udp_blocked_completes_via_the_relay_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab(
        "one-region",
        &[NatKind::Public, NatKind::UdpBlocked],
        dir.path(),
    );
    let prefix = lab.prefix.clone();
    let server = partyline::Server::start(&lab, &exe(), dir.path()).unwrap();
    // The firewall drops every UDP packet, so whatever completes went over TCP.
    let blocked = lab.parties[1]
        .ns
        .as_deref()
        .expect("a namespace")
        .replace("-p1", "-p1r");
    let outcome = securesum(&lab, dir.path(), |ctx| partyline::run(ctx, &server, false));
    assert_eq!(outcome.paths, "relay:1");
    assert_eq!(results(&outcome)[0].len(), 3);
    let counters =
        partyline_lab::shell::in_ns(&blocked, "iptables", ["-L", "FORWARD", "-v", "-n", "-x"])
            .unwrap();
    assert!(
        counters
            .lines()
            .any(|l| l.contains("DROP") && l.contains("lan")),
        "{counters}"
    );
    drop(server);
    lab.teardown();
    assert_nothing_left(&prefix);
}
