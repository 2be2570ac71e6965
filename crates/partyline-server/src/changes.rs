//! Wakes long-polls when a session changes.
//!
//! This is only a doorbell: the session's data always comes from the store.
//! A poller subscribes *before* it reads the session again, so a change that
//! lands between its read and its wait still rings. Only pollers of sessions
//! that exist subscribe (the caller checks first), and a bell goes away with
//! its last listener, so the map holds at most one bell per long-poll in
//! flight, which the quotas bound.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use partyline_wire::SessionId;
use tokio::sync::watch;

/// One doorbell per session someone is waiting on.
#[derive(Default)]
pub(crate) struct Changes {
    bells: Arc<Mutex<HashMap<SessionId, watch::Sender<()>>>>,
}

/// A long-poll's ear on one session's bell; dropping the last one removes the bell.
pub(crate) struct Subscription {
    id: SessionId,
    receiver: watch::Receiver<()>,
    bells: Arc<Mutex<HashMap<SessionId, watch::Sender<()>>>>,
}

impl Changes {
    /// A subscription whose `changed()` completes at the session's next change.
    pub(crate) fn subscribe(&self, id: SessionId) -> Subscription {
        let receiver = self
            .bells
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id)
            .or_insert_with(|| watch::channel(()).0)
            .subscribe();
        Subscription {
            id,
            receiver,
            bells: self.bells.clone(),
        }
    }

    /// Rings the session's bell, if anyone listens.
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

    /// Rings every bell: after a time in which changes may have been missed
    /// (`cluster`).
    pub(crate) fn notify_all(&self) {
        for bell in self
            .bells
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
        {
            bell.send_replace(());
        }
    }

    /// How many sessions have a bell, i.e. someone waiting.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.bells
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Subscription {
    /// Completes at the session's next change; an error if the bell is gone.
    pub(crate) async fn changed(&mut self) -> Result<(), watch::error::RecvError> {
        self.receiver.changed().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut bells = self.bells.lock().unwrap_or_else(PoisonError::into_inner);
        // Our own receiver still counts until this function returns.
        if bells
            .get(&self.id)
            .is_some_and(|bell| bell.receiver_count() <= 1)
        {
            bells.remove(&self.id);
        }
    }
}
