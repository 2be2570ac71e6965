//! From the coordinator's list of announcements to a verified roster.
//!
//! The coordinator is not trusted: it may drop, add, alter or replay
//! announcements. A roster is accepted only if every announcement verifies
//! under the invite's key, there are exactly as many as the invite says, no
//! endpoint appears twice, and our own announcement is among them unchanged.
//! Seats are ordered by (join time, endpoint id), data every party sees
//! identically, so all parties agree on every MPyC index without asking anyone.
use std::collections::HashSet;

use crate::announce::{AnnounceError, Announcement, AnnouncementKey, SignedAnnouncement};
use crate::{EndpointKey, Invite, SessionId};

/// One party in a verified roster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The party's seat: its MPyC index.
    pub index: usize,
    pub name: String,
    pub endpoint: EndpointKey,
    pub relay_url: Option<String>,
    pub addrs: Vec<String>,
}

/// The verified list of all parties of a session, in seat order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roster {
    pub session: SessionId,
    pub members: Vec<Member>,
    /// Our own seat.
    pub own_index: usize,
}

/// Why a roster was refused. Each variant names what the coordinator did wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RosterError {
    #[error(
        "the coordinator handed out an announcement (entry {position}) that is not from a holder of this invite: {reason}; the coordinator may be compromised, so this party refuses to start"
    )]
    BadAnnouncement {
        position: usize,
        reason: AnnounceError,
    },
    #[error(
        "the coordinator lists {got} parties but the invite is for {expected}; it added a seat, so this party refuses to start"
    )]
    TooMany { expected: usize, got: usize },
    #[error("the coordinator lists endpoint {0} twice; this party refuses to start")]
    DuplicateEndpoint(String),
    #[error(
        "our own announcement is missing from the coordinator's list although it is full; the coordinator replaced it, so this party refuses to start"
    )]
    MissingSelf,
}

/// Verifies every announcement the coordinator sent, in its order.
///
/// Used while waiting, to show who has joined; any bad entry is an error at once.
pub fn verify_all(
    key: &AnnouncementKey,
    signed: &[SignedAnnouncement],
) -> Result<Vec<Announcement>, RosterError> {
    signed
        .iter()
        .enumerate()
        .map(|(position, s)| {
            key.verify(s)
                .map_err(|reason| RosterError::BadAnnouncement { position, reason })
        })
        .collect()
}

impl Roster {
    /// Builds the roster once the coordinator lists as many parties as the invite says.
    ///
    /// Returns `Ok(None)` while parties are still missing.
    pub fn build(
        invite: &Invite,
        own: &EndpointKey,
        signed: &[SignedAnnouncement],
    ) -> Result<Option<Roster>, RosterError> {
        let key = AnnouncementKey::derive(invite);
        let mut announcements = verify_all(&key, signed)?;
        let expected = usize::from(invite.parties);
        let mut seen = HashSet::new();
        for a in &announcements {
            if !seen.insert(a.endpoint) {
                return Err(RosterError::DuplicateEndpoint(a.endpoint.short()));
            }
        }
        if announcements.len() > expected {
            return Err(RosterError::TooMany {
                expected,
                got: announcements.len(),
            });
        }
        if announcements.len() < expected {
            return Ok(None);
        }
        announcements.sort_by_key(|a| (a.joined_at_ms, a.endpoint));
        let own_index = announcements
            .iter()
            .position(|a| a.endpoint == *own)
            .ok_or(RosterError::MissingSelf)?;
        let members = announcements
            .into_iter()
            .enumerate()
            .map(|(index, a)| Member {
                index,
                name: a.name,
                endpoint: a.endpoint,
                relay_url: a.relay_url,
                addrs: a.addrs,
            })
            .collect();
        Ok(Some(Roster {
            session: invite.session,
            members,
            own_index,
        }))
    }

    /// A short code, equal on every party exactly when all parties hold the
    /// same roster. Reading it aloud to each other out of band catches a
    /// coordinator that showed different parties different rosters.
    pub fn fingerprint(&self) -> String {
        let mut hasher = blake3::Hasher::new_derive_key("partyline 2026-11 session fingerprint v1");
        hasher.update(&self.session.0);
        for m in &self.members {
            hasher.update(&m.endpoint.0);
            hasher.update(&(m.name.len() as u64).to_le_bytes());
            hasher.update(m.name.as_bytes());
        }
        let code = data_encoding::BASE32_NOPAD.encode(&hasher.finalize().as_bytes()[..10]);
        code.as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).expect("base32 is ascii"))
            .collect::<Vec<_>>()
            .join("-")
    }

    pub fn own(&self) -> &Member {
        &self.members[self.own_index]
    }

    /// Everyone but us, in seat order.
    pub fn peers(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| m.index != self.own_index)
    }

    pub fn member_by_endpoint(&self, endpoint: &EndpointKey) -> Option<&Member> {
        self.members.iter().find(|m| m.endpoint == *endpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CertPin, InviteSecret};

    fn invite(parties: u16, secret: u8) -> Invite {
        Invite::new(
            "https://h:1",
            SessionId([1; 16]),
            parties,
            CertPin([2; 32]),
            InviteSecret([secret; 16]),
        )
        .unwrap()
    }

    fn signed(invite: &Invite, name: &str, endpoint: u8, at: u64) -> SignedAnnouncement {
        AnnouncementKey::derive(invite).sign(&Announcement {
            session: invite.session,
            name: name.into(),
            endpoint: EndpointKey([endpoint; 32]),
            relay_url: None,
            addrs: vec![],
            joined_at_ms: at,
        })
    }

    #[test]
    fn full_roster_is_ordered_by_join_time() {
        let inv = invite(3, 1);
        let list = [
            signed(&inv, "carol", 1, 30),
            signed(&inv, "alice", 9, 10),
            signed(&inv, "bob", 5, 20),
        ];
        let roster = Roster::build(&inv, &EndpointKey([5; 32]), &list)
            .unwrap()
            .unwrap();
        let names: Vec<_> = roster.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["alice", "bob", "carol"]);
        assert_eq!(roster.own_index, 1);
        assert_eq!(roster.peers().count(), 2);
        let reordered = [list[2].clone(), list[0].clone(), list[1].clone()];
        let other_view = Roster::build(&inv, &EndpointKey([1; 32]), &reordered)
            .unwrap()
            .unwrap();
        assert_eq!(other_view.fingerprint(), roster.fingerprint());
        assert_eq!(roster.fingerprint().len(), 19);
    }

    #[test]
    fn partial_roster_waits() {
        let inv = invite(3, 1);
        let list = [signed(&inv, "alice", 9, 10)];
        assert_eq!(
            Roster::build(&inv, &EndpointKey([9; 32]), &list).unwrap(),
            None
        );
    }

    #[test]
    fn added_seat_is_refused() {
        let inv = invite(2, 1);
        let list = [
            signed(&inv, "a", 1, 1),
            signed(&inv, "b", 2, 2),
            signed(&inv, "c", 3, 3),
        ];
        let err = Roster::build(&inv, &EndpointKey([1; 32]), &list).unwrap_err();
        assert_eq!(
            err,
            RosterError::TooMany {
                expected: 2,
                got: 3
            }
        );
    }

    #[test]
    fn forged_entry_is_refused() {
        let inv = invite(2, 1);
        let forged = signed(&invite(2, 2), "mallory", 7, 1);
        let list = [signed(&inv, "a", 1, 1), forged];
        let err = Roster::build(&inv, &EndpointKey([1; 32]), &list).unwrap_err();
        assert!(matches!(
            err,
            RosterError::BadAnnouncement { position: 1, .. }
        ));
    }

    #[test]
    fn duplicate_and_missing_self_are_refused() {
        let inv = invite(2, 1);
        let a = signed(&inv, "a", 1, 1);
        let err = Roster::build(&inv, &EndpointKey([1; 32]), &[a.clone(), a]).unwrap_err();
        assert!(matches!(err, RosterError::DuplicateEndpoint(_)));
        let list = [signed(&inv, "a", 1, 1), signed(&inv, "b", 2, 2)];
        let err = Roster::build(&inv, &EndpointKey([3; 32]), &list).unwrap_err();
        assert_eq!(err, RosterError::MissingSelf);
    }

    #[test]
    fn different_rosters_have_different_fingerprints() {
        let inv = invite(2, 1);
        let one = [signed(&inv, "a", 1, 1), signed(&inv, "b", 2, 2)];
        let two = [signed(&inv, "a", 1, 1), signed(&inv, "b", 3, 2)];
        let f1 = Roster::build(&inv, &EndpointKey([1; 32]), &one)
            .unwrap()
            .unwrap()
            .fingerprint();
        let f2 = Roster::build(&inv, &EndpointKey([1; 32]), &two)
            .unwrap()
            .unwrap()
            .fingerprint();
        assert_ne!(f1, f2);
    }
}
