//! The configuration directory and the optional TOML configuration file in
//! it; flags and environment take precedence.
//!
//! The directory is `--config-dir` (or `PARTYLINE_CONFIG_DIR`), else
//! `$XDG_CONFIG_HOME/partyline`, else `~/.config/partyline`. It holds
//! `config.toml` (unless `PARTYLINE_CONFIG` names another file) and, once
//! made, the identity and the address book (see [`crate::identity`]).
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: Option<String>,
    pub name: Option<String>,
    pub python: Option<PathBuf>,
    /// The configuration directory; `None` without a flag, `XDG_CONFIG_HOME` or `HOME`.
    #[serde(skip)]
    pub dir: Option<PathBuf>,
}

impl Config {
    /// Reads `$PARTYLINE_CONFIG`, else `config.toml` in the configuration
    /// directory, if it exists.
    pub fn load(dir_flag: Option<&Path>) -> anyhow::Result<Self> {
        let dir = config_dir(dir_flag);
        let path = match std::env::var_os("PARTYLINE_CONFIG") {
            Some(path) => Some(PathBuf::from(path)),
            None => dir.as_ref().map(|dir| dir.join("config.toml")),
        };
        let mut config = match path.filter(|path| path.exists()) {
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                toml::from_str(&text).with_context(|| {
                    format!("{} is not a valid partyline config", path.display())
                })?
            }
            None => Self::default(),
        };
        config.dir = dir;
        Ok(config)
    }

    /// The configuration directory, or an error saying how to name one.
    pub fn dir(&self) -> anyhow::Result<&Path> {
        self.dir.as_deref().context(
            "no configuration directory: HOME is not set; give one with --config-dir DIR \
             or PARTYLINE_CONFIG_DIR",
        )
    }
}

/// `--config-dir`, else `$XDG_CONFIG_HOME/partyline` (an absolute path, as
/// the XDG specification wants), else `~/.config/partyline`.
fn config_dir(flag: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = flag {
        return Some(dir.to_path_buf());
    }
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute());
    match xdg {
        Some(dir) => Some(dir.join("partyline")),
        None => std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config/partyline")),
    }
}
