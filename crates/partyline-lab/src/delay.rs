//! The delay stage: one-way delay and jitter without netem.
//!
//! This kernel has no netem, so latency is emulated in user space: the
//! "internet" namespace sends every forwarded packet to NFQUEUE, and this
//! stage (a hidden `partyline lab delay-stage` process inside that
//! namespace) holds each packet for the one-way delay configured between the
//! regions of its source and destination address, then lets it go. Packets
//! of one direction between two hosts are released in arrival order even
//! with jitter, as on a real path (TCP would otherwise see reordering).
//!
//! A fault step (`loss` with `jitter_ms`, see [`crate::fault`]) adds jitter
//! that does reorder: it rewrites the configuration and sends the stage
//! SIGHUP; the stage reads it again and prints [`RELOADED`].
//!
//! The stage reads only the first 20 bytes of each packet (the IPv4 header)
//! and never changes a packet. It sleeps with `ppoll` until the next packet
//! is due or a new one arrives, so an idle stage costs nothing.
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};
use crate::scenario::Scenario;

/// The NFQUEUE number the stage binds; the only queue in its namespace.
pub const QUEUE: u16 = 0;
/// Packets the kernel may hold for the stage: enough for a few hundred ms of
/// bulk traffic at veth speed.
const QUEUE_MAX_LEN: u32 = 1 << 16;
/// The line the stage prints once it receives packets.
pub const READY: &str = "delay stage ready";

/// The line the stage prints each time it has read its configuration again.
pub const RELOADED: &str = "delay stage reloaded";
/// The longest the stage sleeps, so that a reload signal that arrives just
/// before it sleeps is noticed soon.
const LONGEST_SLEEP: Duration = Duration::from_millis(200);

/// What the stage needs to know: each public address's region, and the links.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DelayConfig {
    pub sites: Vec<(Ipv4Addr, String)>,
    pub scenario: Scenario,
    /// Jitter a fault step adds for a while.
    #[serde(default)]
    pub extra: Option<ExtraJitter>,
}

/// Jitter on top of the links' that lets packets overtake each other.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExtraJitter {
    /// Paths to or from these addresses; `None`: every path.
    pub sites: Option<Vec<Ipv4Addr>>,
    pub jitter_ms: f64,
}

/// One direction's delay between two addresses.
#[derive(Debug, Clone, Copy, PartialEq)]
struct PathDelay {
    one_way: Duration,
    jitter: Duration,
    /// Packets may overtake each other (else each direction keeps its order).
    reorder: bool,
}

impl DelayConfig {
    fn paths(&self) -> HashMap<(Ipv4Addr, Ipv4Addr), PathDelay> {
        let mut paths = HashMap::new();
        for (a, region_a) in &self.sites {
            for (b, region_b) in &self.sites {
                let Some(link) = self.scenario.link(region_a, region_b) else {
                    continue;
                };
                let extra = self.extra.as_ref().filter(|e| {
                    a != b
                        && e.sites
                            .as_ref()
                            .is_none_or(|hit| hit.contains(a) || hit.contains(b))
                });
                let jitter_ms = link.jitter_ms + extra.map_or(0.0, |e| e.jitter_ms);
                if link.rtt_ms > 0.0 || jitter_ms > 0.0 {
                    paths.insert(
                        (*a, *b),
                        PathDelay {
                            one_way: Duration::from_secs_f64(link.rtt_ms / 2000.0),
                            jitter: Duration::from_secs_f64(jitter_ms / 1000.0),
                            reorder: extra.is_some(),
                        },
                    );
                }
            }
        }
        paths
    }

    fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(LabError::io(path))?;
        serde_json::from_str(&text)
            .map_err(|e| LabError::invalid("delay stage configuration", e.to_string()))
    }
}

/// A packet waiting for its release time; `seq` keeps arrival order among
/// packets due at the same instant.
struct Held {
    due: Instant,
    seq: u64,
    msg: nfq::Message,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// Runs the stage with the configuration in `config_file` until killed.
pub fn run_stage(config_file: &Path) -> Result<()> {
    let mut paths = DelayConfig::read(config_file)?.paths();
    let reload = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, std::sync::Arc::clone(&reload))
        .map_err(|e| LabError::DelayStage(format!("install the reload signal: {e}")))?;
    let fail = |what: &str, e: std::io::Error| LabError::DelayStage(format!("{what}: {e}"));

    let mut queue = nfq::Queue::open().map_err(|e| fail("open NFQUEUE", e))?;
    queue.bind(QUEUE).map_err(|e| fail("bind queue", e))?;
    queue
        .set_copy_range(QUEUE, 20)
        .map_err(|e| fail("set copy range", e))?;
    queue
        .set_queue_max_len(QUEUE, QUEUE_MAX_LEN)
        .map_err(|e| fail("set queue length", e))?;
    queue.set_nonblocking(true);
    let fd = crate::sys::find_netfilter_socket()
        .ok_or_else(|| LabError::DelayStage("cannot find the NFQUEUE socket".into()))?;
    crate::sys::set_receive_buffer(fd, 32 << 20).map_err(|e| fail("set receive buffer", e))?;
    if let Err(e) = crate::sys::make_realtime() {
        tracing::warn!(
            "the delay stage runs without real-time priority ({e}); delays may grow under load"
        );
    }
    say(READY);

    let mut held: BinaryHeap<Reverse<Held>> = BinaryHeap::new();
    // The last release time per direction, to keep each direction in order.
    let mut last_due: HashMap<(Ipv4Addr, Ipv4Addr), Instant> = HashMap::new();
    let mut rng = rand::rng();
    let mut seq = 0u64;
    loop {
        if reload.swap(false, std::sync::atomic::Ordering::SeqCst) {
            paths = DelayConfig::read(config_file)?.paths();
            say(RELOADED);
        }
        let timeout = held.peek().map_or(LONGEST_SLEEP, |Reverse(h)| {
            h.due
                .saturating_duration_since(Instant::now())
                .min(LONGEST_SLEEP)
        });
        crate::sys::wait_readable(fd, Some(timeout)).map_err(|e| fail("wait", e))?;
        loop {
            let mut msg = match queue.recv() {
                Ok(msg) => msg,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(fail("receive", e)),
            };
            msg.set_verdict(nfq::Verdict::Accept);
            let now = Instant::now();
            let Some((key, path)) =
                addresses(msg.get_payload()).and_then(|key| paths.get(&key).map(|d| (key, *d)))
            else {
                queue.verdict(msg).map_err(|e| fail("verdict", e))?;
                continue;
            };
            let offset = if path.jitter.is_zero() {
                0.0
            } else {
                path.jitter.as_secs_f64() * rng.random_range(-1.0..=1.0)
            };
            let delay = Duration::from_secs_f64((path.one_way.as_secs_f64() + offset).max(0.0));
            let due = if path.reorder {
                now + delay
            } else {
                (now + delay).max(last_due.get(&key).copied().unwrap_or(now))
            };
            last_due.insert(key, due);
            seq += 1;
            held.push(Reverse(Held { due, seq, msg }));
        }
        let now = Instant::now();
        while held.peek().is_some_and(|Reverse(h)| h.due <= now) {
            if let Some(Reverse(h)) = held.pop() {
                queue.verdict(h.msg).map_err(|e| fail("verdict", e))?;
            }
        }
    }
}

/// One line on stdout, which the lab watches.
fn say(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// Source and destination of an IPv4 packet.
fn addresses(packet: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr)> {
    if packet.len() < 20 || packet[0] >> 4 != 4 {
        return None;
    }
    let octets =
        |at: usize| Ipv4Addr::new(packet[at], packet[at + 1], packet[at + 2], packet[at + 3]);
    Some((octets(12), octets(16)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_jitter_reorders_the_paths_it_touches_only() {
        let [a, b, c] = [1, 2, 3].map(|d| Ipv4Addr::new(10, 200, d, 2));
        let scenario = Scenario::find("one-region").unwrap();
        let sites = [a, b, c].map(|ip| (ip, "ams".to_string())).to_vec();
        let mut config = DelayConfig {
            sites,
            scenario,
            extra: None,
        };
        let plain = config.paths();
        assert!(plain.values().all(|p| !p.reorder && p.jitter.is_zero()));
        config.extra = Some(ExtraJitter {
            sites: Some(vec![b]),
            jitter_ms: 4.0,
        });
        let paths = config.paths();
        for (&(x, y), path) in &paths {
            let touched = x != y && (x == b || y == b);
            assert_eq!(path.reorder, touched, "{x} → {y}");
            assert_eq!(
                path.jitter,
                Duration::from_millis(if touched { 4 } else { 0 })
            );
            assert_eq!(path.one_way, Duration::from_micros(500));
        }
    }

    #[test]
    fn reads_addresses_of_ipv4_only() {
        let mut packet = [0u8; 20];
        packet[0] = 0x45;
        packet[12..16].copy_from_slice(&[10, 200, 1, 2]);
        packet[16..20].copy_from_slice(&[10, 200, 2, 2]);
        assert_eq!(
            addresses(&packet),
            Some((Ipv4Addr::new(10, 200, 1, 2), Ipv4Addr::new(10, 200, 2, 2)))
        );
        packet[0] = 0x60;
        assert_eq!(addresses(&packet), None);
        assert_eq!(addresses(&packet[..10]), None);
    }
}
