//! A party's link goes down mid-session (its host's only interface, in the
//! lab's namespaces, by the `link-down` fault step): for longer than
//! `--peer-timeout`, every party ends within the timeout plus a few seconds,
//! naming a party it lost; for 2 s under a 5 s timeout, the session rides it
//! out with the right result.
mod common;

use std::time::{Duration, Instant};

use common::*;
use partyline_lab::NatKind;
use partyline_lab::fault::{Fault, FaultKind, Schedule};

#[test]
fn a_link_down_longer_than_the_peer_timeout_ends_the_session_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (lab, server, runs) = lab_with_server(&[NatKind::Public; 3], &[], dir.path());
    let prefix = lab.prefix.clone();
    let program = [test_program("rounds.py"), prefix.clone()];
    let mut parties = running_session(&lab, &server, &runs, &["--peer-timeout", "3"], &program);
    let down = Instant::now();
    let faults = [Fault::new(FaultKind::LinkDown, Duration::ZERO).party(2)];
    let mut schedule = Schedule::new(&lab, &faults, None, down, &runs).unwrap();
    schedule.poll().unwrap();
    for (i, party) in parties.iter_mut().enumerate() {
        let status = party.wait_until(down + Duration::from_secs(3 + 5)).unwrap();
        let took = down.elapsed();
        eprintln!("p{i} ended {took:?} after p2's link went down");
        assert!(!status.success(), "p{i} exited 0");
        // p2 itself lost both others and names whichever it noticed first.
        let lost: &[&str] = if i == 2 { &["p0", "p1"] } else { &["p2"] };
        let stderr = party.stderr_text();
        assert!(
            lost.iter()
                .any(|name| stderr.contains(&format!("({name})"))),
            "p{i} does not name a party it lost ({lost:?}): {stderr}"
        );
    }
    drop(schedule);
    drop(parties);
    drop(server);
    lab.teardown();
    assert_nothing_left(&prefix);
}

#[test]
fn a_link_down_for_two_seconds_is_ridden_out() {
    let dir = tempfile::tempdir().unwrap();
    let (lab, server, runs) = lab_with_server(&[NatKind::Public; 3], &[], dir.path());
    let prefix = lab.prefix.clone();
    let program = [
        test_program("timed_rounds.py"),
        "3000".into(),
        prefix.clone(),
    ];
    let mut parties = running_session(&lab, &server, &runs, &["--peer-timeout", "5"], &program);
    let faults = [Fault::new(FaultKind::LinkDown, Duration::ZERO)
        .party(2)
        .lasting(Duration::from_secs(2))];
    let mut schedule = Schedule::new(&lab, &faults, None, Instant::now(), &runs).unwrap();
    schedule.run_to_end().unwrap();
    let log = std::fs::read_to_string(runs.join("faults.log")).unwrap();
    assert!(log.contains("party 2's link is up again"), "{log}");
    let longest = finish_timed_rounds(&mut parties);
    eprintln!("longest round: {longest} s");
    assert!(longest >= 1.5, "no round stalled");
    drop(schedule);
    drop(parties);
    drop(server);
    lab.teardown();
    assert_nothing_left(&prefix);
}
