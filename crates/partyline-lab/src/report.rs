//! The matrix's results: one CSV row per run (failed runs too), and a
//! markdown summary with medians and ratios to `tcp`; [`median`] is the one
//! median the workspace uses.
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use partyline_launch::mpyc;

use crate::error::{LabError, Result};

pub const CSV_HEADER: &str = "scenario,solution,parties,demo,size,repeat,status,wall_s,mpyc_s,bytes,setup_s,paths,program_cpu_s,partyline_cpu_s,error";

/// One run.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub scenario: String,
    pub solution: String,
    pub parties: usize,
    pub demo: String,
    pub size: String,
    pub repeat: usize,
    /// `ok` or `failed`.
    pub status: String,
    pub wall_s: Option<f64>,
    /// MPyC's own run time of the slowest party ([`crate::solutions::Outcome::mpyc`]).
    pub mpyc_s: Option<f64>,
    pub bytes: Option<u64>,
    pub setup_s: Option<f64>,
    pub paths: String,
    /// CPU seconds of one party's program, the mean over parties.
    pub program_cpu_s: Option<f64>,
    /// CPU seconds of one party's partyline, the mean over parties.
    pub partyline_cpu_s: Option<f64>,
    pub error: String,
}

impl Row {
    pub fn ok(&self) -> bool {
        self.status == "ok"
    }

    fn csv(&self) -> String {
        let num = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or_default();
        [
            quote(&self.scenario),
            quote(&self.solution),
            self.parties.to_string(),
            quote(&self.demo),
            quote(&self.size),
            self.repeat.to_string(),
            quote(&self.status),
            num(self.wall_s),
            num(self.mpyc_s),
            self.bytes.map(|b| b.to_string()).unwrap_or_default(),
            num(self.setup_s),
            quote(&self.paths),
            num(self.program_cpu_s),
            num(self.partyline_cpu_s),
            quote(&self.error),
        ]
        .join(",")
    }
}

/// RFC 4180 quoting where needed.
fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// The CSV file, written a row at a time so that an interrupted matrix
/// keeps what it measured.
pub struct CsvWriter {
    file: File,
    pub path: PathBuf,
}

impl CsvWriter {
    pub fn create(path: &Path) -> Result<Self> {
        let mut file = File::create(path).map_err(LabError::io(path))?;
        writeln!(file, "{CSV_HEADER}").map_err(LabError::io(path))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn write(&mut self, row: &Row) -> Result<()> {
        writeln!(self.file, "{}", row.csv()).map_err(LabError::io(&self.path))?;
        self.file.flush().map_err(LabError::io(&self.path))
    }
}

/// The median: the middle value, or the mean of the two middle values of an
/// even count; `None` for no values. Sorts `values`.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

/// Key of a table line: scenario, demo, size, parties, solution.
type Key = (String, String, String, usize, String);

/// Median wall time (s) of the successful runs per table line.
pub fn median_walls(rows: &[Row]) -> BTreeMap<Key, f64> {
    medians(rows, |row| row.wall_s)
}

/// Median of `value` over the successful runs per table line.
fn medians(rows: &[Row], value: impl Fn(&Row) -> Option<f64>) -> BTreeMap<Key, f64> {
    let mut groups: BTreeMap<Key, Vec<f64>> = BTreeMap::new();
    for row in rows.iter().filter(|r| r.ok()) {
        if let Some(v) = value(row) {
            groups.entry(key(row)).or_default().push(v);
        }
    }
    groups
        .into_iter()
        .filter_map(|(k, mut v)| median(&mut v).map(|m| (k, m)))
        .collect()
}

fn key(row: &Row) -> Key {
    (
        row.scenario.clone(),
        row.demo.clone(),
        row.size.clone(),
        row.parties,
        row.solution.clone(),
    )
}

/// The markdown summary: one line per scenario, demo, size, parties and
/// solution, in the order the rows came.
pub fn summary(rows: &[Row], command: &str) -> String {
    let walls = median_walls(rows);
    let mpyc_times = medians(rows, |row| row.mpyc_s);
    let mut lines: Vec<Key> = Vec::new();
    for row in rows {
        let k = key(row);
        if !lines.contains(&k) {
            lines.push(k);
        }
    }
    let mut out = String::new();
    out.push_str("# partyline lab results\n\n");
    out.push_str(&format!("Command: `{command}`\n\n"));
    out.push_str("Wall time: from starting the parties' processes to the last one exiting (partyline: including joining and connecting). ");
    out.push_str(
        "MPyC: MPyC's own time from start to shutdown (the computation alone), slowest party. ",
    );
    out.push_str("Ratios: median over `tcp`'s median on the same line. Bytes: MPyC's payload count summed over parties. ");
    out.push_str("Set-up: partyline's mesh set-up (slowest party), tcp-ssl's certificate generation, wireguard's configuration. ");
    out.push_str("CPU per party: CPU seconds (user + system) of one party's MPyC and of its partyline, the mean over parties, median over runs.\n\n");
    if let Some(note) = threshold_note(rows) {
        out.push_str(&note);
        out.push_str("\n\n");
    }
    out.push_str("| scenario | demo | size | parties | solution | ok/runs | median wall s | ratio to tcp | median MPyC s | MPyC ratio to tcp | median set-up s | median MB sent | CPU s per party: MPyC / partyline | paths |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for k in &lines {
        let group: Vec<&Row> = rows.iter().filter(|r| key(r) == *k).collect();
        let ok: Vec<&&Row> = group.iter().filter(|r| r.ok()).collect();
        let wall = walls.get(k).copied();
        let tcp_key = (
            k.0.clone(),
            k.1.clone(),
            k.2.clone(),
            k.3,
            "tcp".to_string(),
        );
        let ratio = |this: Option<f64>, tcp: Option<&f64>| match (this, tcp) {
            (Some(x), Some(t)) if *t > 0.0 => format!("{:.2}", x / t),
            _ => "–".into(),
        };
        let mpyc = mpyc_times.get(k).copied();
        let mut setups: Vec<f64> = ok.iter().filter_map(|r| r.setup_s).collect();
        let mut mbs: Vec<f64> = ok
            .iter()
            .filter_map(|r| r.bytes.map(|b| b as f64 / 1e6))
            .collect();
        let fmt = |v: Option<f64>, digits: usize| {
            v.map(|v| format!("{v:.digits$}"))
                .unwrap_or_else(|| "–".into())
        };
        let mut program_cpu: Vec<f64> = ok.iter().filter_map(|r| r.program_cpu_s).collect();
        let mut partyline_cpu: Vec<f64> = ok.iter().filter_map(|r| r.partyline_cpu_s).collect();
        let cpu = format!(
            "{} / {}",
            fmt(median(&mut program_cpu), 2),
            fmt(median(&mut partyline_cpu), 2)
        );
        let paths = ok.last().map(|r| r.paths.clone()).unwrap_or_default();
        let failure = group
            .iter()
            .find(|r| !r.ok())
            .map(|r| format!(" (failed: {})", short(&r.error)))
            .unwrap_or_default();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {}/{}{} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            k.0,
            k.1,
            k.2,
            k.3,
            k.4,
            ok.len(),
            group.len(),
            failure,
            fmt(wall, 2),
            ratio(wall, walls.get(&tcp_key)),
            fmt(mpyc, 3),
            ratio(mpyc, mpyc_times.get(&tcp_key)),
            fmt(median(&mut setups), 2),
            fmt(median(&mut mbs), 2),
            cpu,
            paths
        ));
    }
    out
}

/// Which runs passed MPyC `-T 1` and why, if any did (see
/// [`mpyc::benchmark_threshold_flags`]).
fn threshold_note(rows: &[Row]) -> Option<String> {
    let mut low: Vec<usize> = rows
        .iter()
        .map(|row| row.parties)
        .filter(|&parties| !mpyc::benchmark_threshold_flags(parties).is_empty())
        .collect();
    low.sort_unstable();
    low.dedup();
    let largest = *low.last()?;
    let counts: Vec<String> = low.iter().map(usize::to_string).collect();
    let t = mpyc::default_threshold(largest);
    Some(format!(
        "MPyC threshold: with {} or more parties (here {}) every solution runs MPyC with `-T 1`. \
         MPyC's default t = (n-1)/2 ({t} at {largest} parties) makes each party set up C(n, t) \
         PRSS keys ({} at {largest}) and such runs impractically slow. Fewer parties run with \
         MPyC's default threshold.",
        mpyc::LOW_THRESHOLD_FROM,
        counts.join(", "),
        binomial(largest, t),
    ))
}

/// n choose k.
fn binomial(n: usize, k: usize) -> u128 {
    (0..k).fold(1u128, |acc, i| acc * (n - i) as u128 / (i + 1) as u128)
}

/// The first 80 characters of an error, safe inside a table cell.
fn short(error: &str) -> String {
    let cleaned = error.replace('|', "/").replace('\n', " ");
    match cleaned.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", &cleaned[..at]),
        None => cleaned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(solution: &str, wall: f64, ok: bool) -> Row {
        Row {
            scenario: "s".into(),
            solution: solution.into(),
            parties: 3,
            demo: "d".into(),
            size: "low".into(),
            repeat: 0,
            status: if ok { "ok" } else { "failed" }.into(),
            wall_s: Some(wall),
            mpyc_s: Some(wall / 2.0),
            bytes: Some(1_000_000),
            setup_s: None,
            paths: String::new(),
            program_cpu_s: Some(wall / 4.0),
            partyline_cpu_s: None,
            error: if ok {
                String::new()
            } else {
                "boom, \"badly\"".into()
            },
        }
    }

    #[test]
    fn summary_says_when_runs_used_a_threshold_of_one() {
        let at = |parties| Row {
            parties,
            ..row("tcp", 1.0, true)
        };
        let small = summary(&[at(3), at(5)], "partyline bench");
        assert!(!small.contains("-T 1"), "{small}");
        let ten = summary(&[at(3), at(10)], "partyline bench --parties 3,10");
        assert!(
            ten.contains(&format!(
                "with {} or more parties (here 10) every solution runs MPyC with `-T 1`",
                mpyc::LOW_THRESHOLD_FROM
            )),
            "{ten}"
        );
        assert!(ten.contains("(4 at 10 parties)"), "{ten}");
        assert!(ten.contains("PRSS keys (210 at 10)"), "{ten}");
        assert_eq!(binomial(10, 4), 210);
        assert_eq!(binomial(5, 0), 1);
    }

    #[test]
    fn csv_quotes_commas_and_quotes() {
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote("plain"), "plain");
    }

    #[test]
    fn summary_has_ratio_and_counts_failures() {
        let rows = vec![
            row("tcp", 2.0, true),
            row("tcp", 4.0, true),
            row("partyline", 6.0, true),
            row("partyline", 1.0, false),
        ];
        let text = summary(&rows, "partyline lab run");
        assert!(
            text.contains("| s | d | low | 3 | tcp | 2/2 | 3.00 | 1.00 | 1.500 | 1.00 |"),
            "{text}"
        );
        assert!(
            text.contains(
                "| partyline | 1/2 (failed: boom, \"badly\") | 6.00 | 2.00 | 3.000 | 2.00 |"
            ),
            "{text}"
        );
        assert!(text.contains("| 0.75 / – |"), "{text}");
        assert!(text.contains("| 1.50 / – |"), "{text}");
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }
}
