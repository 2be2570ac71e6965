//! What one coordinator process tells the others that share its PostgreSQL
//! database.
//!
//! Long-polls wait on in-process doorbells (`changes`), and each process's
//! relay holds its own connections. With a shared database, a change made
//! through one process must ring the bells in all of them, and a party that
//! left, or a session that ended or was deleted, must be dropped from every
//! relay. So each such [`Event`] is applied in this process at once and, on
//! PostgreSQL, sent with `NOTIFY` on one channel; every process `LISTEN`s and
//! applies the others' events. With SQLite there is one process and nothing
//! is sent.
//!
//! A notification lost while the listening connection is down costs a wait,
//! not a session: a long-poll ends after its hold and the client asks again.
//! Once connected again, every bell rings, since anything may have changed.
use std::sync::Arc;
use std::time::Duration;

use partyline_wire::{EndpointKey, SessionId};
use tokio::sync::watch;
use tokio_postgres::AsyncMessage;

use crate::api::App;
use crate::database::postgres_reason;

/// The channel every process listens on.
const CHANNEL: &str = "partyline_events";
/// The first pause before connecting again; doubles up to [`RECONNECT_MAX`].
const RECONNECT_FIRST: Duration = Duration::from_millis(250);
const RECONNECT_MAX: Duration = Duration::from_secs(8);

/// Something other processes must know of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// The session changed: its long-polls answer.
    Changed(SessionId),
    /// The party left the session: its relay connection goes.
    Left(SessionId, EndpointKey),
    /// The session is done: its relay connections go after the grace.
    Done(SessionId),
    /// The session was deleted: its relay connections go.
    Deleted(SessionId),
}

impl Event {
    fn encode(&self) -> String {
        match self {
            Event::Changed(id) => format!("changed {id}"),
            Event::Left(id, endpoint) => format!("left {id} {endpoint}"),
            Event::Done(id) => format!("done {id}"),
            Event::Deleted(id) => format!("deleted {id}"),
        }
    }

    fn decode(text: &str) -> Option<Self> {
        let mut words = text.split(' ');
        let kind = words.next()?;
        let id = words.next()?.parse().ok()?;
        let event = match kind {
            "changed" => Event::Changed(id),
            "left" => Event::Left(id, words.next()?.parse().ok()?),
            "done" => Event::Done(id),
            "deleted" => Event::Deleted(id),
            _ => return None,
        };
        words.next().is_none().then_some(event)
    }
}

/// This process's voice on the channel: none with SQLite.
pub(crate) struct Cluster {
    /// Where to listen; none with SQLite.
    url: Option<String>,
    /// Tells this process's notifications from the others'.
    instance: String,
    /// The listening connection, which also sends; none while it is down.
    sender: watch::Sender<Option<Arc<tokio_postgres::Client>>>,
}

impl Cluster {
    /// A cluster of this process alone (SQLite), or of every process on the
    /// PostgreSQL database at `url`.
    pub(crate) fn new(url: Option<String>) -> Self {
        Self {
            url,
            instance: format!("{:016x}", rand::random::<u64>()),
            sender: watch::Sender::new(None),
        }
    }

    fn sender(&self) -> Option<Arc<tokio_postgres::Client>> {
        self.sender.borrow().clone()
    }

    fn set_sender(&self, sender: Option<Arc<tokio_postgres::Client>>) {
        self.sender.send_replace(sender);
    }

    /// Waits, at most `limit`, until this process listens (and so can also
    /// tell the others); true at once with SQLite. A server that took
    /// requests before would drop the events of its first changes, and miss
    /// the others': long-polls on either side would wait out their hold.
    pub(crate) async fn listening(&self, limit: Duration) -> bool {
        if self.url.is_none() {
            return true;
        }
        let mut listening = self.sender.subscribe();
        matches!(
            tokio::time::timeout(limit, listening.wait_for(Option::is_some)).await,
            Ok(Ok(_))
        )
    }
}

/// Applies `event` here and tells the other processes.
pub(crate) async fn publish(app: &App, event: Event) {
    apply(app, event);
    if app.cluster.url.is_none() {
        return;
    }
    let Some(sender) = app.cluster.sender() else {
        tracing::warn!(
            ?event,
            "not connected to PostgreSQL's notifications: other servers learn of this late"
        );
        return;
    };
    let payload = format!("{} {}", app.cluster.instance, event.encode());
    if let Err(e) = sender
        .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
        .await
    {
        tracing::warn!(
            ?event,
            "cannot notify the other servers: {}",
            postgres_reason(&e)
        );
    }
}

/// What an event means in this process.
fn apply(app: &App, event: Event) {
    match event {
        Event::Changed(id) => app.changes.notify(id),
        Event::Left(id, endpoint) => {
            app.changes.notify(id);
            app.relay_gate.end_party(id, endpoint);
        }
        Event::Done(id) => {
            app.changes.notify(id);
            let (gate, grace) = (app.relay_gate.clone(), app.relay_grace);
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                gate.end_session(id);
            });
        }
        Event::Deleted(id) => app.relay_gate.end_session(id),
    }
}

/// Listens for the other processes' events until the server stops,
/// connecting again whenever the connection is lost. Returns at once with
/// SQLite.
pub(crate) async fn listen_until_stopped(app: Arc<App>) {
    let Some(url) = app.cluster.url.clone() else {
        return;
    };
    let mut pause = RECONNECT_FIRST;
    loop {
        let outcome = tokio::select! {
            () = app.stopping.cancelled() => return,
            outcome = listen(&app, &url) => outcome,
        };
        app.cluster.set_sender(None);
        match outcome {
            // It was up: the next failure starts from a short pause again.
            Ok(()) => pause = RECONNECT_FIRST,
            Err(e) => tracing::warn!(
                "cannot listen for the other servers' notifications: {}; trying again in {} ms",
                postgres_reason(&e),
                pause.as_millis()
            ),
        }
        tokio::select! {
            () = app.stopping.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(RECONNECT_MAX);
    }
}

/// One listening connection, until it ends.
async fn listen(app: &App, url: &str) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let client = Arc::new(client);
    let listening = {
        let client = client.clone();
        async move { client.batch_execute(&format!("LISTEN {CHANNEL}")).await }
    };
    tokio::pin!(listening);
    let mut listened = false;
    loop {
        // The connection only moves while it is polled, so it is polled here
        // while LISTEN is under way too.
        let message = tokio::select! {
            result = &mut listening, if !listened => {
                result?;
                listened = true;
                app.cluster.set_sender(Some(client.clone()));
                tracing::info!("listening for the other servers' notifications");
                // Whatever changed while nobody listened.
                app.changes.notify_all();
                continue;
            }
            message = std::future::poll_fn(|cx| connection.poll_message(cx)) => message,
        };
        match message {
            Some(Ok(AsyncMessage::Notification(note))) => {
                let Some((instance, event)) = note.payload().split_once(' ') else {
                    continue;
                };
                if instance == app.cluster.instance {
                    continue;
                }
                match Event::decode(event) {
                    Some(event) => apply(app, event),
                    None => tracing::warn!(payload = note.payload(), "unknown notification"),
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e),
            None => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_survive_their_encoding() {
        let id = SessionId::random();
        for event in [
            Event::Changed(id),
            Event::Left(id, EndpointKey([9; 32])),
            Event::Done(id),
            Event::Deleted(id),
        ] {
            assert_eq!(Event::decode(&event.encode()), Some(event));
        }
        for bad in [
            "",
            "changed",
            "changed x",
            "left {id}",
            "moved {id}",
            "done {id} extra",
        ] {
            assert_eq!(Event::decode(&bad.replace("{id}", &id.to_string())), None);
        }
    }
}
