//! The loopback scenario (what `partyline bench` runs) needs neither root nor
//! namespaces: the real CLI runs securesum over tcp and partyline with the
//! namespace tools (`ip`, `iptables`, `tc`, all in /usr/sbin) off its PATH,
//! and both solutions compute the same results.
mod common;

use std::path::Path;

use common::*;

#[test]
fn loopback_runs_securesum_over_tcp_and_partyline_without_namespace_tools() {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, rows) = lab_run(
        &[
            "--scenario",
            "loopback",
            "--parties",
            "3",
            "--demo",
            "securesum",
            "--solutions",
            "tcp,partyline",
            "--timeout",
            "120",
        ],
        dir.path(),
        &[("PATH", "/usr/local/bin:/usr/bin:/bin")],
    );
    assert_eq!(rows.len(), 2, "{rows:#?}");
    for row in &rows {
        assert!(row.contains(",ok,"), "a run failed: {row}\n{stdout}");
    }
    for solution in ["tcp", "partyline"] {
        let line = format!("| loopback | securesum | low | 3 | {solution} | 1/1 |");
        assert!(stdout.contains(&line), "no {line:?} in\n{stdout}");
    }

    // Each party of each solution printed the same results, which proves
    // the parties really computed together.
    let runs = dir.path().join("results/runs/loopback-3");
    let tcp = results_of(&runs.join("securesum-low-0-tcp"));
    let partyline = results_of(&runs.join("securesum-low-0-partyline"));
    assert_eq!(tcp.len(), 3);
    assert!(tcp.iter().all(|r| *r == tcp[0] && r.len() == 3), "{tcp:?}");
    assert_eq!(partyline, tcp);
}

/// securesum's result lines of each party of one run.
fn results_of(run: &Path) -> Vec<Vec<String>> {
    (0..3)
        .map(|i| {
            let out = run.join(format!("party{i}")).join(format!("party{i}.out"));
            result_lines(&std::fs::read_to_string(&out).unwrap_or_default())
        })
        .collect()
}
