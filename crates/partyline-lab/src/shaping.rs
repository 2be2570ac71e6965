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
            let (a, b, p) = (a.to_string(), b.to_string(), format!("{:.6}", link.loss));
            shell::in_ns(
                inet,
                "iptables",
                [
                    "-A",
                    "FORWARD",
                    "-s",
                    &a,
                    "-d",
                    &b,
                    "-m",
                    "statistic",
                    "--mode",
                    "random",
                    "--probability",
                    &p,
                    "-j",
                    "DROP",
                ],
            )?;
        }
    }
    Ok(())
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
