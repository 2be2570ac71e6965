//! Removing what a lab created: namespaces (their links and iptables rules
//! go with them), the processes inside them, and WireGuard control sockets.
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

/// Removes every namespace (with its processes) and WireGuard socket whose
/// name starts with `prefix`; returns the namespaces removed.
pub fn clean(prefix: &str) -> Vec<String> {
    let found = namespaces_with_prefix(prefix);
    for ns in &found {
        remove_namespace(ns);
    }
    remove_wireguard_sockets(prefix);
    found
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
