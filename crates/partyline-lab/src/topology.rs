//! The emulated Internet: network namespaces as hosts and routers.
//!
//! ```text
//!   server ns ──┐
//!   party 0 ns ─┤                       (public: the host is the site)
//!   party 1 ns ── NAT router ns ─┤      (cone, symmetric, udp-blocked)
//!   party 2 ns ── home router ── carrier NAT ─┤   (cgnat)
//!                                  "internet" ns (router, delay stage)
//! ```
//! Each site (the server, a public host, or a party's outermost router) hangs
//! off the "internet" namespace by its own veth pair: site k's link is
//! 10.200.k.0/24, the internet side .1 and the site's public address .2
//! (the server is site 0, party i site i+1, the relay of its own in the
//! scenario's region j site [`RELAY_SITE`] + j). Behind a NAT the host is
//! 10.10.k.2 and the carrier's side of a CGNAT 100.64.k.0/24. A party that
//! a scenario's `network-switch` fault moves has a second network: its own
//! cone NAT router (site 100 + i), the host's `eth1` at 10.11.i.2, down
//! until the switch. These addresses exist only inside namespaces the lab
//! created.
//!
//! The internet namespace routes rather than bridges: routed packets pass
//! iptables' FORWARD chain, where the delay stage's NFQUEUE rule and the
//! loss rules see them, with no `br_netfilter` needed. Rates are token
//! buckets (tc tbf) on each site's link: the site side limits uplink, the
//! internet side downlink.
//!
//! Everything has the lab's per-run prefix; [`Lab`] removes it all when
//! dropped, also after an error or Ctrl-C.
//!
//! The `loopback` scenario builds none of this: every host is this machine
//! itself at 127.0.0.1 (`ns` is `None`), so it needs no root, and each party's
//! MPyC listens on a port of its own instead of an address of its own.
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cleanup;
use crate::delay::{self, DelayConfig, ExtraJitter};
use crate::error::{LabError, Result};
use crate::nat::{self, Layer, NatKind};
use crate::process::NsProcess;
use crate::scenario::Scenario;
use crate::{interrupt, shell};

/// Every lab namespace's name starts with this.
pub const PREFIX_ROOT: &str = "pllab-";
/// The most parties a lab holds (site numbers must fit an address octet, and
/// MPyC beyond this is out of this machine's reach anyway).
pub const MAX_PARTIES: usize = 32;
/// How long the delay stage may take to start.
const STAGE_START: Duration = Duration::from_secs(10);

/// One party's place in the topology.
#[derive(Debug, Clone)]
pub struct PartySpec {
    pub region: String,
    pub nat: NatKind,
    pub uplink_mbit: Option<f64>,
    pub downlink_mbit: Option<f64>,
    /// A second network (its own cone NAT router and public address) the
    /// host can switch to, its interface down until then: for the
    /// `network-switch` fault.
    pub second_network: bool,
}

/// What to build.
#[derive(Debug, Clone)]
pub struct TopologySpec {
    pub scenario: Scenario,
    pub parties: Vec<PartySpec>,
}

impl TopologySpec {
    /// `n` parties placed round-robin over the scenario's regions; party i
    /// gets `nats[i]`, or the last entry when the list is shorter (empty:
    /// public); every party gets `rate_mbit` up and down, if given.
    pub fn new(
        scenario: Scenario,
        n: usize,
        nats: &[NatKind],
        rate_mbit: Option<f64>,
    ) -> Result<Self> {
        scenario.validate()?;
        if scenario.loopback
            && (rate_mbit.is_some() || nats.iter().any(|&nat| nat != NatKind::Public))
        {
            return Err(LabError::invalid(
                "scenario loopback",
                "it emulates no NAT and no rate (that needs namespaces and root): \
                 drop --nat and --rate, or pick another scenario",
            ));
        }
        if !(1..=MAX_PARTIES).contains(&n) {
            return Err(LabError::invalid(
                "number of parties",
                format!("{n}; use 1 to {MAX_PARTIES}"),
            ));
        }
        if let Some(rate) = rate_mbit
            && !(rate.is_finite() && rate >= 0.01)
        {
            return Err(LabError::invalid(
                "rate",
                format!("{rate} Mbit/s; use at least 0.01"),
            ));
        }
        let parties: Vec<PartySpec> = (0..n)
            .map(|i| PartySpec {
                region: scenario.region_of(i).to_string(),
                nat: nats
                    .get(i)
                    .or(nats.last())
                    .copied()
                    .unwrap_or(NatKind::Public),
                uplink_mbit: rate_mbit,
                downlink_mbit: rate_mbit,
                second_network: scenario.faults.iter().any(|f| {
                    f.kind == crate::fault::FaultKind::NetworkSwitch && f.party == Some(i)
                }),
            })
            .collect();
        let party_nats: Vec<NatKind> = parties.iter().map(|p| p.nat).collect();
        for fault in &scenario.faults {
            fault.validate(&party_nats)?;
        }
        Ok(Self { scenario, parties })
    }
}

/// A host where a program runs: the server or a party.
#[derive(Debug, Clone)]
pub struct Host {
    /// Its namespace; `None`: this machine's own network (loopback scenario).
    pub ns: Option<String>,
    /// Its own address (behind a NAT: the private one).
    pub ip: Ipv4Addr,
    /// The address the Internet sees (its own, or its outermost router's).
    pub public_ip: Ipv4Addr,
    pub nat: NatKind,
    pub region: String,
}

/// A party host's link to its network: where the fault steps act.
#[derive(Debug, Clone)]
pub struct Uplink {
    /// The host's namespace.
    pub ns: String,
    /// Its only interface other than loopback.
    pub interface: String,
    /// Its default gateway: the internet router, or its NAT router.
    pub gateway: Ipv4Addr,
    /// Its own address as built.
    pub address: Ipv4Addr,
    /// The namespaces of its NAT routers, innermost first (none when public).
    pub routers: Vec<String>,
    /// Its second network's interface and gateway, if it has one.
    pub second: Option<(String, Ipv4Addr)>,
}

/// The second network of party `i` (site [`SECOND_SITE`] + i): interface,
/// router address, host address.
fn second_network(i: usize) -> (&'static str, Ipv4Addr, Ipv4Addr) {
    let k = i as u8;
    (
        "eth1",
        Ipv4Addr::new(10, 11, k, 1),
        Ipv4Addr::new(10, 11, k, 2),
    )
}

/// Second networks are sites from here on (parties are 1 to [`MAX_PARTIES`]).
const SECOND_SITE: usize = 100;
/// Relays of their own are sites from here on, one per region.
const RELAY_SITE: usize = 200;

/// A built topology. Dropping it removes every namespace (and with them
/// their links and iptables rules) and every process in them.
pub struct Lab {
    pub prefix: String,
    pub spec: TopologySpec,
    /// The internet router's namespace (none in the loopback scenario).
    pub inet: Option<String>,
    pub server: Host,
    pub parties: Vec<Host>,
    /// Hosts of relays of their own (`partyline relay`), public, one per
    /// region but the server's when the scenario asks for them.
    pub relays: Vec<Host>,
    /// Logs of processes the lab itself runs (the delay stage).
    pub dir: PathBuf,
    namespaces: Vec<String>,
    delay_stage: Option<NsProcess>,
}

fn site_net(k: usize) -> (Ipv4Addr, Ipv4Addr) {
    let k = k as u8;
    (Ipv4Addr::new(10, 200, k, 1), Ipv4Addr::new(10, 200, k, 2))
}

impl Lab {
    /// Builds the topology. `exe` is the partyline binary (it runs the delay
    /// stage); `dir` receives the lab's own logs.
    pub fn build(spec: TopologySpec, exe: &Path, dir: &Path) -> Result<Self> {
        if spec.scenario.loopback {
            return Self::loopback(spec, dir);
        }
        shell::check_prerequisites()?;
        interrupt::install()?;
        std::fs::create_dir_all(dir).map_err(LabError::io(dir))?;
        let prefix = format!("{PREFIX_ROOT}{:06x}", rand::random::<u32>() & 0xff_ffff);
        let (_, server_ip) = site_net(0);
        let inet = format!("{prefix}-inet");
        let mut lab = Self {
            inet: Some(inet.clone()),
            server: Host {
                ns: Some(format!("{prefix}-srv")),
                ip: server_ip,
                public_ip: server_ip,
                nat: NatKind::Public,
                region: spec.scenario.regions[0].clone(),
            },
            parties: Vec::new(),
            relays: Vec::new(),
            dir: dir.to_path_buf(),
            namespaces: Vec::new(),
            delay_stage: None,
            prefix,
            spec,
        };
        tracing::info!("building lab {}", lab.prefix);
        // From here on, an error drops `lab`, which removes what exists.
        lab.add_namespace(&inet, true)?;
        let server_ns = format!("{}-srv", lab.prefix);
        lab.add_namespace(&server_ns, false)?;
        lab.connect_site(0, &server_ns, None, None)?;
        for i in 0..lab.spec.parties.len() {
            interrupt::check()?;
            let host = lab.add_party(i)?;
            lab.parties.push(host);
        }
        if lab.spec.scenario.relay_in_every_region {
            let regions = lab.spec.scenario.regions.clone();
            for (j, region) in regions.iter().enumerate().skip(1) {
                let ns = format!("{}-rl{j}", lab.prefix);
                lab.add_namespace(&ns, false)?;
                let ip = lab.connect_site(RELAY_SITE + j, &ns, None, None)?;
                lab.relays.push(Host {
                    ns: Some(ns),
                    ip,
                    public_ip: ip,
                    nat: NatKind::Public,
                    region: region.clone(),
                });
            }
        }
        lab.start_delay_and_loss(&inet, exe)?;
        Ok(lab)
    }

    /// The loopback scenario: every host is this machine at 127.0.0.1.
    fn loopback(spec: TopologySpec, dir: &Path) -> Result<Self> {
        interrupt::install()?;
        std::fs::create_dir_all(dir).map_err(LabError::io(dir))?;
        let host = |region: &str| Host {
            ns: None,
            ip: Ipv4Addr::LOCALHOST,
            public_ip: Ipv4Addr::LOCALHOST,
            nat: NatKind::Public,
            region: region.to_string(),
        };
        Ok(Self {
            prefix: format!("loopback-{:06x}", rand::random::<u32>() & 0xff_ffff),
            inet: None,
            server: host(&spec.scenario.regions[0]),
            parties: spec.parties.iter().map(|p| host(&p.region)).collect(),
            relays: Vec::new(),
            dir: dir.to_path_buf(),
            namespaces: Vec::new(),
            delay_stage: None,
            spec,
        })
    }

    /// Whether this is the loopback scenario (no namespaces).
    pub fn is_loopback(&self) -> bool {
        self.spec.scenario.loopback
    }

    /// The port each party's MPyC listens on for one run: `port` for all in
    /// namespaces (each party has its own address); on loopback, where they
    /// share 127.0.0.1, a free port each.
    pub fn mpyc_ports(&self, port: u16) -> Result<Vec<u16>> {
        if !self.is_loopback() {
            return Ok(vec![port; self.parties.len()]);
        }
        // Held together, so that the ports differ; released before MPyC
        // binds them, which another process could take in between (MPyC
        // then says so and the run counts as failed).
        let listeners = (0..self.parties.len())
            .map(|_| std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|source| LabError::Spawn {
                command: "bind a free loopback port".into(),
                source,
            })?;
        listeners
            .iter()
            .map(|l| l.local_addr().map(|a| a.port()))
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|source| LabError::Spawn {
                command: "read a loopback port".into(),
                source,
            })
    }

    fn add_namespace(&mut self, ns: &str, forwarding: bool) -> Result<()> {
        self.namespaces.push(ns.to_string());
        shell::run("ip", ["netns", "add", ns])?;
        shell::run("ip", ["-n", ns, "link", "set", "lo", "up"])?;
        let value = if forwarding { "1" } else { "0" };
        shell::in_ns(
            ns,
            "sysctl",
            ["-qw", &format!("net.ipv4.ip_forward={value}")],
        )?;
        Ok(())
    }

    /// Links site `k` (namespace `ns`, interface `wan`) to the internet.
    fn connect_site(
        &self,
        k: usize,
        ns: &str,
        up: Option<f64>,
        down: Option<f64>,
    ) -> Result<Ipv4Addr> {
        let (gateway, public) = site_net(k);
        let inet = self.inet.as_deref().ok_or_else(|| {
            LabError::invalid("lab", "the loopback scenario has no internet namespace")
        })?;
        let inet_if = format!("s{k}");
        veth(inet, &inet_if, ns, "wan")?;
        address(inet, &inet_if, gateway)?;
        address(ns, "wan", public)?;
        shell::run(
            "ip",
            [
                "-n",
                ns,
                "route",
                "add",
                "default",
                "via",
                &gateway.to_string(),
            ],
        )?;
        if let Some(rate) = up {
            crate::shaping::limit_rate(ns, "wan", rate)?;
        }
        if let Some(rate) = down {
            crate::shaping::limit_rate(inet, &inet_if, rate)?;
        }
        Ok(public)
    }

    fn add_party(&mut self, i: usize) -> Result<Host> {
        let spec = self.spec.parties[i].clone();
        let k = i + 1;
        let host_ns = format!("{}-p{i}", self.prefix);
        let router_ns = format!("{}-p{i}r", self.prefix);
        let carrier_ns = format!("{}-p{i}c", self.prefix);
        let (up, down) = (spec.uplink_mbit, spec.downlink_mbit);
        let private = Ipv4Addr::new(10, 10, k as u8, 2);
        let router_lan = Ipv4Addr::new(10, 10, k as u8, 1);
        self.add_namespace(&host_ns, false)?;
        let (ip, public_ip) = match spec.nat {
            NatKind::Public => {
                let public = self.connect_site(k, &host_ns, up, down)?;
                (public, public)
            }
            NatKind::Cone | NatKind::Symmetric | NatKind::UdpBlocked => {
                self.add_namespace(&router_ns, true)?;
                let public = self.connect_site(k, &router_ns, up, down)?;
                self.lan(&router_ns, router_lan, &host_ns, private)?;
                let layer = match spec.nat {
                    NatKind::Symmetric => Layer::Symmetric,
                    NatKind::UdpBlocked => Layer::TcpTo {
                        server: self.server.public_ip,
                    },
                    _ => Layer::Cone,
                };
                nat::install(&router_ns, layer)?;
                (private, public)
            }
            NatKind::Cgnat => {
                self.add_namespace(&carrier_ns, true)?;
                self.add_namespace(&router_ns, true)?;
                let public = self.connect_site(k, &carrier_ns, up, down)?;
                let carrier_lan = Ipv4Addr::new(100, 64, k as u8, 1);
                let home_wan = Ipv4Addr::new(100, 64, k as u8, 2);
                veth(&carrier_ns, "lan", &router_ns, "wan")?;
                address(&carrier_ns, "lan", carrier_lan)?;
                address(&router_ns, "wan", home_wan)?;
                shell::run(
                    "ip",
                    [
                        "-n",
                        &router_ns,
                        "route",
                        "add",
                        "default",
                        "via",
                        &carrier_lan.to_string(),
                    ],
                )?;
                self.lan(&router_ns, router_lan, &host_ns, private)?;
                nat::install(&carrier_ns, Layer::Cone)?;
                nat::install(&router_ns, Layer::Cone)?;
                (private, public)
            }
        };
        if spec.second_network {
            let router = format!("{}-p{i}m", self.prefix);
            let (interface, router_ip, host_ip) = second_network(i);
            self.add_namespace(&router, true)?;
            self.connect_site(SECOND_SITE + i, &router, up, down)?;
            veth(&router, "lan", &host_ns, interface)?;
            address(&router, "lan", router_ip)?;
            address(&host_ns, interface, host_ip)?;
            nat::install(&router, Layer::Cone)?;
            shell::run("ip", ["-n", &host_ns, "link", "set", interface, "down"])?;
        }
        Ok(Host {
            ns: Some(host_ns),
            ip,
            public_ip,
            nat: spec.nat,
            region: spec.region,
        })
    }

    /// A LAN between a router (`lan`) and its host (`eth0`, default route via the router).
    fn lan(&self, router: &str, router_ip: Ipv4Addr, host: &str, host_ip: Ipv4Addr) -> Result<()> {
        veth(router, "lan", host, "eth0")?;
        address(router, "lan", router_ip)?;
        address(host, "eth0", host_ip)?;
        shell::run(
            "ip",
            [
                "-n",
                host,
                "route",
                "add",
                "default",
                "via",
                &router_ip.to_string(),
            ],
        )?;
        Ok(())
    }

    /// Every site's public address and region, for the delay stage and loss rules.
    fn sites(&self) -> Vec<(Ipv4Addr, String)> {
        std::iter::once(&self.server)
            .chain(&self.parties)
            .chain(&self.relays)
            .map(|h| (h.public_ip, h.region.clone()))
            .collect()
    }

    fn start_delay_and_loss(&mut self, inet: &str, exe: &Path) -> Result<()> {
        let sites = self.sites();
        crate::shaping::install_loss(inet, &sites, &self.spec.scenario)?;
        let scenario = &self.spec.scenario;
        let delayed = scenario
            .links
            .iter()
            .any(|l| l.rtt_ms > 0.0 || l.jitter_ms > 0.0)
            || scenario.faults.iter().any(|f| f.jitter_ms > 0.0);
        if !delayed {
            return Ok(());
        }
        let path = self.write_delay_config(None)?;
        let args = vec![
            "lab".into(),
            "delay-stage".into(),
            "--config".into(),
            path.to_string_lossy().into_owned(),
        ];
        let mut stage = NsProcess::spawn("delay-stage", Some(inet), &self.dir, exe, &args, &[])?;
        let line = stage.wait_for_line(Instant::now() + STAGE_START)?;
        if line != delay::READY {
            return Err(LabError::DelayStage(format!(
                "unexpected first line {line:?}"
            )));
        }
        self.delay_stage = Some(stage);
        // Without --queue-bypass: should the stage die, traffic stops and
        // runs fail visibly instead of silently running without delay.
        shell::in_ns(
            inet,
            "iptables",
            [
                "-A",
                "FORWARD",
                "-j",
                "NFQUEUE",
                "--queue-num",
                &delay::QUEUE.to_string(),
            ],
        )?;
        Ok(())
    }

    /// Writes the delay stage's configuration, with `extra` jitter.
    fn write_delay_config(&self, extra: Option<ExtraJitter>) -> Result<PathBuf> {
        let config = DelayConfig {
            sites: self.sites(),
            scenario: self.spec.scenario.clone(),
            extra,
        };
        let path = self.dir.join("delay.json");
        let json = serde_json::to_string_pretty(&config)
            .map_err(|e| LabError::DelayStage(e.to_string()))?;
        std::fs::write(&path, json).map_err(LabError::io(&path))?;
        Ok(path)
    }

    /// Adds jitter that reorders packets (`None`: removes it), and returns
    /// once the delay stage has taken it.
    pub fn set_reordering_jitter(&self, extra: Option<ExtraJitter>) -> Result<()> {
        let stage = self.delay_stage.as_ref().ok_or_else(|| {
            LabError::DelayStage(
                "it is not running: jitter needs a scenario with namespaces".into(),
            )
        })?;
        let reloads = |stage: &NsProcess| {
            stage
                .stdout_text()
                .lines()
                .filter(|l| *l == delay::RELOADED)
                .count()
        };
        let before = reloads(stage);
        self.write_delay_config(extra)?;
        shell::run("kill", ["-HUP", &stage.id().to_string()])?;
        let deadline = Instant::now() + STAGE_START;
        while reloads(stage) == before {
            interrupt::check()?;
            if Instant::now() >= deadline {
                return Err(LabError::Timeout {
                    what: "the delay stage taking new jitter".into(),
                    seconds: STAGE_START.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Every site's public address: the server's, each party's, each relay's.
    pub fn site_addresses(&self) -> Vec<Ipv4Addr> {
        self.sites().into_iter().map(|(ip, _)| ip).collect()
    }

    /// Whether the delay stage still runs (it must, for traffic to flow).
    pub fn delay_stage_alive(&mut self) -> bool {
        self.delay_stage
            .as_mut()
            .is_none_or(|s| matches!(s.try_wait(), Ok(None)))
    }

    /// Party `i`'s host link (not in the loopback scenario).
    pub fn uplink(&self, i: usize) -> Result<Uplink> {
        let host = self.parties.get(i).ok_or_else(|| {
            LabError::invalid(
                "party",
                format!("{i}; the lab has parties 0 to {}", self.parties.len() - 1),
            )
        })?;
        let ns = host.ns.clone().ok_or_else(|| {
            LabError::invalid(
                "scenario loopback",
                "it has no links to act on: pick another scenario",
            )
        })?;
        let k = i + 1;
        let router = format!("{}-p{i}r", self.prefix);
        let carrier = format!("{}-p{i}c", self.prefix);
        let (interface, gateway, routers) = match host.nat {
            NatKind::Public => ("wan", site_net(k).0, vec![]),
            NatKind::Cone | NatKind::Symmetric | NatKind::UdpBlocked => {
                ("eth0", Ipv4Addr::new(10, 10, k as u8, 1), vec![router])
            }
            NatKind::Cgnat => (
                "eth0",
                Ipv4Addr::new(10, 10, k as u8, 1),
                vec![router, carrier],
            ),
        };
        Ok(Uplink {
            ns,
            interface: interface.into(),
            gateway,
            address: host.ip,
            routers,
            second: self.spec.parties[i]
                .second_network
                .then(|| (second_network(i).0.to_string(), second_network(i).1)),
        })
    }

    /// The namespaces this lab created, in creation order.
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// Removes everything now (dropping does the same).
    pub fn teardown(mut self) {
        self.remove_all();
    }

    fn remove_all(&mut self) {
        if let Some(mut stage) = self.delay_stage.take() {
            stage.kill();
        }
        for ns in self.namespaces.drain(..).rev() {
            cleanup::remove_namespace(&ns);
        }
        cleanup::remove_wireguard_sockets(&self.prefix);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.namespaces.is_empty() {
            tracing::info!("removing lab {}", self.prefix);
        }
        self.remove_all();
    }
}

fn veth(ns_a: &str, if_a: &str, ns_b: &str, if_b: &str) -> Result<()> {
    shell::run(
        "ip",
        [
            "-n", ns_a, "link", "add", if_a, "type", "veth", "peer", "name", if_b, "netns", ns_b,
        ],
    )?;
    shell::run("ip", ["-n", ns_a, "link", "set", if_a, "up"])?;
    shell::run("ip", ["-n", ns_b, "link", "set", if_b, "up"])?;
    Ok(())
}

fn address(ns: &str, interface: &str, ip: Ipv4Addr) -> Result<()> {
    shell::run(
        "ip",
        [
            "-n",
            ns,
            "addr",
            "add",
            &format!("{ip}/24"),
            "dev",
            interface,
        ],
    )?;
    Ok(())
}
