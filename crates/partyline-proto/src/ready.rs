//! The ready barrier: no party's program starts until every party has
//! accepted the roster.
//!
//! Once connected, each party checks the roster (its `--expect` names, its
//! typed fingerprint, or nothing), then sends every peer one "ready" on a
//! unidirectional stream: the [`StreamKind::Ready`] header and the full
//! 32-byte [`Roster::digest`] the fingerprint is taken from. It then waits
//! for a ready from every peer. A party that refuses sends no ready and
//! closes its connections with [`CloseCode::Aborted`] instead, so no party
//! ever starts its program, and so no input leaves, on a roster someone
//! refused.
//!
//! A peer whose digest differs holds another roster: the coordinator showed
//! different parties different rosters. That ends the session with
//! [`CloseCode::RosterMismatch`]; the fingerprint read aloud is thereby also
//! compared automatically.
//!
//! Nothing is spawned, so the same code runs natively and in the browser.
use std::time::Duration;

use iroh::endpoint::{Connection, RecvStream};
use n0_future::{FuturesUnordered, StreamExt};
use partyline_wire::{Member, Roster};

use crate::stream::{StreamKind, read_header};
use crate::{CloseCode, PeerEvent, PeerEventKind};

/// Bytes of a ready after its header: the roster digest.
const DIGEST_LEN: usize = 32;

/// Why the barrier did not open: some party did not accept our roster.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReadyError {
    #[error(
        "party {index} ({name}) holds a different roster: the coordinator showed you different parties; do not proceed"
    )]
    RosterMismatch { index: usize, name: String },
    #[error("{0}")]
    PeerEnded(PeerEvent),
    #[error("party {index} ({name}) broke the peer protocol: {what}")]
    Violation {
        index: usize,
        name: String,
        what: String,
    },
    #[error(
        "gave up after {secs}s waiting for these parties to accept the roster: {missing}; they may still be comparing the fingerprint (raise --timeout) or have lost their network"
    )]
    Timeout { secs: u64, missing: String },
}

impl ReadyError {
    /// The code we close our connections with after this error.
    pub fn close_code(&self) -> CloseCode {
        match self {
            ReadyError::RosterMismatch { .. } => CloseCode::RosterMismatch,
            _ => CloseCode::Aborted,
        }
    }
}

/// Sends our ready to every peer in `links`, then waits up to `timeout` for
/// every peer's ready with the digest of the same `roster`.
///
/// On failure every connection is closed with [`ReadyError::close_code`] and
/// a reason naming us, so the peers learn at once why nothing starts.
pub async fn ready_barrier(
    links: &[(&Member, &Connection)],
    roster: &Roster,
    timeout: Duration,
) -> Result<(), ReadyError> {
    let digest = roster.digest();
    let mut waiting: FuturesUnordered<_> = links
        .iter()
        .map(|&(member, conn)| async move { (member, exchange(conn, &digest).await) })
        .collect();
    let mut missing: Vec<&Member> = links.iter().map(|(m, _)| *m).collect();
    let barrier = async {
        while let Some((member, result)) = waiting.next().await {
            let failure = match result {
                Ok(theirs) if theirs == digest => {
                    missing.retain(|m| m.index != member.index);
                    continue;
                }
                Ok(_) => ReadyError::RosterMismatch {
                    index: member.index,
                    name: member.name.clone(),
                },
                Err(Failure::Closed(kind)) => ReadyError::PeerEnded(PeerEvent {
                    index: member.index,
                    name: member.name.clone(),
                    kind,
                }),
                Err(Failure::Violation(what)) => ReadyError::Violation {
                    index: member.index,
                    name: member.name.clone(),
                    what,
                },
            };
            return Err(failure);
        }
        Ok(())
    };
    let result = match n0_future::time::timeout(timeout, barrier).await {
        Ok(result) => result,
        Err(_) => Err(ReadyError::Timeout {
            secs: timeout.as_secs(),
            missing: missing
                .iter()
                .map(|m| format!("party {} ({})", m.index, m.name))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    };
    if let Err(error) = &result {
        let reason = format!("{} did not start its program: {error}", roster.own().name);
        for (_, conn) in links {
            error.close_code().close(conn, &reason);
        }
    }
    result
}

/// What went wrong on one peer's connection during the barrier.
enum Failure {
    /// The connection ended (the peer refused, was stopped, or went silent).
    Closed(PeerEventKind),
    Violation(String),
}

/// Sends our ready on `conn` and returns the digest of the peer's.
async fn exchange(conn: &Connection, digest: &[u8; DIGEST_LEN]) -> Result<[u8; 32], Failure> {
    let sent = async {
        let mut send = conn.open_uni().await.ok()?;
        send.write_all(&[StreamKind::Ready as u8]).await.ok()?;
        send.write_all(digest).await.ok()?;
        send.finish().ok()
    };
    if sent.await.is_none() {
        return Err(closed(conn).await);
    }
    let mut recv = match conn.accept_uni().await {
        Ok(recv) => recv,
        Err(_) => return Err(closed(conn).await),
    };
    read_ready(conn, &mut recv).await
}

async fn read_ready(conn: &Connection, recv: &mut RecvStream) -> Result<[u8; DIGEST_LEN], Failure> {
    match read_header(recv).await {
        Ok(StreamKind::Ready) => {}
        Ok(other) => {
            return Err(Failure::Violation(format!(
                "it sent a {other:?} stream where its ready belongs"
            )));
        }
        Err(crate::stream::StreamError::UnknownKind(kind)) => {
            return Err(Failure::Violation(format!(
                "it opened a stream of unknown kind {kind}"
            )));
        }
        Err(_) => return Err(closed(conn).await),
    }
    let mut theirs = [0u8; DIGEST_LEN];
    if recv.read_exact(&mut theirs).await.is_err() {
        return match conn.close_reason() {
            Some(error) => Err(closed_by(error)),
            None => Err(Failure::Violation(
                "its ready is shorter than a roster digest".to_string(),
            )),
        };
    }
    Ok(theirs)
}

/// How the connection ended, once a stream operation failed because it did.
async fn closed(conn: &Connection) -> Failure {
    closed_by(conn.closed().await)
}

fn closed_by(error: iroh::endpoint::ConnectionError) -> Failure {
    match PeerEventKind::of(error) {
        Some(kind) => Failure::Closed(kind),
        None => Failure::Closed(PeerEventKind::Lost("we closed the connection".to_string())),
    }
}

#[cfg(test)]
mod tests {
    //! Two real iroh endpoints on loopback, connected directly (no relay).
    use std::collections::BTreeSet;

    use iroh::endpoint::presets;
    use iroh::{Endpoint, RelayMode, SecretKey};
    use partyline_wire::{EndpointKey, SessionId};

    use super::*;
    use crate::connect::{Dialing, connect_all};
    use crate::transport::transport_config;

    const TIMEOUT: Duration = Duration::from_secs(10);

    async fn endpoint() -> Endpoint {
        Endpoint::builder(presets::Minimal)
            .secret_key(SecretKey::generate())
            .relay_mode(RelayMode::Disabled)
            .clear_ip_transports()
            .bind_addr("127.0.0.1:0")
            .expect("a loopback address")
            .transport_config(transport_config())
            .alpns(vec![crate::ALPN.to_vec()])
            .bind()
            .await
            .expect("binding a loopback endpoint")
    }

    fn member(index: usize, name: &str, endpoint: &Endpoint) -> Member {
        Member {
            index,
            name: name.to_string(),
            endpoint: EndpointKey(*endpoint.id().as_bytes()),
            relay_url: None,
            addrs: endpoint.addr().ip_addrs().map(|a| a.to_string()).collect(),
            identity: None,
            webrtc: None,
        }
    }

    fn roster(members: &[Member], own_index: usize) -> Roster {
        Roster {
            session: SessionId([7; 16]),
            members: members.to_vec(),
            own_index,
        }
    }

    /// alice's and bob's endpoints, connected, with the rosters each holds.
    async fn connected(
        alice_sees: [&str; 2],
        bob_sees: [&str; 2],
    ) -> (Roster, Connection, Roster, Connection, Endpoint, Endpoint) {
        let (a, b) = (endpoint().await, endpoint().await);
        let alice = roster(
            &[member(0, alice_sees[0], &a), member(1, alice_sees[1], &b)],
            0,
        );
        let bob = roster(&[member(0, bob_sees[0], &a), member(1, bob_sees[1], &b)], 1);
        let no_webrtc = BTreeSet::new();
        let (from_a, from_b) = tokio::join!(
            connect_all(&a, &alice, &Dialing::Direct, &no_webrtc, TIMEOUT),
            connect_all(&b, &bob, &Dialing::Direct, &no_webrtc, TIMEOUT),
        );
        let (_, a_to_b) = from_a.expect("alice connects").remove(0);
        let (_, b_to_a) = from_b.expect("bob connects").remove(0);
        (alice, a_to_b, bob, b_to_a, a, b)
    }

    #[tokio::test]
    async fn the_same_roster_opens_the_barrier_for_both() {
        let (alice, a_to_b, bob, b_to_a, _a, _b) =
            connected(["alice", "bob"], ["alice", "bob"]).await;
        let (alice_links, bob_links) =
            ([(&alice.members[1], &a_to_b)], [(&bob.members[0], &b_to_a)]);
        let (at_alice, at_bob) = tokio::join!(
            ready_barrier(&alice_links, &alice, TIMEOUT),
            ready_barrier(&bob_links, &bob, TIMEOUT),
        );
        assert_eq!(at_alice, Ok(()));
        assert_eq!(at_bob, Ok(()));
    }

    #[tokio::test]
    async fn a_different_roster_ends_the_session_on_both_sides() {
        // The coordinator showed bob a roster where alice's seat is "mallory".
        let (alice, a_to_b, bob, b_to_a, _a, _b) =
            connected(["alice", "bob"], ["mallory", "bob"]).await;
        let (alice_links, bob_links) =
            ([(&alice.members[1], &a_to_b)], [(&bob.members[0], &b_to_a)]);
        let (at_alice, at_bob) = tokio::join!(
            ready_barrier(&alice_links, &alice, TIMEOUT),
            ready_barrier(&bob_links, &bob, TIMEOUT),
        );
        let at_alice = at_alice.expect_err("alice must not start");
        assert_eq!(
            at_alice,
            ReadyError::RosterMismatch {
                index: 1,
                name: "bob".to_string()
            }
        );
        assert!(
            at_alice
                .to_string()
                .contains("party 1 (bob) holds a different roster: the coordinator showed you different parties; do not proceed"),
            "{at_alice}"
        );
        assert!(at_bob.is_err(), "bob must not start either");
        assert_eq!(at_alice.close_code(), CloseCode::RosterMismatch);
    }

    #[tokio::test]
    async fn a_peer_that_refuses_ends_the_wait_naming_it() {
        let (alice, a_to_b, _bob, b_to_a, _a, _b) =
            connected(["alice", "bob"], ["alice", "bob"]).await;
        // bob refuses: no ready, its links closed with Aborted.
        CloseCode::Aborted.close(&b_to_a, "bob refused to start: carol is not expected");
        let at_alice = ready_barrier(&[(&alice.members[1], &a_to_b)], &alice, TIMEOUT)
            .await
            .expect_err("alice must not start");
        assert_eq!(
            at_alice.to_string(),
            "party 1 (bob) ended the session: bob refused to start: carol is not expected"
        );
    }

    #[tokio::test]
    async fn a_stream_of_unknown_kind_is_a_violation() {
        let (alice, a_to_b, _bob, b_to_a, _a, _b) =
            connected(["alice", "bob"], ["alice", "bob"]).await;
        let mut send = b_to_a.open_uni().await.expect("bob opens a stream");
        send.write_all(&[9]).await.expect("bob writes");
        send.finish().expect("bob finishes");
        let at_alice = ready_barrier(&[(&alice.members[1], &a_to_b)], &alice, TIMEOUT)
            .await
            .expect_err("alice must not start");
        assert!(
            matches!(at_alice, ReadyError::Violation { index: 1, .. }),
            "{at_alice}"
        );
    }
}
