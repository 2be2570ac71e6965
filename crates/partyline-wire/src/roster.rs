//! From the coordinator's list of announcements to a verified roster.
//!
//! The coordinator is not trusted: it may drop, add, alter or replay
//! announcements. A roster is accepted only if every announcement verifies
//! under the invite's key, there are exactly as many as the invite says, no
//! endpoint and no name appears twice, and our own announcement is among them
//! unchanged. Names are compared ignoring case (`Alice` and `alice` read
//! aloud the same); every party applies the same check, so a duplicate stops
//! the session on all of them.
//! Seats are ordered by (join time, endpoint id), data every party sees
//! identically, so all parties agree on every MPyC index without asking anyone.
use std::collections::HashSet;

use crate::announce::{AnnounceError, Announcement, AnnouncementKey, SignedAnnouncement};
use crate::fingerprint::Fingerprint;
use crate::{EndpointKey, IdentityKey, Invite, SessionId, WebRtcOffer};

/// One party in a verified roster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The party's seat: its MPyC index.
    pub index: usize,
    pub name: String,
    pub endpoint: EndpointKey,
    pub relay_url: Option<String>,
    pub addrs: Vec<String>,
    /// The party's long-term identity, its signature verified; `None` for a
    /// party without one.
    pub identity: Option<IdentityKey>,
    /// Its WebRTC parameters (checked), if it offers a data channel.
    pub webrtc: Option<WebRtcOffer>,
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
        "the party in entry {position} announced a name partyline refuses: {reason}; it could be shown misleadingly, so every party refuses to start: create a new session, and that party joins with a plain name"
    )]
    BadName {
        position: usize,
        reason: AnnounceError,
    },
    #[error(
        "the party in entry {position} announced an identity it cannot prove: {reason}; it may be impersonating someone, so every party refuses to start: create a new session and share its invite only with the parties"
    )]
    BadIdentity {
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
        "two parties joined with the name {0:?} (names must be unique, ignoring case), so nobody could tell them apart; every party refuses to start: create a new session and join with distinct names"
    )]
    DuplicateName(String),
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
            key.verify(s).map_err(|reason| match reason {
                // Names are checked only once the MAC verified: an invite holder chose it.
                AnnounceError::BadName { .. } => RosterError::BadName { position, reason },
                // A signature is checked only once the MAC verified: an
                // invite holder made it, the coordinator could not.
                AnnounceError::BadIdentity { .. } => RosterError::BadIdentity { position, reason },
                reason => RosterError::BadAnnouncement { position, reason },
            })
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
        let mut endpoints = HashSet::new();
        let mut names = HashSet::new();
        for a in &announcements {
            if !endpoints.insert(a.endpoint) {
                return Err(RosterError::DuplicateEndpoint(a.endpoint.short()));
            }
            if !names.insert(a.name.to_lowercase()) {
                return Err(RosterError::DuplicateName(a.name.clone()));
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
                identity: a.identity.map(|proof| proof.key),
                webrtc: a.webrtc,
            })
            .collect();
        Ok(Some(Roster {
            session: invite.session,
            members,
            own_index,
        }))
    }

    /// The session fingerprint, equal on every party exactly when all parties
    /// hold the same roster: the session id and every seat's endpoint and name,
    /// in seat order. Reading it aloud to each other out of band catches a
    /// coordinator that showed different parties different rosters.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::from_hash(&self.digest())
    }

    /// The full 256-bit hash the [`Roster::fingerprint`] is taken from, for
    /// parties to compare automatically over their connections.
    ///
    /// Identities are not hashed: each is bound by its signature to its
    /// party's endpoint key and name, which are, and partyline versions that
    /// predate identities must compute the same digest in a session where
    /// some parties have one.
    pub fn digest(&self) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_derive_key("partyline 2026-11 session fingerprint v2");
        hasher.update(&self.session.0);
        for m in &self.members {
            hasher.update(&m.endpoint.0);
            hasher.update(&(m.name.len() as u64).to_le_bytes());
            hasher.update(m.name.as_bytes());
        }
        *hasher.finalize().as_bytes()
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
    use proptest::prelude::*;

    fn invite(parties: u16, secret: u8) -> Invite {
        Invite::new(
            &"https://h:1".parse().unwrap(),
            SessionId([1; 16]),
            parties,
            CertPin([2; 32]),
            InviteSecret([secret; 16]),
        )
        .unwrap()
    }

    fn announcement(invite: &Invite, name: &str, endpoint: u8, at: u64) -> Announcement {
        Announcement {
            session: invite.session,
            name: name.into(),
            endpoint: EndpointKey([endpoint; 32]),
            relay_url: None,
            addrs: vec![],
            joined_at_ms: at,
            identity: None,
            webrtc: None,
        }
    }

    fn signed(invite: &Invite, name: &str, endpoint: u8, at: u64) -> SignedAnnouncement {
        AnnouncementKey::derive(invite).sign(&announcement(invite, name, endpoint, at))
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
        assert_eq!(roster.fingerprint().words().count(), Fingerprint::WORDS);
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

    #[test]
    fn an_invite_holder_with_a_bad_name_is_refused_as_such() {
        let inv = invite(2, 1);
        let list = [
            signed(&inv, "alice", 1, 1),
            signed(&inv, "b\u{200B}ob", 2, 2),
        ];
        let err = Roster::build(&inv, &EndpointKey([1; 32]), &list).unwrap_err();
        assert!(
            matches!(err, RosterError::BadName { position: 1, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("U+200B"), "{err}");
    }

    #[test]
    fn duplicate_names_are_refused_ignoring_case() {
        let inv = invite(3, 1);
        let list = [
            signed(&inv, "alice", 1, 1),
            signed(&inv, "bob", 2, 2),
            signed(&inv, "Alice", 3, 3),
        ];
        let err = Roster::build(&inv, &EndpointKey([1; 32]), &list).unwrap_err();
        assert_eq!(err, RosterError::DuplicateName("Alice".into()));
        assert!(err.to_string().contains("unique"), "{err}");
        // Refused while parties are still missing too: the session cannot succeed.
        let err = Roster::build(
            &inv,
            &EndpointKey([1; 32]),
            &list[..1]
                .iter()
                .chain(&list[2..])
                .cloned()
                .collect::<Vec<_>>(),
        )
        .unwrap_err();
        assert_eq!(err, RosterError::DuplicateName("Alice".into()));
    }

    #[test]
    fn identities_reach_the_roster_and_a_forged_one_is_refused_naming_its_entry() {
        use crate::Identity;
        let inv = invite(2, 1);
        let key = AnnouncementKey::derive(&inv);
        let alice = Identity::from_secret([1; 32]);
        let announce = |name: &str, endpoint: u8, at: u64| announcement(&inv, name, endpoint, at);
        let list = [
            key.sign(&announce("alice", 1, 1).with_identity(&alice)),
            key.sign(&announce("bob", 2, 2)),
        ];
        let roster = Roster::build(&inv, &EndpointKey([2; 32]), &list)
            .unwrap()
            .unwrap();
        assert_eq!(roster.members[0].identity, Some(alice.key()));
        assert_eq!(roster.members[1].identity, None);
        // The digest ignores identities: the same roster without alice's.
        let without = [key.sign(&announce("alice", 1, 1)), list[1].clone()];
        let plain = Roster::build(&inv, &EndpointKey([2; 32]), &without)
            .unwrap()
            .unwrap();
        assert_eq!(plain.digest(), roster.digest());

        // Bob's endpoint claiming alice's identity with bob's own signature.
        let mut forged = announce("bob", 2, 2).with_identity(&Identity::from_secret([2; 32]));
        forged.identity.as_mut().unwrap().key = alice.key();
        let list = [list[0].clone(), key.sign(&forged)];
        let err = Roster::build(&inv, &EndpointKey([1; 32]), &list).unwrap_err();
        assert!(
            matches!(err, RosterError::BadIdentity { position: 1, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("\"bob\""), "{err}");
    }

    /// The fingerprint of the full two-party roster built from `alice` and `bob` as given.
    fn fingerprint_of(inv: &Invite, a: SignedAnnouncement, b: SignedAnnouncement) -> Fingerprint {
        Roster::build(inv, &EndpointKey([1; 32]), &[a, b])
            .unwrap()
            .unwrap()
            .fingerprint()
    }

    proptest! {
        #[test]
        fn same_roster_same_fingerprint_in_any_order(
            a in "[a-z]{1,10}", b in "[0-9]{1,10}", ka in 2u8..=255, at in 0u64..100, bt in 0u64..100,
        ) {
            let inv = invite(2, 1);
            let (sa, sb) = (signed(&inv, &a, 1, at), signed(&inv, &b, ka, bt));
            let one = fingerprint_of(&inv, sa.clone(), sb.clone());
            prop_assert_eq!(one, fingerprint_of(&inv, sb, sa));
            prop_assert!(one.matches(&one.to_string()));
        }

        #[test]
        fn any_change_changes_the_fingerprint(
            a in "[a-z]{1,10}", b in "[0-9]{1,10}", other in "[0-9]{1,10}", ka in 2u8..=255, kb in 2u8..=255,
        ) {
            let inv = invite(2, 1);
            let base = fingerprint_of(&inv, signed(&inv, &a, 1, 1), signed(&inv, &b, ka, 2));
            if other != b {
                let renamed = fingerprint_of(&inv, signed(&inv, &a, 1, 1), signed(&inv, &other, ka, 2));
                prop_assert_ne!(base, renamed);
            }
            if kb != ka {
                let rekeyed = fingerprint_of(&inv, signed(&inv, &a, 1, 1), signed(&inv, &b, kb, 2));
                prop_assert_ne!(base, rekeyed);
            }
            let reseated = fingerprint_of(&inv, signed(&inv, &a, 1, 3), signed(&inv, &b, ka, 2));
            prop_assert_ne!(base, reseated);
            let other_session = Invite { session: SessionId([7; 16]), ..inv.clone() };
            let moved = fingerprint_of(
                &other_session,
                signed(&other_session, &a, 1, 1),
                signed(&other_session, &b, ka, 2),
            );
            prop_assert_ne!(base, moved);
        }
    }
}
