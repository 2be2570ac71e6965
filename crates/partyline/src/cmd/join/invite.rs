//! Where `join` reads the invite (or a short code) from: the argument,
//! stdin, a file or the environment, exactly one of them.
use std::io::IsTerminal;

use anyhow::{Context, bail};
use partyline_wire::code::looks_like_code;
use partyline_wire::{Code, Invite};

use crate::cli::JoinArgs;

/// The environment variable that can hold the invite, off the command line.
pub(super) const INVITE_VAR: &str = "PARTYLINE_INVITE";

/// What a party joins with: the invite itself, or a short code that the
/// session's host exchanges for it.
pub(super) enum Ticket {
    Invite(Invite),
    Code(Code),
}

/// Reads the invite or code from the one place it was given: the argument,
/// `-` (a line on stdin), --invite-file or the environment. Every local user
/// can read a command line; the other three stay private to us.
pub(super) fn read_ticket(args: &JoinArgs) -> anyhow::Result<Ticket> {
    let from_env = std::env::var(INVITE_VAR)
        .ok()
        .filter(|text| !text.trim().is_empty());
    if args.confirm && args.invite.as_deref() == Some("-") {
        bail!(
            "--confirm reads the fingerprint from stdin, so the invite cannot come from stdin too: \
             give it in {INVITE_VAR} or with --invite-file"
        );
    }
    let text = match (&args.invite, &args.invite_file, from_env) {
        (Some(arg), None, None) if arg == "-" => read_invite_line()?,
        (Some(arg), None, None) => arg.clone(),
        (None, Some(path), None) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the invite from {}", path.display()))?,
        (None, None, Some(text)) => text,
        (None, None, None) => bail!(
            "no invite given: pass it as the argument, `-` to read it from stdin, \
             --invite-file FILE, or set {INVITE_VAR}; on a shared machine use one of the last three"
        ),
        (arg, file, env) => {
            let given = [
                arg.as_ref().map(|_| "the INVITE argument"),
                file.as_ref().map(|_| "--invite-file"),
                env.as_ref().map(|_| INVITE_VAR),
            ];
            let given: Vec<&str> = given.into_iter().flatten().collect();
            bail!(
                "the invite is given more than once ({}); give it in exactly one way",
                given.join(" and ")
            )
        }
    };
    if looks_like_code(&text) {
        return Ok(Ticket::Code(text.parse()?));
    }
    Ok(Ticket::Invite(text.trim().parse()?))
}

/// One line from stdin. Blocking is fine here: nothing else runs yet.
fn read_invite_line() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("partyline: paste the invite and press Enter:");
    }
    let mut line = String::new();
    stdin
        .read_line(&mut line)
        .context("cannot read the invite from stdin")?;
    if line.trim().is_empty() {
        bail!("stdin ended before an invite was read: give the invite as one line on stdin");
    }
    Ok(line)
}
