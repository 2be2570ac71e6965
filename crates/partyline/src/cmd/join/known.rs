//! The parties as the address book knows them: our identity for the
//! announcement, each member's standing for the roster view, the refusal of
//! a changed key, and the book's update once the session has started.
use std::path::PathBuf;

use partyline_wire::checks::Refusal;
use partyline_wire::{Identity, Roster};

use crate::cli::JoinArgs;
use crate::config::Config;
use crate::identity::book::{AddressBook, Standing};
use crate::identity::load_identity;

pub(super) struct Known {
    /// The configuration directory, if there is one: where the book is.
    dir: Option<PathBuf>,
    /// Our long-term identity, if `partyline id new` made one.
    pub(super) identity: Option<Identity>,
    book: AddressBook,
    /// The names given to --accept-changed.
    accepted: Vec<String>,
}

impl Known {
    /// Reads our identity and the address book; a damaged or unprotected
    /// file is an error before anything is announced.
    pub(super) fn load(args: &JoinArgs, config: &Config) -> anyhow::Result<Self> {
        let dir = config.dir.clone();
        let (identity, book) = match &dir {
            Some(dir) => (load_identity(dir)?, AddressBook::load(dir)?),
            None => (None, AddressBook::default()),
        };
        Ok(Self {
            dir,
            identity,
            book,
            accepted: args.accept_changed.clone(),
        })
    }

    /// Every member's standing, in seat order.
    pub(super) fn standings(&self, roster: &Roster) -> Vec<Standing> {
        roster
            .members
            .iter()
            .map(|member| self.book.standing(roster, member, &self.accepted))
            .collect()
    }

    /// Says which names given to --accept-changed had nothing to accept,
    /// so that a misspelt name does not go unnoticed.
    pub(super) fn unused_acceptances(&self, roster: &Roster, standings: &[Standing]) {
        for name in &self.accepted {
            let changed = roster
                .members
                .iter()
                .zip(standings)
                .any(|(member, standing)| {
                    member.name.to_lowercase() == name.to_lowercase()
                        && matches!(standing, Standing::Changed { .. })
                });
            if !changed {
                eprintln!(
                    "partyline: --accept-changed {name}: no party of that name shows a changed identity; nothing to accept"
                );
            }
        }
    }

    /// The refusal of the first party whose identity changed without
    /// --accept-changed, if any.
    pub(super) fn refusal(&self, roster: &Roster) -> Option<Refusal> {
        roster
            .members
            .iter()
            .zip(self.standings(roster))
            .find(|(_, standing)| standing.refuses())
            .map(|(member, standing)| Refusal::IdentityChanged {
                name: member.name.clone(),
                standing: standing.to_string(),
            })
    }

    /// Records the session in the address book. Called only once every
    /// party has accepted the roster (the ready barrier): before it the
    /// session may still be refused, by us or by anyone, and a refused
    /// roster (a changed key not accepted, a wrong fingerprint, a stranger)
    /// must not make its identities known. After it, every peer's endpoint
    /// key is proven by its connection and its identity by the signature
    /// over that key, so what is recorded is who we are really talking to.
    /// A failure to write costs only the record, so it is a warning.
    pub(super) fn record(&self, roster: &Roster) {
        let Some(dir) = &self.dir else {
            return;
        };
        if roster.peers().all(|member| member.identity.is_none()) {
            return;
        }
        if let Err(error) = AddressBook::record_session(dir, roster, &self.accepted) {
            eprintln!("partyline: warning: the address book was not updated: {error:#}");
        }
    }
}
