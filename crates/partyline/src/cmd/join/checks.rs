//! What the user asked to check before the program starts: `--expect`
//! (exactly these names) and `--confirm` (the fingerprint typed back).
use partyline_wire::announce::{check_name, normalize_name};
use partyline_wire::{Fingerprint, Roster};

use super::seat::{End, Leave};
use super::shutdown::{Interrupted, Shutdown};
use crate::cli::JoinArgs;

/// What the user asked to check before the program starts (--expect, --confirm).
pub(super) struct Checks {
    expected: Option<Vec<String>>,
    confirm: bool,
}

/// Why we will not start the program with this roster.
#[derive(Debug)]
pub(super) enum Refusal {
    /// The roster's names are not those of --expect.
    Unexpected {
        missing: Vec<String>,
        extra: Vec<String>,
    },
    /// The fingerprint typed for --confirm is not this roster's.
    WrongFingerprint,
    /// Stdin ended before a fingerprint was typed.
    NotConfirmed,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Unexpected { missing, extra } => {
                let mut differences = Vec::new();
                if !missing.is_empty() {
                    differences.push(format!("missing: {}", missing.join(", ")));
                }
                if !extra.is_empty() {
                    differences.push(format!("not expected: {}", extra.join(", ")));
                }
                write!(
                    f,
                    "the roster is not the one --expect names ({})",
                    differences.join("; ")
                )
            }
            Refusal::WrongFingerprint => {
                write!(f, "the fingerprint typed is not this session's fingerprint")
            }
            Refusal::NotConfirmed => write!(f, "stdin ended before a fingerprint was typed"),
        }
    }
}

impl Refusal {
    /// The refusal as our exit error, with what to do next.
    pub(super) fn error(&self) -> anyhow::Error {
        let advice = match self {
            Refusal::Unexpected { .. } => {
                "Agree with the others on who takes part, then start a new session; if a stranger \
                 joined, the invite has leaked: share the new one more carefully"
            }
            Refusal::WrongFingerprint | Refusal::NotConfirmed => {
                "If you typed what the others read out, someone sees a different roster: start a \
                 new session and share its invite only with the parties"
            }
        };
        anyhow::anyhow!("{self}; the program did not start. {advice}")
    }
}

impl Checks {
    /// --expect's names are normalised as every party normalises its own.
    pub(super) fn from_args(args: &JoinArgs) -> anyhow::Result<Self> {
        let expected = match &args.expect {
            Some(names) => {
                let names: Vec<String> = names.iter().map(|n| normalize_name(n.trim())).collect();
                for name in &names {
                    check_name(name).map_err(|e| anyhow::anyhow!("--expect: {e}"))?;
                }
                Some(names)
            }
            None => None,
        };
        Ok(Self {
            expected,
            confirm: args.confirm,
        })
    }

    /// `None` if the roster may be used, else why not. Asks the user only
    /// when the names agree.
    pub(super) async fn run(
        &self,
        roster: &Roster,
        shutdown: &mut Shutdown,
    ) -> Result<Option<Refusal>, End> {
        if let Some(expected) = &self.expected {
            let names = roster.members.iter().map(|m| m.name.clone()).collect();
            let (missing, extra) = differences(expected, names);
            if !missing.is_empty() || !extra.is_empty() {
                return Ok(Some(Refusal::Unexpected { missing, extra }));
            }
        }
        if !self.confirm {
            return Ok(None);
        }
        eprintln!(
            "partyline: type the fingerprint the other parties read out (at least its first {} words) and press Enter:",
            Fingerprint::SHORT_WORDS
        );
        match shutdown.race(tokio::task::spawn_blocking(typed_line)).await {
            Err(Interrupted) => Err(End::interrupted(
                Leave::Close,
                "interrupted while waiting for the fingerprint",
            )),
            Ok(Ok(Ok(None))) => Ok(Some(Refusal::NotConfirmed)),
            Ok(Ok(Ok(Some(typed)))) if roster.fingerprint().matches(&typed) => Ok(None),
            Ok(Ok(Ok(Some(_)))) => Ok(Some(Refusal::WrongFingerprint)),
            Ok(Ok(Err(error))) => Err(End::with(
                Leave::Close,
                Err(anyhow::Error::new(error).context("cannot read the fingerprint from stdin")),
            )),
            Ok(Err(error)) => Err(End::with(Leave::Close, Err(error.into()))),
        }
    }
}

/// The first line on stdin that is not blank; `None` once stdin ends.
fn typed_line() -> std::io::Result<Option<String>> {
    let mut line = String::new();
    loop {
        line.clear();
        if std::io::stdin().read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if !line.trim().is_empty() {
            return Ok(Some(line));
        }
    }
}

/// The names `expected` has and `names` lacks, and those `names` has beyond
/// them; both empty when they agree. Order does not matter.
fn differences(expected: &[String], mut names: Vec<String>) -> (Vec<String>, Vec<String>) {
    let mut missing = Vec::new();
    for name in expected {
        match names.iter().position(|n| n == name) {
            Some(found) => {
                names.remove(found);
            }
            None => missing.push(name.clone()),
        }
    }
    (missing, names)
}

#[cfg(test)]
mod tests {
    use super::differences;

    fn names(list: &str) -> Vec<String> {
        list.split(',')
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn differences_ignore_order_and_count_repeats() {
        let diff = |expected, roster| differences(&names(expected), names(roster));
        assert_eq!(diff("carol,alice,bob", "alice,bob,carol"), (vec![], vec![]));
        assert_eq!(
            diff("alice,bob,carol", "alice,bob"),
            (names("carol"), vec![])
        );
        assert_eq!(diff("alice", "alice,bob"), (vec![], names("bob")));
        assert_eq!(
            diff("alice,robert", "alice,bob"),
            (names("robert"), names("bob"))
        );
        assert_eq!(
            diff("alice,alice", "alice,bob"),
            (names("alice"), names("bob"))
        );
    }
}
