//! What a party holds in the session, and the one place that lets go of it,
//! after mini-redis' `DbDropGuard`.
use partyline_mesh::{CloseCode, PartyEndpoint, PeerLink};
use partyline_session::Coordinator;
use partyline_wire::{Announcement, Identity, Invite};

use super::INTERRUPTED;
use crate::report::Report;

/// Our place in the session from the moment our endpoint exists: the
/// endpoint, our announcement, and once connected the links to the peers.
///
/// Every run ends in [`Seat::leave`]. Leaving is async (withdrawing, flushing
/// the close frames), which `Drop` cannot do; so `Drop` is only a safety net
/// for a seat never left (a panic): it aborts the links, which is synchronous.
pub(super) struct Seat<'a> {
    pub(super) coordinator: &'a Coordinator,
    pub(super) own: Announcement,
    pub(super) party: PartyEndpoint,
    pub(super) links: Vec<PeerLink>,
    left: bool,
}

/// How we let go of our seat.
pub(super) enum Leave {
    /// Take our announcement back, so that the seat can be taken again
    /// (Ctrl-C or a timeout while waiting for the others).
    Withdraw,
    /// Only close the endpoint: no peer is connected yet. After a refused
    /// roster the session is spoiled for everyone, and withdrawing would only
    /// hide the forged roster from the parties still waiting for it.
    Close,
    /// Tell every peer why we end, with this close code; then close.
    End(CloseCode, String),
}

/// How a run ends: how to leave the seat, what to say once left, the report
/// and the exit code (or error).
pub(super) struct End {
    pub(super) how: Leave,
    pub(super) note: Option<&'static str>,
    pub(super) report: Option<Report>,
    pub(super) outcome: anyhow::Result<i32>,
}

impl End {
    pub(super) fn with(how: Leave, outcome: anyhow::Result<i32>) -> Self {
        Self {
            how,
            note: None,
            report: None,
            outcome,
        }
    }

    pub(super) fn interrupted(how: Leave, note: &'static str) -> Self {
        Self {
            note: Some(note),
            ..Self::with(how, Ok(INTERRUPTED))
        }
    }
}

impl<'a> Seat<'a> {
    /// Our announcement, ready to post; it waits briefly for the server's
    /// STUN answer (see `PartyEndpoint::webrtc_offer`).
    pub(super) async fn take(
        coordinator: &'a Coordinator,
        invite: &Invite,
        name: String,
        party: PartyEndpoint,
        relay_only: bool,
        identity: Option<&Identity>,
    ) -> Self {
        let own = Announcement {
            session: invite.session,
            name,
            endpoint: party.key(),
            relay_url: Some(party.relay_url()),
            addrs: if relay_only {
                Vec::new()
            } else {
                party.direct_addrs()
            },
            joined_at_ms: unix_millis(),
            identity: None,
            webrtc: party.webrtc_offer().await,
        };
        let own = match identity {
            Some(identity) => own.with_identity(identity),
            None => own,
        };
        Self {
            coordinator,
            own,
            party,
            links: Vec::new(),
            left: false,
        }
    }

    pub(super) async fn leave(mut self, how: Leave) {
        self.left = true;
        match &how {
            Leave::Withdraw => {
                let _ = self
                    .coordinator
                    .leave(&self.own.session, &self.own.endpoint)
                    .await;
            }
            Leave::Close => {}
            Leave::End(code, reason) => {
                for link in &self.links {
                    code.close(&link.conn, reason);
                }
            }
        }
        // Telling the server goes on while the closes are flushed: one round
        // trip less at the end. The relay keeps a done session's connections
        // a grace period, so no close is cut off.
        let done = async {
            if matches!(how, Leave::End(CloseCode::Finished, _)) {
                let _ = self.coordinator.done(&self.own.session).await;
                super::phase("server told the session is done");
            }
        };
        let closed = async {
            self.party.close().await;
            super::phase("endpoint closed");
        };
        tokio::join!(done, closed);
    }
}

impl Drop for Seat<'_> {
    fn drop(&mut self) {
        if !self.left {
            for link in &self.links {
                CloseCode::Aborted.close(&link.conn, "its partyline stopped unexpectedly");
            }
        }
    }
}

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}
