//! What the user asked to check before the program starts: `--expect`
//! (exactly these names) and `--confirm` (the fingerprint typed back), with
//! the checks of `partyline_wire::checks` that the page runs too.
use partyline_wire::Fingerprint;
use partyline_wire::Roster;
use partyline_wire::checks::{ExpectedNames, Refusal, check_typed};

use super::seat::{End, Leave};
use super::shutdown::{Interrupted, Shutdown};
use crate::cli::JoinArgs;

/// What the user asked to check before the program starts (--expect, --confirm).
pub(super) struct Checks {
    expected: Option<ExpectedNames>,
    confirm: bool,
}

/// The refusal as our exit error, with what to do next.
pub(super) fn refusal_error(refusal: &Refusal) -> anyhow::Error {
    anyhow::anyhow!("{refusal}; the program did not start. {}", refusal.advice())
}

impl Checks {
    /// --expect's names are normalised as every party normalises its own.
    pub(super) fn from_args(args: &JoinArgs) -> anyhow::Result<Self> {
        let expected = match &args.expect {
            Some(names) => Some(
                ExpectedNames::parse(names.iter().map(String::as_str))
                    .map_err(|e| anyhow::anyhow!("--expect: {e}"))?,
            ),
            None => None,
        };
        Ok(Self {
            expected,
            confirm: args.confirm,
        })
    }

    /// Whether --expect gave names.
    pub(super) fn expects_names(&self) -> bool {
        self.expected.is_some()
    }

    /// `None` if the roster may be used, else why not. Asks the user only
    /// when the names agree.
    pub(super) async fn run(
        &self,
        roster: &Roster,
        shutdown: &mut Shutdown,
    ) -> Result<Option<Refusal>, End> {
        if let Some(Err(refusal)) = self.expected.as_ref().map(|e| e.check(roster)) {
            return Ok(Some(refusal));
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
            Ok(Ok(Ok(Some(typed)))) => Ok(check_typed(&roster.fingerprint(), &typed).err()),
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
