//! A joiner's side of a short code: from `7-orbit-lamp-quiz` to the invite,
//! through the coordinator's relay, against any client of it (native or
//! browser), as [`crate::join`] is.
//!
//! The exchange itself (SPAKE2, key confirmation, the sealed invite) is
//! `partyline_wire::code_exchange`; this is its driver: find the nameplate's
//! session, open an attempt, wait for each of the host's answers.
use std::time::Duration;

use partyline_wire::api::{AttemptId, AttemptView, NameplateInfo};
use partyline_wire::code_exchange::{ExchangeError, JoinerPake};
use partyline_wire::{Code, Invite, Nameplate};

/// The coordinator calls a joiner makes.
///
/// No `Send` bound, as for [`crate::CoordinatorApi`].
#[allow(async_fn_in_trait)]
pub trait CodeRelay {
    type Error: From<CodeFailure>;

    /// The nameplate's session.
    async fn nameplate(&self, nameplate: Nameplate) -> Result<NameplateInfo, Self::Error>;

    /// Opens an attempt with our first message.
    async fn open_attempt(
        &self,
        nameplate: Nameplate,
        message: &str,
    ) -> Result<AttemptId, Self::Error>;

    /// Sends our next message.
    async fn send(
        &self,
        nameplate: Nameplate,
        attempt: &AttemptId,
        message: &str,
    ) -> Result<(), Self::Error>;

    /// The attempt once the host has sent more than `seen` messages, or
    /// after the server's long-poll limit.
    async fn wait_for_host(
        &self,
        nameplate: Nameplate,
        attempt: &AttemptId,
        seen: usize,
    ) -> Result<AttemptView, Self::Error>;

    /// The HTTP status of a refusal by the server, if `error` is one: 404
    /// (no such nameplate) and 410 (burned) are told apart from other errors.
    fn refusal_status(error: &Self::Error) -> Option<u16>;
}

/// Why a code did not give the invite, apart from the coordinator failing.
#[derive(Debug, thiserror::Error)]
pub enum CodeFailure {
    #[error(
        "there is no code {nameplate}-… on this server: check the number and the --server with the host; a code stops working once every seat is taken, when the host stops `partyline create --code`, or when the session ends"
    )]
    NoSuchCode { nameplate: Nameplate },
    #[error(
        "code {nameplate}-… was burned: the host saw too many wrong codes for it and now refuses every attempt, even with the right code. Ask the host for a new code (partyline create --code …)"
    )]
    Burned { nameplate: Nameplate },
    #[error(
        "the code was not accepted, and no invite was released: the host burned code {nameplate}-… before this try got its answer, after too many wrong codes (this try's among them if its words are not the host's). Check each word with the host and ask for a new code (partyline create --code …)"
    )]
    BurnedBeforeVerdict { nameplate: Nameplate },
    #[error(
        "the code was not accepted, and no invite was released: either its words are not the host's (check each word with the host; this try counted as one wrong guess, and the host burns the code after a few), or the server altered the exchange"
    )]
    Refused,
    #[error(
        "the code exchange failed, and no invite was released: {0}. If the code is right, the server (or something between you and it) is tampering with the exchange: tell the host"
    )]
    Tampered(ExchangeError),
    #[error(
        "the host did not answer within {} s: is its `partyline create --code` still running? Check with the host, then try again", waited.as_secs()
    )]
    HostSilent { waited: Duration },
}

impl From<ExchangeError> for CodeFailure {
    fn from(error: ExchangeError) -> Self {
        match error {
            ExchangeError::Refused => Self::Refused,
            other => Self::Tampered(other),
        }
    }
}

/// Runs a joiner's exchange for `code` and returns the invite the host sent,
/// or why there is none; gives up on a silent host after `timeout`.
pub async fn invite_from_code<R: CodeRelay>(
    relay: &R,
    code: &Code,
    timeout: Duration,
) -> Result<Invite, R::Error> {
    let nameplate = code.nameplate();
    let refused = |error: R::Error| -> R::Error {
        match R::refusal_status(&error) {
            Some(404) => CodeFailure::NoSuchCode { nameplate }.into(),
            Some(410) => CodeFailure::Burned { nameplate }.into(),
            _ => error,
        }
    };
    let info = relay.nameplate(nameplate).await.map_err(refused)?;
    let (pake, first) = JoinerPake::start(code, info.session);
    let attempt = relay
        .open_attempt(nameplate, &first)
        .await
        .map_err(refused)?;
    let deadline = n0_future::time::Instant::now() + timeout;
    let answer = host_message(relay, nameplate, &attempt, 0, deadline, timeout)
        .await
        .map_err(refused)?;
    let keys = pake.finish(&answer).map_err(CodeFailure::from)?;
    relay
        .send(nameplate, &attempt, &keys.confirmation())
        .await
        .map_err(refused)?;
    // The host answers a wrong confirmation and may burn the code at once,
    // which removes this attempt with its answer: a burn seen now is this
    // try's refusal too.
    let verdict = host_message(relay, nameplate, &attempt, 1, deadline, timeout)
        .await
        .map_err(|error| match R::refusal_status(&error) {
            Some(410) => CodeFailure::BurnedBeforeVerdict { nameplate }.into(),
            _ => refused(error),
        })?;
    Ok(keys.open(&verdict).map_err(CodeFailure::from)?)
}

/// The host's message number `index` (0-based), waited for until `deadline`.
async fn host_message<R: CodeRelay>(
    relay: &R,
    nameplate: Nameplate,
    attempt: &AttemptId,
    index: usize,
    deadline: n0_future::time::Instant,
    timeout: Duration,
) -> Result<String, R::Error> {
    loop {
        let left = deadline.saturating_duration_since(n0_future::time::Instant::now());
        let view = n0_future::time::timeout(left, relay.wait_for_host(nameplate, attempt, index))
            .await
            .map_err(|_| CodeFailure::HostSilent { waited: timeout })??;
        if let Some(message) = view.host.into_iter().nth(index) {
            return Ok(message);
        }
    }
}
