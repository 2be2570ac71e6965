//! A short code instead of the invite: the PAKE exchange with the session's
//! host (`partyline_proto::code`), through the server `--server` names.
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use partyline_proto::invite_from_code;
use partyline_session::{Coordinator, ServerLink};
use partyline_wire::{Code, Invite};

use crate::cli::JoinArgs;
use crate::cmd::create::trusted_pin;
use crate::config::Config;
use crate::progress::spinner;

/// The longest we wait for the host's answer: it is a program, and answers
/// in a moment if it still runs.
const HOST_ANSWER: Duration = Duration::from_secs(60);

/// Exchanges `code` for the invite with its host, by `deadline`.
pub(super) async fn invite_by_code(
    code: &Code,
    args: &JoinArgs,
    config: &Config,
    deadline: Instant,
) -> anyhow::Result<Invite> {
    let Some(server) = args.server.clone().or_else(|| config.server.clone()) else {
        bail!(
            "a short code needs its server: pass --server https://HOST:PORT#sha256=PIN as the host's \
             `partyline create --code` printed it (or set PARTYLINE_SERVER)"
        );
    };
    let link: ServerLink = server.parse().context("--server")?;
    let pin = trusted_pin(&link, deadline, "the full address the host printed").await?;
    let coordinator = Coordinator::new(&link.url, pin).with_deadline(deadline);
    let left = deadline.saturating_duration_since(Instant::now());
    let asking = spinner(format!(
        "giving code {}-… to its host through {}",
        code.nameplate(),
        link.url
    ));
    let exchanged = invite_from_code(&coordinator, code, HOST_ANSWER.min(left)).await;
    asking.finish_and_clear();
    let invite = exchanged.context("could not join by code")?;
    eprintln!(
        "partyline: the host accepted the code and sent the invite of session {}",
        invite.session
    );
    Ok(invite)
}
