//! Scenarios: where the parties are in the world, as regions and the
//! round-trip times, jitter and loss between them.
//!
//! The built-in scenarios follow the reference study's four settings. Their
//! round-trip times are those given in issue 3 (Amsterdam–Frankfurt ≈ 10 ms,
//! Amsterdam–New York ≈ 75 ms, Amsterdam–Singapore ≈ 160 ms, New
//! York–Singapore ≈ 230 ms), which agree with public ping tables such as
//! WonderNetwork's global ping statistics and the cloud providers'
//! inter-region latency pages; they were not measured from here (this machine
//! has no Internet). Within one region (one data centre) we use 1 ms.
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};
use crate::fault::Fault;

/// A named set of regions and the links between them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Parties are placed in these regions round-robin (party i in
    /// `regions[i % len]`); the server sits in the first.
    pub regions: Vec<String>,
    /// One entry per pair of regions (in either order), including each
    /// region with itself.
    pub links: Vec<Link>,
    /// A relay of its own (`partyline relay`) in every region but the
    /// server's, which lists them: each party uses its nearest relay.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub relay_in_every_region: bool,
    /// Faults scripted into every run (`[[fault]]` tables; see [`crate::fault`]).
    #[serde(default, rename = "fault", skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Fault>,
    /// Every party and the server on this machine's loopback, without
    /// namespaces (the built-in `loopback` scenario only; a file cannot ask
    /// for it).
    #[serde(skip)]
    pub loopback: bool,
}

/// The path between two regions, the same in both directions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub a: String,
    pub b: String,
    /// Round-trip time in milliseconds; each direction gets half.
    pub rtt_ms: f64,
    /// Each packet's one-way delay varies uniformly by up to ± this much.
    #[serde(default)]
    pub jitter_ms: f64,
    /// Probability (0–1) that a packet is lost, in each direction.
    #[serde(default)]
    pub loss: f64,
}

impl Link {
    fn new(a: &str, b: &str, rtt_ms: f64) -> Self {
        Self {
            a: a.into(),
            b: b.into(),
            rtt_ms,
            jitter_ms: 0.0,
            loss: 0.0,
        }
    }

    fn joins(&self, x: &str, y: &str) -> bool {
        (self.a == x && self.b == y) || (self.a == y && self.b == x)
    }
}

/// Round-trip time between two hosts in the same region (one data centre).
const SAME_REGION_RTT_MS: f64 = 1.0;

/// The name of the scenario that needs no root: see [`Scenario::loopback`].
pub const LOOPBACK: &str = "loopback";

/// The built-in scenarios, in the reference study's order, then `loopback`.
pub fn builtin() -> Vec<Scenario> {
    let same = |r: &str| Link::new(r, r, SAME_REGION_RTT_MS);
    let scenario = |name: &str, description: &str, regions: &[&str], links| Scenario {
        name: name.into(),
        description: description.into(),
        regions: regions.iter().map(|r| r.to_string()).collect(),
        links,
        relay_in_every_region: false,
        faults: Vec::new(),
        loopback: false,
    };
    // three-far's links; its relay scenarios put Singapore first: the
    // server, and with it the one relay of `three-far-one-relay`, far from
    // the parties in the other two regions.
    let far_regions = ["sgp", "ams", "nyc"];
    let far_links = || {
        vec![
            same("ams"),
            same("nyc"),
            same("sgp"),
            Link::new("ams", "nyc", 75.0),
            Link::new("ams", "sgp", 160.0),
            Link::new("nyc", "sgp", 230.0),
        ]
    };
    vec![
        scenario(
            "one-region",
            "all parties in one region (Amsterdam)",
            &["ams"],
            vec![same("ams")],
        ),
        scenario(
            "two-near",
            "two nearby regions: Amsterdam and Frankfurt (RTT 10 ms)",
            &["ams", "fra"],
            vec![same("ams"), same("fra"), Link::new("ams", "fra", 10.0)],
        ),
        scenario(
            "two-far",
            "two distant regions: Amsterdam and New York (RTT 75 ms)",
            &["ams", "nyc"],
            vec![same("ams"), same("nyc"), Link::new("ams", "nyc", 75.0)],
        ),
        scenario(
            "three-far",
            "several distant regions: Amsterdam, New York, Singapore (RTT 75, 160, 230 ms)",
            &["ams", "nyc", "sgp"],
            far_links(),
        ),
        Scenario {
            relay_in_every_region: true,
            ..scenario(
                "three-far-relays",
                "three-far's regions with the server in Singapore and a relay in every region: \
                 each party uses its nearest",
                &far_regions,
                far_links(),
            )
        },
        scenario(
            "three-far-one-relay",
            "three-far's regions with the server in Singapore and its relay the only one",
            &far_regions,
            far_links(),
        ),
        Scenario::loopback(),
    ]
}

impl Scenario {
    /// Every party and the server as processes on this machine, talking over
    /// 127.0.0.1: no namespaces, so no root, and nothing emulated (no
    /// delay, loss, rate or NAT). What it measures is the solutions' own
    /// overhead, e.g. partyline's tunnel against MPyC's plain TCP; it is
    /// what `partyline bench` runs. WireGuard needs namespaces and is not
    /// available here.
    pub fn loopback() -> Self {
        Self {
            name: LOOPBACK.into(),
            description: "every party on this machine's loopback: no namespaces, no root, \
                          nothing emulated (tcp, tcp-ssl, partyline, partyline-relay)"
                .into(),
            regions: vec!["local".into()],
            links: vec![Link::new("local", "local", 0.0)],
            relay_in_every_region: false,
            faults: Vec::new(),
            loopback: true,
        }
    }

    /// A built-in scenario by name, or one from a TOML file (a path ending in
    /// `.toml`).
    pub fn find(name: &str) -> Result<Self> {
        if name.ends_with(".toml") {
            return Self::from_file(Path::new(name));
        }
        builtin()
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| {
                let known: Vec<String> = builtin().into_iter().map(|s| s.name).collect();
                LabError::invalid(
                    "scenario",
                    format!(
                        "{name:?} is neither built in ({}) nor a .toml file",
                        known.join(", ")
                    ),
                )
            })
    }

    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(LabError::io(path))?;
        let scenario: Self = toml::from_str(&text).map_err(|e| {
            LabError::invalid(format!("scenario file {}", path.display()), e.to_string())
        })?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Every pair of regions has exactly one link with sane numbers; the
    /// loopback scenario has nothing to emulate.
    pub fn validate(&self) -> Result<()> {
        let what = format!("scenario {:?}", self.name);
        if self.regions.is_empty() {
            return Err(LabError::invalid(what, "it has no regions"));
        }
        if self.loopback
            && (!self.faults.is_empty()
                || self.relay_in_every_region
                || self
                    .links
                    .iter()
                    .any(|l| l.rtt_ms > 0.0 || l.jitter_ms > 0.0 || l.loss > 0.0))
        {
            return Err(LabError::invalid(
                what,
                "loopback emulates no delay, jitter, loss, fault or relay region (that needs \
                 namespaces and root): drop --loss and --jitter, or pick another scenario",
            ));
        }
        for link in &self.links {
            let sane = link.rtt_ms.is_finite()
                && (0.0..=10_000.0).contains(&link.rtt_ms)
                && link.jitter_ms.is_finite()
                && link.jitter_ms >= 0.0
                && link.jitter_ms * 2.0 <= link.rtt_ms.max(0.0) + f64::EPSILON
                && (0.0..=1.0).contains(&link.loss);
            if !sane {
                return Err(LabError::invalid(
                    what,
                    format!(
                        "link {}–{}: need 0 ≤ rtt_ms ≤ 10000, 0 ≤ jitter_ms ≤ rtt_ms/2, 0 ≤ loss ≤ 1",
                        link.a, link.b
                    ),
                ));
            }
        }
        for (i, x) in self.regions.iter().enumerate() {
            for y in &self.regions[i..] {
                match self.links.iter().filter(|l| l.joins(x, y)).count() {
                    1 => {}
                    0 => {
                        return Err(LabError::invalid(
                            what,
                            format!("no link between {x} and {y}"),
                        ));
                    }
                    _ => {
                        return Err(LabError::invalid(
                            what,
                            format!("two links between {x} and {y}"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The link between two regions.
    pub fn link(&self, x: &str, y: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.joins(x, y))
    }

    /// The region of party `index`.
    pub fn region_of(&self, index: usize) -> &str {
        &self.regions[index % self.regions.len()]
    }

    /// The same scenario with every link's loss set to `loss` (for
    /// experiments from the command line).
    pub fn with_loss(mut self, loss: f64) -> Self {
        for link in &mut self.links {
            link.loss = loss;
        }
        self
    }

    /// The same scenario with every link's jitter set to `jitter_ms`.
    pub fn with_jitter(mut self, jitter_ms: f64) -> Self {
        for link in &mut self.links {
            link.jitter_ms = jitter_ms;
        }
        self
    }
}
