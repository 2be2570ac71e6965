//! One MPyC byte stream to a peer, as JavaScript sees it, and the seat rules
//! on the streams peers open.
//!
//! MPyC's transport API is synchronous (`transport.write(data)` returns at
//! once, and MPyC never pauses writing), so `write` only queues the bytes and
//! a task sends them in order as QUIC's flow control allows. The queue is
//! unbounded, like the send buffer of asyncio's own TCP transport. Received
//! bytes are pushed to a JavaScript callback as they arrive, which feeds them
//! to MPyC's protocol.
//!
//! A browser party always runs MPyC, so the rules of `partyline_wire::seat`
//! hold as on a native party in MPyC mode: a peer opens exactly one stream,
//! only from a lower seat, starting with its own party id. [`guard_incoming`]
//! accepts every stream a peer opens and checks it before a byte reaches
//! MPyC; a violation ends the session (`party::Inner::end_session`).
use iroh::endpoint::{Connection, RecvStream, SendStream};
use partyline_proto::stream::{self, RESET_CODE};
use partyline_wire::seat::{PARTY_ID_LEN, PeerSeat, SeatViolation, StreamRules};
use tokio::sync::{mpsc, oneshot};
use wasm_bindgen::prelude::*;

use crate::WebError;
use crate::party::Inner;

const BUFFER: usize = 64 * 1024;

/// Our end of one peer stream.
#[wasm_bindgen]
pub struct PeerStream {
    outgoing: Option<mpsc::UnboundedSender<Vec<u8>>>,
}

/// The stream a lower seat opened, its header read and its party id checked.
pub(crate) struct CheckedStream {
    send: SendStream,
    recv: RecvStream,
    party_id: [u8; PARTY_ID_LEN],
}

/// Where the stream of a [`PeerStream`] comes from.
pub(crate) enum Source {
    /// We open it: the peer has the higher seat.
    Open(Connection),
    /// The peer opened it and [`guard_incoming`] checked it.
    Accepted(CheckedStream),
}

/// Accepts every stream that party `peer` opens on `conn`, under MPyC's seat
/// rules for our seat `own`, and hands the one allowed stream to `deliver`.
/// Returns when the connection ends, or with the first violation.
pub(crate) async fn guard_incoming(
    own: usize,
    peer: usize,
    conn: Connection,
    mut deliver: Option<oneshot::Sender<CheckedStream>>,
) -> Result<(), SeatViolation> {
    let mut seat = PeerSeat::new(StreamRules::Mpyc, own, peer);
    loop {
        // The connection ended; the streams report how.
        let Ok((send, mut recv)) = conn.accept_bi().await else {
            return Ok(());
        };
        let check = seat.admit_incoming()?;
        let mut party_id = [0u8; PARTY_ID_LEN];
        if stream::read_header(&mut recv).await.is_err()
            || recv.read_exact(&mut party_id).await.is_err()
        {
            // Nothing for MPyC; the seat stays used, as MPyC never dials twice.
            tracing::warn!("party {peer} opened a stream without a header and MPyC party id");
            continue;
        }
        check.check(party_id)?;
        if let Some(deliver) = deliver.take() {
            let _ = deliver.send(CheckedStream {
                send,
                recv,
                party_id,
            });
        }
    }
}

impl PeerStream {
    /// Opens or takes the stream of party `index`'s connection and starts pumping.
    pub(crate) async fn attach(
        party: &Inner,
        index: usize,
        source: Source,
        on_data: js_sys::Function,
        on_end: js_sys::Function,
    ) -> Result<Self, WebError> {
        let (mut send, mut recv, first) = match source {
            Source::Open(conn) => {
                let (send, recv) = stream::open(&conn)
                    .await
                    .map_err(|source| WebError::Stream { index, source })?;
                (send, recv, None)
            }
            // The party id was held back until checked; MPyC reads it first.
            Source::Accepted(checked) => (checked.send, checked.recv, Some(checked.party_id)),
        };
        if let Some(first) = first {
            let chunk = js_sys::Uint8Array::from(&first[..]);
            on_data
                .call1(&JsValue::NULL, &chunk)
                .map_err(|e| WebError::PageRefused {
                    index,
                    reason: format!("{e:?}"),
                })?;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        party
            .writers
            .borrow_mut()
            .push(n0_future::task::spawn(async move {
                write_all_queued(&mut send, rx).await
            }));
        n0_future::task::spawn(async move { read_to_js(&mut recv, &on_data, &on_end).await });
        Ok(Self { outgoing: Some(tx) })
    }
}

#[wasm_bindgen]
impl PeerStream {
    /// Queues `data` for the peer. Fails only after [`PeerStream::close`] or
    /// when the stream is gone.
    pub fn write(&self, data: &[u8]) -> Result<(), JsError> {
        let sent = self
            .outgoing
            .as_ref()
            .is_some_and(|tx| tx.send(data.to_vec()).is_ok());
        if sent {
            Ok(())
        } else {
            Err(JsError::new("the stream to this party is closed"))
        }
    }

    /// Ends our direction after everything queued has been sent (TCP's FIN).
    pub fn close(&mut self) {
        self.outgoing = None;
    }
}

async fn write_all_queued(send: &mut SendStream, mut queue: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(chunk) = queue.recv().await {
        if let Err(e) = send.write_all(&chunk).await {
            tracing::warn!("sending to a peer failed: {e}");
            let _ = send.reset(RESET_CODE);
            return;
        }
    }
    let _ = send.finish();
    // Resolves once the peer has read everything: only then may the
    // connection be closed without losing data.
    let _ = send.stopped().await;
}

async fn read_to_js(recv: &mut RecvStream, on_data: &js_sys::Function, on_end: &js_sys::Function) {
    let mut buf = vec![0u8; BUFFER];
    let end = loop {
        match recv.read(&mut buf).await {
            Ok(Some(n)) => {
                let chunk = js_sys::Uint8Array::from(&buf[..n]);
                if let Err(e) = on_data.call1(&JsValue::NULL, &chunk) {
                    tracing::warn!("the page refused data from a peer: {e:?}");
                    let _ = recv.stop(RESET_CODE);
                    break JsValue::from_str("this party stopped reading");
                }
            }
            Ok(None) => break JsValue::NULL,
            Err(e) => break JsValue::from_str(&e.to_string()),
        }
    };
    let _ = on_end.call1(&JsValue::NULL, &end);
}
