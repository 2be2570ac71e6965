//! Two `partyline serve` processes on one PostgreSQL database, with one
//! certificate, serve one session: parties announcing to different servers
//! complete it (the first one's long poll wakes at once when the second is
//! told: LISTEN/NOTIFY), and parties whose server is killed while they wait
//! go on through the other, which the first named in its server information.
//!
//! PostgreSQL is a throw-away server on loopback from Debian's package
//! (partyline-server's `tests/common/postgres.rs`), stopped and removed when
//! this test process ends.
mod common;
#[path = "../../partyline-server/tests/common/postgres.rs"]
mod postgres_server;

use std::time::{Duration, Instant};

use common::*;

/// Two servers on a fresh database named by `key`; the second is given the
/// first one's certificate, as servers behind one name would share one.
fn two_servers(key: &str) -> (Server, Server) {
    let database = postgres_server::database_url(&format!("{key}-{}", std::process::id()));
    let flags = ["--listen", "127.0.0.1:0", "--database", &database];
    let first = Server::start_with(&flags);
    let data = tempfile::tempdir().unwrap();
    for file in ["cert.pem", "key.pem"] {
        std::fs::copy(first.data.path().join(file), data.path().join(file)).unwrap();
    }
    let second = Server::start_in(data, &flags);
    let pin = |server: &Server| server.link.split_once('#').unwrap().1.to_string();
    assert_eq!(
        pin(&first),
        pin(&second),
        "the servers show different certificates"
    );
    (first, second)
}

/// The invite for the same session through the other server.
fn through(invite: &str, from: &Server, to: &Server) -> String {
    assert!(invite.starts_with(from.url()), "{invite}");
    invite.replacen(from.url(), to.url(), 1)
}

/// securesum.py's results with its default inputs: party i has (i+1)*1000 + 7.
fn securesum_results(parties: usize) -> [String; 3] {
    let inputs: Vec<u64> = (1..=parties as u64).map(|i| i * 1000 + 7).collect();
    [
        format!("sum: {}", inputs.iter().sum::<u64>()),
        format!("product: {}", inputs.iter().product::<u64>()),
        format!("max: {}", inputs.iter().max().unwrap()),
    ]
}

#[test]
fn parties_announcing_to_different_servers_complete_one_session() {
    let (first, second) = two_servers("different-servers");
    let invite = first.create(2);
    let program = vec![repo_file("examples/securesum.py")];

    let mut alice = Party::join(&invite, "alice", &[], &program);
    alice.wait_for_stderr("1 of 2 parties joined", Duration::from_secs(60));
    // alice now waits in a long poll on the first server (held 30 s).
    let bob_joins = Instant::now();
    let bob = Party::join(&through(&invite, &first, &second), "bob", &[], &program);
    alice.wait_for_stderr("2 of 2 parties joined", Duration::from_secs(30));
    let woken = bob_joins.elapsed();
    eprintln!("alice saw bob {woken:?} after bob started");
    // Unwoken, her poll would answer only when its hold ends, 20 s after
    // it began.
    assert!(
        woken < Duration::from_secs(10),
        "alice saw bob only after {woken:?}: the first server was not told"
    );

    let runs = [alice, bob].map(|party| party.finish(Duration::from_secs(120)));
    runs.iter().for_each(Finished::assert_success);
    let expected = securesum_results(2);
    let results = runs.map(|run| run.result_lines(&["sum", "product", "max"]));
    assert_eq!(results, [expected.clone(), expected]);
}

#[test]
fn parties_whose_server_is_killed_mid_join_go_on_through_the_other() {
    let (mut first, second) = two_servers("killed-mid-join");
    let invite = first.create(3);
    let program = vec![repo_file("examples/securesum.py")];

    let mut alice = Party::join(&invite, "alice", &[], &program);
    alice.wait_for_stderr("1 of 3 parties joined", Duration::from_secs(60));
    let mut bob = Party::join(&invite, "bob", &[], &program);
    bob.wait_for_stderr("2 of 3 parties joined", Duration::from_secs(60));
    first.kill();
    let killed = Instant::now();
    for party in [&mut alice, &mut bob] {
        let line = party.wait_for_stderr("trying its other address", Duration::from_secs(40));
        eprintln!("{line}");
    }
    let carol = Party::join(&through(&invite, &first, &second), "carol", &[], &program);
    let runs = [alice, bob, carol].map(|party| party.finish(Duration::from_secs(120)));
    eprintln!(
        "all three finished {:?} after the first server was killed",
        killed.elapsed()
    );
    runs.iter().for_each(Finished::assert_success);
    let expected = securesum_results(3);
    let results = runs.map(|run| run.result_lines(&["sum", "product", "max"]));
    assert_eq!(results, [expected.clone(), expected.clone(), expected]);
}
