//! What stands between a party's host and the Internet: nothing, or a NAT
//! router of one of the kinds home and mobile networks have.
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};
use crate::shell;

/// The kind of network a party's host is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NatKind {
    /// A public address, no NAT, no firewall.
    Public,
    /// Endpoint-independent mapping (iptables MASQUERADE keeps the source
    /// port), inbound only as replies: a typical home router; hole punching
    /// works.
    Cone,
    /// Endpoint-dependent mapping (MASQUERADE --random-fully): every
    /// destination sees another port, so hole punching fails.
    Symmetric,
    /// Two NAT layers: a home router behind a carrier-grade NAT.
    Cgnat,
    /// A firewall that lets only TCP to the server out (and its replies in).
    UdpBlocked,
}

pub const ALL: [NatKind; 5] = [
    NatKind::Public,
    NatKind::Cone,
    NatKind::Symmetric,
    NatKind::Cgnat,
    NatKind::UdpBlocked,
];

impl NatKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Cone => "cone",
            Self::Symmetric => "symmetric",
            Self::Cgnat => "cgnat",
            Self::UdpBlocked => "udp-blocked",
        }
    }
}

impl fmt::Display for NatKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NatKind {
    type Err = LabError;

    fn from_str(s: &str) -> Result<Self> {
        ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            LabError::invalid(
                "NAT kind",
                format!("{s:?}; use public, cone, symmetric, cgnat or udp-blocked"),
            )
        })
    }
}

/// How one router layer translates and filters.
#[derive(Debug, Clone, Copy)]
pub enum Layer {
    /// Endpoint-independent mapping.
    Cone,
    /// Endpoint-dependent mapping.
    Symmetric,
    /// Endpoint-independent mapping, and only TCP to `server` leaves.
    TcpTo { server: Ipv4Addr },
}

/// Installs `layer`'s rules in router namespace `ns`, whose interfaces are
/// `lan` (inside) and `wan` (outside).
pub fn install(ns: &str, layer: Layer) -> Result<()> {
    let ipt = |args: &[&str]| shell::in_ns(ns, "iptables", args).map(|_| ());
    let masquerade: &[&str] = match layer {
        Layer::Symmetric => &[
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-o",
            "wan",
            "-j",
            "MASQUERADE",
            "--random-fully",
        ],
        Layer::Cone | Layer::TcpTo { .. } => &[
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-o",
            "wan",
            "-j",
            "MASQUERADE",
        ],
    };
    ipt(masquerade)?;
    // Real routers drop unsolicited inbound traffic. Without the INPUT rule a
    // peer's first punch packet reaches the router itself, conntrack records
    // it, and MASQUERADE then gives the host's own punch another port, so
    // hole punching fails even through an endpoint-independent NAT.
    for chain in ["INPUT", "FORWARD"] {
        ipt(&[
            "-A",
            chain,
            "-i",
            "wan",
            "-m",
            "conntrack",
            "--ctstate",
            "NEW",
            "-j",
            "DROP",
        ])?;
    }
    if let Layer::TcpTo { server } = layer {
        let server = server.to_string();
        ipt(&[
            "-A", "FORWARD", "-i", "lan", "-p", "tcp", "-d", &server, "-j", "ACCEPT",
        ])?;
        ipt(&["-A", "FORWARD", "-i", "lan", "-j", "DROP"])?;
    }
    Ok(())
}
