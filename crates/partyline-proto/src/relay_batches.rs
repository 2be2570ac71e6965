//! Lets an endpoint without UDP hand its QUIC packets to the relay in
//! batches: a browser party, and a native one with `--relay-only`.
//!
//! iroh lets noq build as many packets per send as its IP and custom
//! transports can take at once (GSO); the relay transport is not counted. An
//! endpoint with no IP transport (relay-only) thus sends every packet alone:
//! one relay frame, TLS record and WebSocket frame each, which the relay
//! server reads, forwards and writes (one `writev`) one by one. Measured by
//! `partyline bench`, that per-packet work, not the bytes, bounds the relay
//! path. [`RelayBatches`] is a custom transport that carries nothing (no
//! address, no destination it accepts, nothing received) and only declares
//! the batch size an IP transport would, so relayed packets travel in frames
//! of up to that many, as they do for parties that also have UDP sockets.
use std::io;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::task::{Context, Poll};

use iroh::endpoint::transports::{
    CustomEndpoint, CustomSender, CustomTransport, RecvInfo, Transmit,
};
use iroh_base::CustomAddr;
use n0_watcher::{Direct, Watchable};

use crate::transport::TRANSMIT_SEGMENTS;

/// The transport that only raises the batch size (see the module docs).
#[derive(Debug)]
pub struct RelayBatches;

impl CustomTransport for RelayBatches {
    fn bind(&self) -> io::Result<Box<dyn CustomEndpoint>> {
        Ok(Box::new(NoPaths {
            addrs: Watchable::new(Vec::new()),
        }))
    }
}

#[derive(Debug)]
struct NoPaths {
    /// Always empty: no peer can be reached through this transport.
    addrs: Watchable<Vec<CustomAddr>>,
}

impl CustomEndpoint for NoPaths {
    fn watch_local_addrs(&self) -> Direct<Vec<CustomAddr>> {
        self.addrs.watch()
    }

    fn create_sender(&self) -> Arc<dyn CustomSender> {
        Arc::new(NoDestinations)
    }

    fn poll_recv(
        &mut self,
        _cx: &mut Context,
        _bufs: &mut [io::IoSliceMut<'_>],
        _metas: &mut [noq_udp::RecvMeta],
        _recv_infos: &mut [RecvInfo],
    ) -> Poll<io::Result<usize>> {
        // Nothing ever arrives, so there is no waker to keep.
        Poll::Pending
    }

    fn max_transmit_segments(&self) -> NonZeroUsize {
        TRANSMIT_SEGMENTS
    }
}

#[derive(Debug)]
struct NoDestinations;

impl CustomSender for NoDestinations {
    fn is_valid_send_addr(&self, _addr: &CustomAddr) -> bool {
        false
    }

    fn poll_send(
        &self,
        _cx: &mut Context,
        _dst: &CustomAddr,
        _src: Option<&CustomAddr>,
        _transmit: &Transmit<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this transport only sets the batch size of relayed packets",
        )))
    }
}
