//! partyline's browser party, compiled to WebAssembly: the browser carrier of
//! partyline's peer protocol.
//!
//! A browser that opens an invite link joins the same session as native
//! parties and runs the very protocol code they run (`partyline_proto`: ALPN,
//! connecting the roster, stream header, close codes, announce-and-wait) and
//! the same roster check (`partyline_wire`). Only the transport differs: a
//! browser has no UDP sockets, so iroh reaches a peer (native or browser)
//! over a WebRTC data channel when one opens, and otherwise through the
//! session's relay, which the coordinator serves on its own origin at `/relay`. QUIC's TLS
//! between the endpoints is still done here, end to end, with the keys from
//! the verified roster: the relay and the coordinator see only ciphertext.
//!
//! What a browser cannot do is pin the server's certificate (the browser does
//! TLS itself and hides the certificate), so the page trusts the server's
//! certificate the way the browser does; the invite secret in the URL fragment
//! still keeps a coordinator that is not trusted from forging any party.
//!
//! # Layout
//! - [`http`]: the coordinator client with the browser's `fetch`.
//! - [`session`]: the invite (or a short code exchanged for it with the
//!   session's host, `partyline_proto::code`), the session view before
//!   joining, and joining.
//! - [`party`]: our iroh endpoint and the connections to the roster's peers.
//! - [`stream`]: one MPyC byte stream to a peer, as JavaScript sees it, and
//!   the seat rules on the streams peers open.
//! - [`webrtc`]: the WebRTC data channels to peers, which the page
//!   makes and hands to this worker, as an iroh custom transport: the direct
//!   path when UDP between them works, the relay otherwise.
#![forbid(unsafe_code)]

pub mod http;
pub mod party;
pub mod session;
pub mod stream;
pub mod webrtc;

use partyline_proto::join::WaitError;
use wasm_bindgen::prelude::*;

pub use party::Party;
pub use session::Session;
pub use stream::PeerStream;

/// The peer protocol this module speaks (`partyline_proto::PROTOCOL`), for
/// tests that compare it with what a native server reports.
#[wasm_bindgen]
pub fn protocol() -> String {
    partyline_proto::PROTOCOL.to_string()
}

/// Why the browser party could not go on. Shown to the user as is.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{0}")]
    Invite(#[from] partyline_wire::InviteError),
    #[error("{0}")]
    BadCode(#[from] partyline_wire::CodeError),
    #[error("{0}")]
    Code(#[from] partyline_proto::CodeFailure),
    #[error(
        "this invite is for the server {invite}, but this page was loaded from {page}; open the invite link itself"
    )]
    WrongOrigin { invite: String, page: String },
    #[error("cannot reach the partyline server at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the server answered {status}: {message}")]
    Api { status: u16, message: String },
    #[error("the server sent an answer this page does not understand ({url}): {reason}")]
    BadResponse { url: String, reason: String },
    #[error(
        "the partyline server at {url} sent more than {} KiB as one answer, far more than a partyline server sends; it is misbehaving or not a partyline server. Check the invite, and tell the server's operator", limit / 1024
    )]
    TooLarge { url: String, limit: usize },
    #[error(transparent)]
    WrongProtocol(#[from] partyline_proto::WrongProtocol),
    #[error("{0}")]
    Roster(#[from] partyline_wire::RosterError),
    #[error("your name is not usable: {0}")]
    Name(String),
    #[error("the expected parties are not usable: {0}")]
    Expected(String),
    #[error("{0}; your program did not start. {advice}", advice = .0.advice())]
    Refused(partyline_wire::checks::Refusal),
    #[error(transparent)]
    Wait(#[from] WaitError),
    #[error("cannot start the network endpoint: {0}")]
    Bind(String),
    #[error(
        "cannot reach the session's relay at {url} within {secs} s; the server may have stopped or the network is down"
    )]
    RelayUnreachable { url: String, secs: u64 },
    #[error(transparent)]
    Connect(#[from] partyline_proto::ConnectError),
    #[error("{0}; your program did not start")]
    Ready(#[from] partyline_proto::ReadyError),
    #[error("no party with index {0} in this session")]
    NoSuchPeer(usize),
    #[error("the page's WebRTC data is not valid: {0}")]
    WebRtc(String),
    #[error("the stream to party {index} failed: {source}")]
    Stream {
        index: usize,
        source: partyline_proto::stream::StreamError,
    },
    #[error("party {0}'s connection ended before it opened its stream")]
    NoStream(usize),
    #[error("the page refused data from party {index}: {reason}")]
    PageRefused { index: usize, reason: String },
    #[error("{0}; this party ended the session")]
    SeatViolation(String),
}

impl From<WebError> for JsValue {
    fn from(error: WebError) -> Self {
        js_sys::Error::new(&error.to_string()).into()
    }
}

/// Shows Rust panics and our tracing events in the browser console.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .without_time()
        .with_max_level(tracing::Level::INFO)
        .with_writer(tracing_web::MakeWebConsoleWriter::new())
        .finish();
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Milliseconds since the Unix epoch, from the browser's clock: seats are
/// ordered by join time, as for native parties.
pub(crate) fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}
