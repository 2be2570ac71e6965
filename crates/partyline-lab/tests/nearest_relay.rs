//! Relays in three regions: `three-far-relays` puts the server in Singapore
//! and a `partyline relay` in Amsterdam and in New York, with one party
//! behind a symmetric NAT in each region, so every packet is relayed. Every
//! party makes its own region's relay its home relay (read from its report),
//! and the session is faster than in `three-far-one-relay`, where the
//! server's relay in Singapore is the only one.
mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use partyline_lab::solutions::{Outcome, partyline};
use partyline_lab::{Demo, Lab, NatKind};

/// Runs the sort demo (many rounds: the relays' distance shows) in
/// `scenario`, and returns the outcome, each party's home relay, and the
/// relay URL of each party's region.
fn session(scenario: &str, dir: &Path) -> (Outcome, Vec<String>, Vec<String>) {
    let lab = lab(scenario, &[NatKind::Symmetric; 3], dir);
    let prefix = lab.prefix.clone();
    let server = partyline::Server::start(&lab, &exe(), dir).unwrap();
    let outcome = run_demo(&lab, dir, Demo::Sort, |ctx| {
        partyline::run(ctx, &server, false)
    });
    assert_eq!(
        outcome.paths, "relay:3",
        "symmetric NATs: every pair relayed"
    );
    let homes = (0..3)
        .map(|i| {
            let report =
                std::fs::read_to_string(dir.join(format!("run/party{i}/report.json"))).unwrap();
            let report: serde_json::Value = serde_json::from_str(&report).unwrap();
            report["home_relay"].as_str().unwrap().to_string()
        })
        .collect();
    let expected = (0..3).map(|i| region_relay(&lab, &server, i)).collect();
    drop(server);
    lab.teardown();
    assert_nothing_left(&prefix);
    (outcome, homes, expected)
}

/// The relay in party `i`'s region, as iroh writes its URL: a relay of its
/// own there, else the server's.
fn region_relay(lab: &Lab, server: &partyline::Server, i: usize) -> String {
    let region = &lab.parties[i].region;
    let own = lab
        .relays
        .iter()
        .zip(&server.relays)
        .find(|(host, _)| &host.region == region)
        .map(|(_, (_, link))| link.split('#').next().unwrap().to_string());
    let url = own.unwrap_or_else(|| format!("https://{}:{}", lab.server.ip, partyline::PORT + 1));
    format!("{url}/")
}

#[test]
fn each_party_picks_its_regions_relay_and_the_session_is_faster_than_with_one_far_relay() {
    let dir = tempfile::tempdir().unwrap();
    let (near, homes, expected) = session("three-far-relays", &dir.path().join("near"));
    assert_eq!(
        homes, expected,
        "every party's home relay is its own region's"
    );
    let (far, homes, expected) = session("three-far-one-relay", &dir.path().join("far"));
    assert_eq!(homes, expected, "the one relay is everybody's home");
    eprintln!(
        "sort, 3 parties behind symmetric NATs in sgp, ams, nyc: nearest relay {:.1} s, one relay in sgp {:.1} s",
        near.wall.as_secs_f64(),
        far.wall.as_secs_f64()
    );
    assert!(
        near.wall + Duration::from_millis(500) < far.wall,
        "nearest relays {:?}, one far relay {:?}",
        near.wall,
        far.wall
    );
}
