//! The address book: the parties met before, by name, with the identity
//! each showed (trust on first use, like SSH's `known_hosts`).
//!
//! A roster member [`Standing`] says how it compares: known (same identity
//! as before), new, or changed (another identity, or none, under a name
//! known with one). Names are looked up ignoring case, as the roster's
//! uniqueness rule compares them, so `Alice` cannot pass for a new party
//! next to a known `alice`. Identities are kept as their 12 words, the form
//! people compare (`partyline id show`, `partyline id trust`).
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use partyline_wire::{Fingerprint, IdentityKey, Member, Roster};
use serde::{Deserialize, Serialize};

use super::files;

/// The address book's file name in the configuration directory.
pub const BOOK_FILE: &str = "known_parties.toml";
const LOCK_FILE: &str = "known_parties.lock";

const BOOK_HEADER: &str = "\
# partyline's address book: the parties you had sessions with, by name, and
# the identity words each showed. `partyline id list | trust | forget` edit it.
";

/// One known party.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The 12 words of the party's identity key.
    pub identity: String,
    /// The day (UTC) this identity was first recorded for the name.
    pub first_seen: String,
    /// The last day (UTC) a session with it started.
    pub last_seen: String,
    /// Sessions that started with this party under this identity.
    pub sessions: u64,
    /// The day its words were checked with `partyline id trust`, if they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<String>,
}

impl Entry {
    fn is(&self, key: &IdentityKey) -> bool {
        Fingerprint::parse_full(&self.identity) == Some(key.words())
    }
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BookFile {
    #[serde(default)]
    parties: BTreeMap<String, Entry>,
}

/// The address book as read from its file.
#[derive(Default)]
pub struct AddressBook {
    dir: PathBuf,
    parties: BTreeMap<String, Entry>,
}

/// How a roster member compares with the address book.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    You,
    /// The identity recorded for this name.
    Known {
        sessions: u64,
        since: String,
    },
    /// An identity, under a name not in the book; `known_as` if the book
    /// knows this identity under another name.
    New {
        known_as: Option<String>,
    },
    /// No identity, and a name not in the book: nothing to recognise it by.
    NoIdentity,
    /// Another identity than the one recorded for this name (or none:
    /// `dropped`), last seen on `since`; `accepted` with `--accept-changed`.
    Changed {
        since: String,
        dropped: bool,
        accepted: bool,
    },
}

impl Standing {
    /// Whether the program must not start with this party in the roster.
    pub fn refuses(&self) -> bool {
        matches!(
            self,
            Standing::Changed {
                accepted: false,
                ..
            }
        )
    }
}

impl fmt::Display for Standing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Standing::You => f.write_str("you"),
            Standing::Known { sessions, since } => {
                let plural = if *sessions == 1 { "" } else { "s" };
                write!(f, "known, {sessions} session{plural} since {since}")
            }
            Standing::New { known_as: None } => f.write_str("new"),
            Standing::New {
                known_as: Some(other),
            } => write!(f, "new; this identity is known as {other}"),
            Standing::NoIdentity => f.write_str("no identity"),
            Standing::Changed {
                since,
                dropped,
                accepted,
            } => {
                if *dropped {
                    write!(f, "NO IDENTITY, known with one until {since}")?;
                } else {
                    write!(f, "KEY CHANGED since {since}")?;
                }
                if *accepted {
                    f.write_str(", accepted with --accept-changed")?;
                }
                Ok(())
            }
        }
    }
}

/// Today's date (UTC), as the book records days.
pub fn today() -> String {
    chrono::Utc::now().date_naive().to_string()
}

fn same_name(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

impl AddressBook {
    /// Reads the book in `dir`; an empty book if there is none yet.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(BOOK_FILE);
        let file: BookFile = match files::read_private(&path)? {
            Some(text) => toml::from_str(&text).with_context(|| {
                format!(
                    "{} is not a partyline address book; fix it or remove it (every party is then new)",
                    path.display()
                )
            })?,
            None => BookFile::default(),
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            parties: file.parties,
        })
    }

    /// The entries, by name.
    pub fn entries(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.parties.iter()
    }

    fn entry(&self, name: &str) -> Option<(&String, &Entry)> {
        self.parties
            .iter()
            .find(|(known, _)| same_name(known, name))
    }

    fn entry_mut(&mut self, name: &str) -> Option<&mut Entry> {
        self.parties
            .iter_mut()
            .find(|(known, _)| same_name(known, name))
            .map(|(_, entry)| entry)
    }

    /// How `member` of `roster` compares with the book; `accepted` are the
    /// names given to `--accept-changed`.
    pub fn standing(&self, roster: &Roster, member: &Member, accepted: &[String]) -> Standing {
        if member.index == roster.own_index {
            return Standing::You;
        }
        let accepted = accepted.iter().any(|name| same_name(name, &member.name));
        match (self.entry(&member.name), &member.identity) {
            (Some((_, entry)), Some(key)) if entry.is(key) => Standing::Known {
                sessions: entry.sessions,
                since: entry.first_seen.clone(),
            },
            (Some((_, entry)), identity) => Standing::Changed {
                since: entry.last_seen.clone(),
                dropped: identity.is_none(),
                accepted,
            },
            (None, Some(key)) => Standing::New {
                known_as: self
                    .parties
                    .iter()
                    .find(|(_, entry)| entry.is(key))
                    .map(|(name, _)| name.clone()),
            },
            (None, None) => Standing::NoIdentity,
        }
    }

    /// Records a session that started with `roster`: known parties count one
    /// more session, new ones are added, and a changed identity the user
    /// accepted replaces the old one. Parties without an identity leave the
    /// book as it was. Reads the file again under a lock, so that sessions
    /// ending at once in the same directory all count.
    pub fn record_session(dir: &Path, roster: &Roster, accepted: &[String]) -> anyhow::Result<()> {
        let _lock = files::lock(dir, LOCK_FILE)?;
        let mut book = Self::load(dir)?;
        let today = today();
        for member in roster.peers() {
            let Some(key) = member.identity else {
                continue;
            };
            match book.standing(roster, member, accepted) {
                Standing::Known { .. } => {
                    if let Some(entry) = book.entry_mut(&member.name) {
                        entry.sessions += 1;
                        entry.last_seen = today.clone();
                    }
                }
                Standing::New { .. } | Standing::Changed { accepted: true, .. } => {
                    book.parties
                        .retain(|known, _| !same_name(known, &member.name));
                    book.parties.insert(
                        member.name.clone(),
                        Entry {
                            identity: key.words().to_string(),
                            first_seen: today.clone(),
                            last_seen: today.clone(),
                            sessions: 1,
                            verified: None,
                        },
                    );
                }
                Standing::You | Standing::NoIdentity | Standing::Changed { .. } => {}
            }
        }
        book.save()
    }

    /// Records `words` as `name`'s identity, checked with them in person.
    /// Returns the entry it replaced, if it differed; refuses to replace a
    /// different one unless `force`.
    pub fn trust(
        dir: &Path,
        name: &str,
        words: Fingerprint,
        force: bool,
    ) -> anyhow::Result<Option<Entry>> {
        let _lock = files::lock(dir, LOCK_FILE)?;
        let mut book = Self::load(dir)?;
        let today = today();
        let old = book
            .entry(name)
            .map(|(known, entry)| (known.clone(), entry.clone()));
        let entry = match &old {
            Some((_, entry)) if Fingerprint::parse_full(&entry.identity) == Some(words) => Entry {
                verified: Some(today),
                ..entry.clone()
            },
            Some((known, entry)) if !force => anyhow::bail!(
                "{known} is in your address book with other words ({}, since {}); if {name} \
                 really has a new identity, run again with --force",
                entry.identity,
                entry.first_seen
            ),
            _ => Entry {
                identity: words.to_string(),
                first_seen: today.clone(),
                last_seen: today.clone(),
                sessions: 0,
                verified: Some(today),
            },
        };
        if let Some((known, _)) = &old {
            book.parties.remove(known);
        }
        book.parties.insert(name.to_string(), entry);
        book.save()?;
        Ok(old
            .map(|(_, entry)| entry)
            .filter(|entry| Fingerprint::parse_full(&entry.identity) != Some(words)))
    }

    /// Removes `name`; `false` if it was not in the book.
    pub fn forget(dir: &Path, name: &str) -> anyhow::Result<bool> {
        let _lock = files::lock(dir, LOCK_FILE)?;
        let mut book = Self::load(dir)?;
        let Some((known, _)) = book.entry(name) else {
            return Ok(false);
        };
        let known = known.clone();
        book.parties.remove(&known);
        book.save()?;
        Ok(true)
    }

    fn save(&self) -> anyhow::Result<()> {
        let file = BookFile {
            parties: self.parties.clone(),
        };
        let text = format!(
            "{BOOK_HEADER}{}",
            toml::to_string(&file).context("the address book does not serialize")?
        );
        files::write_private(&self.dir, &self.dir.join(BOOK_FILE), &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use partyline_wire::{EndpointKey, Identity, SessionId};

    fn member(index: usize, name: &str, identity: Option<&Identity>) -> Member {
        Member {
            index,
            name: name.into(),
            endpoint: EndpointKey([index as u8; 32]),
            relay_url: None,
            addrs: vec![],
            identity: identity.map(Identity::key),
            webrtc: None,
        }
    }

    fn roster(members: Vec<Member>) -> Roster {
        Roster {
            session: SessionId([1; 16]),
            members,
            own_index: 0,
        }
    }

    fn standings(dir: &Path, roster: &Roster, accepted: &[String]) -> Vec<String> {
        let book = AddressBook::load(dir).unwrap();
        roster
            .members
            .iter()
            .map(|m| format!("{} ({})", m.name, book.standing(roster, m, accepted)))
            .collect()
    }

    #[test]
    fn new_then_known_then_changed() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().join("partyline");
        let (me, bob, carol, mallory) = (
            Identity::from_secret([1; 32]),
            Identity::from_secret([2; 32]),
            Identity::from_secret([3; 32]),
            Identity::from_secret([4; 32]),
        );
        let first = roster(vec![
            member(0, "alice", Some(&me)),
            member(1, "bob", Some(&bob)),
            member(2, "carol", Some(&carol)),
            member(3, "dave", None),
        ]);
        assert_eq!(
            standings(&dir, &first, &[]),
            [
                "alice (you)",
                "bob (new)",
                "carol (new)",
                "dave (no identity)"
            ]
        );
        AddressBook::record_session(&dir, &first, &[]).unwrap();
        AddressBook::record_session(&dir, &first, &[]).unwrap();
        let day = today();
        assert_eq!(
            standings(&dir, &first, &[]),
            [
                "alice (you)".to_string(),
                format!("bob (known, 2 sessions since {day})"),
                format!("carol (known, 2 sessions since {day})"),
                "dave (no identity)".to_string(),
            ]
        );

        // Carol's name with mallory's key, bob's in another case without one,
        // and bob's identity under a new name.
        let second = roster(vec![
            member(0, "alice", Some(&me)),
            member(1, "Carol", Some(&mallory)),
            member(2, "BOB", None),
            member(3, "robert", Some(&bob)),
        ]);
        let seen = standings(&dir, &second, &[]);
        assert_eq!(seen[1], format!("Carol (KEY CHANGED since {day})"));
        assert_eq!(
            seen[2],
            format!("BOB (NO IDENTITY, known with one until {day})")
        );
        assert_eq!(seen[3], "robert (new; this identity is known as bob)");
        let book = AddressBook::load(&dir).unwrap();
        assert!(book.standing(&second, &second.members[1], &[]).refuses());
        let accepted = ["carol".to_string()];
        let carol_accepted = book.standing(&second, &second.members[1], &accepted);
        assert!(!carol_accepted.refuses(), "{carol_accepted}");

        // Accepting replaces carol's identity; bob without one stays as he was.
        AddressBook::record_session(&dir, &second, &accepted).unwrap();
        let book = AddressBook::load(&dir).unwrap();
        let entries: BTreeMap<_, _> = book.entries().map(|(n, e)| (n.as_str(), e)).collect();
        assert_eq!(entries["Carol"].identity, mallory.key().words().to_string());
        assert_eq!(entries["Carol"].sessions, 1);
        assert_eq!(entries["bob"].sessions, 2);
        assert_eq!(entries["robert"].sessions, 1);
    }

    #[test]
    fn trust_and_forget() {
        let dir = tempfile::tempdir().unwrap();
        let bob = Identity::from_secret([2; 32]);
        let words = bob.key().words();
        assert_eq!(
            AddressBook::trust(dir.path(), "bob", words, false).unwrap(),
            None
        );
        let one = roster(vec![member(0, "alice", None), member(1, "bob", Some(&bob))]);
        assert_eq!(
            standings(dir.path(), &one, &[])[1],
            format!("bob (known, 0 sessions since {})", today())
        );
        let other = Identity::from_secret([3; 32]).key().words();
        let refused = AddressBook::trust(dir.path(), "Bob", other, false).unwrap_err();
        assert!(refused.to_string().contains("--force"), "{refused}");
        let replaced = AddressBook::trust(dir.path(), "Bob", other, true).unwrap();
        assert_eq!(replaced.map(|e| e.identity), Some(words.to_string()));
        // Names with spaces and dots are keys like any other.
        let zoe = "Dr. Zoë Müller";
        AddressBook::trust(dir.path(), zoe, other, false).unwrap();
        let book = AddressBook::load(dir.path()).unwrap();
        assert_eq!(
            book.entry("dr. zoë müller")
                .map(|(name, e)| (name.as_str(), e.identity.clone())),
            Some((zoe, other.to_string()))
        );
        assert!(AddressBook::forget(dir.path(), zoe).unwrap());
        assert!(AddressBook::forget(dir.path(), "bob").unwrap());
        assert!(!AddressBook::forget(dir.path(), "bob").unwrap());
        assert_eq!(AddressBook::load(dir.path()).unwrap().entries().count(), 0);
    }

    #[test]
    fn files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().join("new");
        let bob = Identity::from_secret([2; 32]);
        AddressBook::trust(&dir, "bob", bob.key().words(), false).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(BOOK_FILE)), 0o600);
        std::fs::set_permissions(dir.join(BOOK_FILE), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        let refused = AddressBook::load(&dir).err().unwrap().to_string();
        assert!(refused.contains("chmod 600"), "{refused}");
    }
}
