//! The host's side of a short code (`partyline create --code`).
//!
//! The host holds the invite and the code. It follows two things on the
//! coordinator at once, each by long poll: its nameplate's attempts, where it
//! answers every joiner's exchange (`partyline_wire::code_exchange`) and
//! hands the sealed invite to those whose confirmation shows the right code;
//! and the session, whose verified names are the progress. It ends when every
//! seat is taken, or burns the code once `max_failures` confirmations were
//! wrong: each wrong one is one guess at the code, and the server cannot
//! count them, since it cannot tell right from wrong.
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use partyline_proto::Progress;
use partyline_wire::api::{AttemptId, NameplateView, SessionState, SessionView};
use partyline_wire::code_exchange::{AttemptKeys, REFUSED, host_answer};
use partyline_wire::roster::verify_all;
use partyline_wire::{AnnouncementKey, Code, Invite};

use crate::{Coordinator, SessionError};

/// What happened while hosting, for the host's terminal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostEvent {
    /// The verified names of those who joined changed.
    Joined(Progress),
    /// A joiner confirmed the right code and was handed the invite.
    Released,
    /// A joiner's confirmation was wrong: one guess at the code, refused.
    WrongCode { failures: u32, limit: u32 },
    /// A joiner's first message was no SPAKE2 message; refused, not counted
    /// (it tested no code).
    Malformed(String),
}

/// How hosting ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostEnd {
    /// Every seat is taken.
    Full(Progress),
    /// Too many wrong codes: the nameplate is burned.
    Burned { failures: u32 },
    /// The time ran out first.
    TimedOut(Progress),
}

type Poll<'a, T> = Pin<Box<dyn Future<Output = Result<T, SessionError>> + 'a>>;

/// Hosts `code` for `invite`'s session until every seat is taken, the code is
/// burned after `max_failures` wrong ones, or `timeout` passes. The
/// nameplate stays as it is: freeing or keeping it is the caller's choice.
pub async fn host_code(
    coordinator: &Coordinator,
    invite: &Invite,
    code: &Code,
    max_failures: u32,
    timeout: Duration,
    mut on_event: impl FnMut(&HostEvent),
) -> Result<HostEnd, SessionError> {
    let mut host = Host {
        coordinator,
        invite,
        code,
        max_failures,
        keys: HashMap::new(),
        finished: HashSet::new(),
        failures: 0,
        progress: Progress {
            joined: Vec::new(),
            expected: usize::from(invite.parties),
        },
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let mut session: Poll<'_, SessionView> = Box::pin(coordinator.session(&invite.session, None));
    // No nameplate has this many changes: the first answer comes at once.
    let mut attempts: Poll<'_, NameplateView> =
        Box::pin(coordinator.attempts(code.nameplate(), u64::MAX));
    loop {
        tokio::select! {
            view = &mut session => {
                let view = view?;
                if let Some(end) = host.session_changed(&view, &mut on_event)? {
                    return Ok(end);
                }
                let seen = view.announcements.len();
                session = Box::pin(coordinator.session(&invite.session, Some(seen)));
            }
            view = &mut attempts => {
                let view = view?;
                if let Some(end) = host.answer(&view, &mut on_event).await? {
                    return Ok(end);
                }
                attempts = Box::pin(coordinator.attempts(code.nameplate(), view.changes));
            }
            () = tokio::time::sleep_until(deadline) => {
                return Ok(HostEnd::TimedOut(host.progress));
            }
        }
    }
}

struct Host<'a> {
    coordinator: &'a Coordinator,
    invite: &'a Invite,
    code: &'a Code,
    max_failures: u32,
    /// Attempts answered with our SPAKE2 message, waiting for a confirmation.
    keys: HashMap<AttemptId, AttemptKeys>,
    /// Attempts given their last answer.
    finished: HashSet<AttemptId>,
    failures: u32,
    progress: Progress,
}

impl Host<'_> {
    /// Shows who joined; the end once all have.
    fn session_changed(
        &mut self,
        view: &SessionView,
        on_event: &mut impl FnMut(&HostEvent),
    ) -> Result<Option<HostEnd>, SessionError> {
        if view.state == SessionState::Done {
            return Err(SessionError::AlreadyFinished);
        }
        let key = AnnouncementKey::derive(self.invite);
        let verified = verify_all(&key, &view.announcements)?;
        let progress = Progress {
            joined: verified.into_iter().map(|a| a.name).collect(),
            expected: usize::from(self.invite.parties),
        };
        if progress != self.progress {
            self.progress = progress.clone();
            on_event(&HostEvent::Joined(progress.clone()));
        }
        Ok((progress.joined.len() >= progress.expected).then_some(HostEnd::Full(progress)))
    }

    /// Gives every attempt its next answer; the end if the code is burned.
    async fn answer(
        &mut self,
        view: &NameplateView,
        on_event: &mut impl FnMut(&HostEvent),
    ) -> Result<Option<HostEnd>, SessionError> {
        let live: HashSet<AttemptId> = view.attempts.iter().map(|a| a.attempt).collect();
        self.keys.retain(|id, _| live.contains(id));
        self.finished.retain(|id| live.contains(id));
        for attempt in &view.attempts {
            let id = attempt.attempt;
            if self.finished.contains(&id) {
                continue;
            }
            match (attempt.joiner.as_slice(), attempt.host.len()) {
                ([first, ..], 0) if !self.keys.contains_key(&id) => {
                    match host_answer(self.code, self.invite.session, first) {
                        Ok((keys, message)) => {
                            self.send(&id, &message).await?;
                            self.keys.insert(id, keys);
                        }
                        Err(error) => {
                            self.send(&id, REFUSED).await?;
                            self.finished.insert(id);
                            on_event(&HostEvent::Malformed(error.to_string()));
                        }
                    }
                }
                ([_, confirmation, ..], 1) => {
                    let Some(keys) = self.keys.remove(&id) else {
                        continue;
                    };
                    self.finished.insert(id);
                    if keys.confirms(confirmation) {
                        self.send(&id, &keys.seal(self.invite)).await?;
                        on_event(&HostEvent::Released);
                        continue;
                    }
                    self.send(&id, REFUSED).await?;
                    self.failures += 1;
                    on_event(&HostEvent::WrongCode {
                        failures: self.failures,
                        limit: self.max_failures,
                    });
                    if self.failures >= self.max_failures {
                        self.coordinator
                            .burn_nameplate(self.code.nameplate())
                            .await?;
                        return Ok(Some(HostEnd::Burned {
                            failures: self.failures,
                        }));
                    }
                }
                _ => {}
            }
        }
        Ok(None)
    }

    /// Sends our next message of an attempt; an attempt that ended meanwhile
    /// (its time ran out) is no error.
    async fn send(&self, id: &AttemptId, message: &str) -> Result<(), SessionError> {
        match self
            .coordinator
            .host_message(self.code.nameplate(), id, message)
            .await
        {
            Err(SessionError::Api { status: 404, .. }) => {
                tracing::debug!(attempt = %id, "the attempt ended before our answer");
                Ok(())
            }
            other => other,
        }
    }
}
