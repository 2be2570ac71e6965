//! Announcing ourselves and waiting until the coordinator lists every party.
//!
//! Written once against [`CoordinatorApi`], which native parties implement
//! with an HTTPS client that pins the server's certificate and browsers with
//! `fetch`.
use std::time::Duration;

use partyline_wire::announce::AnnouncementKey;
use partyline_wire::api::{SessionState, SessionView};
use partyline_wire::roster::verify_all;
use partyline_wire::{Announcement, Invite, Roster, RosterError, SessionId, SignedAnnouncement};

/// The two coordinator calls announce-and-wait needs.
///
/// No `Send` bound: the browser's futures are not `Send`, and native parties
/// await the wait where they started it.
#[allow(async_fn_in_trait)]
pub trait CoordinatorApi {
    type Error: From<WaitError>;

    /// Announces us (idempotent); answers with the session as it is now.
    async fn announce(
        &self,
        session: &SessionId,
        signed: &SignedAnnouncement,
    ) -> Result<SessionView, Self::Error>;

    /// The session once the number of announcements differs from `seen`, or
    /// after the server's long-poll limit (see `partyline_wire::api::path::session_after`).
    async fn wait_for_change(
        &self,
        session: &SessionId,
        seen: usize,
    ) -> Result<SessionView, Self::Error>;
}

/// Who has joined so far, for a progress display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    pub joined: Vec<String>,
    pub expected: usize,
}

/// Why waiting for the roster stopped, apart from the coordinator failing.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error(transparent)]
    Roster(#[from] RosterError),
    #[error("this session has already finished; ask for a new invite")]
    AlreadyFinished,
    #[error("gave up after {}s: {} of {expected} parties joined ({})", waited.as_secs(), joined.len(), if joined.is_empty() { "none".to_string() } else { joined.join(", ") })]
    Timeout {
        joined: Vec<String>,
        expected: usize,
        waited: Duration,
    },
}

/// Announces `own` and returns the verified roster once all parties are listed.
///
/// Every answer from the coordinator is verified as it comes, so a forged
/// entry stops the wait at once with the reason. `on_progress` is called with
/// each new list of verified names.
pub async fn announce_and_wait<C: CoordinatorApi>(
    coordinator: &C,
    invite: &Invite,
    own: &Announcement,
    timeout: Duration,
    mut on_progress: impl FnMut(&Progress),
) -> Result<Roster, C::Error> {
    let key = AnnouncementKey::derive(invite);
    let signed = key.sign(own);
    let deadline = n0_future::time::Instant::now() + timeout;
    let mut view = coordinator.announce(&invite.session, &signed).await?;
    let mut last_shown = None;
    loop {
        if view.state == SessionState::Done {
            return Err(WaitError::AlreadyFinished.into());
        }
        let verified = verify_all(&key, &view.announcements).map_err(WaitError::from)?;
        let progress = Progress {
            joined: verified.iter().map(|a| a.name.clone()).collect(),
            expected: usize::from(invite.parties),
        };
        if last_shown.as_ref() != Some(&progress) {
            on_progress(&progress);
            last_shown = Some(progress.clone());
        }
        if let Some(roster) =
            Roster::build(invite, &own.endpoint, &view.announcements).map_err(WaitError::from)?
        {
            return Ok(roster);
        }
        if !verified.iter().any(|a| a.endpoint == own.endpoint) {
            // The server forgot us (a restart from an old database, or a
            // withdrawn duplicate): announcing is idempotent, so say it again.
            view = coordinator.announce(&invite.session, &signed).await?;
            continue;
        }
        let seen = view.announcements.len();
        let left = deadline.saturating_duration_since(n0_future::time::Instant::now());
        view = n0_future::time::timeout(left, coordinator.wait_for_change(&invite.session, seen))
            .await
            .map_err(|_| WaitError::Timeout {
                joined: progress.joined.clone(),
                expected: progress.expected,
                waited: timeout,
            })??;
    }
}
