//! Wakes long-polls when a session changes.
//!
//! This is only a doorbell: the session's data always comes from the store.
//! A poller subscribes *before* it reads the session, so a change that lands
//! between its read and its wait still rings.
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use partyline_wire::SessionId;
use tokio::sync::watch;

/// One doorbell per session someone is waiting on.
#[derive(Default)]
pub(crate) struct Changes {
    bells: Mutex<HashMap<SessionId, watch::Sender<()>>>,
}

impl Changes {
    /// A receiver whose `changed()` completes at the session's next change.
    pub(crate) fn subscribe(&self, id: SessionId) -> watch::Receiver<()> {
        self.bells
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id)
            .or_insert_with(|| watch::channel(()).0)
            .subscribe()
    }

    /// Rings the session's bell, if anyone ever listened.
    pub(crate) fn notify(&self, id: SessionId) {
        if let Some(bell) = self
            .bells
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
        {
            bell.send_replace(());
        }
    }

    /// Drops the bells nobody waits on, so that memory follows the number of
    /// waiting parties, not the number of sessions ever polled.
    pub(crate) fn forget_idle(&self) {
        self.bells
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, bell| bell.receiver_count() > 0);
    }
}
