//! Private files: readable by their owner only (0600), in a directory only
//! the owner can enter (0700), replaced whole by a rename.
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, bail};

/// The configuration directory, made if missing and closed to other users.
pub fn ensure_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| {
            format!(
                "cannot create the configuration directory {}",
                dir.display()
            )
        })?;
    // An existing directory keeps the mode it had: close it too.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot make {} private (mode 0700)", dir.display()))
}

/// Writes `text` to `path` (in `dir`) with mode 0600: to a temporary file
/// first (made 0600 by `tempfile`), then renamed over the old one.
pub fn write_private(dir: &Path, path: &Path, text: &str) -> anyhow::Result<()> {
    ensure_private_dir(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(text.as_bytes())?;
    file.as_file().sync_all()?;
    file.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The text of a private file, `None` if there is none. Refuses a file other
/// users can read or write, as SSH does with keys: it could have been read
/// or replaced.
pub fn read_private(path: &Path) -> anyhow::Result<Option<String>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mode = file.metadata()?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{} is open to other users (mode {mode:04o}); it must be private: chmod 600 {}",
            path.display(),
            path.display()
        );
    }
    std::io::read_to_string(file)
        .map(Some)
        .with_context(|| format!("cannot read {}", path.display()))
}

/// An exclusive lock on `dir/name`, held until the returned file is dropped:
/// two `partyline` processes updating the same file take turns.
pub fn lock(dir: &Path, name: &str) -> anyhow::Result<File> {
    ensure_private_dir(dir)?;
    let path = dir.join(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.lock()
        .with_context(|| format!("cannot lock {}", path.display()))?;
    Ok(file)
}
