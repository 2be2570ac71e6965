//! Watching how each peer's connection ends (what the ends mean is
//! `partyline_proto::ending`).
use partyline_proto::{PeerEvent, PeerEventKind};
use tokio::sync::mpsc;

pub use partyline_proto::ending::CloseCode;

use crate::PeerLink;

/// Reports how each peer's connection ends, once per peer.
pub fn watch_peers(links: &[PeerLink]) -> mpsc::UnboundedReceiver<PeerEvent> {
    let (tx, rx) = mpsc::unbounded_channel();
    for link in links {
        let tx = tx.clone();
        let conn = link.conn.clone();
        let (index, name) = (link.member.index, link.member.name.clone());
        tokio::spawn(async move {
            if let Some(kind) = PeerEventKind::of(conn.closed().await) {
                let _ = tx.send(PeerEvent { index, name, kind });
            }
        });
    }
    rx
}
