//! `partyline id`: the own long-term identity and the address book.
use anyhow::Context;
use partyline_wire::Fingerprint;
use partyline_wire::announce::typed_name;

use crate::cli::{IdArgs, IdCommand};
use crate::config::Config;
use crate::identity::book::AddressBook;
use crate::identity::{self, create_identity, identity_path, load_identity};

pub fn run(args: IdArgs, config: &Config) -> anyhow::Result<i32> {
    let dir = config.dir()?;
    match args.command {
        IdCommand::New { force } => {
            let identity = create_identity(dir, force)?;
            eprintln!(
                "partyline: made your identity in {}; keep that file secret.",
                identity_path(dir).display()
            );
            eprintln!(
                "Its words, for the others to record (`partyline id trust YOUR-NAME WORDS`):"
            );
            println!("{}", identity::words(&identity));
        }
        IdCommand::Show => {
            let identity = load_identity(dir)?.with_context(|| {
                format!(
                    "no identity in {}: make one with `partyline id new`",
                    dir.display()
                )
            })?;
            eprintln!(
                "Your identity's words; read them to the others over a channel you trust \
                 (they run `partyline id trust YOUR-NAME WORDS`):"
            );
            println!("{}", identity::words(&identity));
        }
        IdCommand::Trust { name, words, force } => {
            let name = typed_name(name.trim()).map_err(|e| anyhow::anyhow!("NAME: {e}"))?;
            let typed = words.join(" ");
            let words = Fingerprint::parse_full(&typed).with_context(|| {
                format!(
                    "{typed:?} are not {} words of the BIP39 list: give all of them, as \
                     `partyline id show` prints them on {name}'s machine",
                    Fingerprint::WORDS
                )
            })?;
            let replaced = AddressBook::trust(dir, &name, words, force)?;
            if let Some(old) = replaced {
                eprintln!(
                    "partyline: replaced {name}'s words ({}, since {})",
                    old.identity, old.first_seen
                );
            }
            eprintln!("partyline: {name} is known by {words}");
        }
        IdCommand::List => {
            let book = AddressBook::load(dir)?;
            let mut any = false;
            for (name, entry) in book.entries() {
                any = true;
                let verified = entry
                    .verified
                    .as_ref()
                    .map(|day| format!(", words checked {day}"))
                    .unwrap_or_default();
                println!(
                    "{name}: {} session{} since {}, last {}{verified}\n  {}",
                    entry.sessions,
                    if entry.sessions == 1 { "" } else { "s" },
                    entry.first_seen,
                    entry.last_seen,
                    entry.identity
                );
            }
            if !any {
                eprintln!(
                    "partyline: your address book is empty: parties with an identity are added \
                     after your first session with them, or with `partyline id trust`"
                );
            }
        }
        IdCommand::Forget { name } => {
            if !AddressBook::forget(dir, &name)? {
                anyhow::bail!("{name} is not in your address book (`partyline id list`)");
            }
            eprintln!("partyline: forgot {name}; next time this name is new");
        }
    }
    Ok(0)
}
