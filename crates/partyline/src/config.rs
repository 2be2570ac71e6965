//! The optional TOML configuration file; flags and environment take precedence.
use std::path::PathBuf;

use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: Option<String>,
    pub name: Option<String>,
    pub python: Option<PathBuf>,
}

impl Config {
    /// Reads `$PARTYLINE_CONFIG`, else `~/.config/partyline/config.toml` if it exists.
    pub fn load() -> anyhow::Result<Self> {
        let path = match std::env::var_os("PARTYLINE_CONFIG") {
            Some(path) => PathBuf::from(path),
            None => match std::env::var_os("HOME") {
                Some(home) => PathBuf::from(home).join(".config/partyline/config.toml"),
                None => return Ok(Self::default()),
            },
        };
        if !path.exists() {
            return Ok(Self::default());
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("{} is not a valid partyline config", path.display()))
    }
}
