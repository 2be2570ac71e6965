//! Every party sees the same addresses: a program that identifies its peers
//! as HTTP-based MPC libraries do, by a connection's source address plus the
//! port the sender says it listens on (`examples/by_source_address.py`),
//! completes over partyline as over plain TCP, and every party's program
//! reads the same `PARTYLINE_ADDRS`, byte for byte (it prints it as given).
//!
//! Each party needs a machine of its own (on one machine, party k's address
//! can be held only once), so each runs in a network namespace of the lab's
//! topology (`partyline_lab`): the server in its own, every party in its own,
//! joined by a router. Needs root, as the lab does.
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use partyline_lab::process::NsProcess;
use partyline_lab::solutions::partyline::Server as LabServer;
use partyline_lab::{Lab, Scenario, TopologySpec, cleanup, shell};

const PROGRAM: &str = "examples/by_source_address.py";
const LIMIT: Duration = Duration::from_secs(150);

/// A lab with `parties` public hosts in one region, and its server.
fn lab(parties: usize, dir: &Path) -> (Lab, LabServer) {
    if let Err(e) = shell::check_prerequisites() {
        panic!("this test builds network namespaces and needs root with iproute2/iptables: {e}");
    }
    let scenario = Scenario::find("one-region").unwrap();
    let spec = TopologySpec::new(scenario, parties, &[], None).unwrap();
    let lab = Lab::build(spec, Path::new(BIN), dir).unwrap();
    let server = LabServer::start(&lab, Path::new(BIN), dir).unwrap();
    (lab, server)
}

/// An invite for `parties`, created in the server's namespace.
fn invite(lab: &Lab, server: &LabServer, parties: usize) -> String {
    let created = shell::on_host(
        lab.server.ns.as_deref(),
        BIN,
        [
            "create",
            "--parties",
            &parties.to_string(),
            "--server",
            &server.link,
        ],
    )
    .unwrap();
    created.lines().last().unwrap().trim().to_string()
}

/// Starts `parties` joins of `invite` running the program, party i in the
/// lab's namespace i, with output in `dir`.
fn join_all(lab: &Lab, invite: &str, parties: usize, flags: &[&str], dir: &Path) -> Vec<NsProcess> {
    join_all_running(lab, invite, parties, flags, PROGRAM, dir)
}

/// [`join_all`] running `program` (a path in the repository) instead.
fn join_all_running(
    lab: &Lab,
    invite: &str,
    parties: usize,
    flags: &[&str],
    program: &str,
    dir: &Path,
) -> Vec<NsProcess> {
    std::fs::create_dir_all(dir).unwrap();
    (0..parties)
        .map(|i| {
            let mut args: Vec<String> = ["join", "--name", &format!("p{i}"), "--no-mpyc-flags"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            args.extend(flags.iter().map(|s| s.to_string()));
            let report = dir.join(format!("report{i}.json"));
            args.extend(["--report".into(), report.to_string_lossy().into_owned()]);
            args.extend(["--".into(), "python3".into(), repo_file(program)]);
            NsProcess::spawn(
                &format!("party{i}"),
                lab.parties[i].ns.as_deref(),
                dir,
                Path::new(BIN),
                &args,
                &[("PARTYLINE_INVITE".to_string(), invite.to_string())],
            )
            .unwrap()
        })
        .collect()
}

/// Each party's stdout, once all exited 0.
fn finish(parties: Vec<NsProcess>) -> Vec<String> {
    let deadline = Instant::now() + LIMIT;
    parties
        .into_iter()
        .map(|mut party| {
            let status = party.wait_until(deadline).unwrap();
            assert!(
                status.success(),
                "{} failed ({status})\nstdout:\n{}\nstderr:\n{}",
                party.name,
                party.stdout_text(),
                party.stderr_text()
            );
            party.stdout_text()
        })
        .collect()
}

fn line<'a>(stdout: &'a str, key: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key:?} line in {stdout:?}"))
}

/// The program's `sum:` lines over plain loopback TCP, one process per party.
fn plain_tcp(parties: usize) -> Vec<String> {
    let ports: Vec<_> = (0..parties)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let addrs: Vec<String> = ports
        .iter()
        .map(|l| l.local_addr().unwrap().to_string())
        .collect();
    drop(ports);
    let children: Vec<_> = (0..parties)
        .map(|i| {
            std::process::Command::new("python3")
                .arg(repo_file(PROGRAM))
                .args(["--addrs", &addrs.join(","), "--index", &i.to_string()])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success(),
                "plain TCP run failed: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            line(&stdout, "sum:").to_string()
        })
        .collect()
}

/// Runs a session of `parties` and checks every party: the reference sums,
/// the same address list everywhere, party k at 127.X.Y.(k+1) on one port.
/// Returns the address list.
fn session_matches_plain_tcp(
    lab: &Lab,
    server: &LabServer,
    parties: usize,
    flags: &[&str],
    dir: &Path,
) -> String {
    let invite = invite(lab, server, parties);
    let outputs = finish(join_all(lab, &invite, parties, flags, dir));
    let sums: Vec<String> = outputs
        .iter()
        .map(|o| line(o, "sum:").to_string())
        .collect();
    assert_eq!(sums, plain_tcp(parties), "partyline and plain TCP disagree");
    let addrs = line(&outputs[0], "addrs:").trim().to_string();
    for (i, out) in outputs.iter().enumerate() {
        assert_eq!(
            line(out, "addrs:").trim(),
            addrs,
            "party {i} sees other addresses"
        );
    }
    assert_session_addresses(&addrs, parties);
    addrs
}

/// Every peer path in the parties' reports, e.g. `["direct", …]`.
fn paths(dir: &Path, parties: usize) -> Vec<String> {
    (0..parties)
        .flat_map(|i| {
            let text = std::fs::read_to_string(dir.join(format!("report{i}.json"))).unwrap();
            let report: serde_json::Value = serde_json::from_str(&text).unwrap();
            report["peers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|peer| peer["path"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `addrs` is `127.X.Y.1:P,…,127.X.Y.N:P` with X not 0.
fn assert_session_addresses(addrs: &str, parties: usize) {
    let list: Vec<std::net::SocketAddrV4> = addrs.split(',').map(|a| a.parse().unwrap()).collect();
    assert_eq!(list.len(), parties);
    for (k, addr) in list.iter().enumerate() {
        let [a, x, y, z] = addr.ip().octets();
        let [_, x0, y0, _] = list[0].ip().octets();
        assert_eq!((a, x, y, z), (127, x0, y0, k as u8 + 1), "{addrs}");
        assert_ne!(x, 0, "{addrs}");
        assert_eq!(addr.port(), list[0].port(), "{addrs}");
    }
}

#[test]
fn peers_identified_by_source_address_complete_with_3_and_5_parties_direct_and_relayed() {
    let dir = tempfile::tempdir().unwrap();
    let (lab, server) = lab(5, dir.path());
    let prefix = lab.prefix.clone();
    for parties in [3, 5] {
        for (how, flags) in [("direct", &[][..]), ("relay", &["--relay-only"][..])] {
            let run = dir.path().join(format!("{how}-{parties}"));
            session_matches_plain_tcp(&lab, &server, parties, flags, &run);
            let paths = paths(&run, parties);
            assert_eq!(paths.len(), parties * (parties - 1));
            assert!(paths.iter().all(|path| path == how), "{how}: {paths:?}");
        }
    }
    drop(server);
    lab.teardown();
    assert!(cleanup::namespaces_with_prefix(&prefix).is_empty());
}

#[test]
fn two_concurrent_sessions_on_the_same_machines_do_not_collide() {
    let dir = tempfile::tempdir().unwrap();
    let (lab, server) = lab(3, dir.path());
    let prefix = lab.prefix.clone();
    let (first, second) = (invite(&lab, &server, 3), invite(&lab, &server, 3));
    // Both sessions at once, with one party of each on every machine.
    let a = join_all(&lab, &first, 3, &[], &dir.path().join("a"));
    let b = join_all(&lab, &second, 3, &[], &dir.path().join("b"));
    let (a, b) = (finish(a), finish(b));
    let reference = plain_tcp(3);
    for outputs in [&a, &b] {
        let sums: Vec<String> = outputs
            .iter()
            .map(|o| line(o, "sum:").to_string())
            .collect();
        assert_eq!(sums, reference);
        let addrs = line(&outputs[0], "addrs:").trim();
        assert!(outputs.iter().all(|o| line(o, "addrs:").trim() == addrs));
        assert_session_addresses(addrs, 3);
    }
    let (a_addrs, b_addrs) = (line(&a[0], "addrs:"), line(&b[0], "addrs:"));
    assert!(
        a_addrs
            .split(',')
            .all(|addr| !b_addrs.contains(addr.trim())),
        "the sessions share an address: {a_addrs} and {b_addrs}"
    );
    drop(server);
    lab.teardown();
    assert!(cleanup::namespaces_with_prefix(&prefix).is_empty());
}

#[test]
fn three_ports_per_party_carry_a_connection_each_per_peer_pair() {
    let dir = tempfile::tempdir().unwrap();
    let (lab, server) = lab(3, dir.path());
    let prefix = lab.prefix.clone();
    let invite = invite(&lab, &server, 3);
    let program = "crates/partyline/tests/programs/port_range.py";
    let flags = ["--ports", "3"];
    let outputs = finish(join_all_running(
        &lab,
        &invite,
        3,
        &flags,
        program,
        dir.path(),
    ));
    for out in &outputs {
        let i: usize = line(out, "index:").trim().parse().unwrap();
        let expected: Vec<String> = (0..3)
            .filter(|&j| j != i)
            .flat_map(|j| (0..3).map(move |o| format!("({j}, {o})")))
            .collect();
        let expected = format!(" [{}]", expected.join(", "));
        assert_eq!(line(out, "heard:"), expected, "party {i}");
        assert_eq!(line(out, "answers:"), expected, "party {i}");
    }
    drop(server);
    lab.teardown();
    assert!(cleanup::namespaces_with_prefix(&prefix).is_empty());
}
