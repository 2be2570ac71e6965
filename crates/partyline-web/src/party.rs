//! Our iroh endpoint and the connections to exactly the roster's peers.
//!
//! The connection pattern is the native one (`partyline_mesh::connect`):
//! party i dials every j > i and accepts from every j < i, keeping an
//! incoming connection only if its key is a lower seat of the roster. Once
//! connected, every stream a peer opens is checked against the seat rules
//! (`stream::guard_incoming`); a violation closes every connection with the
//! native code for it and a reason naming the peer.
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use iroh::endpoint::{Connection, IdleTimeout, QuicTransportConfig, VarInt, presets};
use iroh::{Endpoint, EndpointAddr, EndpointId, RelayConfig, RelayMode, RelayUrl, SecretKey};
use n0_future::task::JoinHandle;
use partyline_wire::seat::SeatViolation;
use partyline_wire::{EndpointKey, Invite, Member, Roster};
use serde::Serialize;
use tokio::sync::oneshot;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::http::Coordinator;
use crate::session::to_js;
use crate::stream::{CheckedStream, PeerStream, Source, guard_incoming};
use crate::{ALPN, WebError};

/// The same as native parties: a peer silent this long counts as gone, and
/// keep-alives every second keep healthy connections far from it.
const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
const KEEP_ALIVE: Duration = Duration::from_secs(1);
const ONLINE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the end of a session waits for our last bytes to reach the peers.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// The close codes of `partyline_mesh::ending::CloseCode`.
const CLOSE_FINISHED: u32 = 0;
const CLOSE_PROGRAM_FAILED: u32 = 1;
const CLOSE_ABORTED: u32 = 2;
const CLOSE_NOT_IN_ROSTER: u32 = 3;
const CLOSE_SEAT_VIOLATION: u32 = 4;

/// Our endpoint: a fresh key, and the relay on the page's own origin as its
/// only path (a browser has no UDP, so there are no direct paths).
pub(crate) struct PartyEndpoint {
    endpoint: Endpoint,
    relay_url: RelayUrl,
}

impl PartyEndpoint {
    /// `session` is shown to the relay, which serves only the parties of live
    /// sessions on its server.
    pub(crate) async fn bind(server: &str, session: &str) -> Result<Self, WebError> {
        // The coordinator serves the relay at `/relay` on its own origin, the
        // path iroh's relay client dials, so the page talks to one origin only.
        let relay_url: RelayUrl = server
            .parse()
            .map_err(|e| WebError::Bind(format!("the server URL {server:?} is not valid: {e}")))?;
        let transport = QuicTransportConfig::builder()
            .max_idle_timeout(Some(
                IdleTimeout::try_from(IDLE_TIMEOUT).expect("5 s is a valid idle timeout"),
            ))
            .keep_alive_interval(KEEP_ALIVE)
            .build();
        let endpoint = Endpoint::builder(presets::Minimal)
            .secret_key(SecretKey::generate())
            .relay_mode(RelayMode::Custom(
                RelayConfig::new(relay_url.clone(), None)
                    .with_auth_token(session)
                    .into(),
            ))
            .transport_config(transport)
            .alpns(vec![ALPN.to_vec()])
            .bind()
            .await
            .map_err(|e| WebError::Bind(e.to_string()))?;
        if n0_future::time::timeout(ONLINE_TIMEOUT, endpoint.online())
            .await
            .is_err()
        {
            endpoint.close().await;
            return Err(WebError::RelayUnreachable(relay_url.to_string()));
        }
        Ok(Self {
            endpoint,
            relay_url,
        })
    }

    pub(crate) fn key(&self) -> EndpointKey {
        EndpointKey(*self.endpoint.id().as_bytes())
    }

    pub(crate) fn relay_url(&self) -> String {
        self.relay_url.to_string()
    }

    pub(crate) async fn close(&self) {
        let _ = n0_future::time::timeout(Duration::from_secs(3), self.endpoint.close()).await;
    }
}

/// A member of the verified roster, as the page shows it.
#[derive(Serialize)]
struct MemberForPage {
    index: usize,
    name: String,
    endpoint: String,
    you: bool,
}

/// A joined party: the verified roster and, after [`Party::connect`], one
/// connection per peer.
#[wasm_bindgen]
pub struct Party {
    inner: Rc<Inner>,
}

pub(crate) struct Inner {
    endpoint: PartyEndpoint,
    roster: Roster,
    invite: Invite,
    coordinator: Coordinator,
    links: RefCell<BTreeMap<usize, Connection>>,
    /// The checked stream of each lower seat, once it has opened it.
    incoming: RefCell<BTreeMap<usize, oneshot::Receiver<CheckedStream>>>,
    /// Why we ended the session, if a peer broke the seat rules.
    breach: RefCell<Option<String>>,
    /// The tasks sending our bytes to the peers; the session ends only after them.
    pub(crate) writers: RefCell<Vec<JoinHandle<()>>>,
}

impl Party {
    pub(crate) fn new(
        endpoint: PartyEndpoint,
        roster: Roster,
        invite: Invite,
        coordinator: Coordinator,
    ) -> Self {
        Self {
            inner: Rc::new(Inner {
                endpoint,
                roster,
                invite,
                coordinator,
                links: RefCell::default(),
                incoming: RefCell::default(),
                breach: RefCell::default(),
                writers: RefCell::default(),
            }),
        }
    }
}

#[wasm_bindgen]
impl Party {
    /// Our seat: the MPyC party index.
    #[wasm_bindgen(getter)]
    pub fn index(&self) -> usize {
        self.inner.roster.own_index
    }

    /// The number of parties.
    #[wasm_bindgen(getter)]
    pub fn parties(&self) -> usize {
        self.inner.roster.members.len()
    }

    /// The session fingerprint, equal on every party exactly when all hold the same roster.
    #[wasm_bindgen(getter)]
    pub fn fingerprint(&self) -> String {
        self.inner.roster.fingerprint().to_string()
    }

    /// The roster in seat order: `[{index, name, endpoint, you}]`.
    pub fn members(&self) -> Result<JsValue, JsValue> {
        let own = self.inner.roster.own_index;
        let members: Vec<MemberForPage> = self
            .inner
            .roster
            .members
            .iter()
            .map(|m| MemberForPage {
                index: m.index,
                name: m.name.clone(),
                endpoint: m.endpoint.short(),
                you: m.index == own,
            })
            .collect();
        to_js(&members)
    }

    /// Connects to every peer within `timeout_secs`.
    pub fn connect(&self, timeout_secs: u32) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            inner
                .connect_all(Duration::from_secs(timeout_secs.into()))
                .await?;
            Inner::guard_streams(&inner);
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Why this party ended the session, naming the peer that broke the seat
    /// rules; `undefined` while none has.
    #[wasm_bindgen(getter)]
    pub fn breach(&self) -> Option<String> {
        self.inner.breach.borrow().clone()
    }

    /// The MPyC byte stream to party `peer`: opened by the lower seat with the
    /// header byte, as native forwarders do. Bytes from the peer go to
    /// `on_data(Uint8Array)`; the end of the stream calls `on_end(null)`, a
    /// failure `on_end(message)`.
    pub fn stream(
        &self,
        peer: usize,
        on_data: js_sys::Function,
        on_end: js_sys::Function,
    ) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let conn = inner
                .links
                .borrow()
                .get(&peer)
                .cloned()
                .ok_or(WebError::NoSuchPeer(peer))?;
            let source = if peer > inner.roster.own_index {
                Source::Open(conn)
            } else {
                let opened = inner.incoming.borrow_mut().remove(&peer);
                match opened {
                    Some(opened) => {
                        Source::Accepted(opened.await.map_err(|_| inner.stream_gone(peer))?)
                    }
                    None => return Err(WebError::NoSuchPeer(peer).into()),
                }
            };
            let stream = PeerStream::attach(&inner, peer, source, on_data, on_end)
                .await
                .map_err(|e| inner.breach_or(e))?;
            Ok(stream.into())
        })
    }

    /// Ends the session for us: waits (bounded) until the peers have received
    /// everything we sent, then closes every connection saying whether our
    /// program succeeded, as a native party does when its program exits.
    pub fn finish(&self, ok: bool, reason: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let writers: Vec<_> = inner.writers.borrow_mut().drain(..).collect();
            // After a failure the streams may never be closed: nothing to wait for.
            if ok {
                let _ = n0_future::time::timeout(DRAIN_LIMIT, n0_future::join_all(writers)).await;
            }
            let code = if ok {
                CLOSE_FINISHED
            } else {
                CLOSE_PROGRAM_FAILED
            };
            for conn in inner.links.borrow().values() {
                conn.close(VarInt::from_u32(code), reason.as_bytes());
            }
            inner.endpoint.close().await;
            if ok {
                let path = format!("/v1/sessions/{}/done", inner.invite.session);
                let _ = inner.coordinator.post_empty(&path).await;
            }
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Gives up before our program ran (e.g. not every peer could be
    /// reached): the peers we did reach hear why at once.
    pub fn abort(&self, reason: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            for conn in inner.links.borrow().values() {
                conn.close(VarInt::from_u32(CLOSE_ABORTED), reason.as_bytes());
            }
            inner.endpoint.close().await;
            Ok(JsValue::UNDEFINED)
        })
    }
}

impl Inner {
    /// Starts checking the streams every peer opens (see `stream::guard_incoming`).
    fn guard_streams(inner: &Rc<Self>) {
        let own = inner.roster.own_index;
        for (&peer, conn) in inner.links.borrow().iter() {
            let deliver = (peer < own).then(|| {
                let (deliver, opened) = oneshot::channel();
                inner.incoming.borrow_mut().insert(peer, opened);
                deliver
            });
            let guarded = inner.clone();
            let conn = conn.clone();
            n0_future::task::spawn(async move {
                if let Err(violation) = guard_incoming(own, peer, conn, deliver).await {
                    guarded.end_session(peer, violation);
                }
            });
        }
    }

    /// A peer broke the seat rules: closes every connection saying who and
    /// what, as a native party does, so that every party stops naming it.
    fn end_session(&self, peer: usize, violation: SeatViolation) {
        let name = self
            .roster
            .members
            .get(peer)
            .map(|m| m.name.as_str())
            .unwrap_or_default();
        let reason = format!("party {peer} ({name}) {violation}");
        tracing::warn!("{reason}; ending the session");
        for conn in self.links.borrow().values() {
            conn.close(VarInt::from_u32(CLOSE_SEAT_VIOLATION), reason.as_bytes());
        }
        self.breach.borrow_mut().get_or_insert(reason);
    }

    /// The error to report for a stream that failed: the breach, if there
    /// was one, since it is why the stream failed.
    fn breach_or(&self, error: WebError) -> WebError {
        match self.breach.borrow().clone() {
            Some(breach) => WebError::SeatViolation(breach),
            None => error,
        }
    }

    /// The connection of party `peer` ended before it opened its stream.
    fn stream_gone(&self, peer: usize) -> WebError {
        self.breach_or(WebError::Stream {
            index: peer,
            reason: "its connection ended before it opened its stream".into(),
        })
    }

    async fn connect_all(&self, timeout: Duration) -> Result<(), WebError> {
        let own = self.roster.own_index;
        let endpoint = self.endpoint.endpoint.clone();
        let relay_url = self.endpoint.relay_url.clone();
        let dials = self
            .roster
            .members
            .iter()
            .filter(|m| m.index > own)
            .map(|member| {
                let endpoint = endpoint.clone();
                let relay_url = relay_url.clone();
                async move {
                    // Every peer is reached through the relay on our origin: it is
                    // the same relay server the peer is connected to, whatever URL
                    // the peer announced, and the page may talk to no other origin.
                    let result = match EndpointId::from_bytes(&member.endpoint.0) {
                        Ok(id) => endpoint
                            .connect(EndpointAddr::new(id).with_relay_url(relay_url), ALPN)
                            .await
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(format!("its endpoint id is not a valid key: {e}")),
                    };
                    // Kept as soon as it exists, so that giving up later
                    // closes it with a reason (`Party::abort`).
                    let conn = result.map_err(|reason| WebError::Connect {
                        index: member.index,
                        name: member.name.clone(),
                        reason,
                    })?;
                    self.links.borrow_mut().insert(member.index, conn);
                    Ok::<_, WebError>(())
                }
            });
        let dials = n0_future::try_join_all(dials);
        let expected: BTreeMap<EndpointKey, &Member> = self
            .roster
            .members
            .iter()
            .filter(|m| m.index < own)
            .map(|m| (m.endpoint, m))
            .collect();
        let accepts = self.accept_lower(expected);
        let both = n0_future::future::try_zip(dials, accepts);
        match n0_future::time::timeout(timeout, both).await {
            Ok(result) => result.map(drop),
            Err(_) => {
                let links = self.links.borrow();
                let missing: Vec<String> = self
                    .roster
                    .members
                    .iter()
                    .filter(|m| m.index != own && !links.contains_key(&m.index))
                    .map(|m| format!("party {} ({})", m.index, m.name))
                    .collect();
                Err(WebError::Timeout {
                    secs: timeout.as_secs(),
                    missing: missing.join(", "),
                })
            }
        }
    }

    async fn accept_lower(
        &self,
        mut expected: BTreeMap<EndpointKey, &Member>,
    ) -> Result<(), WebError> {
        while !expected.is_empty() {
            let Some(incoming) = self.endpoint.endpoint.accept().await else {
                return Err(WebError::Bind(
                    "the endpoint closed while connecting".into(),
                ));
            };
            let conn = match incoming.await {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::debug!("incoming connection failed: {e}");
                    continue;
                }
            };
            let key = EndpointKey(*conn.remote_id().as_bytes());
            match expected.remove(&key) {
                Some(member) => {
                    self.links.borrow_mut().insert(member.index, conn);
                }
                None => {
                    tracing::warn!(
                        "refused a connection from {}: not a party of this session",
                        key.short()
                    );
                    conn.close(
                        VarInt::from_u32(CLOSE_NOT_IN_ROSTER),
                        b"you are not in this session's roster",
                    );
                }
            }
        }
        Ok(())
    }
}
