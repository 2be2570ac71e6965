//! `partyline bench`: the raw stream figures ([`streams`]: the tunnel beside
//! the bare iroh connection and loopback TCP), then the lab's loopback
//! scenario with a fixed set of MPyC workloads. No root and no namespaces:
//! every party is a process on this machine. The solutions, the runner and
//! the CSV, summary and plots are the lab's own (`partyline lab run
//! --scenario loopback` runs any other set).
//!
//! # Layout
//! - [`streams`]: one-way, echo, both-ways and round-trip figures, idle cost.
mod streams;
use anyhow::Context;
use partyline_lab::runner::Case;
use partyline_lab::{Demo, Scenario, Size};

use super::lab::{matrix, run_and_print};
use crate::cli::{BenchArgs, BenchPart};
use crate::config::Config;

/// The workloads. Sorting is round-bound (latency matters) with a fixed
/// cost; Secret Santa is too, but redraws until it finds a derangement, so
/// its cost varies from run to run; bulk is volume-bound (throughput
/// matters); securesum is tiny (start-up and noise).
const WORKLOADS: [Case; 5] = [
    Case {
        parties: 3,
        demo: Demo::SecureSum,
        size: Size::Low,
    },
    Case {
        parties: 3,
        demo: Demo::Sort,
        size: Size::Medium,
    },
    Case {
        parties: 3,
        demo: Demo::SecretSanta,
        size: Size::Medium,
    },
    Case {
        parties: 3,
        demo: Demo::Bulk,
        size: Size::Medium,
    },
    Case {
        parties: 5,
        demo: Demo::Sort,
        size: Size::Low,
    },
];

/// The workloads, each at its own party count, or at each of `parties`.
fn workloads(parties: &[u16]) -> Vec<Case> {
    if parties.is_empty() {
        return WORKLOADS.to_vec();
    }
    parties
        .iter()
        .flat_map(|&parties| {
            WORKLOADS.iter().map(move |case| Case {
                parties: usize::from(parties),
                ..*case
            })
        })
        .collect()
}

pub async fn run(args: BenchArgs, config: &Config) -> anyhow::Result<i32> {
    let out = std::path::absolute(&args.out)?;
    std::fs::create_dir_all(&out)
        .with_context(|| format!("cannot create the output folder {}", out.display()))?;
    if args.only != Some(BenchPart::Mpyc) {
        let tables = streams::run(args.repeat as usize, &out).await?;
        println!("{tables}");
        std::fs::write(out.join("streams.md"), &tables)
            .with_context(|| format!("cannot write streams.md into {}", out.display()))?;
        if args.only == Some(BenchPart::Streams) {
            return Ok(0);
        }
    }
    let matrix = matrix(
        vec![Scenario::loopback()],
        workloads(&args.parties),
        &args.solutions,
        (args.repeat, &args.out),
        &args.run,
        config,
    )
    .await?;
    let failed = run_and_print(matrix, "partyline bench").await?;
    if failed > 0 {
        eprintln!(
            "partyline bench: {failed} runs failed; each party's output is under runs/ in {}",
            args.out.display()
        );
        return Ok(1);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parties_replace_every_workloads_own_count() {
        assert_eq!(workloads(&[]), WORKLOADS);
        let ten = workloads(&[3, 10]);
        assert_eq!(ten.len(), 2 * WORKLOADS.len());
        assert!(ten[..WORKLOADS.len()].iter().all(|case| case.parties == 3));
        assert!(ten[WORKLOADS.len()..].iter().all(|case| case.parties == 10));
        assert_eq!(ten[WORKLOADS.len()].demo, WORKLOADS[0].demo);
    }
}
