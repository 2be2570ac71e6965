//! Forgets expired sessions.
//!
//! Requests already treat a session as gone the moment it expires (see
//! [`crate::store`]); this sweep only reclaims the space, so once a minute is
//! plenty. It also drops the in-memory bookkeeping that nobody needs any more,
//! and the relay connections of the sessions it deletes.
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api::{App, unix_secs};

const EVERY: Duration = Duration::from_secs(60);

/// Sweeps every minute until the server stops.
pub(crate) async fn sweep_until_stopped(app: Arc<App>) {
    // A short-lived session (tests) is swept at least twice in its life.
    let every = EVERY
        .min(app.session_ttl / 2)
        .max(Duration::from_millis(100));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = app.stopping.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match app.store.delete_expired(unix_secs()).await {
            Ok(ids) if ids.is_empty() => {}
            Ok(ids) => {
                for id in &ids {
                    app.relay_gate.end_session(*id);
                }
                tracing::info!(sessions = ids.len(), "expired sessions deleted");
            }
            Err(e) => tracing::error!("cannot delete expired sessions: {e}"),
        }
        app.limits.forget_full(Instant::now());
    }
}
