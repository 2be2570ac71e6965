//! The invite, what the page shows before joining, and joining.
use std::rc::Rc;
use std::time::Duration;

use partyline_proto::invite_from_code;
use partyline_proto::join::{Progress, announce_and_wait};
use partyline_wire::announce::{AnnouncementKey, typed_name};
use partyline_wire::api::SessionState;
use partyline_wire::checks::ExpectedNames;
use partyline_wire::roster::verify_all;
use partyline_wire::{Announcement, Code, Invite, ServerUrl, WebRtcOffer};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::http::Coordinator;
use crate::party::{Party, PartyEndpoint};
use crate::{WebError, now_ms};

/// The longest the page waits for a code's host to answer: a program, which
/// answers in a moment if it still runs (as `join` waits).
const HOST_ANSWER: Duration = Duration::from_secs(60);

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

/// Progress while waiting for the other parties, as the page gets it.
#[derive(Serialize)]
struct ProgressForPage<'a> {
    joined: &'a [String],
    expected: usize,
}

#[wasm_bindgen]
impl Session {
    /// Parses the invite `link` (the page's full URL, fragment included) and
    /// checks that it names the server this page came from (`page_origin`).
    pub fn open(link: &str, page_origin: &str) -> Result<Session, JsError> {
        let invite: Invite = link.trim().parse().map_err(WebError::Invite)?;
        Ok(Session::of(invite, page_origin)?)
    }

    /// Gives the short `code` (as `partyline create --code` printed it) to
    /// the session's host through this page's server, in the PAKE native
    /// joiners run (`partyline_proto::code`), and resolves to the session
    /// of the invite the host sends back.
    pub fn open_code(code: String, page_origin: String) -> js_sys::Promise {
        future_to_promise(async move {
            let code: Code = code.parse().map_err(WebError::BadCode)?;
            let server: ServerUrl = page_origin.parse().map_err(|_| WebError::Unreachable {
                url: page_origin.clone(),
                reason: "the page's origin is not an https://HOST:PORT address".to_string(),
            })?;
            let invite = invite_from_code(&Coordinator::new(&server), &code, HOST_ANSWER).await?;
            Ok(Session::of(invite, &page_origin)?.into())
        })
    }

    /// Resolves to `{session, parties, label, state, joined: [names]}`; every
    /// name shown has been verified with the invite secret, and `parties` is
    /// the invite's (the page prepares a WebRTC connection per other party).
    pub fn view(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let view = inner.coordinator.session(&inner.invite.session).await?;
            let key = AnnouncementKey::derive(&inner.invite);
            let joined = verify_all(&key, &view.announcements).map_err(WebError::Roster)?;
            to_js(&ViewForPage {
                session: view.session.to_string(),
                parties: inner.invite.parties,
                label: view.label,
                state: view.state,
                joined: joined.into_iter().map(|a| a.name).collect(),
            })
        })
    }

    /// Binds our endpoint, announces us as `name` and resolves to a [`Party`]
    /// with the verified roster once every party has joined. `expected` is
    /// the comma-separated names the roster must hold (as `join --expect`;
    /// blank for no check), which [`Party::accept_expected`] checks.
    /// `on_progress` is called with `{joined: [names], expected}` whenever
    /// that list changes. Both `name` and `expected` are checked (see
    /// [`party_name`], [`check_expected`]) before anything is announced.
    /// `webrtc` is `{fingerprint, ufrag, pwd, peer_candidates}` of the
    /// page's peer connections (one certificate and one set of ICE
    /// credentials for all; the candidates of those it prepared for browser
    /// peers, one list per other party), announced so that peers accept our
    /// data channels and browsers can reach us; `null` if the page has none.
    /// Candidates no party would accept are dropped first.
    pub fn join(
        &self,
        name: String,
        expected: String,
        on_progress: js_sys::Function,
        timeout_secs: u32,
        webrtc: JsValue,
    ) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let name = own_name(&name)?;
            let expected = expected_names(&expected)?;
            let webrtc = webrtc_offer(webrtc)?;
            let timeout = Duration::from_secs(timeout_secs.into());
            let party = inner
                .join(name, expected, webrtc, on_progress, timeout)
                .await?;
            Ok(party.into())
        })
    }
}

impl Session {
    /// The session of `invite`, which must name the server this page came
    /// from (`page_origin`).
    fn of(invite: Invite, page_origin: &str) -> Result<Session, WebError> {
        if page_origin.parse::<ServerUrl>().as_ref() != Ok(&invite.server) {
            return Err(WebError::WrongOrigin {
                invite: invite.server.to_string(),
                page: page_origin.to_string(),
            });
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
}

/// The name a person typed, in Unicode normal form C as every party needs
/// it, or the rule it breaks (`partyline_wire::announce::typed_name`).
#[wasm_bindgen]
pub fn party_name(typed: &str) -> Result<String, JsError> {
    Ok(own_name(typed)?)
}

/// Checks the page's "expected parties" field as `join --expect` checks its
/// names: each normalised, then held to the name rule.
#[wasm_bindgen]
pub fn check_expected(list: &str) -> Result<(), JsError> {
    expected_names(list)?;
    Ok(())
}

/// The page's WebRTC data, held to the rules every party checks it by.
fn webrtc_offer(page: JsValue) -> Result<Option<WebRtcOffer>, WebError> {
    if page.is_null() || page.is_undefined() {
        return Ok(None);
    }
    let mut offer: WebRtcOffer =
        serde_wasm_bindgen::from_value(page).map_err(|e| WebError::WebRtc(e.to_string()))?;
    offer.keep_valid_peer_candidates();
    offer.check().map_err(|e| WebError::WebRtc(e.to_string()))?;
    Ok(Some(offer))
}

fn own_name(typed: &str) -> Result<String, WebError> {
    typed_name(typed.trim()).map_err(|e| WebError::Name(e.to_string()))
}

fn expected_names(list: &str) -> Result<Option<ExpectedNames>, WebError> {
    ExpectedNames::parse_list(list).map_err(|e| WebError::Expected(e.to_string()))
}

impl Inner {
    async fn join(
        &self,
        name: String,
        expected: Option<ExpectedNames>,
        webrtc: Option<WebRtcOffer>,
        on_progress: js_sys::Function,
        timeout: Duration,
    ) -> Result<Party, WebError> {
        // Proves the origin is a partyline server before we announce anything.
        let info = self.coordinator.info().await?;
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
            identity: None,
            webrtc,
        };
        let show_progress = |progress: &Progress| {
            let for_page = ProgressForPage {
                joined: &progress.joined,
                expected: progress.expected,
            };
            if let Ok(value) = to_js(&for_page) {
                let _ = on_progress.call1(&JsValue::NULL, &value);
            }
        };
        match announce_and_wait(
            &self.coordinator,
            &self.invite,
            &own,
            timeout,
            show_progress,
        )
        .await
        {
            Ok(roster) => Ok(Party::new(
                endpoint,
                roster,
                expected,
                self.invite.clone(),
                self.coordinator.clone(),
            )),
            Err(error) => {
                let _ = self
                    .coordinator
                    .leave(&self.invite.session, &own.endpoint)
                    .await;
                endpoint.close().await;
                Err(error)
            }
        }
    }
}

pub(crate) fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| js_sys::Error::new(&e.to_string()).into())
}
