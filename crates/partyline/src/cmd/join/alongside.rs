//! What goes on while we announce, wait for the roster and connect: our
//! endpoint's first connection to its relay, and the search for Python.
//!
//! A party far from the server would otherwise wait for both before
//! announcing: the relay's probes and handshakes take about ten round trips,
//! and finding Python runs Python once. Peers dial our announced addresses
//! meanwhile, and through the relay once it is up; a relay-only party has no
//! addresses to announce and waits for its relay first.
use std::future::Future;
use std::pin::Pin;

use partyline_mesh::{MeshError, PartyEndpoint};

use super::python::PythonSearch;

pub(super) struct Alongside {
    relay: RelayConnection,
    /// Taken once its result is needed, after the ready barrier.
    pub(super) python: Option<PythonSearch>,
}

impl Alongside {
    pub(super) fn start(party: &PartyEndpoint, python: Option<PythonSearch>) -> Self {
        Self {
            relay: RelayConnection::start(party),
            python,
        }
    }

    /// Runs `work` and stops it as soon as the relay cannot be reached or
    /// no Python can be found.
    pub(super) async fn unless_failed<T>(
        &mut self,
        work: impl Future<Output = T>,
    ) -> anyhow::Result<T> {
        let python = &mut self.python;
        let searching = async {
            match python {
                Some(search) => search.unless_failed(work).await,
                None => Ok(work.await),
            }
        };
        Ok(self.relay.alongside(searching).await??)
    }

    /// Runs `work` and stops it as soon as the relay cannot be reached; a
    /// failed search for Python is kept until its result is asked for.
    pub(super) async fn unless_relay_failed<T>(
        &mut self,
        work: impl Future<Output = T>,
    ) -> Result<T, MeshError> {
        let searching = searching_alongside(&mut self.python, work);
        self.relay.alongside(searching).await
    }

    /// Waits until the relay connection is made, while the search for Python
    /// goes on: a relay-only party cannot be reached before, and peers that
    /// dialled it would wait a second for QUIC to send their handshake again.
    pub(super) async fn relay_online(&mut self) -> Result<(), MeshError> {
        searching_alongside(&mut self.python, self.relay.online()).await
    }

    /// Runs `work` while the search for Python goes on; the relay is no
    /// longer watched.
    pub(super) async fn while_searching<T>(&mut self, work: impl Future<Output = T>) -> T {
        searching_alongside(&mut self.python, work).await
    }
}

/// Runs `work` while the search for Python, if any, goes on.
async fn searching_alongside<T>(
    python: &mut Option<PythonSearch>,
    work: impl Future<Output = T>,
) -> T {
    match python {
        Some(search) => search.alongside(work).await,
        None => work.await,
    }
}

/// Our endpoint's first connection to its relay.
struct RelayConnection {
    online: Pin<Box<dyn Future<Output = Result<(), MeshError>> + Send>>,
    up: bool,
}

impl RelayConnection {
    fn start(party: &PartyEndpoint) -> Self {
        let party = party.clone();
        Self {
            online: Box::pin(async move { party.online().await }),
            up: false,
        }
    }

    /// Waits until the relay connection is made.
    async fn online(&mut self) -> Result<(), MeshError> {
        if !self.up {
            (&mut self.online).await?;
            self.up = true;
            super::phase("endpoint online at the relay");
        }
        Ok(())
    }

    /// Runs `work` while the relay connection is made; ends it early if the
    /// relay cannot be reached. Once connected, the relay is not watched.
    async fn alongside<T>(&mut self, work: impl Future<Output = T>) -> Result<T, MeshError> {
        tokio::pin!(work);
        loop {
            tokio::select! {
                biased;
                done = &mut work => return Ok(done),
                online = &mut self.online, if !self.up => {
                    online?;
                    self.up = true;
                    super::phase("endpoint online at the relay");
                }
            }
        }
    }
}
