//! A userspace WireGuard mesh: every party runs boringtun (crates.io
//! `boringtun-cli`; this kernel has no WireGuard module) with the lab as the
//! administrator who generates the keys and writes every peer into every
//! configuration, then MPyC's plain TCP runs over the tunnel addresses
//! 10.99.0.(i+1).
//!
//! boringtun's control sockets live in `/var/run/wireguard`, shared by all
//! namespaces, so every interface gets a name unique to the lab.
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::Instant;

use super::{Context, Outcome, Solution};
use crate::error::{LabError, Result};
use crate::shell;
use crate::topology::PREFIX_ROOT;

const LISTEN_PORT: u16 = 51820;

/// The start of every WireGuard interface name of the lab with `prefix`
/// (interface names have at most 15 bytes).
pub fn interface_prefix(prefix: &str) -> String {
    format!("plwg{}", prefix.strip_prefix(PREFIX_ROOT).unwrap_or(prefix))
}

fn tunnel_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 99, 0, (i + 1) as u8)
}

pub fn run(ctx: &Context) -> Result<Outcome> {
    ctx.require_public(Solution::Wireguard)?;
    let namespaces: Vec<&str> = ctx
        .lab
        .parties
        .iter()
        .map(|host| host.ns.as_deref())
        .collect::<Option<_>>()
        .ok_or_else(|| {
            LabError::invalid(
                Solution::Wireguard.as_str(),
                "it needs network namespaces (and root) for its interfaces; the loopback \
                 scenario runs tcp, tcp-ssl, partyline and partyline-relay",
            )
        })?;
    for tool in ["boringtun-cli", "wg"] {
        if !on_path(tool) {
            return Err(LabError::MissingTool { tool: tool.into() });
        }
    }
    let n = ctx.parties();
    let names: Vec<String> = (0..n)
        .map(|i| format!("{}{i}", interface_prefix(&ctx.lab.prefix)))
        .collect();
    let setup_started = Instant::now();
    let keys: Vec<(String, String)> = (0..n).map(|_| keypair()).collect::<Result<_>>()?;
    let result = (|| {
        for (i, &ns) in namespaces.iter().enumerate() {
            let dir = ctx.party_dir(i);
            ctx.workload.setup_dir(&dir)?;
            let key_file = dir.join("wg.key");
            std::fs::write(&key_file, &keys[i].0).map_err(LabError::io(&key_file))?;
            let name = &names[i];
            let mut daemon = shell::command_in_ns(ns, "boringtun-cli");
            daemon
                .args([name.as_str(), "--disable-drop-privileges"])
                .env("WG_SUDO", "1");
            let status = daemon.status().map_err(|source| LabError::Spawn {
                command: "boringtun-cli".into(),
                source,
            })?;
            if !status.success() {
                return Err(LabError::Command {
                    command: format!("boringtun-cli {name}"),
                    status: status.to_string(),
                    stderr: String::new(),
                });
            }
            let mut args = vec![
                "set".to_string(),
                name.clone(),
                "private-key".into(),
                key_file.to_string_lossy().into_owned(),
                "listen-port".into(),
                LISTEN_PORT.to_string(),
            ];
            for (j, peer) in ctx.lab.parties.iter().enumerate().filter(|(j, _)| *j != i) {
                args.extend([
                    "peer".into(),
                    keys[j].1.clone(),
                    "endpoint".into(),
                    format!("{}:{LISTEN_PORT}", peer.public_ip),
                    "allowed-ips".into(),
                    format!("{}/32", tunnel_ip(j)),
                ]);
            }
            shell::in_ns(ns, "wg", &args)?;
            shell::run(
                "ip",
                [
                    "-n",
                    ns,
                    "addr",
                    "add",
                    &format!("{}/24", tunnel_ip(i)),
                    "dev",
                    name,
                ],
            )?;
            shell::run("ip", ["-n", ns, "link", "set", name, "mtu", "1420", "up"])?;
        }
        let setup = setup_started.elapsed();
        let addrs: Vec<Ipv4Addr> = (0..n).map(tunnel_ip).collect();
        let mut outcome = super::tcp::run_mpyc(ctx, &addrs, false, Some(setup))?;
        outcome.paths = format!("wireguard:{}", n * n.saturating_sub(1) / 2);
        Ok(outcome)
    })();
    stop(&namespaces, &names);
    result
}

/// Stops this run's boringtun daemons (they daemonize, so their PIDs are
/// found by name among the processes of each party namespace).
fn stop(namespaces: &[&str], names: &[String]) {
    for (ns, name) in namespaces.iter().zip(names) {
        let pids = shell::run("ip", ["netns", "pids", ns]).unwrap_or_default();
        for pid in pids.split_whitespace() {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "boringtun-cli" {
                let _ = shell::run("kill", [pid]);
            }
        }
        let _ = std::fs::remove_file(format!("/var/run/wireguard/{name}.sock"));
    }
}

/// A private and public key, base64, from `wg genkey | wg pubkey`.
fn keypair() -> Result<(String, String)> {
    let private = shell::run("wg", ["genkey"])?.trim().to_string();
    let mut child = Command::new("wg")
        .arg("pubkey")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|source| LabError::Spawn {
            command: "wg pubkey".into(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(private.as_bytes())
            .map_err(|source| LabError::Spawn {
                command: "wg pubkey".into(),
                source,
            })?;
    }
    let out = child.wait_with_output().map_err(|source| LabError::Spawn {
        command: "wg pubkey".into(),
        source,
    })?;
    Ok((
        private,
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    ))
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(tool).is_file()))
}
