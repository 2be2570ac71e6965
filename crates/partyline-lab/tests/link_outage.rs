//! A party's link goes down mid-session (its host's only interface, in the
//! lab's namespaces): for longer than `--peer-timeout`, every party ends
//! within the timeout plus a few seconds, naming a party it lost; for 2 s
//! under a 5 s timeout, the session rides it out with the right result.
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use partyline_lab::NatKind;
use partyline_lab::process::NsProcess;
use partyline_lab::shell;
use partyline_lab::solutions::partyline::Server;

fn test_program(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../partyline/tests/programs")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// Three parties on public hosts, joined to one session with `flags`, each
/// running `program`; returned once every program prints `running`.
fn running_session(
    lab: &partyline_lab::Lab,
    server: &Server,
    dir: &Path,
    flags: &[&str],
    program: &[String],
) -> Vec<NsProcess> {
    let exe = exe();
    let created = shell::on_host(
        lab.server.ns.as_deref(),
        &exe.to_string_lossy(),
        ["create", "--parties", "3", "--server", &server.link],
    )
    .unwrap();
    let invite = created.lines().last().unwrap().trim().to_string();
    let mut parties: Vec<NsProcess> = lab
        .parties
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let mut args: Vec<String> = ["join", "--name", &format!("p{i}"), "--timeout", "120"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            args.extend(["--python".into(), python().to_string_lossy().into_owned()]);
            args.extend(flags.iter().map(|s| s.to_string()));
            args.push("--".into());
            args.extend(program.iter().cloned());
            let env = [("PARTYLINE_INVITE".to_string(), invite.clone())];
            NsProcess::spawn(&format!("p{i}"), host.ns.as_deref(), dir, &exe, &args, &env).unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    for party in &mut parties {
        while !party.stdout_text().lines().any(|l| l == "running") {
            assert!(
                party.try_wait().unwrap().is_none(),
                "{}",
                party.stderr_text()
            );
            assert!(Instant::now() < deadline, "{}", party.stderr_text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    parties
}

fn link_down(lab: &partyline_lab::Lab, party: usize) {
    let ns = lab.parties[party].ns.as_deref().unwrap();
    shell::run("ip", ["-n", ns, "link", "set", "wan", "down"]).unwrap();
}

/// Brings the link back, with the default route that taking it down removed.
fn link_up(lab: &partyline_lab::Lab, party: usize, route: &str) {
    let ns = lab.parties[party].ns.as_deref().unwrap();
    shell::run("ip", ["-n", ns, "link", "set", "wan", "up"]).unwrap();
    let mut args = vec!["-n", ns, "route", "replace"];
    args.extend(route.split_whitespace());
    shell::run("ip", args).unwrap();
}

fn default_route(lab: &partyline_lab::Lab, party: usize) -> String {
    let ns = lab.parties[party].ns.as_deref().unwrap();
    let route = shell::run("ip", ["-n", ns, "route", "show", "default"]).unwrap();
    route.trim().to_string()
}

fn lab_in(dir: &Path) -> (partyline_lab::Lab, Server, PathBuf) {
    let lab = lab("one-region", &[NatKind::Public; 3], dir);
    let server = Server::start(&lab, &exe(), dir).unwrap();
    let runs = dir.join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    (lab, server, runs)
}

#[test]
fn a_link_down_longer_than_the_peer_timeout_ends_the_session_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (lab, server, runs) = lab_in(dir.path());
    let prefix = lab.prefix.clone();
    let program = [test_program("rounds.py"), prefix.clone()];
    let mut parties = running_session(&lab, &server, &runs, &["--peer-timeout", "3"], &program);
    link_down(&lab, 2);
    let down = Instant::now();
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
    drop(parties);
    drop(server);
    lab.teardown();
    assert_nothing_left(&prefix);
}

#[test]
fn a_link_down_for_two_seconds_is_ridden_out() {
    let dir = tempfile::tempdir().unwrap();
    let (lab, server, runs) = lab_in(dir.path());
    let prefix = lab.prefix.clone();
    let program = [
        test_program("timed_rounds.py"),
        "3000".into(),
        prefix.clone(),
    ];
    let mut parties = running_session(&lab, &server, &runs, &["--peer-timeout", "5"], &program);
    let route = default_route(&lab, 2);
    assert!(route.starts_with("default via"), "{route}");
    link_down(&lab, 2);
    // The fault itself: p2's link is down for 2 s.
    std::thread::sleep(Duration::from_secs(2));
    link_up(&lab, 2, &route);
    for (i, party) in parties.iter_mut().enumerate() {
        let status = party
            .wait_until(Instant::now() + Duration::from_secs(120))
            .unwrap();
        assert!(status.success(), "p{i}: {}", party.stderr_text());
        let stdout = party.stdout_text();
        assert!(stdout.lines().any(|l| l == "sum: 3"), "p{i}: {stdout}");
    }
    let stdout = parties[0].stdout_text();
    let longest: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("longest round:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    eprintln!("p0's longest round: {longest} s");
    assert!(longest >= 1.5, "no round stalled: {stdout}");
    drop(parties);
    drop(server);
    lab.teardown();
    assert_nothing_left(&prefix);
}
