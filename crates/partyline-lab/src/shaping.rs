//! Loss and rate: iptables' statistic match drops packets at random in the
//! internet namespace; a token bucket filter (tc tbf) limits a link's rate.
use std::net::Ipv4Addr;

use crate::error::Result;
use crate::scenario::Scenario;
use crate::shell;

/// For every ordered pair of sites whose regions' link has loss, a rule
/// that drops that share of the packets from one to the other.
pub fn install_loss(inet: &str, sites: &[(Ipv4Addr, String)], scenario: &Scenario) -> Result<()> {
    for (a, region_a) in sites {
        for (b, region_b) in sites {
            let Some(link) = scenario.link(region_a, region_b) else {
                continue;
            };
            if a == b || link.loss <= 0.0 {
                continue;
            }
            let mut append = vec!["-A".to_string(), "FORWARD".into()];
            append.extend(loss_rule(*a, *b, link.loss));
            shell::in_ns(inet, "iptables", &append)?;
        }
    }
    Ok(())
}

/// The rule (without chain) that drops the share `p` (0–1) of the packets
/// from `a` to `b`.
pub fn loss_rule(a: Ipv4Addr, b: Ipv4Addr, p: f64) -> Vec<String> {
    [
        "-s",
        &a.to_string(),
        "-d",
        &b.to_string(),
        "-m",
        "statistic",
        "--mode",
        "random",
        "--probability",
        &format!("{p:.6}"),
        "-j",
        "DROP",
    ]
    .map(String::from)
    .to_vec()
}

/// Limits what leaves `interface` in `ns` to `mbit` Mbit/s.
///
/// The bucket holds 10 ms of traffic (at least two full-size packets) and
/// the queue 100 ms, like a modest access link: deep enough for TCP to fill
/// the rate, shallow enough not to add much latency.
pub fn limit_rate(ns: &str, interface: &str, mbit: f64) -> Result<()> {
    let bits = mbit * 1e6;
    let burst = ((bits / 8.0 * 0.010) as u64).max(3200);
    let limit = ((bits / 8.0 * 0.100) as u64).max(2 * burst);
    shell::run(
        "tc",
        [
            "-n",
            ns,
            "qdisc",
            "add",
            "dev",
            interface,
            "root",
            "tbf",
            "rate",
            &format!("{}bit", bits as u64),
            "burst",
            &burst.to_string(),
            "limit",
            &limit.to_string(),
        ],
    )?;
    Ok(())
}
