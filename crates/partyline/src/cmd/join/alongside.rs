//! What goes on while we announce, wait for the roster and connect: our
//! endpoint's first connection to its relay, and the search for Python.
//!
//! A party far from the server would otherwise wait for both before
//! announcing: the relay's probes and handshakes take about ten round trips,
//! and finding Python runs Python once. Peers dial our announced addresses
//! meanwhile, and through the relay once it is up. A party that peers can
//! reach only through its relay waits for it first: a relay-only party, and
//! one behind a NAT (the server saw it come from an address not its own),
//! whose announced addresses peers cannot dial until a hole is punched.
use std::future::Future;
use std::pin::Pin;

use partyline_mesh::{MeshError, PartyEndpoint};

use super::python::PythonSearch;

pub(super) struct Alongside {
    relay: RelayConnection,
    /// Peers reach us only through the relay, so we announce once it is up.
    relay_first: bool,
    /// Taken once its result is needed, after the ready barrier.
    pub(super) python: Option<PythonSearch>,
}

impl Alongside {
    pub(super) fn start(
        party: &PartyEndpoint,
        relay_first: bool,
        python: Option<PythonSearch>,
    ) -> Self {
        Self {
            relay: RelayConnection::start(party),
            relay_first,
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

    /// Waits until peers can reach us, while the search for Python goes on:
    /// at once if they can dial our addresses, else until the relay
    /// connection is made. Peers that dialled us before would wait for QUIC
    /// to send their handshake again (0.3 s, 0.9 s, 2.1 s after the dial).
    pub(super) async fn reachable(&mut self) -> Result<(), MeshError> {
        if !self.relay_first {
            return Ok(());
        }
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
