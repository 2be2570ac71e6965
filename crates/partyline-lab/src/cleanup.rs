//! Removing what a lab created: namespaces (their links and iptables rules
//! go with them), the processes inside them, WireGuard control sockets and
//! the log folder of `partyline lab up`.
use std::time::{Duration, Instant};

use crate::shell;

/// How long to wait for a killed process to be gone before deleting its namespace.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Kills every process in `ns` and deletes it. Errors are logged, not
/// returned: clean-up goes on with the rest.
pub fn remove_namespace(ns: &str) {
    let deadline = Instant::now() + KILL_WAIT;
    loop {
        let pids = shell::run("ip", ["netns", "pids", ns]).unwrap_or_default();
        let pids: Vec<i32> = pids
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        if pids.is_empty() || Instant::now() >= deadline {
            break;
        }
        for pid in pids {
            let _ = shell::run("kill", ["-KILL", &pid.to_string()]);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Err(e) = shell::run("ip", ["netns", "del", ns]) {
        tracing::warn!("cannot remove namespace {ns}: {e}");
    }
}

/// The lab namespaces whose names start with `prefix`.
pub fn namespaces_with_prefix(prefix: &str) -> Vec<String> {
    shell::run("ip", ["netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| name.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

/// `partyline lab up` keeps its processes' logs in a temporary folder whose
/// name starts with this.
pub const RUN_DIR_PREFIX: &str = "partyline-lab-";

/// The file in that folder naming its lab, so that `clean` finds the folder
/// of a lab whose process was killed before it could remove it.
pub const LAB_NAME_FILE: &str = "lab-prefix";

/// Removes every namespace (with its processes), WireGuard socket and
/// `lab up` folder whose lab name starts with `prefix`; returns the
/// namespaces removed.
pub fn clean(prefix: &str) -> Vec<String> {
    let found = namespaces_with_prefix(prefix);
    for ns in &found {
        remove_namespace(ns);
    }
    remove_wireguard_sockets(prefix);
    for dir in run_dirs_with_prefix(prefix) {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            tracing::warn!("cannot remove {}: {e}", dir.display());
        }
    }
    found
}

/// The `lab up` folders in the temporary directory whose lab name starts
/// with `prefix`.
pub fn run_dirs_with_prefix(prefix: &str) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(RUN_DIR_PREFIX))
        .filter(|e| {
            std::fs::read_to_string(e.path().join(LAB_NAME_FILE))
                .is_ok_and(|name| name.starts_with(prefix))
        })
        .map(|e| e.path())
        .collect()
}

/// WireGuard's userspace control sockets live in one directory shared by
/// all namespaces; ours are named after the lab's prefix.
pub fn remove_wireguard_sockets(prefix: &str) {
    let short = crate::solutions::wireguard::interface_prefix(prefix);
    let Ok(entries) = std::fs::read_dir("/var/run/wireguard") else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&short) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
