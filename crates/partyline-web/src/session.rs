//! The invite, what the page shows before joining, and joining.
use std::rc::Rc;
use std::time::Duration;

use partyline_wire::announce::{AnnouncementKey, check_name};
use partyline_wire::api::{ServerInfo, SessionState, SessionView};
use partyline_wire::roster::verify_all;
use partyline_wire::{Announcement, Invite, Roster};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::http::Coordinator;
use crate::party::{Party, PartyEndpoint};
use crate::{WebError, now_ms};

/// How long the server holds a long-poll; the same as native parties use.
const LONG_POLL_SECS: u64 = 20;

/// A session as opened from an invite link, before joining.
#[wasm_bindgen]
#[derive(Clone)]
pub struct Session {
    inner: Rc<Inner>,
}

struct Inner {
    invite: Invite,
    coordinator: Coordinator,
}

/// The session as the page shows it: only verified names.
#[derive(Serialize)]
struct ViewForPage {
    session: String,
    parties: u16,
    label: Option<String>,
    state: SessionState,
    joined: Vec<String>,
}

/// Progress while waiting for the other parties.
#[derive(Serialize)]
struct Progress<'a> {
    joined: &'a [String],
    expected: u16,
}

#[wasm_bindgen]
impl Session {
    /// Parses the invite `link` (the page's full URL, fragment included) and
    /// checks that it names the server this page came from (`page_origin`).
    pub fn open(link: &str, page_origin: &str) -> Result<Session, JsError> {
        let invite: Invite = link.trim().parse().map_err(WebError::Invite)?;
        if invite.server.trim_end_matches('/') != page_origin.trim_end_matches('/') {
            return Err(WebError::WrongOrigin {
                invite: invite.server,
                page: page_origin.to_string(),
            }
            .into());
        }
        let coordinator = Coordinator::new(&invite.server)
            .with_write_token(partyline_wire::WriteToken::derive(&invite.secret));
        Ok(Session {
            inner: Rc::new(Inner {
                invite,
                coordinator,
            }),
        })
    }

    /// Resolves to `{session, parties, label, state, joined: [names]}`; every
    /// name shown has been verified with the invite secret.
    pub fn view(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let path = format!("/v1/sessions/{}", inner.invite.session);
            let view: SessionView = inner.coordinator.get(&path).await?;
            let key = AnnouncementKey::derive(&inner.invite);
            let joined = verify_all(&key, &view.announcements).map_err(WebError::Roster)?;
            to_js(&ViewForPage {
                session: view.session.to_string(),
                parties: view.parties,
                label: view.label,
                state: view.state,
                joined: joined.into_iter().map(|a| a.name).collect(),
            })
        })
    }

    /// Binds our endpoint, announces us as `name` and resolves to a [`Party`]
    /// with the verified roster once every party has joined. `on_progress` is
    /// called with `{joined: [names], expected}` whenever that list changes.
    pub fn join(
        &self,
        name: String,
        on_progress: js_sys::Function,
        timeout_secs: u32,
    ) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let party = inner
                .join(name, on_progress, Duration::from_secs(timeout_secs.into()))
                .await?;
            Ok(party.into())
        })
    }
}

impl Inner {
    async fn join(
        &self,
        name: String,
        on_progress: js_sys::Function,
        timeout: Duration,
    ) -> Result<Party, WebError> {
        check_name(&name).map_err(|e| WebError::Name(e.to_string()))?;
        // Proves the origin is a partyline server before we announce anything.
        let info: ServerInfo = self.coordinator.get("/v1/info").await?;
        tracing::info!(version = %info.version, "partyline server found");
        let endpoint =
            PartyEndpoint::bind(&self.invite.server, &self.invite.session.to_string()).await?;
        let own = Announcement {
            session: self.invite.session,
            name,
            endpoint: endpoint.key(),
            relay_url: Some(endpoint.relay_url()),
            addrs: Vec::new(),
            joined_at_ms: now_ms(),
        };
        match self.wait_for_roster(&own, &on_progress, timeout).await {
            Ok(roster) => Ok(Party::new(
                endpoint,
                roster,
                self.invite.clone(),
                self.coordinator.clone(),
            )),
            Err(error) => {
                let path = format!(
                    "/v1/sessions/{}/announcements/{}",
                    self.invite.session, own.endpoint
                );
                let _ = self.coordinator.delete(&path).await;
                endpoint.close().await;
                Err(error)
            }
        }
    }

    /// The same protocol as native parties (`partyline_session::announce_and_wait`):
    /// announce, then long-poll, verifying every answer as it comes.
    async fn wait_for_roster(
        &self,
        own: &Announcement,
        on_progress: &js_sys::Function,
        timeout: Duration,
    ) -> Result<Roster, WebError> {
        let key = AnnouncementKey::derive(&self.invite);
        let signed = key.sign(own);
        let session = self.invite.session;
        let announce_path = format!("/v1/sessions/{session}/announcements");
        let deadline = now_ms() + timeout.as_millis() as u64;
        let mut view: SessionView = self.coordinator.post(&announce_path, &signed).await?;
        let mut last_shown: Option<Vec<String>> = None;
        loop {
            if view.state == SessionState::Done {
                return Err(WebError::AlreadyFinished);
            }
            let verified = verify_all(&key, &view.announcements)?;
            let joined: Vec<String> = verified.iter().map(|a| a.name.clone()).collect();
            if last_shown.as_ref() != Some(&joined) {
                let progress = Progress {
                    joined: &joined,
                    expected: self.invite.parties,
                };
                if let Ok(progress) = to_js(&progress) {
                    let _ = on_progress.call1(&JsValue::NULL, &progress);
                }
                last_shown = Some(joined.clone());
            }
            if let Some(roster) = Roster::build(&self.invite, &own.endpoint, &view.announcements)? {
                return Ok(roster);
            }
            if !verified.iter().any(|a| a.endpoint == own.endpoint) {
                // The server forgot us; announcing is idempotent, so say it again.
                view = self.coordinator.post(&announce_path, &signed).await?;
                continue;
            }
            if now_ms() >= deadline {
                return Err(WebError::Timeout {
                    secs: timeout.as_secs(),
                    missing: format!(
                        "{} more of {} parties to join (joined: {})",
                        usize::from(self.invite.parties) - joined.len(),
                        self.invite.parties,
                        joined.join(", ")
                    ),
                });
            }
            let seen = view.announcements.len();
            view = self
                .coordinator
                .get(&format!(
                    "/v1/sessions/{session}?seen={seen}&wait={LONG_POLL_SECS}"
                ))
                .await?;
        }
    }
}

pub(crate) fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| js_sys::Error::new(&e.to_string()).into())
}
