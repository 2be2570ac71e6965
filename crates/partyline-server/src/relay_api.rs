//! What the coordinator tells its relays of their own (`partyline relay`):
//! which live session admits an endpoint, and which sessions are still live.
//!
//! Only a relay that shows the relay token is answered; anyone else gets the
//! answer of an unknown path, so a stranger cannot learn which endpoints are
//! in sessions, nor that this server has relays at all.
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::routing::post;
use partyline_wire::api::{LiveSessions, RelayAdmission, RelayAdmitted, path};

use crate::api::{App, Failure, unix_secs, unknown_path};
use crate::relay::live_session_for;

/// The most sessions one question may name: a relay asks about those it
/// serves, and each takes at least one of its connections.
const MAX_SESSIONS_ASKED: usize = 4096;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(path::RELAY_ADMISSIONS, post(admission))
        .route(path::RELAY_LIVE, post(live))
}

/// Whether `headers` carry the relay token this coordinator was given.
pub(crate) fn from_relay(app: &App, headers: &HeaderMap) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    match (&app.relay_token, bearer) {
        (Some(hash), Some(bearer)) => hash.admits(bearer),
        _ => false,
    }
}

async fn only_relays(
    app: &App,
    method: Method,
    uri: Uri,
    headers: &HeaderMap,
) -> Result<(), Failure> {
    match from_relay(app, headers) {
        true => Ok(()),
        false => Err(unknown_path(method, uri).await),
    }
}

async fn admission(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Json<RelayAdmission>, JsonRejection>,
) -> Result<Json<RelayAdmitted>, Failure> {
    only_relays(&app, method, uri, &headers).await?;
    let Json(asked) = body?;
    match live_session_for(&app.store, asked.endpoint, asked.token.as_deref()).await {
        Some((session, parties)) => Ok(Json(RelayAdmitted { session, parties })),
        None => Err(Failure {
            status: StatusCode::NOT_FOUND,
            message: format!("no live session admits endpoint {}", asked.endpoint.short()),
            retry_after: None,
        }),
    }
}

async fn live(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Json<LiveSessions>, JsonRejection>,
) -> Result<Json<LiveSessions>, Failure> {
    only_relays(&app, method, uri, &headers).await?;
    let Json(asked) = body?;
    if asked.sessions.len() > MAX_SESSIONS_ASKED {
        return Err(Failure::bad_request(format!(
            "ask about at most {MAX_SESSIONS_ASKED} sessions at once, not {}",
            asked.sessions.len()
        )));
    }
    let now = unix_secs();
    let mut sessions = Vec::new();
    for id in asked.sessions {
        if let Ok(Some(_)) = app.store.relay_session(id, now).await {
            sessions.push(id);
        }
    }
    Ok(Json(LiveSessions { sessions }))
}
