//! Our iroh endpoint and the connections to exactly the roster's peers
//! (`partyline_proto::connect`), each peer reached over its WebRTC data
//! channel when one opened, else through the relay on the page's own
//! origin. The phases are those of `join`: connect; run the
//! checks the person asked for (`partyline_wire::checks`: the expected
//! parties, the fingerprint typed back), where a refusal closes every
//! connection with our reason; then the ready barrier (`partyline_proto::
//! ready`), after which MPyC may start. From then on every stream a peer
//! opens is checked against the seat rules (`stream::guard_incoming`); a
//! violation closes every connection with [`CloseCode::SeatViolation`] and a
//! reason naming the peer.
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use iroh::endpoint::{Connection, presets};
use iroh::{Endpoint, RelayConfig, RelayMode, RelayUrl, SecretKey};
use n0_future::task::JoinHandle;
use partyline_proto::relay_batches::RelayBatches;
use partyline_proto::transport::{CLOSE_LIMIT, DRAIN_LIMIT, ONLINE_TIMEOUT, transport_config};
use partyline_proto::{ALPN, CloseCode, Dialing, ready_barrier, webrtc};
use partyline_wire::checks::{ExpectedNames, Refusal, check_typed};
use partyline_wire::seat::SeatViolation;
use partyline_wire::webrtc::peer_list_index;
use partyline_wire::{EndpointKey, Invite, Member, Roster, ServerUrl, WebRtcOffer};
use serde::Serialize;
use tokio::sync::oneshot;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::WebError;
use crate::http::Coordinator;
use crate::session::to_js;
use crate::stream::{CheckedStream, PeerStream, Source, guard_incoming};
use crate::webrtc::Channels;

/// Our endpoint: a fresh key, the relay on the page's own origin, and the
/// WebRTC data channels to peers the page hands us (a browser has no UDP
/// sockets of its own).
pub(crate) struct PartyEndpoint {
    endpoint: Endpoint,
    relay_url: RelayUrl,
    channels: Channels,
}

impl PartyEndpoint {
    /// `session` is shown to the relay, which serves only the parties of live
    /// sessions on its server.
    pub(crate) async fn bind(server: &ServerUrl, session: &str) -> Result<Self, WebError> {
        let channels = Channels::default();
        // The coordinator serves the relay at `/relay` on its own origin, the
        // path iroh's relay client dials, so the page talks to one origin only.
        let relay_url: RelayUrl = server
            .as_str()
            .parse()
            .map_err(|e| WebError::Bind(format!("the server URL {server} is not valid: {e}")))?;
        let endpoint = Endpoint::builder(presets::Minimal)
            .secret_key(SecretKey::generate())
            .relay_mode(RelayMode::Custom(
                RelayConfig::new(relay_url.clone(), None)
                    .with_auth_token(session)
                    .into(),
            ))
            .transport_config(transport_config())
            .alpns(vec![ALPN.to_vec()])
            // A browser has no UDP: every packet not on a data channel goes
            // through the relay, in batches as a native relay-only party sends them.
            .add_custom_transport(Arc::new(RelayBatches))
            .add_custom_transport(Arc::new(channels.clone()))
            .bind()
            .await
            .map_err(|e| WebError::Bind(e.to_string()))?;
        if n0_future::time::timeout(ONLINE_TIMEOUT, endpoint.online())
            .await
            .is_err()
        {
            endpoint.close().await;
            return Err(WebError::RelayUnreachable {
                url: relay_url.to_string(),
                secs: ONLINE_TIMEOUT.as_secs(),
            });
        }
        Ok(Self {
            endpoint,
            relay_url,
            channels,
        })
    }

    pub(crate) fn key(&self) -> EndpointKey {
        EndpointKey(*self.endpoint.id().as_bytes())
    }

    pub(crate) fn relay_url(&self) -> String {
        self.relay_url.to_string()
    }

    pub(crate) async fn close(&self) {
        let _ = n0_future::time::timeout(CLOSE_LIMIT, self.endpoint.close()).await;
        self.channels.close();
    }
}

/// A member of the verified roster, as the page shows it.
#[derive(Serialize)]
struct MemberForPage {
    index: usize,
    name: String,
    endpoint: String,
    you: bool,
    /// The 12 words of the party's identity, its signature verified; the
    /// page keeps no address book to compare them with earlier sessions.
    identity: Option<String>,
}

/// A peer's WebRTC data, as the page makes (or, to a browser, completes)
/// its peer connection from it.
#[derive(Serialize)]
struct WebRtcPeerForPage<'a> {
    index: usize,
    fingerprint: &'a str,
    ufrag: &'a str,
    pwd: &'a str,
    /// A native peer's socket addresses, or a browser peer's candidates for
    /// its connection to us.
    candidates: &'a [String],
    /// A browser peer: which of the page's prepared peer connections is the
    /// one for it. Absent for a native peer, to which the page makes one.
    #[serde(skip_serializing_if = "Option::is_none")]
    connection: Option<usize>,
    /// Whether we are the DTLS client: to a native peer always (it answers),
    /// to a browser peer when we hold the lower seat.
    dtls_client: bool,
}

/// The path QUIC uses to one peer, as the page shows it.
#[derive(Serialize)]
struct PathForPage {
    index: usize,
    path: &'static str,
    rtt_ms: Option<f64>,
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
    /// The names the person expects in the roster, if they gave any.
    expected: Option<ExpectedNames>,
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
        expected: Option<ExpectedNames>,
        invite: Invite,
        coordinator: Coordinator,
    ) -> Self {
        Self {
            inner: Rc::new(Inner {
                endpoint,
                roster,
                expected,
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

    /// The session fingerprint, equal on every party exactly when all hold
    /// the same roster: the full form.
    #[wasm_bindgen(getter)]
    pub fn fingerprint(&self) -> String {
        self.inner.roster.fingerprint().full()
    }

    /// The fingerprint's short form, for reading aloud.
    #[wasm_bindgen(getter)]
    pub fn short_fingerprint(&self) -> String {
        self.inner.roster.fingerprint().short()
    }

    /// After [`Party::connect`]: resolves if the roster holds exactly the
    /// expected parties given at join (or none were given). Otherwise ends
    /// the session for every peer, naming us, and rejects saying what differs.
    pub fn accept_expected(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let checked = match &inner.expected {
                Some(expected) => expected.check(&inner.roster),
                None => Ok(()),
            };
            inner.accept_or_refuse(checked).await
        })
    }

    /// After [`Party::connect`]: resolves if `typed` is this session's
    /// fingerprint (its full form or its first words, as `join --confirm`
    /// takes it). Otherwise ends the session for every peer, naming us, and
    /// rejects.
    pub fn confirm(&self, typed: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let checked = check_typed(&inner.roster.fingerprint(), &typed);
            inner.accept_or_refuse(checked).await
        })
    }

    /// The roster in seat order: `[{index, name, endpoint, you, identity}]`.
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
                identity: m.identity.map(|key| key.words().to_string()),
            })
            .collect();
        to_js(&members)
    }

    /// The peers to open a WebRTC data channel to, for the page to make a
    /// peer connection to each native one and complete its prepared one to
    /// each browser: `[{index, fingerprint, ufrag, pwd, candidates,
    /// connection?, dtls_client}]`, every field checked when the roster was
    /// verified.
    pub fn webrtc_peers(&self) -> Result<JsValue, JsValue> {
        let own = self.inner.roster.own_index;
        let peers: Vec<WebRtcPeerForPage> = self
            .inner
            .channel_peers()
            .map(|(member, offer, candidates)| WebRtcPeerForPage {
                index: member.index,
                fingerprint: &offer.fingerprint,
                ufrag: &offer.ufrag,
                pwd: &offer.pwd,
                candidates,
                connection: offer
                    .is_browser()
                    .then(|| peer_list_index(own, member.index)),
                dtls_client: !offer.is_browser() || own < member.index,
            })
            .collect();
        to_js(&peers)
    }

    /// Takes the page's data channel to party `peer` (see
    /// [`Party::webrtc_peers`]), before [`Party::connect`].
    pub fn add_channel(
        &self,
        peer: usize,
        channel: web_sys::RtcDataChannel,
    ) -> Result<(), JsError> {
        let member = self
            .inner
            .roster
            .members
            .get(peer)
            .ok_or(WebError::NoSuchPeer(peer))?;
        self.inner.endpoint.channels.add(member.endpoint, channel);
        Ok(())
    }

    /// The path to each peer QUIC sends on now: `[{index, path, rtt_ms}]`,
    /// `path` being `direct (webrtc)` or `relay`.
    pub fn paths(&self) -> Result<JsValue, JsValue> {
        let paths: Vec<PathForPage> = self
            .inner
            .links
            .borrow()
            .iter()
            .map(|(&index, conn)| {
                let selected = conn.paths().iter().find(|p| p.is_selected()).map(|p| {
                    let kind = if webrtc::is_webrtc(p.remote_addr()) {
                        webrtc::PATH_NAME
                    } else {
                        "relay"
                    };
                    (kind, p.rtt())
                });
                PathForPage {
                    index,
                    path: selected.map_or("relay", |(kind, _)| kind),
                    rtt_ms: selected.map(|(_, rtt)| rtt.as_secs_f64() * 1000.0),
                }
            })
            .collect();
        to_js(&paths)
    }

    /// Connects to every peer within `timeout_secs`. Nothing is sent on the
    /// connections until [`Party::ready`]; they stay open (kept alive by
    /// QUIC) while the person takes their time over the checks.
    pub fn connect(&self, timeout_secs: u32) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            inner
                .connect_all(Duration::from_secs(timeout_secs.into()))
                .await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Once our checks accepted the roster: tells every peer so and waits up
    /// to `timeout_secs` until every peer has said the same of the same
    /// roster (`partyline_proto::ready`). Only then may MPyC start; from
    /// then on the peers' streams are held to the seat rules.
    pub fn ready(&self, timeout_secs: u32) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            inner
                .wait_until_all_accepted(Duration::from_secs(timeout_secs.into()))
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
                CloseCode::Finished
            } else {
                CloseCode::ProgramFailed
            };
            for conn in inner.links.borrow().values() {
                code.close(conn, &reason);
            }
            inner.endpoint.close().await;
            if ok {
                let _ = inner.coordinator.done(&inner.invite.session).await;
            }
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Gives up before our program ran (e.g. not every peer could be
    /// reached): the peers we did reach hear why at once.
    pub fn abort(&self, reason: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            inner.close_all(CloseCode::Aborted, &reason).await;
            Ok(JsValue::UNDEFINED)
        })
    }
}

impl Inner {
    /// Passes on an accepted check. After a refusal, which sends no ready,
    /// closes every connection with our reason, so that the peers stop at
    /// once instead of waiting for us, and rejects with the refusal.
    async fn accept_or_refuse(&self, checked: Result<(), Refusal>) -> Result<JsValue, JsValue> {
        let Err(refusal) = checked else {
            return Ok(JsValue::UNDEFINED);
        };
        tracing::warn!(
            "not starting the program: {refusal}; ending the session for the other parties"
        );
        let reason = format!("{} refused to start: {refusal}", self.roster.own().name);
        self.close_all(CloseCode::Aborted, &reason).await;
        Err(WebError::Refused(refusal).into())
    }

    /// Closes every connection with `code` and `reason`, then our endpoint.
    async fn close_all(&self, code: CloseCode, reason: &str) {
        for conn in self.links.borrow().values() {
            code.close(conn, reason);
        }
        self.endpoint.close().await;
    }

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
            CloseCode::SeatViolation.close(conn, &reason);
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
        self.breach_or(WebError::NoStream(peer))
    }

    async fn connect_all(&self, timeout: Duration) -> Result<(), WebError> {
        // Every peer is reached through the relay on our origin: it is the
        // same relay server the peer is connected to, whatever URL the peer
        // announced, and the page may talk to no other origin.
        let dialing = Dialing::ThroughRelay(self.endpoint.relay_url.clone());
        // The peers we dial over their data channel, if it opens in time
        // (the page makes it from `webrtc_peers`); the others dial us.
        let dialled: BTreeSet<EndpointKey> = self
            .channel_peers()
            .filter(|(m, _, _)| m.index > self.roster.own_index)
            .map(|(m, _, _)| m.endpoint)
            .collect();
        let over_webrtc = if dialled.is_empty() {
            BTreeSet::new()
        } else {
            self.endpoint
                .channels
                .wait_open(&dialled, webrtc::CHANNEL_LIMIT)
                .await
        };
        let links = partyline_proto::connect_all(
            &self.endpoint.endpoint,
            &self.roster,
            &dialing,
            &over_webrtc,
            timeout,
        )
        .await?;
        *self.links.borrow_mut() = links
            .into_iter()
            .map(|(member, conn)| (member.index, conn))
            .collect();
        Ok(())
    }

    /// The peers a data channel may open to, with their offer and the
    /// candidates to check: every native peer that announced its socket,
    /// and every browser peer that prepared a peer connection for us while
    /// we prepared one for it. None if we announced no WebRTC.
    fn channel_peers(&self) -> impl Iterator<Item = (&Member, &WebRtcOffer, &[String])> {
        let own = self.roster.own_index;
        let ours = self.roster.own().webrtc.as_ref();
        self.roster.peers().filter_map(move |member| {
            let ours = ours?;
            let theirs = member.webrtc.as_ref()?;
            let candidates = if theirs.is_browser() {
                ours.candidates_for(own, member.index)?;
                theirs.candidates_for(member.index, own)?
            } else {
                &theirs.candidates[..]
            };
            Some((member, theirs, candidates))
        })
    }

    /// The ready barrier over our connections; on failure it has closed them
    /// with its reason.
    async fn wait_until_all_accepted(&self, timeout: Duration) -> Result<(), WebError> {
        let links = self.links.borrow().clone();
        let ready: Vec<(&Member, &Connection)> = links
            .iter()
            .filter_map(|(&index, conn)| Some((self.roster.members.get(index)?, conn)))
            .collect();
        Ok(ready_barrier(&ready, &self.roster, timeout).await?)
    }
}
