//! Faults as scripted steps of a scenario: at a point in time of every run,
//! something happens to one party's network or to the server, and (for
//! some) is undone after a while.
//!
//! In a scenario file:
//!
//! ```toml
//! [[fault]]
//! at = "2s"             # after the run's parties were started
//! kind = "link-down"    # the host's only interface goes down …
//! party = 1
//! duration = "2s"       # … and comes back up (route included) 2 s later
//! ```
//!
//! The kinds:
//! - `link-down` (`party`, optional `duration`): the party's host loses its
//!   link: its interface goes down, which also drops its default route.
//! - `address-change` (`party`, behind a NAT): the host moves to another
//!   address in its LAN (the new one added, the old one removed, the
//!   default route put back), as a laptop that rejoins its Wi-Fi does.
//! - `nat-reset` (`party`, behind a NAT, optional `duration`): every NAT
//!   router of the party forgets its mappings (its conntrack table is
//!   flushed), as when a home router restarts; with a duration the router
//!   is first away that long (its LAN link down, so the host loses carrier
//!   too), as a rebooting router is.
//! - `network-switch` (`party`): the host's network goes away and a second
//!   one (another cone NAT router, another public address, no emulated
//!   delay or loss) comes up, as a phone moving from Wi-Fi to mobile data;
//!   the lab builds that second network for such a party, down until then.
//! - `relay-restart` (optional `duration`): `partyline serve` (coordinator
//!   and relay) is killed and, at once or that much later, started again on
//!   the same ports and data directory; runs of other solutions are
//!   untouched.
//! - `loss` (`percent`, optional `jitter_ms`, `party`, `duration`): that
//!   share of the packets to and from the party (no `party`: on every path)
//!   is dropped in each direction, and each packet's delay varies by up to
//!   ± `jitter_ms`, which reorders packets, unlike a link's `jitter_ms`.
//!
//! A [`Schedule`] applies one run's faults when they are due and undoes
//! whatever is still in effect when the run ends (also on an error), so that
//! every run of a matrix starts from the topology as built. Each step is
//! logged with its time in the run's `faults.log`.
use std::fmt;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{LabError, Result};
use crate::nat::NatKind;
use crate::solutions::partyline::Server;
use crate::topology::Lab;
use crate::{delay, shaping, shell};

/// What happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    LinkDown,
    AddressChange,
    NatReset,
    NetworkSwitch,
    RelayRestart,
    Loss,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LinkDown => "link-down",
            Self::AddressChange => "address-change",
            Self::NatReset => "nat-reset",
            Self::NetworkSwitch => "network-switch",
            Self::RelayRestart => "relay-restart",
            Self::Loss => "loss",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One scripted fault (a `[[fault]]` table of a scenario file).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// When, after the run's parties were started: "2s", "500ms", "1.5s".
    #[serde(with = "text_duration")]
    pub at: Duration,
    pub kind: FaultKind,
    /// Whose network (index from 0); `loss` without one hits every path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub party: Option<usize>,
    /// How long `link-down` and `loss` last (without it: until the run
    /// ends), and how long the server or router stays down in
    /// `relay-restart` and `nat-reset` (without it: restarted at once).
    #[serde(
        default,
        with = "text_duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub duration: Option<Duration>,
    /// `loss`: the share of packets dropped in each direction, in percent.
    #[serde(default)]
    pub percent: f64,
    /// `loss`: each packet's one-way delay varies by up to ± this much, reordering them.
    #[serde(default)]
    pub jitter_ms: f64,
}

impl Fault {
    /// A fault of `kind` at `at`, with nothing else set.
    pub fn new(kind: FaultKind, at: Duration) -> Self {
        Self {
            at,
            kind,
            party: None,
            duration: None,
            percent: 0.0,
            jitter_ms: 0.0,
        }
    }

    pub fn party(mut self, party: usize) -> Self {
        self.party = Some(party);
        self
    }

    pub fn lasting(mut self, duration: Duration) -> Self {
        self.duration = Some(duration);
        self
    }

    pub fn loss(mut self, percent: f64, jitter_ms: f64) -> Self {
        self.percent = percent;
        self.jitter_ms = jitter_ms;
        self
    }

    /// Checks the fields `kind` takes against the parties' networks (`nats`,
    /// one per party).
    pub fn validate(&self, nats: &[NatKind]) -> Result<()> {
        let what = || format!("fault {} at {:?}", self.kind, self.at);
        let needs_party = !matches!(self.kind, FaultKind::RelayRestart | FaultKind::Loss);
        match self.party {
            None if needs_party => {
                return Err(LabError::invalid(what(), "give the party it happens to"));
            }
            Some(_) if self.kind == FaultKind::RelayRestart => {
                return Err(LabError::invalid(
                    what(),
                    "the relay is no party's: drop party",
                ));
            }
            Some(p) if p >= nats.len() => {
                return Err(LabError::invalid(
                    what(),
                    format!("party {p}, but the lab has {} parties", nats.len()),
                ));
            }
            _ => {}
        }
        let behind_nat = matches!(self.kind, FaultKind::AddressChange | FaultKind::NatReset);
        if let Some(p) = self.party
            && behind_nat
            && nats[p] == NatKind::Public
        {
            return Err(LabError::invalid(
                what(),
                format!(
                    "party {p} is public, with no LAN or NAT router; put it behind one (--nat cone)"
                ),
            ));
        }
        let timed = matches!(
            self.kind,
            FaultKind::LinkDown | FaultKind::Loss | FaultKind::RelayRestart | FaultKind::NatReset
        );
        if self.duration.is_some() && !timed {
            return Err(LabError::invalid(
                what(),
                "it happens at once: drop duration",
            ));
        }
        if self.kind == FaultKind::Loss {
            let sane = self.percent.is_finite()
                && (0.0..=100.0).contains(&self.percent)
                && self.jitter_ms.is_finite()
                && (0.0..=10_000.0).contains(&self.jitter_ms)
                && (self.percent > 0.0 || self.jitter_ms > 0.0);
            if !sane {
                return Err(LabError::invalid(
                    what(),
                    "need 0 ≤ percent ≤ 100 and 0 ≤ jitter_ms ≤ 10000, not both 0",
                ));
            }
        } else if self.percent != 0.0 || self.jitter_ms != 0.0 {
            return Err(LabError::invalid(
                what(),
                "percent and jitter_ms belong to kind = \"loss\"",
            ));
        }
        Ok(())
    }

    fn describe(&self) -> String {
        let mut text = self.kind.to_string();
        if let Some(p) = self.party {
            text.push_str(&format!(" party {p}"));
        }
        if self.kind == FaultKind::Loss {
            text.push_str(&format!(" {}% jitter {} ms", self.percent, self.jitter_ms));
        }
        if let Some(d) = &self.duration {
            text.push_str(&format!(" for {}", text_duration::show(d)));
        }
        text
    }
}

/// The scenario's faults in words, for the summary: `link-down party 1 for 2s at 2s; …`.
pub fn describe(faults: &[Fault]) -> String {
    faults
        .iter()
        .map(|f| format!("{} at {}", f.describe(), text_duration::show(&f.at)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What an applied fault left in effect, to undo.
enum InEffect {
    LinkDown {
        party: usize,
    },
    ServerDown {
        killed: Instant,
    },
    RouterDown {
        party: usize,
    },
    Switched {
        party: usize,
    },
    Address {
        party: usize,
        now: Ipv4Addr,
    },
    Loss {
        rules: Vec<Vec<String>>,
        jitter: bool,
    },
}

/// One run's faults, applied as they come due by [`Schedule::poll`].
pub struct Schedule<'a> {
    lab: &'a Lab,
    server: Option<&'a Server>,
    started: Instant,
    pending: Vec<Fault>,
    /// What to undo, and when (`None`: at the end of the run).
    active: Vec<(Option<Instant>, InEffect)>,
    log: Option<std::fs::File>,
}

impl<'a> Schedule<'a> {
    /// `faults` counted from `started`; `server` is what `relay-restart`
    /// restarts (without one, that step does nothing); the steps are logged
    /// in `dir/faults.log` (none when there are no faults).
    pub fn new(
        lab: &'a Lab,
        faults: &[Fault],
        server: Option<&'a Server>,
        started: Instant,
        dir: &Path,
    ) -> Result<Self> {
        let log = if faults.is_empty() {
            None
        } else {
            let path = dir.join("faults.log");
            Some(std::fs::File::create(&path).map_err(LabError::io(&path))?)
        };
        let mut pending = faults.to_vec();
        pending.sort_by_key(|f| f.at);
        Ok(Self {
            lab,
            server,
            started,
            pending,
            active: Vec::new(),
            log,
        })
    }

    /// No faults at all.
    pub fn none(lab: &'a Lab) -> Self {
        Self {
            lab,
            server: None,
            started: Instant::now(),
            pending: Vec::new(),
            active: Vec::new(),
            log: None,
        }
    }

    /// Applies every fault that is due and undoes every one that is over.
    pub fn poll(&mut self) -> Result<()> {
        let now = Instant::now();
        while let Some(end) = self
            .active
            .iter()
            .position(|(until, _)| until.is_some_and(|t| t <= now))
        {
            let (_, effect) = self.active.remove(end);
            self.undo(effect)?;
        }
        while self
            .pending
            .first()
            .is_some_and(|f| self.started + f.at <= now)
        {
            let fault = self.pending.remove(0);
            self.apply(&fault)?;
        }
        Ok(())
    }

    /// When the next step is due (a fault to apply or to undo), if any.
    pub fn next_due(&self) -> Option<Instant> {
        let apply = self.pending.first().map(|f| self.started + f.at);
        let undo = self.active.iter().filter_map(|(until, _)| *until).min();
        apply.into_iter().chain(undo).min()
    }

    /// Applies the faults still pending as they come due, until none is
    /// left; for a caller that has nothing else to wait for.
    pub fn run_to_end(&mut self) -> Result<()> {
        while let Some(due) = self.next_due() {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            crate::interrupt::check()?;
            self.poll()?;
        }
        Ok(())
    }

    /// Undoes everything still in effect.
    pub fn finish(&mut self) -> Result<()> {
        self.pending.clear();
        let mut first_error = None;
        for (_, effect) in std::mem::take(&mut self.active) {
            if let Err(e) = self.undo(effect) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn note(&mut self, what: &str) {
        let at = self.started.elapsed().as_secs_f64();
        tracing::info!("fault step at {at:.3} s: {what}");
        if let Some(log) = &mut self.log {
            let _ = writeln!(log, "{at:.3} s: {what}");
        }
    }

    fn apply(&mut self, fault: &Fault) -> Result<()> {
        self.note(&fault.describe());
        let until = fault.duration.map(|d| Instant::now() + d);
        let lab = self.lab;
        let effect = match fault.kind {
            FaultKind::LinkDown => {
                let party = party_of(fault)?;
                let link = lab.uplink(party)?;
                shell::run(
                    "ip",
                    ["-n", &link.ns, "link", "set", &link.interface, "down"],
                )?;
                Some(InEffect::LinkDown { party })
            }
            FaultKind::AddressChange => {
                let party = party_of(fault)?;
                let link = lab.uplink(party)?;
                let now = current_address(&link.ns, &link.interface)?;
                let to = other_address(now);
                move_address(&link, now, to)?;
                self.note(&format!("party {party} moved from {now} to {to}"));
                Some(InEffect::Address { party, now: to })
            }
            FaultKind::NatReset => {
                let party = party_of(fault)?;
                let link = lab.uplink(party)?;
                if until.is_none() {
                    forget_mappings(&link)?;
                    None
                } else {
                    let router = router_of(&link)?;
                    shell::run("ip", ["-n", router, "link", "set", "lan", "down"])?;
                    Some(InEffect::RouterDown { party })
                }
            }
            FaultKind::NetworkSwitch => {
                let party = party_of(fault)?;
                let link = lab.uplink(party)?;
                let (second, gateway) = link.second.clone().ok_or_else(|| {
                    LabError::invalid(
                        "network-switch",
                        format!(
                            "party {party} has no second network: the scenario's fault must name it"
                        ),
                    )
                })?;
                shell::run("ip", ["-n", &link.ns, "link", "set", &second, "up"])?;
                route_via(&link.ns, gateway, &second)?;
                shell::run(
                    "ip",
                    ["-n", &link.ns, "link", "set", &link.interface, "down"],
                )?;
                Some(InEffect::Switched { party })
            }
            FaultKind::RelayRestart => match self.server {
                Some(server) => {
                    server.kill()?;
                    let killed = Instant::now();
                    if until.is_none() {
                        self.undo(InEffect::ServerDown { killed })?;
                        None
                    } else {
                        Some(InEffect::ServerDown { killed })
                    }
                }
                None => {
                    self.note("no partyline serve in this run: nothing to restart");
                    None
                }
            },
            FaultKind::Loss => {
                let inet = lab.inet.as_deref().ok_or_else(|| {
                    LabError::invalid("scenario loopback", "it cannot lose packets")
                })?;
                let sites: Vec<Ipv4Addr> = match fault.party {
                    Some(p) => vec![lab.parties[p].public_ip],
                    None => lab.site_addresses(),
                };
                let mut rules = Vec::new();
                if fault.percent > 0.0 {
                    for (a, b) in pairs_touching(&lab.site_addresses(), &sites) {
                        let rule = shaping::loss_rule(a, b, fault.percent / 100.0);
                        let mut insert = vec!["-I".to_string(), "FORWARD".into(), "1".into()];
                        insert.extend(rule.iter().cloned());
                        shell::in_ns(inet, "iptables", &insert)?;
                        rules.push(rule);
                    }
                }
                let jitter = fault.jitter_ms > 0.0;
                if jitter {
                    lab.set_reordering_jitter(Some(delay::ExtraJitter {
                        sites: fault.party.map(|_| sites.clone()),
                        jitter_ms: fault.jitter_ms,
                    }))?;
                }
                Some(InEffect::Loss { rules, jitter })
            }
        };
        if let Some(effect) = effect {
            self.active.push((until, effect));
        }
        Ok(())
    }

    fn undo(&mut self, effect: InEffect) -> Result<()> {
        let lab = self.lab;
        match effect {
            InEffect::LinkDown { party } => {
                let link = lab.uplink(party)?;
                shell::run("ip", ["-n", &link.ns, "link", "set", &link.interface, "up"])?;
                default_route(&link)?;
                self.note(&format!("party {party}'s link is up again"));
            }
            InEffect::ServerDown { killed } => {
                let server = self
                    .server
                    .ok_or_else(|| LabError::invalid("relay restart", "the run has no server"))?;
                server.start_again(lab)?;
                let gone = killed.elapsed();
                self.note(&format!(
                    "partyline serve ready again, {gone:?} after it was killed"
                ));
            }
            InEffect::Switched { party } => {
                let link = lab.uplink(party)?;
                shell::run("ip", ["-n", &link.ns, "link", "set", &link.interface, "up"])?;
                default_route(&link)?;
                if let Some((second, _)) = &link.second {
                    shell::run("ip", ["-n", &link.ns, "link", "set", second, "down"])?;
                }
                self.note(&format!("party {party} is back on its first network"));
            }
            InEffect::RouterDown { party } => {
                let link = lab.uplink(party)?;
                forget_mappings(&link)?;
                shell::run("ip", ["-n", router_of(&link)?, "link", "set", "lan", "up"])?;
                self.note(&format!("party {party}'s router is back, with no mappings"));
            }
            InEffect::Address { party, now } => {
                let link = lab.uplink(party)?;
                move_address(&link, now, link.address)?;
                self.note(&format!("party {party} moved back to {}", link.address));
            }
            InEffect::Loss { rules, jitter } => {
                let inet = lab.inet.as_deref().unwrap_or_default();
                for rule in rules {
                    let mut delete = vec!["-D".to_string(), "FORWARD".into()];
                    delete.extend(rule);
                    shell::in_ns(inet, "iptables", &delete)?;
                }
                if jitter {
                    lab.set_reordering_jitter(None)?;
                }
                self.note("loss and jitter over");
            }
        }
        Ok(())
    }
}

impl Drop for Schedule<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            tracing::warn!("undoing a fault step failed: {e}");
        }
    }
}

fn party_of(fault: &Fault) -> Result<usize> {
    fault.party.ok_or_else(|| {
        LabError::invalid(
            format!("fault {}", fault.kind),
            "give the party it happens to",
        )
    })
}

/// The router on the party's LAN (the innermost).
fn router_of(link: &crate::topology::Uplink) -> Result<&str> {
    link.routers
        .first()
        .map(String::as_str)
        .ok_or_else(|| LabError::invalid("nat-reset", "the party has no NAT router"))
}

/// Every NAT router of the party forgets its mappings.
fn forget_mappings(link: &crate::topology::Uplink) -> Result<()> {
    for router in &link.routers {
        shell::in_ns(router, "conntrack", ["-F"])?;
    }
    Ok(())
}

/// Ordered pairs of distinct addresses of which at least one is in `hit`.
fn pairs_touching(all: &[Ipv4Addr], hit: &[Ipv4Addr]) -> Vec<(Ipv4Addr, Ipv4Addr)> {
    let mut pairs = Vec::new();
    for &a in all {
        for &b in all {
            if a != b && (hit.contains(&a) || hit.contains(&b)) {
                pairs.push((a, b));
            }
        }
    }
    pairs
}

/// The host's one IPv4 address on `interface`.
fn current_address(ns: &str, interface: &str) -> Result<Ipv4Addr> {
    let out = shell::run(
        "ip",
        ["-n", ns, "-4", "-o", "addr", "show", "dev", interface],
    )?;
    out.split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|cidr| cidr.split('/').next())
        .and_then(|ip| ip.parse().ok())
        .ok_or_else(|| LabError::invalid("host address", format!("none in {out:?}")))
}

/// Another host address in the same /24: .2 and .3 take turns.
fn other_address(ip: Ipv4Addr) -> Ipv4Addr {
    let [a, b, c, d] = ip.octets();
    Ipv4Addr::new(a, b, c, if d == 2 { 3 } else { 2 })
}

/// Moves the host from `from` to `to`: the new address first, then the old
/// one removed (the new one is promoted, not removed with it), then the
/// default route back.
fn move_address(link: &crate::topology::Uplink, from: Ipv4Addr, to: Ipv4Addr) -> Result<()> {
    if from == to {
        return Ok(());
    }
    shell::in_ns(
        &link.ns,
        "sysctl",
        [
            "-qw",
            &format!("net.ipv4.conf.{}.promote_secondaries=1", link.interface),
        ],
    )?;
    let dev = link.interface.as_str();
    shell::run(
        "ip",
        [
            "-n",
            &link.ns,
            "addr",
            "add",
            &format!("{to}/24"),
            "dev",
            dev,
        ],
    )?;
    shell::run(
        "ip",
        [
            "-n",
            &link.ns,
            "addr",
            "del",
            &format!("{from}/24"),
            "dev",
            dev,
        ],
    )?;
    default_route(link)
}

fn default_route(link: &crate::topology::Uplink) -> Result<()> {
    route_via(&link.ns, link.gateway, &link.interface)
}

/// Makes `gateway` on `interface` the default route in `ns`.
fn route_via(ns: &str, gateway: Ipv4Addr, interface: &str) -> Result<()> {
    shell::run(
        "ip",
        [
            "-n",
            ns,
            "route",
            "replace",
            "default",
            "via",
            &gateway.to_string(),
            "dev",
            interface,
        ],
    )?;
    Ok(())
}

/// Durations written as text: a number and a unit, `ms`, `s` or `min`.
mod text_duration {
    use super::*;

    pub fn parse(text: &str) -> std::result::Result<Duration, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let scale = match unit.trim() {
            "ms" => 0.001,
            "s" => 1.0,
            "min" => 60.0,
            _ => {
                return Err(format!(
                    "{text:?}: write a number and ms, s or min, e.g. \"2s\""
                ));
            }
        };
        number
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n * scale <= 86_400.0)
            .map(|n| Duration::from_secs_f64(n * scale))
            .ok_or_else(|| format!("{text:?}: write a number and ms, s or min, e.g. \"2s\""))
    }

    /// `2s`, or `1500ms` where whole seconds would not do.
    pub fn show(d: &Duration) -> String {
        let ms = d.as_millis();
        if ms.is_multiple_of(1000) {
            format!("{}s", ms / 1000)
        } else {
            format!("{ms}ms")
        }
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&show(d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(serde::de::Error::custom)
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(
            d: &Option<Duration>,
            s: S,
        ) -> std::result::Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.serialize_some(&show(d)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> std::result::Result<Option<Duration>, D::Error> {
            let text = Option::<String>::deserialize(d)?;
            text.map(|t| parse(&t).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_their_unit() {
        assert_eq!(text_duration::parse("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(
            text_duration::parse("500ms"),
            Ok(Duration::from_millis(500))
        );
        assert_eq!(
            text_duration::parse("1.5s"),
            Ok(Duration::from_millis(1500))
        );
        assert_eq!(text_duration::parse("1min"), Ok(Duration::from_secs(60)));
        assert!(text_duration::parse("2").is_err());
        assert!(text_duration::parse("s").is_err());
        assert!(text_duration::parse("2h").is_err());
        assert_eq!(text_duration::show(&Duration::from_secs(2)), "2s");
        assert_eq!(text_duration::show(&Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn a_scenario_file_scripts_faults() {
        let text = r#"
            name = "flaky"
            regions = ["ams"]
            links = [{ a = "ams", b = "ams", rtt_ms = 1.0 }]
            [[fault]]
            at = "2s"
            kind = "link-down"
            party = 1
            duration = "2s"
            [[fault]]
            at = "0s"
            kind = "loss"
            percent = 5
            jitter_ms = 3
        "#;
        let scenario: crate::Scenario = toml::from_str(text).unwrap();
        assert_eq!(
            scenario.faults,
            vec![
                Fault::new(FaultKind::LinkDown, Duration::from_secs(2))
                    .party(1)
                    .lasting(Duration::from_secs(2)),
                Fault::new(FaultKind::Loss, Duration::ZERO).loss(5.0, 3.0),
            ]
        );
        let nats = [NatKind::Public; 3];
        assert!(scenario.faults.iter().all(|f| f.validate(&nats).is_ok()));
    }

    #[test]
    fn faults_missing_what_their_kind_needs_are_refused() {
        let at = Duration::from_secs(1);
        let public = [NatKind::Public; 2];
        let cone = [NatKind::Cone; 2];
        assert!(
            Fault::new(FaultKind::RelayRestart, at)
                .lasting(at)
                .validate(&public)
                .is_ok()
        );
        let refused = [
            (
                Fault::new(FaultKind::LinkDown, at),
                &public,
                "give the party",
            ),
            (
                Fault::new(FaultKind::LinkDown, at).party(2),
                &public,
                "the lab has 2 parties",
            ),
            (
                Fault::new(FaultKind::AddressChange, at).party(0),
                &public,
                "is public",
            ),
            (
                Fault::new(FaultKind::AddressChange, at)
                    .party(0)
                    .lasting(at),
                &cone,
                "drop duration",
            ),
            (
                Fault::new(FaultKind::RelayRestart, at).party(0),
                &cone,
                "drop party",
            ),
            (Fault::new(FaultKind::Loss, at), &cone, "not both 0"),
            (
                Fault::new(FaultKind::Loss, at).loss(150.0, 0.0),
                &cone,
                "percent ≤ 100",
            ),
        ];
        for (fault, nats, says) in refused {
            let error = fault.validate(nats).unwrap_err().to_string();
            assert!(error.contains(says), "{fault:?}: {error}");
        }
        assert!(
            Fault::new(FaultKind::AddressChange, at)
                .party(1)
                .validate(&cone)
                .is_ok()
        );
    }

    #[test]
    fn loss_touches_every_pair_with_a_hit_address() {
        let [a, b, c] = [1, 2, 3].map(|d| Ipv4Addr::new(10, 200, d, 2));
        let pairs = pairs_touching(&[a, b, c], &[b]);
        assert_eq!(pairs, vec![(a, b), (b, a), (b, c), (c, b)]);
        assert_eq!(pairs_touching(&[a, b, c], &[a, b, c]).len(), 6);
        assert_eq!(
            other_address(Ipv4Addr::new(10, 10, 1, 2)),
            Ipv4Addr::new(10, 10, 1, 3)
        );
        assert_eq!(
            other_address(Ipv4Addr::new(10, 10, 1, 3)),
            Ipv4Addr::new(10, 10, 1, 2)
        );
    }
}
