//! The browser's end of WebRTC data channels to its peers, native or browser
//! (`partyline_proto::webrtc`), as an iroh custom transport.
//!
//! `RTCPeerConnection` exists only in the page, not in workers, so the page
//! makes the peer connections (to a native peer after the roster; to a
//! browser peer before it announces: see `partyline_wire::webrtc`),
//! completes them from the roster's announced WebRTC data, and transfers
//! each one's data channel to this worker, where QUIC packets go
//! into and out of it directly: no hop through the page per packet. Channels
//! are handed over before they open; whether one opens is seen here.
use std::collections::{BTreeSet, HashMap};
use std::io::{self, IoSliceMut};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use iroh::endpoint::transports::{
    CustomEndpoint, CustomSender, CustomTransport, RecvInfo, Transmit,
};
use iroh_base::CustomAddr;
use n0_watcher::{Direct, Watchable};
use partyline_proto::transport::TRANSMIT_SEGMENTS;
use partyline_proto::webrtc::{Inbox, destination, packets, peer_key};
use partyline_wire::EndpointKey;
use send_wrapper::SendWrapper;
use tokio::sync::watch;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{MessageEvent, RtcDataChannel, RtcDataChannelState, RtcDataChannelType};

/// A callback of a data channel's events.
type Callback = Closure<dyn FnMut(JsValue)>;

/// Bytes a channel may hold unsent before we drop packets, as a full
/// socket buffer would (QUIC resends and slows down).
const BUFFERED_LIMIT: u32 = 1 << 20;

/// The data channels the page handed us, one per peer. Cloning shares them.
#[derive(Clone, Debug)]
pub(crate) struct Channels {
    shared: Arc<Mutex<State>>,
    open: Arc<watch::Sender<BTreeSet<EndpointKey>>>,
}

#[derive(Default)]
struct State {
    channels: HashMap<EndpointKey, Channel>,
    inbox: Inbox,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("channels", &self.channels.len())
            .field("inbox", &self.inbox)
            .finish()
    }
}

/// A data channel and the callbacks it calls, kept as long as it lives. The
/// worker has one thread, so the JavaScript objects never move.
struct Channel {
    channel: SendWrapper<RtcDataChannel>,
    _callbacks: SendWrapper<Vec<Callback>>,
}

impl Default for Channels {
    fn default() -> Self {
        Self {
            shared: Arc::default(),
            open: Arc::new(watch::channel(BTreeSet::new()).0),
        }
    }
}

impl Channels {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes `channel`, the page's data channel to the party `key`.
    pub(crate) fn add(&self, key: EndpointKey, channel: RtcDataChannel) {
        channel.set_binary_type(RtcDataChannelType::Arraybuffer);
        let on_message = {
            let shared = self.shared.clone();
            Callback::new(move |event: JsValue| {
                let Ok(event) = event.dyn_into::<MessageEvent>() else {
                    return;
                };
                let Ok(buffer) = event.data().dyn_into::<js_sys::ArrayBuffer>() else {
                    return;
                };
                let mut state = shared.lock().unwrap_or_else(|e| e.into_inner());
                state
                    .inbox
                    .push(key, js_sys::Uint8Array::new(&buffer).to_vec());
            })
        };
        let on_open = {
            let open = self.open.clone();
            Callback::new(move |_| {
                open.send_modify(|open| {
                    open.insert(key);
                });
            })
        };
        let on_close = {
            let open = self.open.clone();
            Callback::new(move |_| {
                tracing::info!("the WebRTC data channel to {} closed", key.short());
                open.send_modify(|open| {
                    open.remove(&key);
                });
            })
        };
        channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        channel.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        channel.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        if channel.ready_state() == RtcDataChannelState::Open {
            self.open.send_modify(|open| {
                open.insert(key);
            });
        }
        self.lock().channels.insert(
            key,
            Channel {
                channel: SendWrapper::new(channel),
                _callbacks: SendWrapper::new(vec![on_message, on_open, on_close]),
            },
        );
    }

    /// Waits until the channel of every peer in `keys` is open, at most
    /// `limit`; returns those that are.
    pub(crate) async fn wait_open(
        &self,
        keys: &BTreeSet<EndpointKey>,
        limit: Duration,
    ) -> BTreeSet<EndpointKey> {
        let mut open = self.open.subscribe();
        let _ = n0_future::time::timeout(limit, open.wait_for(|open| keys.is_subset(open))).await;
        open.borrow().intersection(keys).copied().collect()
    }

    /// Closes every channel (the session is over).
    pub(crate) fn close(&self) {
        for channel in self.lock().channels.values() {
            channel.channel.close();
        }
    }
}

impl CustomTransport for Channels {
    fn bind(&self) -> io::Result<Box<dyn CustomEndpoint>> {
        Ok(Box::new(ChannelsEndpoint {
            channels: self.clone(),
            addrs: Watchable::new(Vec::new()),
        }))
    }
}

#[derive(Debug)]
struct ChannelsEndpoint {
    channels: Channels,
    /// Empty: a peer learns our data channel from the roster, not from iroh.
    addrs: Watchable<Vec<CustomAddr>>,
}

impl CustomEndpoint for ChannelsEndpoint {
    fn watch_local_addrs(&self) -> Direct<Vec<CustomAddr>> {
        self.addrs.watch()
    }

    fn create_sender(&self) -> Arc<dyn CustomSender> {
        Arc::new(ChannelsSender {
            channels: self.channels.clone(),
        })
    }

    fn poll_recv(
        &mut self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        metas: &mut [noq_udp::RecvMeta],
        recv_infos: &mut [RecvInfo],
    ) -> Poll<io::Result<usize>> {
        self.channels
            .lock()
            .inbox
            .poll_recv(cx, bufs, metas, recv_infos)
    }

    // Not the default of 1: see TRANSMIT_SEGMENTS.
    fn max_transmit_segments(&self) -> NonZeroUsize {
        TRANSMIT_SEGMENTS
    }
}

#[derive(Debug)]
struct ChannelsSender {
    channels: Channels,
}

impl CustomSender for ChannelsSender {
    fn is_valid_send_addr(&self, addr: &CustomAddr) -> bool {
        peer_key(addr).is_some_and(|key| self.channels.lock().channels.contains_key(&key))
    }

    fn poll_send(
        &self,
        _cx: &mut Context,
        dst: &CustomAddr,
        _src: Option<&CustomAddr>,
        transmit: &Transmit<'_>,
    ) -> Poll<io::Result<()>> {
        let key = match destination(dst) {
            Ok(key) => key,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let state = self.channels.lock();
        if let Some(channel) = state.channels.get(&key)
            && channel.channel.ready_state() == RtcDataChannelState::Open
        {
            for packet in packets(transmit) {
                // Lost when the channel is full or closing, as on a full
                // socket: QUIC resends.
                if channel.channel.buffered_amount() < BUFFERED_LIMIT {
                    let _ = channel.channel.send_with_u8_array(packet);
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}
