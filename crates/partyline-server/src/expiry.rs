//! Deletes expired sessions, and says what the server keeps for how long.
//!
//! Requests already treat a session as gone the moment it expires (see
//! [`crate::store`]); this sweep deletes it from the database for good, so
//! once a minute is plenty. It also drops the in-memory bookkeeping that
//! nobody needs any more, and the relay connections of the sessions it
//! deletes.
use std::sync::Arc;
use std::time::{Duration, Instant};

use partyline_wire::api::Retention;

use crate::ServerConfig;
use crate::api::{App, unix_secs};
use crate::cluster::{Event, publish};

const EVERY: Duration = Duration::from_secs(60);

/// How often the sweep runs: every minute, and at least twice in the life of
/// a short-lived session or done grace (tests, soaks).
fn sweep_interval(session_ttl: Duration, done_ttl: Duration) -> Duration {
    EVERY
        .min(session_ttl / 2)
        .min(done_ttl / 2)
        .max(Duration::from_millis(100))
}

/// What `/v1/info` says the server keeps.
pub(crate) fn retention(config: &ServerConfig) -> Retention {
    let deleted = match config.database_url {
        None => "in SQLite, overwritten when deleted",
        Some(_) => "in PostgreSQL, vacuumed after deletion (its space is reused, not overwritten)",
    };
    Retention {
        keeps: format!(
            "per session: its party count, label, state, times, the hash of its write \
                token, the creator's IP address (or IPv6 /64), and each party's signed \
                announcement (name, endpoint id, addresses); for a short code, its number \
                and the PAKE messages of attempts under way (2 minutes each); {deleted}. \
                The relay forwards only encrypted packets and keeps none."
        ),
        session_secs: config.session_ttl.as_secs(),
        done_secs: config.done_ttl.as_secs(),
        relay_secs: config.relay_grace.as_secs(),
        sweep_secs: sweep_interval(config.session_ttl, config.done_ttl)
            .as_secs()
            .max(1),
    }
}

/// Sweeps until the server stops.
pub(crate) async fn sweep_until_stopped(app: Arc<App>) {
    let every = sweep_interval(app.session_ttl, app.done_ttl);
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = app.stopping.cancelled() => return,
            _ = ticks.tick() => {}
        }
        // Other processes on the database name this one to clients while it
        // says it is alive.
        if let Err(e) = app
            .store
            .coordinator_alive(app.url.clone(), unix_secs())
            .await
        {
            tracing::warn!("cannot record this coordinator as alive: {e}");
        }
        match app.store.delete_expired(unix_secs()).await {
            Ok(ids) if ids.is_empty() => {}
            Ok(ids) => {
                for id in &ids {
                    publish(&app, Event::Deleted(*id)).await;
                }
                tracing::info!(sessions = ids.len(), "expired sessions deleted");
            }
            Err(e) => tracing::error!("cannot delete expired sessions: {e}"),
        }
        app.limits.forget_full(Instant::now());
    }
}
