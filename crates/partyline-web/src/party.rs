//! Our iroh endpoint and the connections to exactly the roster's peers.
//!
//! The connection pattern is the native one (`partyline_mesh::connect`):
//! party i dials every j > i and accepts from every j < i, keeping an
//! incoming connection only if its key is a lower seat of the roster.
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use iroh::endpoint::{Connection, IdleTimeout, QuicTransportConfig, VarInt, presets};
use iroh::{Endpoint, EndpointAddr, EndpointId, RelayConfig, RelayMode, RelayUrl, SecretKey};
use n0_future::task::JoinHandle;
use partyline_wire::{EndpointKey, Invite, Member, Roster};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::http::Coordinator;
use crate::session::to_js;
use crate::stream::PeerStream;
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

/// Our endpoint: a fresh key, and the relay on the page's own origin as its
/// only path (a browser has no UDP, so there are no direct paths).
pub(crate) struct PartyEndpoint {
    endpoint: Endpoint,
    relay_url: RelayUrl,
}

impl PartyEndpoint {
    pub(crate) async fn bind(server: &str) -> Result<Self, WebError> {
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
                RelayConfig::new(relay_url.clone(), None).into(),
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
            Ok(JsValue::UNDEFINED)
        })
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
            let stream = PeerStream::attach(
                &inner,
                peer,
                conn,
                peer > inner.roster.own_index,
                on_data,
                on_end,
            )
            .await?;
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
