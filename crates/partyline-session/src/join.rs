//! Announcing ourselves and waiting until the coordinator lists every party.
use std::time::Duration;

use partyline_wire::announce::AnnouncementKey;
use partyline_wire::api::SessionState;
use partyline_wire::roster::verify_all;
use partyline_wire::{Announcement, Invite, Roster};
use tokio::time::Instant;

use crate::SessionError;
use crate::coordinator::Coordinator;

/// Who has joined so far, for a progress display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    pub joined: Vec<String>,
    pub expected: usize,
}

/// Announces `own` and returns the verified roster once all parties are listed.
///
/// Every answer from the coordinator is verified as it comes, so a forged
/// entry stops the wait at once with the reason. `on_progress` is called with
/// each new list of verified names.
pub async fn announce_and_wait(
    coordinator: &Coordinator,
    invite: &Invite,
    own: &Announcement,
    timeout: Duration,
    mut on_progress: impl FnMut(&Progress),
) -> Result<Roster, SessionError> {
    let key = AnnouncementKey::derive(invite);
    let signed = key.sign(own);
    let deadline = Instant::now() + timeout;
    let mut view = coordinator.announce(&invite.session, &signed).await?;
    let mut last_shown = None;
    loop {
        if view.state == SessionState::Done {
            return Err(SessionError::AlreadyFinished);
        }
        let verified = verify_all(&key, &view.announcements)?;
        let progress = Progress {
            joined: verified.iter().map(|a| a.name.clone()).collect(),
            expected: usize::from(invite.parties),
        };
        if last_shown.as_ref() != Some(&progress) {
            on_progress(&progress);
            last_shown = Some(progress.clone());
        }
        if let Some(roster) = Roster::build(invite, &own.endpoint, &view.announcements)? {
            return Ok(roster);
        }
        if !verified.iter().any(|a| a.endpoint == own.endpoint) {
            // The server forgot us (a restart from an old database, or a
            // withdrawn duplicate): announcing is idempotent, so say it again.
            view = coordinator.announce(&invite.session, &signed).await?;
            continue;
        }
        let seen = view.announcements.len();
        view = tokio::time::timeout_at(deadline, coordinator.session(&invite.session, Some(seen)))
            .await
            .map_err(|_| SessionError::JoinTimeout {
                joined: progress.joined.clone(),
                expected: progress.expected,
                waited: timeout,
            })??;
    }
}
