//! One MPyC byte stream to a peer, as JavaScript sees it.
//!
//! MPyC's transport API is synchronous (`transport.write(data)` returns at
//! once, and MPyC never pauses writing), so `write` only queues the bytes and
//! a task sends them in order as QUIC's flow control allows. The queue is
//! unbounded, like the send buffer of asyncio's own TCP transport. Received
//! bytes are pushed to a JavaScript callback as they arrive, which feeds them
//! to MPyC's protocol.
use iroh::endpoint::{Connection, RecvStream, SendStream, VarInt};
use tokio::sync::mpsc;
use wasm_bindgen::prelude::*;

use crate::WebError;
use crate::party::Inner;

/// The header byte of a stream that carries one TCP connection (`partyline_mesh::forward`).
const STREAM_TCP: u8 = 1;
const RESET_CODE: u32 = 1;
const BUFFER: usize = 64 * 1024;

/// Our end of one peer stream.
#[wasm_bindgen]
pub struct PeerStream {
    outgoing: Option<mpsc::UnboundedSender<Vec<u8>>>,
}

impl PeerStream {
    /// Opens (when `we_open`, i.e. the peer has the higher seat) or accepts the
    /// stream of party `index`'s connection and starts pumping.
    pub(crate) async fn attach(
        party: &Inner,
        index: usize,
        conn: Connection,
        we_open: bool,
        on_data: js_sys::Function,
        on_end: js_sys::Function,
    ) -> Result<Self, WebError> {
        let failed = |reason: String| WebError::Stream { index, reason };
        let (mut send, mut recv) = if we_open {
            let (mut send, recv) = conn.open_bi().await.map_err(|e| failed(e.to_string()))?;
            send.write_all(&[STREAM_TCP])
                .await
                .map_err(|e| failed(e.to_string()))?;
            (send, recv)
        } else {
            let (send, mut recv) = conn.accept_bi().await.map_err(|e| failed(e.to_string()))?;
            let mut header = [0u8; 1];
            recv.read_exact(&mut header)
                .await
                .map_err(|e| failed(e.to_string()))?;
            if header[0] != STREAM_TCP {
                return Err(failed(format!(
                    "it opened a stream of unknown kind {}",
                    header[0]
                )));
            }
            (send, recv)
        };
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
            let _ = send.reset(VarInt::from_u32(RESET_CODE));
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
                    let _ = recv.stop(VarInt::from_u32(RESET_CODE));
                    break JsValue::from_str("this party stopped reading");
                }
            }
            Ok(None) => break JsValue::NULL,
            Err(e) => break JsValue::from_str(&e.to_string()),
        }
    };
    let _ = on_end.call1(&JsValue::NULL, &end);
}
