//! A small matrix through the real CLI: 2 scenarios × 3 parties × MPyC's
//! Secret Santa (low) × every solution gives a CSV, a summary and plots.
mod common;

use common::*;

#[test]
fn small_matrix_writes_csv_summary_and_plots() {
    require_root();
    let labs_before = partyline_lab::cleanup::namespaces_with_prefix("pllab-");
    let dir = tempfile::tempdir().unwrap();
    let (stdout, rows) = lab_run(
        &[
            "--scenario",
            "one-region,two-near",
            "--parties",
            "3",
            "--demo",
            "mpyc-secretsanta",
            "--size",
            "low",
            "--solutions",
            "tcp,tcp-ssl,partyline,partyline-relay,wireguard",
            "--timeout",
            "180",
        ],
        dir.path(),
        &[],
    );
    assert_eq!(rows.len(), 2 * 5, "{rows:#?}");
    let failed: Vec<&String> = rows.iter().filter(|r| !r.contains(",ok,")).collect();
    assert!(failed.is_empty(), "failed runs:\n{failed:#?}\n{stdout}");
    let out_dir = dir.path().join("results");
    let summary = std::fs::read_to_string(out_dir.join("summary.md")).unwrap();
    assert!(
        summary.contains("| one-region | mpyc-secretsanta | low | 3 | tcp | 1/1 |"),
        "{summary}"
    );
    assert!(
        summary.contains("| two-near | mpyc-secretsanta | low | 3 | partyline |"),
        "{summary}"
    );
    for scenario in ["one-region", "two-near"] {
        for ext in ["png", "svg"] {
            let plot = out_dir
                .join("plots")
                .join(format!("{scenario}-mpyc-secretsanta-low.{ext}"));
            assert!(
                std::fs::metadata(&plot).is_ok_and(|m| m.len() > 1000),
                "{} missing",
                plot.display()
            );
        }
    }
    // Any lab namespace that was not there before is one the matrix left
    // behind; labs that already ran on this machine are not ours to judge.
    let left: Vec<String> = partyline_lab::cleanup::namespaces_with_prefix("pllab-")
        .into_iter()
        .filter(|ns| !labs_before.contains(ns))
        .collect();
    assert!(
        left.is_empty(),
        "the matrix left namespaces behind: {left:?}"
    );
}
