//! The HTTP handlers of short codes: nameplates and the relay of the PAKE
//! messages between a code's host and its joiners (paths and bodies in
//! [`partyline_wire::api`], storage in `nameplates`).
//!
//! The server only passes messages on: it cannot tell a right code from a
//! wrong one (the host counts wrong ones and burns the code), and it never
//! sees the code's words. Every request is a request like any other to the
//! quotas (`admission`); what a nameplate may hold is bounded in
//! `nameplates`, and each message to [`MAX_MESSAGE_BYTES`].
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use partyline_wire::api::{
    AllocateNameplate, AttemptId, AttemptOpened, AttemptView, CodeMessage, NameplateAllocated,
    NameplateInfo, NameplateView, path,
};
use partyline_wire::{Nameplate, SessionId};

use crate::api::{App, Failure, Poll, long_poll, unix_secs, write_token};
use crate::cluster::{Event, publish};
use crate::nameplates::{ATTEMPT_SECS, LIVE_ATTEMPTS, Side};
use crate::store::StoreError;

/// The longest message of a code exchange: the longest real one, the sealed
/// invite, is about 250 bytes.
const MAX_MESSAGE_BYTES: usize = 512;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(path::NAMEPLATES, post(allocate))
        .route(path::NAMEPLATE, get(info).delete(release))
        .route(path::BURN, post(burn))
        .route(path::ATTEMPTS, post(open_attempt).get(host_view))
        .route(path::ATTEMPT, get(joiner_view))
        .route(path::ATTEMPT_JOINER, post(joiner_message))
        .route(path::ATTEMPT_HOST, post(host_message))
}

async fn allocate(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Json<AllocateNameplate>, JsonRejection>,
) -> Result<(StatusCode, Json<NameplateAllocated>), Failure> {
    let Json(request) = body?;
    let id = request.session;
    let nameplate = app
        .store
        .allocate_nameplate(id, write_token(&headers), unix_secs())
        .await
        .map_err(|e| match e {
            StoreError::HasNameplate => Failure {
                status: StatusCode::CONFLICT,
                message: format!(
                    "session {id} has a code already; one code per session: create a new session for another"
                ),
                retry_after: None,
            },
            e => Failure::from_store(id, e),
        })?;
    tracing::info!(session = %id, %nameplate, "nameplate allocated");
    Ok((StatusCode::CREATED, Json(NameplateAllocated { nameplate })))
}

async fn info(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<NameplateInfo>, Failure> {
    let nameplate = nameplate(path?)?;
    let session = app
        .store
        .nameplate_session(nameplate, unix_secs())
        .await
        .map_err(|e| failure(nameplate, e))?;
    Ok(Json(NameplateInfo { nameplate, session }))
}

async fn release(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<StatusCode, Failure> {
    end_nameplate(&app, path?, &headers, false).await
}

async fn burn(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<StatusCode, Failure> {
    end_nameplate(&app, path?, &headers, true).await
}

/// The host frees its nameplate, or burns it.
async fn end_nameplate(
    app: &App,
    path: Path<String>,
    headers: &HeaderMap,
    burn: bool,
) -> Result<StatusCode, Failure> {
    let nameplate = nameplate(path)?;
    let session = app
        .store
        .end_nameplate(nameplate, write_token(headers), burn, unix_secs())
        .await
        .map_err(|e| failure(nameplate, e))?;
    publish(app, Event::Changed(session)).await;
    let how = if burn { "burned by its host" } else { "freed" };
    tracing::info!(%nameplate, "nameplate {how}");
    Ok(StatusCode::NO_CONTENT)
}

async fn open_attempt(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<CodeMessage>, JsonRejection>,
) -> Result<(StatusCode, Json<AttemptOpened>), Failure> {
    let nameplate = nameplate(path?)?;
    let message = message(body?)?;
    let (session, attempt) = app
        .store
        .open_attempt(nameplate, message, unix_secs())
        .await
        .map_err(|e| failure(nameplate, e))?;
    publish(&app, Event::Changed(session)).await;
    tracing::debug!(%nameplate, %attempt, "code attempt opened");
    Ok((StatusCode::CREATED, Json(AttemptOpened { attempt })))
}

async fn joiner_message(
    State(app): State<Arc<App>>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Json<CodeMessage>, JsonRejection>,
) -> Result<StatusCode, Failure> {
    add_message(&app, path?, Side::Joiner, body?).await
}

async fn host_message(
    State(app): State<Arc<App>>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Result<Json<CodeMessage>, JsonRejection>,
) -> Result<StatusCode, Failure> {
    add_message(&app, path?, Side::Host(write_token(&headers)), body?).await
}

async fn add_message(
    app: &App,
    path: Path<(String, String)>,
    from: Side,
    body: Json<CodeMessage>,
) -> Result<StatusCode, Failure> {
    let (nameplate, attempt) = nameplate_and_attempt(path)?;
    let message = message(body)?;
    let session = app
        .store
        .add_message(nameplate, attempt, from, message, unix_secs())
        .await
        .map_err(|e| failure(nameplate, e))?;
    publish(app, Event::Changed(session)).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The host's long poll: every live attempt, once the joiners' messages
/// changed from `seen`.
async fn host_view(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    query: Result<Query<Poll>, QueryRejection>,
) -> Result<Json<NameplateView>, Failure> {
    let nameplate = nameplate(path?)?;
    let Query(poll) = query?;
    let token = write_token(&headers);
    let read = || async {
        app.store
            .nameplate_view(nameplate, token, unix_secs())
            .await
            .map_err(|e| failure(nameplate, e))
    };
    let unchanged = |view: &NameplateView| poll.seen == Some(view.changes);
    let view = long_poll(&app, poll.wait, read, unchanged, |view| view.session).await?;
    Ok(Json(view))
}

/// A joiner's long poll: its attempt, once the host sent more than `seen` messages.
async fn joiner_view(
    State(app): State<Arc<App>>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<Poll>, QueryRejection>,
) -> Result<Json<AttemptView>, Failure> {
    let (nameplate, attempt) = nameplate_and_attempt(path?)?;
    let Query(poll) = query?;
    let read = || async {
        app.store
            .attempt_view(nameplate, attempt, unix_secs())
            .await
            .map_err(|e| failure(nameplate, e))
    };
    let unchanged =
        |(_, view): &(SessionId, AttemptView)| poll.seen == Some(view.host.len() as u64);
    let (_, view) = long_poll(&app, poll.wait, read, unchanged, |(session, _)| *session).await?;
    Ok(Json(view))
}

fn nameplate(Path(text): Path<String>) -> Result<Nameplate, Failure> {
    text.parse()
        .map_err(|e: partyline_wire::CodeError| Failure::bad_request(e.to_string()))
}

fn nameplate_and_attempt(
    Path((nameplate_text, attempt)): Path<(String, String)>,
) -> Result<(Nameplate, AttemptId), Failure> {
    let nameplate = nameplate(Path(nameplate_text))?;
    let attempt = attempt.parse().map_err(|_| {
        Failure::bad_request(format!(
            "{attempt:?} is not an attempt id (26 base32 characters, as the server gave it)"
        ))
    })?;
    Ok((nameplate, attempt))
}

fn message(Json(body): Json<CodeMessage>) -> Result<String, Failure> {
    if body.message.is_empty() || body.message.len() > MAX_MESSAGE_BYTES {
        return Err(Failure {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!(
                "a code exchange message is 1 to {MAX_MESSAGE_BYTES} bytes, not {}",
                body.message.len()
            ),
            retry_after: None,
        });
    }
    Ok(body.message)
}

/// What a joiner or host is told when a nameplate request cannot be done.
fn failure(nameplate: Nameplate, error: StoreError) -> Failure {
    let (status, message, retry_after) = match error {
        StoreError::NoNameplate => (
            StatusCode::NOT_FOUND,
            format!(
                "there is no code with number {nameplate} on this server: check the number with \
                 the host; a code stops working once every seat is taken, when its host stops, \
                 or when its session ends"
            ),
            None,
        ),
        StoreError::Burned => (
            StatusCode::GONE,
            format!(
                "the code with number {nameplate} was burned: its host saw too many wrong codes \
                 and accepts none any more, not even the right one. Ask the host for a new code \
                 (partyline create --code)"
            ),
            None,
        ),
        StoreError::NoAttempt => (
            StatusCode::NOT_FOUND,
            format!(
                "this attempt on code {nameplate} is over (it took longer than {ATTEMPT_SECS} s, \
                 or the code was freed): try again"
            ),
            None,
        ),
        StoreError::TooManyAttempts { live, .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "{live} joiners are trying code {nameplate} right now, the most at once \
                 ({LIVE_ATTEMPTS}): try again in a minute"
            ),
            Some(60),
        ),
        StoreError::AttemptComplete => (
            StatusCode::CONFLICT,
            format!("this side of the attempt on code {nameplate} has sent all its messages"),
            None,
        ),
        StoreError::NoWriteToken => (
            StatusCode::UNAUTHORIZED,
            format!(
                "only the host of code {nameplate} may do this, showing its session's write \
                 token; this client sent none: update partyline"
            ),
            None,
        ),
        StoreError::WrongWriteToken => (
            StatusCode::FORBIDDEN,
            format!("only the host of code {nameplate} may do this"),
            None,
        ),
        error => {
            tracing::error!(%nameplate, "{error}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the server could not use its database; its log says why".to_string(),
                None,
            )
        }
    };
    Failure {
        status,
        message,
        retry_after,
    }
}
