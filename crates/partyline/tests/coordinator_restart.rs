//! A coordinator that restarts while a party waits for the others: the party
//! keeps asking with back-off and keeps its seat (the server's database and
//! certificate survive), and the session completes once the others join.
mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn a_party_waiting_through_a_coordinator_restart_keeps_its_seat() {
    // Fixed ports, so that the restarted server is where the invite says.
    let [listen, relay] = restart_addrs::<2>().map(|a| a.to_string());
    let mut server = Server::start_with(&["--listen", &listen, "--relay-listen", &relay]);
    let link = server.link.clone();
    let invite = server.create(2);
    let program = vec![repo_file("examples/securesum.py")];

    let mut alice = Party::join(&invite, "alice", &[], &program);
    alice.wait_for_stderr("1 of 2 parties joined", Duration::from_secs(60));
    server.kill();
    let warning = alice.wait_for_stderr("is not answering", Duration::from_secs(30));
    eprintln!("alice: {warning}");

    server.start_again();
    let restarted = Instant::now();
    assert_eq!(
        server.link, link,
        "the restarted server has another certificate"
    );
    let bob = Party::join(&invite, "bob", &[], &program);
    let runs = [alice, bob].map(|party| party.finish(Duration::from_secs(120)));
    eprintln!(
        "both parties finished {:?} after the restarted server was ready",
        restarted.elapsed()
    );
    runs.iter().for_each(Finished::assert_success);
    // securesum.py's default inputs: party i has (i+1)*1000 + 7.
    let expected = ["sum: 3014", "product: 2021049", "max: 2007"];
    let results = runs.map(|run| run.result_lines(&["sum", "product", "max"]));
    assert_eq!(results, [expected, expected]);
}

#[test]
fn a_party_that_died_while_the_coordinator_was_down_is_named_by_the_others() {
    let [listen, relay] = restart_addrs::<2>().map(|a| a.to_string());
    let mut server = Server::start_with(&["--listen", &listen, "--relay-listen", &relay]);
    let invite = server.create(2);
    let program = vec![repo_file("examples/securesum.py")];

    let mut alice = Party::join(&invite, "alice", &[], &program);
    alice.wait_for_stderr("1 of 2 parties joined", Duration::from_secs(60));
    server.kill();
    alice.wait_for_stderr("is not answering", Duration::from_secs(30));
    // alice dies while nobody can be told: her seat stays announced.
    alice.child.kill().unwrap();
    alice.child.wait().unwrap();

    server.start_again();
    let joined = Instant::now();
    let timeout = 10;
    let bob = Party::join(
        &invite,
        "bob",
        &["--timeout", &timeout.to_string()],
        &program,
    );
    let run = bob.finish(Duration::from_secs(timeout + 30));
    let took = joined.elapsed();
    eprintln!("bob ended {took:?} after joining: {}", run.stderr());
    assert!(!run.out.status.success(), "bob exited 0");
    assert!(
        run.stderr().contains("(alice)") || run.stderr().contains("alice"),
        "bob does not name alice: {}",
        run.stderr()
    );
    assert!(
        took < Duration::from_secs(timeout + 10),
        "bob took {took:?}"
    );
}
