//! The checks a person can ask for before the program starts, once the
//! roster is verified: that it holds exactly the names they expect (`join
//! --expect`, the page's "expected parties"), and that the fingerprint they
//! type back is this roster's (`join --confirm`, the page's confirm step).
//!
//! Native and browser parties both call these, so a roster one of them
//! refuses is refused by the other alike, with the same words.
use crate::announce::{AnnounceError, typed_name};
use crate::{Fingerprint, Roster};

/// The names a person expects in the roster, themselves included, in any order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedNames(Vec<String>);

/// Why a roster must not be used: the program does not start on it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The roster's names are not the expected ones.
    #[error("the roster is not the one expected ({})", differences(missing, extra))]
    Unexpected {
        missing: Vec<String>,
        extra: Vec<String>,
    },
    /// The fingerprint typed is not this roster's.
    #[error("the fingerprint typed is not this session's fingerprint")]
    WrongFingerprint,
    /// The input ended before a fingerprint was typed.
    #[error("the input ended before a fingerprint was typed")]
    NotConfirmed,
    /// A party's name is known with another identity (or with one, and it
    /// showed none); `standing` says how, as the roster shows it.
    #[error("{name}'s identity is not the one in the address book ({standing})")]
    IdentityChanged { name: String, standing: String },
}

impl Refusal {
    /// What the person who refused should do next.
    pub fn advice(&self) -> &'static str {
        match self {
            Refusal::Unexpected { .. } => {
                "Agree with the others on who takes part, then start a new session; if a stranger \
                 joined, the invite has leaked: share the new one more carefully"
            }
            Refusal::IdentityChanged { .. } => {
                "If that party really made a new identity, check its words with them (they run \
                 `partyline id show`) and join again with --accept-changed NAME; otherwise \
                 someone else holds the invite and uses that name: start a new session and \
                 share its invite only with the parties"
            }
            Refusal::WrongFingerprint | Refusal::NotConfirmed => {
                "If you typed what the others read out, someone sees a different roster: start a \
                 new session and share its invite only with the parties"
            }
        }
    }
}

fn differences(missing: &[String], extra: &[String]) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing: {}", missing.join(", ")));
    }
    if !extra.is_empty() {
        parts.push(format!("not expected: {}", extra.join(", ")));
    }
    parts.join("; ")
}

impl ExpectedNames {
    /// Takes names as a person typed them: each is trimmed, then normalised
    /// and checked as every party's own name is ([`typed_name`]), so a name
    /// no party could have is refused at once.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, AnnounceError> {
        let names = names
            .into_iter()
            .map(|name| typed_name(name.trim()))
            .collect::<Result<_, _>>()?;
        Ok(Self(names))
    }

    /// A comma-separated list such as `alice, bob,carol`, as `join --expect`
    /// takes it; `None` for a list with nothing but spaces (nothing expected).
    pub fn parse_list(list: &str) -> Result<Option<Self>, AnnounceError> {
        if list.trim().is_empty() {
            return Ok(None);
        }
        Self::parse(list.split(',')).map(Some)
    }

    /// `Ok` if `roster` holds exactly these names, in any order.
    pub fn check(&self, roster: &Roster) -> Result<(), Refusal> {
        let names = roster.members.iter().map(|m| m.name.clone()).collect();
        let (missing, extra) = name_differences(&self.0, names);
        if missing.is_empty() && extra.is_empty() {
            Ok(())
        } else {
            Err(Refusal::Unexpected { missing, extra })
        }
    }
}

/// `Ok` if `typed` is `fingerprint` (see [`Fingerprint::matches`]).
pub fn check_typed(fingerprint: &Fingerprint, typed: &str) -> Result<(), Refusal> {
    if fingerprint.matches(typed) {
        Ok(())
    } else {
        Err(Refusal::WrongFingerprint)
    }
}

/// The names `expected` has and `names` lacks, and those `names` has beyond
/// them; both empty when they agree. Order does not matter.
fn name_differences(expected: &[String], mut names: Vec<String>) -> (Vec<String>, Vec<String>) {
    let mut missing = Vec::new();
    for name in expected {
        match names.iter().position(|n| n == name) {
            Some(found) => {
                names.remove(found);
            }
            None => missing.push(name.clone()),
        }
    }
    (missing, names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::announce::NameProblem;
    use crate::roster::Member;
    use crate::{EndpointKey, SessionId};

    fn names(list: &str) -> Vec<String> {
        list.split(',')
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect()
    }

    fn roster(list: &str) -> Roster {
        let members = names(list)
            .into_iter()
            .enumerate()
            .map(|(index, name)| Member {
                index,
                name,
                endpoint: EndpointKey([index as u8; 32]),
                relay_url: None,
                addrs: vec![],
                identity: None,
                webrtc: None,
            })
            .collect();
        Roster {
            session: SessionId([1; 16]),
            members,
            own_index: 0,
        }
    }

    #[test]
    fn differences_ignore_order_and_count_repeats() {
        let diff = |expected, roster| name_differences(&names(expected), names(roster));
        assert_eq!(diff("carol,alice,bob", "alice,bob,carol"), (vec![], vec![]));
        assert_eq!(
            diff("alice,bob,carol", "alice,bob"),
            (names("carol"), vec![])
        );
        assert_eq!(diff("alice", "alice,bob"), (vec![], names("bob")));
        assert_eq!(
            diff("alice,robert", "alice,bob"),
            (names("robert"), names("bob"))
        );
        assert_eq!(
            diff("alice,alice", "alice,bob"),
            (names("alice"), names("bob"))
        );
    }

    #[test]
    fn a_list_is_trimmed_normalised_and_checked() {
        let expected = ExpectedNames::parse_list(" Zoe\u{0308} , bob,carol ")
            .unwrap()
            .unwrap();
        assert_eq!(expected.check(&roster("bob,carol,Zoë")), Ok(()));
        assert_eq!(ExpectedNames::parse_list("  "), Ok(None));
        let Err(AnnounceError::BadName { problem, .. }) =
            ExpectedNames::parse_list("al\u{200B}ice")
        else {
            panic!("a zero-width name was expected");
        };
        assert_eq!(problem, NameProblem::Character('\u{200B}'));
        assert!(ExpectedNames::parse_list("alice,,bob").is_err());
    }

    #[test]
    fn a_roster_with_other_names_is_refused_saying_which() {
        let expected = ExpectedNames::parse_list("alice,robert").unwrap().unwrap();
        let refusal = expected.check(&roster("alice,bob")).unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "the roster is not the one expected (missing: robert; not expected: bob)"
        );
        let only_alice = ExpectedNames::parse_list("alice").unwrap().unwrap();
        assert_eq!(
            only_alice
                .check(&roster("alice,bob"))
                .unwrap_err()
                .to_string(),
            "the roster is not the one expected (not expected: bob)"
        );
    }

    #[test]
    fn a_typed_fingerprint_is_checked_with_matches() {
        let fingerprint = Fingerprint::from_hash(&[0x17; 32]);
        assert_eq!(check_typed(&fingerprint, &fingerprint.short()), Ok(()));
        assert_eq!(
            check_typed(
                &fingerprint,
                "abandon abandon abandon abandon abandon abandon"
            ),
            Err(Refusal::WrongFingerprint)
        );
    }
}
