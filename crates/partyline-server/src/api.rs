//! The coordinator's HTTP API, as documented in [`partyline_wire::api`].
//!
//! Every answer that is not a success is an [`ApiError`] with a message meant
//! for the person running the client, including the ones axum produces itself
//! (bad JSON, wrong content type, unknown path): handlers take their
//! extractors as `Result`s and turn rejections into [`Failure`]s.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use partyline_wire::announce::MAX_ANNOUNCEMENT_BYTES;
use partyline_wire::api::{
    ApiError, CreateSession, ServerInfo, SessionCreated, SessionState, SessionView, path,
};
use partyline_wire::{
    EndpointKey, MAX_PARTIES, RelayTokenHash, SessionId, SignedAnnouncement, WriteToken,
};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::changes::Changes;
use crate::cluster::{Cluster, Event, publish};
use crate::limits::{Limits, Refusal, client};
use crate::relay::RelayGate;
use crate::store::{NewSession, Store, StoreError};

/// The longest request body read at all: an announcement at the limit,
/// JSON-escaped, fits.
const MAX_REQUEST_BYTES: usize = 8 * MAX_ANNOUNCEMENT_BYTES;
/// The longest session label, in characters.
const MAX_LABEL_CHARS: usize = 100;
/// The longest a long-poll is held, whatever the client asks: short enough
/// for proxies and NATs to keep the connection.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// When to come back after a storage limit: expired sessions are swept
/// once a minute.
const STORAGE_RETRY_SECS: u64 = 60;

/// What every request handler can reach.
pub(crate) struct App {
    pub(crate) store: Store,
    pub(crate) changes: Changes,
    /// The other processes on the same database, if any.
    pub(crate) cluster: Cluster,
    pub(crate) limits: Limits,
    pub(crate) relay_gate: Arc<RelayGate>,
    /// How long after `done` the session's relay connections are dropped.
    pub(crate) relay_grace: Duration,
    pub(crate) info: ServerInfo,
    /// This coordinator's public URL, as other processes list it.
    pub(crate) url: String,
    /// The hash of the token relays of their own show (`relay_api`).
    pub(crate) relay_token: Option<RelayTokenHash>,
    pub(crate) session_ttl: Duration,
    pub(crate) done_ttl: Duration,
    /// Cancelled when the server stops; long-polls answer at once then.
    pub(crate) stopping: CancellationToken,
}

pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(path::INFO, get(info))
        .route(path::SESSIONS, post(create_session))
        .route(path::SESSION, get(get_session))
        .route(path::ANNOUNCEMENTS, post(announce))
        .route(path::ANNOUNCEMENT, delete(leave))
        .route(path::DONE, post(done))
        .merge(crate::code_relay::routes())
        .merge(crate::relay_api::routes())
        .fallback(unknown_path)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(app)
}

async fn info(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Json<ServerInfo> {
    let mut info = app.info.clone();
    info.client_ip = Some(peer.ip().to_canonical());
    match app.store.coordinators(app.url.clone(), unix_secs()).await {
        Ok(others) => info.coordinators = others,
        Err(e) => tracing::warn!("cannot list the other coordinators: {e}"),
    }
    Json(info)
}

async fn create_session(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<Json<CreateSession>, JsonRejection>,
) -> Result<(StatusCode, Json<SessionCreated>), Failure> {
    let Json(request) = body?;
    if !(1..=MAX_PARTIES).contains(&request.parties) {
        return Err(Failure::bad_request(format!(
            "a session has 1 to {MAX_PARTIES} parties, not {}",
            request.parties
        )));
    }
    if let Some(label) = &request.label {
        let chars = label.chars().count();
        if chars > MAX_LABEL_CHARS {
            return Err(Failure::bad_request(format!(
                "the label has {chars} characters; the limit is {MAX_LABEL_CHARS}"
            )));
        }
        if label.chars().any(char::is_control) {
            return Err(Failure::bad_request(
                "the label must not contain control characters",
            ));
        }
    }
    app.limits
        .creates
        .take(peer.ip(), Instant::now())
        .map_err(|refusal| Failure::refused(refusal, "sessions created", peer))?;

    let now_ms = unix_millis();
    let ttl_ms = u64::try_from(app.session_ttl.as_millis()).unwrap_or(u64::MAX);
    let session = NewSession {
        id: SessionId::random(),
        parties: request.parties,
        label: request.label,
        created_at: now_ms / 1000,
        // Rounded up, so a session lives at least its whole time to live.
        expires_at: now_ms.saturating_add(ttl_ms).div_ceil(1000),
        creator: client(peer.ip()),
        write_token_hash: request.write_token_hash,
    };
    let created = SessionCreated {
        session: session.id,
        expires_at: session.expires_at,
    };
    let parties = session.parties;
    app.store
        .create(session, now_ms / 1000)
        .await
        .map_err(|e| Failure::from_store(created.session, e))?;
    tracing::info!(session = %created.session, parties, "session created");
    Ok((StatusCode::CREATED, Json(created)))
}

#[derive(Deserialize)]
pub(crate) struct Poll {
    /// How much the client already has: announcements, messages or changes.
    pub(crate) seen: Option<u64>,
    /// How long to hold the answer back, in seconds, while nothing changes.
    pub(crate) wait: Option<u64>,
}

async fn get_session(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Poll>, QueryRejection>,
) -> Result<Json<SessionView>, Failure> {
    let id = session_id(path?)?;
    let Query(poll) = query?;
    let unchanged = |view: &SessionView| {
        poll.seen == Some(view.announcements.len() as u64) && view.state != SessionState::Done
    };
    let read = || async {
        app.store
            .view(id, unix_secs())
            .await
            .map_err(|e| Failure::from_store(id, e))
    };
    let view = long_poll(&app, poll.wait, read, unchanged, |view| view.session).await?;
    Ok(Json(view))
}

/// Reads with `read` and, while the answer is `unchanged` and `wait`
/// seconds (at most [`MAX_WAIT`]) have not passed, waits for a change of the
/// session `bell` names and reads again (long poll).
///
/// The first read tells a missing thing (404) before anything is kept for
/// it; only then does the poll subscribe, and read again, so a change that
/// lands in between still rings.
pub(crate) async fn long_poll<T, F, Fut>(
    app: &App,
    wait: Option<u64>,
    mut read: F,
    unchanged: impl Fn(&T) -> bool,
    bell: impl Fn(&T) -> SessionId,
) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Failure>>,
{
    let wait = Duration::from_secs(wait.unwrap_or(0)).min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    let first = read().await?;
    if !unchanged(&first) || wait.is_zero() {
        return Ok(first);
    }
    let mut changes = app.changes.subscribe(bell(&first));
    loop {
        let answer = read().await?;
        if !unchanged(&answer) {
            return Ok(answer);
        }
        tokio::select! {
            rang = changes.changed() => {
                if rang.is_err() {
                    return Ok(answer);
                }
            }
            () = tokio::time::sleep_until(deadline) => return Ok(answer),
            () = app.stopping.cancelled() => return Ok(answer),
        }
    }
}

async fn announce(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Json<SignedAnnouncement>, JsonRejection>,
) -> Result<Json<SessionView>, Failure> {
    let id = session_id(path?)?;
    let Json(signed) = body?;
    if signed.body.len() > MAX_ANNOUNCEMENT_BYTES {
        return Err(Failure {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!(
                "the announcement is {} bytes; the limit is {MAX_ANNOUNCEMENT_BYTES}",
                signed.body.len()
            ),
            retry_after: None,
        });
    }
    if signed.mac.len() != 64 || !signed.mac.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Failure::bad_request(
            "the announcement's mac must be 64 hex digits",
        ));
    }
    let endpoint = endpoint_of(&signed.body)?;
    let announced = app
        .store
        .announce(id, endpoint, signed, write_token(&headers), unix_secs())
        .await
        .map_err(|e| Failure::from_store(id, e))?;
    publish(&app, Event::Changed(id)).await;
    tracing::debug!(session = %id, endpoint = %endpoint.short(), "announcement stored");
    if announced.filled {
        tracing::info!(session = %id, parties = announced.view.parties, "session full");
    }
    Ok(Json(announced.view))
}

async fn leave(
    State(app): State<Arc<App>>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<StatusCode, Failure> {
    let Path((id, endpoint)) = path?;
    let id = session_id(Path(id))?;
    let endpoint: EndpointKey = endpoint
        .parse()
        .map_err(|e: String| Failure::bad_request(format!("{e}: expected 64 hex digits")))?;
    app.store
        .leave(id, endpoint, write_token(&headers), unix_secs())
        .await
        .map_err(|e| Failure::from_store(id, e))?;
    publish(&app, Event::Left(id, endpoint)).await;
    tracing::info!(session = %id, endpoint = %endpoint.short(), "party left");
    Ok(StatusCode::NO_CONTENT)
}

async fn done(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<StatusCode, Failure> {
    let id = session_id(path?)?;
    // Rounded up, as at creation: a done session stays its whole grace.
    let now = unix_millis().div_ceil(1000);
    app.store
        .finish(id, write_token(&headers), now, app.done_ttl.as_secs())
        .await
        .map_err(|e| Failure::from_store(id, e))?;
    publish(&app, Event::Done(id)).await;
    tracing::info!(session = %id, "session done");
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn unknown_path(method: Method, uri: Uri) -> Failure {
    Failure {
        status: StatusCode::NOT_FOUND,
        message: format!(
            "there is no {method} {}: this is a partyline coordinator, its API is under /v1/",
            uri.path()
        ),
        retry_after: None,
    }
}

async fn wrong_method(method: Method, uri: Uri) -> Failure {
    Failure {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: format!("{} does not take {method}", uri.path()),
        retry_after: None,
    }
}

/// The write token of an `Authorization: Bearer <hex>` header, if any.
pub(crate) fn write_token(headers: &HeaderMap) -> Option<WriteToken> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(WriteToken::from_bearer)
}

fn session_id(Path(id): Path<String>) -> Result<SessionId, Failure> {
    id.parse().map_err(|_| {
        Failure::bad_request(format!(
            "{id:?} is not a session id (26 base32 characters, as in the invite)"
        ))
    })
}

/// Reads the endpoint id out of an announcement body. This is the only
/// thing the server looks at in a body, and only to tell parties apart.
fn endpoint_of(body: &str) -> Result<EndpointKey, Failure> {
    #[derive(Deserialize)]
    struct Endpoint {
        endpoint: EndpointKey,
    }
    serde_json::from_str::<Endpoint>(body)
        .map(|e| e.endpoint)
        .map_err(|e| {
            Failure::bad_request(format!(
                "the announcement body must be JSON with an \"endpoint\" of 64 hex digits: {e}"
            ))
        })
}

pub(crate) fn unix_millis() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn unix_secs() -> u64 {
    unix_millis() / 1000
}

/// An error answer: a status code and an [`ApiError`] saying what to do.
pub(crate) struct Failure {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    /// Seconds, for the `Retry-After` header.
    pub(crate) retry_after: Option<u64>,
}

impl Failure {
    /// A quota refusal: `429` when `peer` is over its own share of `what`,
    /// `503` when everybody together is.
    pub(crate) fn refused(refusal: Refusal, what: &str, peer: SocketAddr) -> Self {
        let (status, message, wait) = match refusal {
            Refusal::Client { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many {what} from {}", peer.ip()),
                retry_after,
            ),
            Refusal::Everyone { retry_after } => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the server is busy: too many {what} from everybody"),
                retry_after,
            ),
        };
        let secs = wait.as_secs() + 1;
        Self {
            status,
            message: format!("{message}: try again in {secs} s"),
            retry_after: Some(secs),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            retry_after: None,
        }
    }

    pub(crate) fn from_store(id: SessionId, error: StoreError) -> Self {
        let (status, message) = match error {
            StoreError::NoSession => (
                StatusCode::NOT_FOUND,
                format!("no session {id} (it may have expired)"),
            ),
            StoreError::Full { parties } => (
                StatusCode::CONFLICT,
                format!(
                    "session {id} is full: all {parties} parties have announced; \
                     check that you use the right invite, or ask for a new session"
                ),
            ),
            StoreError::Done => (
                StatusCode::CONFLICT,
                format!("session {id} is over (a party reported it done); create a new session"),
            ),
            StoreError::NoWriteToken => (
                StatusCode::UNAUTHORIZED,
                format!(
                    "changing session {id} needs its write token, which partyline derives from \
                     the invite; this client sent none: update partyline"
                ),
            ),
            StoreError::WrongWriteToken => (
                StatusCode::FORBIDDEN,
                format!(
                    "the write token does not match session {id}: only holders of its invite \
                     may change it (a session made by an older partyline takes no changes: \
                     create a new one)"
                ),
            ),
            StoreError::ClientSessions { alive, limit } => {
                return Self {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    message: format!(
                        "you have {alive} sessions alive on this server, the most it keeps for \
                         one address ({limit}): finish or wait for some to expire"
                    ),
                    retry_after: Some(STORAGE_RETRY_SECS),
                };
            }
            StoreError::AllSessions { .. } | StoreError::StorageFull { .. } => {
                tracing::warn!("{error}");
                return Self {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    message: "the server holds as many sessions as it may: \
                              try again later, or use another server"
                        .to_string(),
                    retry_after: Some(STORAGE_RETRY_SECS),
                };
            }
            StoreError::Sqlite(_)
            | StoreError::Postgres(_)
            | StoreError::Column { .. }
            | StoreError::NewerSchema { .. }
            | StoreError::Task(_)
            | StoreError::NoNameplate
            | StoreError::Burned
            | StoreError::HasNameplate
            | StoreError::NoAttempt
            | StoreError::TooManyAttempts { .. }
            | StoreError::AttemptComplete => {
                tracing::error!(session = %id, "{error}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the server could not use its database; its log says why".to_string(),
                )
            }
        };
        Self {
            status,
            message,
            retry_after: None,
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(ApiError {
                error: self.message,
            }),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// axum's rejections carry a status and a sentence; keep both.
macro_rules! rejection_into_failure {
    ($($rejection:ty),*) => {$(
        impl From<$rejection> for Failure {
            fn from(rejection: $rejection) -> Self {
                Self {
                    status: rejection.status(),
                    message: rejection.body_text(),
                    retry_after: None,
                }
            }
        }
    )*};
}

rejection_into_failure!(JsonRejection, PathRejection, QueryRejection);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreLimits;

    fn test_token() -> WriteToken {
        WriteToken::derive(&partyline_wire::InviteSecret([7; 16]))
    }

    /// An app over a fresh database, with one open session for two parties.
    async fn app_with_session(dir: &std::path::Path) -> (Arc<App>, SessionId) {
        let store = Store::open(
            &dir.join("db"),
            StoreLimits {
                live_sessions_per_client: 0,
                live_sessions: 0,
                announcement_bytes: 0,
            },
        )
        .unwrap();
        let app = Arc::new(App {
            store: store.clone(),
            changes: Changes::default(),
            cluster: Cluster::new(None),
            limits: Limits::new(&crate::Quotas::unlimited()),
            relay_gate: RelayGate::new(store.clone(), false),
            relay_grace: Duration::ZERO,
            info: ServerInfo {
                version: "test".into(),
                protocol: partyline_proto::PROTOCOL.into(),
                relay_url: "https://127.0.0.1:1".into(),
                relay_quic_port: None,
                stun_port: None,
                relays: Vec::new(),
                retention: None,
                coordinators: Vec::new(),
                client_ip: None,
            },
            url: "https://127.0.0.1:1".into(),
            relay_token: None,
            session_ttl: Duration::from_secs(3600),
            done_ttl: Duration::from_secs(600),
            stopping: CancellationToken::new(),
        });
        let id = SessionId::random();
        let session = NewSession {
            id,
            parties: 2,
            label: None,
            created_at: unix_secs(),
            expires_at: unix_secs() + 3600,
            creator: "192.0.2.1".parse().unwrap(),
            write_token_hash: test_token().hash(),
        };
        app.store.create(session, unix_secs()).await.unwrap();
        (app, id)
    }

    /// Starts a long-poll that has seen no announcement and waits up to 30 s,
    /// and returns once it is parked: with tokio's clock paused, the sleep
    /// below ends only when every other task is idle (database work included).
    async fn parked_poll(app: &Arc<App>, id: SessionId) -> tokio::task::JoinHandle<SessionView> {
        let poll = tokio::spawn(get_session(
            State(app.clone()),
            Ok(Path(id.to_string())),
            Ok(Query(Poll {
                seen: Some(0),
                wait: Some(30),
            })),
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!poll.is_finished(), "the poll answered without a change");
        tokio::spawn(async move {
            match poll.await.unwrap() {
                Ok(Json(view)) => view,
                Err(failure) => panic!("the poll failed: {}", failure.message),
            }
        })
    }

    #[tokio::test(start_paused = true)]
    async fn long_poll_wakes_on_the_change_it_waits_for() {
        let dir = tempfile::tempdir().unwrap();
        let (app, id) = app_with_session(dir.path()).await;
        let started = tokio::time::Instant::now();
        let poll = parked_poll(&app, id).await;

        let signed = SignedAnnouncement {
            body: format!(r#"{{"endpoint":"{}"}}"#, EndpointKey([1; 32])),
            mac: "0".repeat(64),
        };
        let endpoint = endpoint_of(&signed.body).ok().unwrap();
        app.store
            .announce(id, endpoint, signed, Some(test_token()), unix_secs())
            .await
            .ok()
            .unwrap();
        app.changes.notify(id);

        let view = poll.await.unwrap();
        assert_eq!(view.announcements.len(), 1);
        assert!(
            started.elapsed() < MAX_WAIT,
            "the poll ran into its deadline"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stopping_ends_long_polls() {
        let dir = tempfile::tempdir().unwrap();
        let (app, id) = app_with_session(dir.path()).await;
        let started = tokio::time::Instant::now();
        let poll = parked_poll(&app, id).await;
        app.stopping.cancel();
        assert!(poll.await.unwrap().announcements.is_empty());
        assert!(
            started.elapsed() < MAX_WAIT,
            "the poll ran into its deadline"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn only_waits_on_existing_sessions_are_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let (app, id) = app_with_session(dir.path()).await;
        let unknown = get_session(
            State(app.clone()),
            Ok(Path(SessionId::random().to_string())),
            Ok(Query(Poll {
                seen: Some(0),
                wait: Some(30),
            })),
        )
        .await;
        assert_eq!(unknown.err().map(|f| f.status), Some(StatusCode::NOT_FOUND));
        assert_eq!(app.changes.len(), 0);

        let poll = parked_poll(&app, id).await;
        assert_eq!(app.changes.len(), 1);
        app.stopping.cancel();
        poll.await.unwrap();
        assert_eq!(app.changes.len(), 0, "the bell outlived its last listener");
    }
}
