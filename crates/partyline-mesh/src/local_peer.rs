//! Who is on the other end of a loopback connection to a tunnel end.
//!
//! A tunnel end listens on a loopback address (127.0.0.1, or the peer's
//! 127.X.Y.Z of [`crate::addrs`]), where every process of the machine can
//! connect, so a connection is forwarded only if it comes from a process of
//! our own user: the one who started partyline and its program. On Linux the
//! kernel lists the connecting side of a loopback TCP connection in
//! `/proc/net/tcp` (or `tcp6` for an IPv6 socket) with the user id that owns
//! it; the `procfs` crate parses those tables. Elsewhere the owner cannot be
//! looked up and every local connection is taken (see the README's security
//! section).
use std::net::SocketAddr;

/// Why a local connection is not from our user.
#[derive(Debug, thiserror::Error)]
pub enum LocalPeerError {
    #[error("it comes from a process of user id {uid}, not of ours ({own})")]
    OtherUser { uid: u32, own: u32 },
    #[error("its socket is not in the kernel's socket table (it closed at once)")]
    NotListed,
    #[error("cannot read the kernel's socket table: {0}")]
    SocketTable(String),
}

/// Checks that the process connected from `peer` to our `local` address
/// belongs to our own user.
#[cfg(target_os = "linux")]
pub fn check_same_user(local: SocketAddr, peer: SocketAddr) -> Result<(), LocalPeerError> {
    let own = rustix::process::geteuid().as_raw();
    let uid = owner_uid(local, peer)?;
    if uid == own {
        Ok(())
    } else {
        Err(LocalPeerError::OtherUser { uid, own })
    }
}

#[cfg(not(target_os = "linux"))]
pub fn check_same_user(_local: SocketAddr, _peer: SocketAddr) -> Result<(), LocalPeerError> {
    Ok(())
}

/// The user id owning the socket whose own address is `peer` and whose
/// remote address is `local`: the connecting side, seen from the kernel.
#[cfg(target_os = "linux")]
fn owner_uid(local: SocketAddr, peer: SocketAddr) -> Result<u32, LocalPeerError> {
    let table_error = |e: procfs::ProcError| LocalPeerError::SocketTable(e.to_string());
    let same = |a: SocketAddr, b: SocketAddr| {
        a.ip().to_canonical() == b.ip().to_canonical() && a.port() == b.port()
    };
    // An IPv4 client is in `tcp`; a dual-stack IPv6 socket connecting to
    // 127.0.0.1 is in `tcp6` with a v4-mapped address.
    let v4 = procfs::net::tcp().map_err(table_error)?;
    let v6 = procfs::net::tcp6().map_err(table_error)?;
    v4.into_iter()
        .chain(v6)
        .find(|entry| same(entry.local_address, peer) && same(entry.remote_address, local))
        .map(|entry| entry.uid)
        .ok_or(LocalPeerError::NotListed)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpListener, TcpStream};

    #[test]
    fn a_connection_of_our_own_process_is_our_user() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, peer) = listener.accept().unwrap();
        check_same_user(server.local_addr().unwrap(), peer).unwrap();
    }

    #[tokio::test]
    async fn a_connection_between_session_addresses_is_found_with_its_user() {
        // As a tunnel end at peer 1's address sees our program, and as our
        // program sees a connection forwarded from peer 0's address.
        let listener = TcpListener::bind((Ipv4Addr::new(127, 9, 8, 2), 0)).unwrap();
        let client = tokio::net::TcpSocket::new_v4().unwrap();
        client
            .bind((Ipv4Addr::new(127, 9, 8, 1), 0).into())
            .unwrap();
        let _client = client
            .connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, peer) = listener.accept().unwrap();
        assert_eq!(peer.ip(), Ipv4Addr::new(127, 9, 8, 1));
        check_same_user(server.local_addr().unwrap(), peer).unwrap();
    }

    #[test]
    fn an_unknown_connection_is_not_listed() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let nobody: SocketAddr = (Ipv4Addr::LOCALHOST, 9).into();
        assert!(matches!(
            check_same_user(listener.local_addr().unwrap(), nobody),
            Err(LocalPeerError::NotListed)
        ));
    }
}
