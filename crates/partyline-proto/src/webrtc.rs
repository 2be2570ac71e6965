//! WebRTC data channels as a direct path between a browser party and a
//! peer, native or browser: what both ends agree on.
//!
//! A data channel (unordered, no retransmissions: QUIC does its own) carries
//! the QUIC packets of one connection as an iroh custom transport, whose
//! address for a peer is that peer's endpoint key. Everything above stays as
//! on any other path: QUIC's TLS authenticates the peer by its key from the
//! verified roster, and the streams and seat rules are the same. iroh prefers
//! a custom path to the relay, but opens new paths only from the dialling
//! side and only to addresses it knew when dialling, so the peers of a
//! browser first wait (at most [`CHANNEL_LIMIT`]) for the data channel, and
//! dial over it when it opened (see [`crate::connect_all`]); else through the
//! relay, as before.
use std::collections::VecDeque;
use std::io::{self, IoSliceMut};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use iroh::TransportAddr;
use iroh::endpoint::transports::{RecvInfo, Transmit};
use iroh_base::CustomAddr;
use partyline_wire::EndpointKey;

/// Our custom transport's id in iroh's addresses ("webrtc" in ASCII).
pub const TRANSPORT_ID: u64 = 0x7765_6272_7463;

/// The data channel every pair opens, negotiated out of band with this id
/// and label, so that no in-band DCEP exchange is needed.
pub const CHANNEL_ID: u16 = 0;
pub const CHANNEL_LABEL: &str = "partyline";

/// How long both ends wait for a data channel to open before they connect
/// through the relay instead. On a working network it opens within a few
/// round trips; when UDP between them is blocked, it never does.
pub const CHANNEL_LIMIT: Duration = Duration::from_secs(4);

/// Packets received but not yet taken by iroh; more are dropped, as a full
/// UDP socket buffer would drop them (QUIC resends).
const INBOX_LIMIT: usize = 1024;

/// How the report names a path over a data channel.
pub const PATH_NAME: &str = "direct (webrtc)";

/// The custom address of the party with endpoint `key` on this transport.
pub fn peer_addr(key: &EndpointKey) -> CustomAddr {
    CustomAddr::from_parts(TRANSPORT_ID, &key.0)
}

/// The endpoint key a custom address of this transport names.
pub fn peer_key(addr: &CustomAddr) -> Option<EndpointKey> {
    if addr.id() != TRANSPORT_ID {
        return None;
    }
    Some(EndpointKey(addr.data().try_into().ok()?))
}

/// Whether a path's remote address is a data channel of ours.
pub fn is_webrtc(addr: &TransportAddr) -> bool {
    matches!(addr, TransportAddr::Custom(custom) if custom.id() == TRANSPORT_ID)
}

/// The packets received on every data channel, until iroh takes them.
#[derive(Debug, Default)]
pub struct Inbox {
    packets: VecDeque<(EndpointKey, Vec<u8>)>,
    waker: Option<Waker>,
}

impl Inbox {
    /// A packet from the party `from`.
    pub fn push(&mut self, from: EndpointKey, packet: Vec<u8>) {
        if self.packets.len() < INBOX_LIMIT {
            self.packets.push_back((from, packet));
        }
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// A custom endpoint's `poll_recv`: fills the slots with the oldest
    /// packets, each from its peer's address.
    pub fn poll_recv(
        &mut self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        metas: &mut [noq_udp::RecvMeta],
        recv_infos: &mut [RecvInfo],
    ) -> Poll<io::Result<usize>> {
        let mut count = 0;
        while count < bufs.len() {
            let Some((from, packet)) = self.packets.pop_front() else {
                break;
            };
            if packet.len() > bufs[count].len() {
                continue;
            }
            bufs[count][..packet.len()].copy_from_slice(&packet);
            metas[count].len = packet.len();
            metas[count].stride = packet.len();
            recv_infos[count] = RecvInfo::new(peer_addr(&from), None);
            count += 1;
        }
        if count == 0 {
            self.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Poll::Ready(Ok(count))
    }
}

/// The party a custom sender is asked to send to, or the error for an
/// address that is not one of ours.
pub fn destination(dst: &CustomAddr) -> io::Result<EndpointKey> {
    peer_key(dst)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a WebRTC peer address"))
}

/// The QUIC packets of a transmit, each a data channel message.
pub fn packets<'a>(transmit: &'a Transmit<'_>) -> impl Iterator<Item = &'a [u8]> {
    let size = transmit.segment_size.unwrap_or(transmit.contents.len());
    transmit.contents.chunks(size.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_address_names_its_key() {
        let key = EndpointKey([7; 32]);
        assert_eq!(peer_key(&peer_addr(&key)), Some(key));
        assert!(is_webrtc(&TransportAddr::Custom(peer_addr(&key))));
        assert_eq!(peer_key(&CustomAddr::from_parts(1, &key.0)), None);
        assert_eq!(
            peer_key(&CustomAddr::from_parts(TRANSPORT_ID, &[1, 2])),
            None
        );
    }
}
