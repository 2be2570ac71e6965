//! Where every party is, as the program sees it: the same addresses on
//! every party's machine.
//!
//! On Linux every address of 127.0.0.0/8 is local, so without root or a
//! virtual interface party k can be `127.X.Y.(k+1)`, with `X.Y` and one port
//! taken from the session id (random, so concurrent sessions on one machine
//! do not collide; `X` is never 0, so no address is in 127.0.0.0/24 where
//! local services listen). Our program listens on our own address, the
//! tunnel end towards peer j on peer j's address, and a connection a peer
//! forwards reaches our program from that peer's address ([`LocalEnds::source`]).
//! A program that identifies a peer by the address it connects from, or by
//! an address it advertises, then works as over plain IP. A party may have
//! several consecutive ports (`join --ports N`), each forwarded the same way.
//!
//! [`LocalEnds::bind`] binds every one of these sockets at once; the binds are
//! the check that the port is free. Where the addresses cannot exist (macOS
//! without aliases) or another party of the same session on this machine
//! already holds them, it falls back to [`LocalEnds::loopback`], the scheme
//! of one free port of 127.0.0.1 per party, whose addresses differ from party
//! to party, and says why ([`Fallback`]).
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use partyline_wire::SessionId;

/// Session ports come from this range: above the well-known services, below
/// Linux's ephemeral ports (32768 and up), which outgoing connections use.
pub const SESSION_PORTS: std::ops::Range<u16> = 20000..30000;

/// Why a session cannot listen on its addresses.
#[derive(Debug, thiserror::Error)]
pub enum AddrsError {
    #[error(
        "port {port} is in use on {addr} by another program, so this session's addresses cannot be bound; pick another port for the session with --base-port PORT (every party must give the same one)"
    )]
    PortInUse { port: u16, addr: SocketAddr },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("the session has {parties} parties; at most 254 get an address of their own")]
    TooManyParties { parties: usize },
    #[error(
        "--ports {ports} needs every party's own address, and {fallback}; run each party on a Linux machine of its own, or use one port"
    )]
    PortsNeedAddresses { ports: u16, fallback: Fallback },
    #[error("--ports {ports} from port {port} runs past port 65535; pick a lower --base-port")]
    PortsPastEnd { ports: u16, port: u16 },
}

/// Why the addresses differ from party to party in this session.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Fallback {
    #[error(
        "this system cannot listen on {addr} (only 127.0.0.1 is local here), so each party sees its peers on its own 127.0.0.1 ports"
    )]
    NoAliases { addr: SocketAddr },
    #[error(
        "another party of this session already listens on {addr} on this machine, so this party sees its peers on its own 127.0.0.1 ports"
    )]
    SharedMachine { addr: SocketAddr },
}

/// The sockets of one session on this machine: our program's, and a tunnel
/// end per peer, each listening on that party's address, on each of the
/// party's ports.
#[derive(Debug)]
pub struct LocalEnds {
    addrs: Vec<SocketAddr>,
    /// Per party, one socket per port, in port order; empty once taken.
    listeners: Vec<Vec<TcpListener>>,
    ports: u16,
    shared: bool,
    fallback: Option<Fallback>,
}

impl LocalEnds {
    /// Binds party k's address `127.X.Y.(k+1)` on `ports` consecutive ports
    /// from `port` (the session's own port when `None`) for every party of
    /// the session, or falls back to [`LocalEnds::loopback`] (see the module
    /// docs; one port only).
    pub fn bind(
        session: &SessionId,
        parties: usize,
        port: Option<u16>,
        ports: u16,
    ) -> Result<Self, AddrsError> {
        if parties > 254 {
            return Err(AddrsError::TooManyParties { parties });
        }
        let ports = ports.max(1);
        let port = port.unwrap_or_else(|| session_port(session, ports));
        if port.checked_add(ports - 1).is_none() {
            return Err(AddrsError::PortsPastEnd { ports, port });
        }
        let addrs: Vec<SocketAddr> = (0..parties)
            .map(|k| SocketAddr::from((party_ip(session, k), port)))
            .collect();
        let fall_back = |fallback: Fallback| {
            if ports > 1 {
                return Err(AddrsError::PortsNeedAddresses { ports, fallback });
            }
            Self::fall_back(parties, fallback)
        };
        let mut listeners = Vec::with_capacity(parties);
        // In seat order, so that of several parties of one session on one
        // machine exactly one, the first to bind seat 0's address, gets them.
        for &first in &addrs {
            let mut own = Vec::with_capacity(usize::from(ports));
            for offset in 0..ports {
                let addr = SocketAddr::new(first.ip(), port + offset);
                match TcpListener::bind(addr) {
                    Ok(listener) => own.push(listener),
                    Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable => {
                        return fall_back(Fallback::NoAliases { addr });
                    }
                    Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                        if wildcard_listener_on(addr.port()) {
                            return Err(AddrsError::PortInUse {
                                port: addr.port(),
                                addr,
                            });
                        }
                        return fall_back(Fallback::SharedMachine { addr });
                    }
                    Err(source) => return Err(AddrsError::Bind { addr, source }),
                }
            }
            listeners.push(own);
        }
        Ok(Self {
            addrs,
            listeners,
            ports,
            shared: true,
            fallback: None,
        })
    }

    /// One free port of 127.0.0.1 per party: our program's and the tunnel
    /// ends'. Connections a peer forwards come from 127.0.0.1.
    pub fn loopback(parties: usize) -> io::Result<Self> {
        let listeners = (0..parties)
            .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Self {
            addrs: listeners
                .iter()
                .map(TcpListener::local_addr)
                .collect::<io::Result<_>>()?,
            listeners: listeners.into_iter().map(|l| vec![l]).collect(),
            ports: 1,
            shared: false,
            fallback: None,
        })
    }

    fn fall_back(parties: usize, why: Fallback) -> Result<Self, AddrsError> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let mut ends =
            Self::loopback(parties).map_err(|source| AddrsError::Bind { addr, source })?;
        ends.fallback = Some(why);
        Ok(ends)
    }

    /// Every party's address, in seat order.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Why the addresses are not the same on every party, if they are not.
    pub fn fallback(&self) -> Option<&Fallback> {
        self.fallback.as_ref()
    }

    /// How many ports each party has, from its address's port on.
    pub fn ports(&self) -> u16 {
        self.ports
    }

    /// The listening sockets at party `index`'s address, one per port, once:
    /// our program's for our own index, a tunnel end's for a peer's.
    pub fn take(&mut self, index: usize) -> Vec<TcpListener> {
        self.listeners
            .get_mut(index)
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The address a connection forwarded from party `index` comes from, or
    /// `None` where the system picks it (the loopback scheme).
    pub fn source(&self, index: usize) -> Option<SocketAddr> {
        self.shared
            .then(|| SocketAddr::new(self.addrs[index].ip(), 0))
    }
}

/// Party `k`'s address in `session`: `127.X.Y.(k+1)`, `X` in 1..=254.
fn party_ip(session: &SessionId, k: usize) -> Ipv4Addr {
    let id = session.0;
    Ipv4Addr::new(127, 1 + id[0] % 254, id[1], (k + 1) as u8)
}

/// The session's first port, from [`SESSION_PORTS`] with room for `ports`.
fn session_port(session: &SessionId, ports: u16) -> u16 {
    let id = session.0;
    let span = SESSION_PORTS.end - SESSION_PORTS.start - ports.min(1000);
    SESSION_PORTS.start + u16::from_le_bytes([id[2], id[3]]) % span
}

/// Whether some socket listens on `port` of every address (0.0.0.0 or ::),
/// which keeps every 127.X.Y.Z from binding it. Only a party of this
/// session would hold one of the session's own addresses instead.
#[cfg(target_os = "linux")]
fn wildcard_listener_on(port: u16) -> bool {
    let listening = |entries: Vec<procfs::net::TcpNetEntry>| {
        entries.into_iter().any(|entry| {
            entry.state == procfs::net::TcpState::Listen
                && entry.local_address.port() == port
                && entry.local_address.ip().is_unspecified()
        })
    };
    // Unreadable tables: name the port rather than guess it is ours.
    procfs::net::tcp().map_or(true, listening) || procfs::net::tcp6().is_ok_and(listening)
}

#[cfg(not(target_os = "linux"))]
fn wildcard_listener_on(_port: u16) -> bool {
    true
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn party_k_is_127_x_y_k_plus_1_on_the_sessions_port_and_listens() {
        let session = SessionId::random();
        let mut ends = LocalEnds::bind(&session, 3, None, 1).unwrap();
        assert_eq!(ends.fallback(), None);
        let addrs = ends.addrs().to_vec();
        for (k, addr) in addrs.iter().enumerate() {
            let SocketAddr::V4(v4) = addr else {
                panic!("{addr} is not IPv4")
            };
            let [a, x, _, z] = v4.ip().octets();
            assert_eq!((a, z), (127, k as u8 + 1));
            assert_ne!(x, 0, "{addr} is in 127.0.0.0/24");
            assert_eq!(addr.port(), addrs[0].port());
            assert!(SESSION_PORTS.contains(&addr.port()));
            assert_eq!(ends.source(k), Some(SocketAddr::new(addr.ip(), 0)));
        }
        let listener = ends.take(1).pop().unwrap();
        assert_eq!(listener.local_addr().unwrap(), addrs[1]);
        assert!(ends.take(1).is_empty());
        std::net::TcpStream::connect(addrs[1]).unwrap();
        // Every party's machine computes the same addresses from the session.
        drop((ends, listener));
        assert_eq!(
            LocalEnds::bind(&session, 3, None, 1).unwrap().addrs(),
            addrs
        );
    }

    #[test]
    fn two_sessions_on_one_machine_get_their_own_addresses() {
        let a = LocalEnds::bind(&SessionId([1; 16]), 2, None, 1).unwrap();
        let b = LocalEnds::bind(&SessionId([2; 16]), 2, None, 1).unwrap();
        assert_eq!((a.fallback(), b.fallback()), (None, None));
        assert!(a.addrs().iter().all(|addr| !b.addrs().contains(addr)));
    }

    #[test]
    fn a_second_party_of_the_session_on_this_machine_falls_back_to_loopback() {
        let session = SessionId::random();
        let first = LocalEnds::bind(&session, 2, None, 1).unwrap();
        let second = LocalEnds::bind(&session, 2, None, 1).unwrap();
        assert_eq!(
            second.fallback(),
            Some(&Fallback::SharedMachine {
                addr: first.addrs()[0]
            })
        );
        assert!(second.addrs().iter().all(|a| a.ip() == Ipv4Addr::LOCALHOST));
        assert_eq!(second.source(0), None);
    }

    #[test]
    fn each_party_gets_consecutive_ports_or_a_reason_why_not() {
        let session = SessionId::random();
        let mut ends = LocalEnds::bind(&session, 2, None, 3).unwrap();
        let base = ends.addrs()[1];
        let (own, peer) = (ends.take(0), ends.take(1));
        assert_eq!(ends.ports(), 3);
        let ports: Vec<u16> = peer
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        assert_eq!(ports, [base.port(), base.port() + 1, base.port() + 2]);
        // A second party of the session here cannot fall back with several ports.
        let error = LocalEnds::bind(&session, 2, None, 3).unwrap_err();
        assert!(
            matches!(error, AddrsError::PortsNeedAddresses { ports: 3, .. }),
            "{error}"
        );
        drop((own, peer));
    }

    #[test]
    fn a_port_taken_on_every_address_is_named_with_the_way_out() {
        let taken = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        let error = LocalEnds::bind(&SessionId::random(), 2, Some(port), 1).unwrap_err();
        assert!(matches!(error, AddrsError::PortInUse { port: p, .. } if p == port));
        let text = error.to_string();
        assert!(
            text.contains(&port.to_string()) && text.contains("--base-port"),
            "{text}"
        );
    }
}
