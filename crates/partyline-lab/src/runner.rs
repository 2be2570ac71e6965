//! The benchmark matrix: every scenario × party count builds one lab, in
//! which every case (demo and size) with that many parties runs once per
//! repetition and solution, with a progress bar. The solutions take turns
//! within each repetition, so that drifting machine load affects them alike.
//! Each run becomes a CSV row at once (failed runs too); at the end come the
//! markdown summary and the plots.
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use partyline_launch::mpyc;

use crate::error::{LabError, Result};
use crate::nat::NatKind;
use crate::report::{CsvWriter, Row};
use crate::scenario::Scenario;
use crate::solutions::{self, Context, Outcome, Solution};
use crate::topology::{Lab, TopologySpec};
use crate::workload::{Demo, Size, Sources, Workload};
use crate::{interrupt, plot, report};

/// The first TCP port MPyC parties listen on; each run takes the next.
const FIRST_PORT: u16 = 20000;

/// One workload at one party count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Case {
    pub parties: usize,
    pub demo: Demo,
    pub size: Size,
}

impl Case {
    /// Every party count × demo × size, grouped by party count.
    pub fn all(parties: &[usize], demos: &[Demo], sizes: &[Size]) -> Vec<Self> {
        let mut cases = Vec::new();
        for &parties in parties {
            for &demo in demos {
                for &size in sizes {
                    cases.push(Self {
                        parties,
                        demo,
                        size,
                    });
                }
            }
        }
        cases
    }
}

/// What to run, and where to write the results.
#[derive(Debug, Clone)]
pub struct Matrix {
    pub scenarios: Vec<Scenario>,
    /// Run in this order within each lab; one lab per party count.
    pub cases: Vec<Case>,
    pub solutions: Vec<Solution>,
    pub repeat: usize,
    /// Per party, in order (the last repeats); empty: all public.
    pub nats: Vec<NatKind>,
    pub rate_mbit: Option<f64>,
    pub timeout: Duration,
    pub out: PathBuf,
    /// The partyline binary.
    pub exe: PathBuf,
    pub sources: Sources,
    pub show_progress: bool,
    /// The command line, quoted in the summary.
    pub command: String,
}

/// Where the results went.
#[derive(Debug)]
pub struct Results {
    pub rows: Vec<Row>,
    pub csv: PathBuf,
    pub summary: PathBuf,
    pub plots: Vec<PathBuf>,
}

pub fn run(matrix: &Matrix) -> Result<Results> {
    interrupt::install()?;
    std::fs::create_dir_all(&matrix.out).map_err(LabError::io(&matrix.out))?;
    let mut csv = CsvWriter::create(&matrix.out.join("results.csv"))?;
    let total =
        matrix.scenarios.len() * matrix.cases.len() * matrix.repeat * matrix.solutions.len();
    let bar = if matrix.show_progress {
        ProgressBar::new(total as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    let mut workloads: Vec<(Demo, Size, std::result::Result<Workload, String>)> = Vec::new();
    for case in &matrix.cases {
        if !workloads
            .iter()
            .any(|(d, s, _)| (*d, *s) == (case.demo, case.size))
        {
            bar.set_message(format!("preparing {} ({})", case.demo, case.size));
            let workload = Workload::prepare(case.demo, case.size, &matrix.sources);
            workloads.push((case.demo, case.size, workload.map_err(|e| e.to_string())));
        }
    }
    let mut party_counts: Vec<usize> = Vec::new();
    for case in &matrix.cases {
        if !party_counts.contains(&case.parties) {
            party_counts.push(case.parties);
        }
    }

    let mut rows = Vec::new();
    let mut port = FIRST_PORT;
    for scenario in &matrix.scenarios {
        for &n in &party_counts {
            interrupt::check()?;
            let dir = matrix
                .out
                .join("runs")
                .join(format!("{}-{n}", scenario.name));
            std::fs::create_dir_all(&dir).map_err(LabError::io(&dir))?;
            bar.set_message(format!("building {} with {n} parties", scenario.name));
            let lab = TopologySpec::new(scenario.clone(), n, &matrix.nats, matrix.rate_mbit)
                .and_then(|spec| Lab::build(spec, &matrix.exe, &dir));
            let mut lab_cell = LabCell {
                lab: lab.map_err(|e| match e {
                    LabError::Interrupted => e,
                    e => e,
                }),
                server: None,
            };
            if matches!(lab_cell.lab, Err(LabError::Interrupted)) {
                return Err(LabError::Interrupted);
            }
            for case in matrix.cases.iter().filter(|c| c.parties == n) {
                let (demo, size, workload) = workloads
                    .iter()
                    .find(|(d, s, _)| (*d, *s) == (case.demo, case.size))
                    .ok_or_else(|| LabError::invalid("case", "its workload was not prepared"))?;
                for repeat in 0..matrix.repeat {
                    for &solution in &matrix.solutions {
                        bar.set_message(format!(
                            "{} n={n} {demo} ({size}) #{repeat} {solution}",
                            scenario.name
                        ));
                        port = port.checked_add(1).unwrap_or(FIRST_PORT);
                        let run_dir = dir.join(format!("{demo}-{size}-{repeat}-{solution}"));
                        let outcome = match workload {
                            Ok(w) => lab_cell.run(matrix, w, solution, &run_dir, port),
                            Err(e) => Err(LabError::invalid("workload", e.clone())),
                        };
                        if matches!(outcome, Err(LabError::Interrupted)) {
                            return Err(LabError::Interrupted);
                        }
                        let row = to_row(scenario, solution, n, *demo, *size, repeat, outcome);
                        csv.write(&row)?;
                        bar.inc(1);
                        rows.push(row);
                    }
                }
            }
        }
    }
    bar.finish_and_clear();
    let summary_path = matrix.out.join("summary.md");
    let mut text = report::summary(&rows, &matrix.command);
    for scenario in matrix.scenarios.iter().filter(|s| !s.faults.is_empty()) {
        text.push_str(&format!(
            "\nFaults in {} (each run; times from its start; logged in its faults.log): {}.\n",
            scenario.name,
            crate::fault::describe(&scenario.faults)
        ));
    }
    std::fs::write(&summary_path, text).map_err(LabError::io(&summary_path))?;
    let plots = plot::write_plots(&rows, &matrix.out.join("plots"))?;
    Ok(Results {
        rows,
        csv: csv.path,
        summary: summary_path,
        plots,
    })
}

/// A lab (or why it could not be built) and its partyline server, started
/// on first use.
struct LabCell {
    lab: Result<Lab>,
    server: Option<solutions::partyline::Server>,
}

impl LabCell {
    fn run(
        &mut self,
        matrix: &Matrix,
        workload: &Workload,
        solution: Solution,
        dir: &Path,
        port: u16,
    ) -> Result<Outcome> {
        let lab = self
            .lab
            .as_mut()
            .map_err(|e| LabError::invalid("lab", e.to_string()))?;
        if !lab.delay_stage_alive() {
            return Err(LabError::DelayStage(
                "it exited; see delay-stage.err in the lab's run folder".into(),
            ));
        }
        std::fs::create_dir_all(dir).map_err(LabError::io(dir))?;
        let n = lab.parties.len();
        let ctx = Context {
            ports: lab.mpyc_ports(port)?,
            lab,
            exe: &matrix.exe,
            workload,
            dir: dir.to_path_buf(),
            timeout: matrix.timeout,
            mpyc_extra: mpyc::benchmark_threshold_flags(n),
            faults: &lab.spec.scenario.faults,
        };
        match solution {
            Solution::Tcp => solutions::tcp::run(&ctx, false),
            Solution::TcpSsl => solutions::tcp::run(&ctx, true),
            Solution::Wireguard => solutions::wireguard::run(&ctx),
            Solution::Partyline | Solution::PartylineRelay => {
                if self.server.as_mut().is_none_or(|s| !s.alive()) {
                    let server_dir = dir.parent().unwrap_or(dir);
                    self.server = Some(solutions::partyline::Server::start(
                        ctx.lab,
                        &matrix.exe,
                        server_dir,
                    )?);
                }
                let server = self
                    .server
                    .as_ref()
                    .ok_or_else(|| LabError::invalid("server", "not running"))?;
                solutions::partyline::run(&ctx, server, solution == Solution::PartylineRelay)
            }
        }
    }
}

fn to_row(
    scenario: &Scenario,
    solution: Solution,
    parties: usize,
    demo: Demo,
    size: Size,
    repeat: usize,
    outcome: Result<Outcome>,
) -> Row {
    let base = Row {
        scenario: scenario.name.clone(),
        solution: solution.to_string(),
        parties,
        demo: demo.to_string(),
        size: size.to_string(),
        repeat,
        status: "failed".into(),
        wall_s: None,
        mpyc_s: None,
        bytes: None,
        setup_s: None,
        paths: String::new(),
        program_cpu_s: None,
        partyline_cpu_s: None,
        error: String::new(),
    };
    match outcome {
        Ok(o) => Row {
            status: if o.error.is_none() { "ok" } else { "failed" }.into(),
            wall_s: Some(o.wall.as_secs_f64()),
            mpyc_s: o.mpyc.map(|d| d.as_secs_f64()),
            bytes: o.bytes,
            setup_s: o.setup.map(|s| s.as_secs_f64()),
            paths: o.paths,
            program_cpu_s: o.program_cpu.map(|d| d.as_secs_f64()),
            partyline_cpu_s: o.carrier_cpu.map(|d| d.as_secs_f64()),
            error: o.error.unwrap_or_default(),
            ..base
        },
        Err(e) => Row {
            error: e.to_string(),
            ..base
        },
    }
}
