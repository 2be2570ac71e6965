//! What each request costs before it reaches a handler: every request takes
//! a token from its client's request bucket, every write (any method but
//! GET/HEAD) one from the write bucket, and a long-poll holds a place among
//! the waits until it answers. Refusals are JSON errors with `Retry-After`
//! (see `limits`).
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::api::{App, Failure};

pub(crate) async fn admit(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    // A relay of our own asks on behalf of all its parties: its questions
    // are bounded by its connections, not by one client's share.
    if crate::relay_api::from_relay(&app, request.headers()) {
        return next.run(request).await;
    }
    let now = Instant::now();
    let limits = &app.limits;
    if let Err(refusal) = limits.requests.take(peer.ip(), now) {
        return Failure::refused(refusal, "requests", peer).into_response();
    }
    let writes = !matches!(*request.method(), Method::GET | Method::HEAD);
    if writes && let Err(refusal) = limits.writes.take(peer.ip(), now) {
        return Failure::refused(refusal, "changes", peer).into_response();
    }
    let _waiting = match is_long_poll(&request) {
        true => match limits.waits.hold(peer.ip()) {
            Ok(held) => Some(held),
            Err(refusal) => {
                return Failure::refused(refusal, "waiting requests", peer).into_response();
            }
        },
        false => None,
    };
    next.run(request).await
}

/// A request that asks to be held until something changes (`?wait=N`, N > 0).
fn is_long_poll(request: &Request) -> bool {
    #[derive(Deserialize)]
    struct Wait {
        wait: Option<String>,
    }
    Query::<Wait>::try_from_uri(request.uri())
        .ok()
        .and_then(|Query(query)| query.wait)
        .is_some_and(|wait| wait.parse::<u64>().map_or(true, |secs| secs > 0))
}
