//! What `partyline` keeps about people across sessions, in the
//! configuration directory: the own long-term identity (`identity.toml`)
//! and the address book of the others (`known_parties.toml`).
//!
//! Both files are private (0600) in a private directory (0700), written
//! whole to a temporary file and renamed over the old one, so a crash never
//! leaves half a file.
//!
//! # Layout
//! - [`files`]: private directories and files, written atomically.
//! - [`book`]: the address book (TOFU, like SSH's `known_hosts`): who is
//!   known by which identity, and how each roster member stands against it.
pub mod book;
pub mod files;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use partyline_wire::{Fingerprint, Identity};
use serde::{Deserialize, Serialize};

/// The file name of the own identity in the configuration directory.
pub const IDENTITY_FILE: &str = "identity.toml";

const IDENTITY_HEADER: &str = "\
# partyline identity: your long-term private key. Keep this file secret and
# never share it; others recognise you by its words (`partyline id show`).
";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFile {
    /// Hex of the Ed25519 private key (seed).
    secret: String,
    /// The day it was made (UTC).
    created: String,
}

pub fn identity_path(dir: &Path) -> PathBuf {
    dir.join(IDENTITY_FILE)
}

/// The own identity, if `partyline id new` made one in `dir`.
pub fn load_identity(dir: &Path) -> anyhow::Result<Option<Identity>> {
    let path = identity_path(dir);
    let Some(text) = files::read_private(&path)? else {
        return Ok(None);
    };
    let file: IdentityFile = toml::from_str(&text).with_context(|| {
        format!(
            "{} is not a partyline identity; restore it from a backup, or make a new one with \
             `partyline id new --force` (the others will then see your key as changed)",
            path.display()
        )
    })?;
    let secret: [u8; 32] = data_encoding::HEXLOWER_PERMISSIVE
        .decode(file.secret.as_bytes())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .with_context(|| {
            format!(
                "{}: `secret` is not 32 bytes of hex; restore the file from a backup",
                path.display()
            )
        })?;
    Ok(Some(Identity::from_secret(secret)))
}

/// Makes a new identity in `dir`; refuses to replace one unless `force`.
pub fn create_identity(dir: &Path, force: bool) -> anyhow::Result<Identity> {
    let path = identity_path(dir);
    if !force && path.exists() {
        bail!(
            "{} already holds your identity; the others know you by it. To replace it \
             (they will then see your key as changed), run `partyline id new --force`",
            path.display()
        );
    }
    let identity = Identity::generate();
    let file = IdentityFile {
        secret: data_encoding::HEXLOWER.encode(&identity.secret()),
        created: book::today(),
    };
    let text = format!(
        "{IDENTITY_HEADER}{}",
        toml::to_string(&file).expect("an identity serializes")
    );
    files::write_private(dir, &path, &text)?;
    Ok(identity)
}

/// The words the others compare an identity by.
pub fn words(identity: &Identity) -> Fingerprint {
    identity.key().words()
}
