//! Ctrl-C and SIGTERM: noted, so that whatever runs can stop and the lab's
//! drop guard removes everything. A second Ctrl-C exits at once (leftovers
//! are then removed by `partyline lab clean`).
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{LabError, Result};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Starts noting SIGINT and SIGTERM. Harmless to call more than once.
pub fn install() -> Result<()> {
    if FLAG.get().is_some() {
        return Ok(());
    }
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The conditional shutdown comes first so that it sees the flag as
        // it was before this signal: only a second signal exits.
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&flag))
            .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&flag)))
            .map_err(|source| LabError::Spawn {
                command: "install a signal handler".into(),
                source,
            })?;
    }
    let _ = FLAG.set(flag);
    Ok(())
}

/// Whether Ctrl-C or SIGTERM arrived.
pub fn requested() -> bool {
    FLAG.get().is_some_and(|f| f.load(Ordering::SeqCst))
}

/// `Err(Interrupted)` once Ctrl-C or SIGTERM arrived.
pub fn check() -> Result<()> {
    if requested() {
        Err(LabError::Interrupted)
    } else {
        Ok(())
    }
}
