// The page: shows the session and the run, and hands the work to the worker
// (worker.js), which runs partyline's wasm party and MPyC in Pyodide.
const $ = (id) => document.getElementById(id);
const show = (id, visible = true) => { $(id).hidden = !visible; };

function fail(message) {
  $('error').textContent = message;
  show('error');
  $('join').disabled = true;
}

// What this page needs, checked before anything starts, so that an old or
// limited browser gets a clear sentence instead of a stuck page.
function missingFeatures() {
  const missing = [];
  if (typeof Worker === 'undefined') missing.push('Web Workers');
  if (typeof WebAssembly === 'undefined') missing.push('WebAssembly');
  else if (typeof WebAssembly.Suspending !== 'function') {
    missing.push('WebAssembly JavaScript Promise Integration (JSPI)');
  }
  if (typeof WebSocket === 'undefined') missing.push('WebSockets');
  return missing;
}

// WebRTC data channels to the peers (the direct path; the relay stays the
// fallback). Only the page has RTCPeerConnection, so it makes them and hands
// each data channel to the network worker, which sends QUIC's packets on
// it. One certificate and one set of ICE credentials serve every peer
// connection; they are announced through the coordinator under the invite's
// MAC, so the peers accept only this certificate, and the page only the
// certificates the peers announced.
//
// A native peer is ICE-lite and announces its socket's addresses, so the
// page makes its connection to it after the roster. Two browsers are both
// full ICE agents and neither learns the other's candidates after the
// roster, so before it announces the page prepares one connection for each
// other party of the session (`prepared`, in the order of
// `partyline_wire::webrtc::peer_list_index`) and announces their
// candidates; the worker says which one is for which browser peer, and the
// rest are closed.
const webrtc = { cert: null, ufrag: null, pwd: null, connections: [], prepared: [] };
// How long a prepared connection gathers candidates before the page
// announces them (on a LAN a few ms; a server-reflexive one a round trip).
const GATHER_LIMIT_MS = 1000;
// The number of parties of the session, from the session view.
let sessionParties = 0;

// ICE characters: letters and digits (RFC 8839 allows `+` and `/` too).
function iceText(length) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const random = crypto.getRandomValues(new Uint8Array(length));
  return Array.from(random, (b) => alphabet[b % alphabet.length]).join('');
}

// {fingerprint, ufrag, pwd, peer_candidates} for our announcement, or null
// without WebRTC.
async function webrtcOffer(parties) {
  if (typeof RTCPeerConnection === 'undefined') return null;
  try {
    webrtc.cert = await RTCPeerConnection.generateCertificate({ name: 'ECDSA', namedCurve: 'P-256' });
  } catch {
    return null;
  }
  const sha256 = webrtc.cert.getFingerprints().find((f) => f.algorithm === 'sha-256');
  if (!sha256) return null;
  webrtc.ufrag = iceText(16);
  webrtc.pwd = iceText(32);
  try {
    const servers = await iceServers();
    webrtc.prepared = await Promise.all(Array.from({ length: Math.max(parties - 1, 0) },
      () => prepareConnection(servers)));
  } catch (e) {
    // No direct path to browser peers; native peers still get theirs.
    console.warn(`cannot prepare WebRTC connections for browser peers: ${e.message || e}`);
    webrtc.prepared = [];
  }
  return {
    fingerprint: `sha-256 ${sha256.value.toUpperCase()}`, ufrag: webrtc.ufrag, pwd: webrtc.pwd,
    peer_candidates: webrtc.prepared.map((p) => p.candidates),
  };
}

// The partyline server's STUN responder (its port in /v1/info, on the
// relay's host) as the ICE server of the connections for browser peers: a
// browser behind a NAT then also announces the address the NAT maps it to.
// None if the server runs none or does not say.
async function iceServers() {
  try {
    const response = await fetch('/v1/info', { signal: AbortSignal.timeout(GATHER_LIMIT_MS) });
    const info = await response.json();
    if (!Number.isInteger(info.stun_port)) return [];
    return [{ urls: `stun:${new URL(info.relay_url).hostname}:${info.stun_port}` }];
  } catch {
    return [];
  }
}

// Our offer on `pc`, with the announced ICE credentials instead of the
// random ones Chromium picked.
async function announcedOffer(pc) {
  const offer = await pc.createOffer();
  return {
    type: 'offer',
    sdp: offer.sdp
      .replace(/a=ice-ufrag:.*\r\n/, `a=ice-ufrag:${webrtc.ufrag}\r\n`)
      .replace(/a=ice-pwd:.*\r\n/, `a=ice-pwd:${webrtc.pwd}\r\n`),
  };
}

// A UDP candidate as announced: `ip:port`, `[ipv6]:port` or
// `name.local:port` (the wasm party drops any the peers would refuse).
function candidateAddress({ protocol, address, port }) {
  if (protocol !== 'udp' || !address || !port) return null;
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

// A connection for a browser peer, made before we announce: our offer set,
// and the candidates gathered within GATHER_LIMIT_MS (host candidates, and
// server-reflexive ones from the ICE `servers`). Its data channel is
// made after the roster, because a data channel can be handed to the worker
// only as it is made; the placeholder channel only puts the data channel
// section into the offer.
async function prepareConnection(servers) {
  const pc = new RTCPeerConnection({ certificates: [webrtc.cert], iceServers: servers });
  webrtc.connections.push(pc);
  const placeholder = pc.createDataChannel('offer', { negotiated: true, id: 1 });
  const candidates = [];
  const gathered = new Promise((resolve) => {
    const timer = setTimeout(resolve, GATHER_LIMIT_MS);
    pc.onicecandidate = ({ candidate }) => {
      if (!candidate) {
        clearTimeout(timer);
        resolve();
        return;
      }
      const address = candidateAddress(candidate);
      if (address) candidates.push(address);
    };
  });
  await pc.setLocalDescription(await announcedOffer(pc));
  await gathered;
  pc.onicecandidate = null;
  placeholder.close();
  return { pc, candidates };
}

// The data channel to `peer` on `pc`, handed to the worker at once.
function openChannel(pc, peer) {
  const channel = pc.createDataChannel('partyline', { negotiated: true, id: 0, ordered: false, maxRetransmits: 0 });
  worker.postMessage({ type: 'channel', peer: peer.index, channel }, [channel]);
}

// The peer's answer, written from its announcement (no SDP crosses the
// network): its ICE credentials, certificate and candidates. Every field
// was checked by the wasm party when it verified the roster. The DTLS
// client is the side whose answer says `setup:passive`: we are, to a native
// peer and to a browser at a higher seat. Both browsers of a pair are
// ICE-controlling (each made an offer); ICE's role-conflict rule settles it.
function answerFrom(peer, { iceLite }) {
  const hosts = peer.candidates.map((c) => {
    const colon = c.lastIndexOf(':');
    return { host: c.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port: c.slice(colon + 1) };
  });
  return [
    'v=0', 'o=- 0 0 IN IP4 0.0.0.0', 's=-', 't=0 0', 'a=group:BUNDLE 0', ...(iceLite ? ['a=ice-lite'] : []),
    'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', 'c=IN IP4 0.0.0.0',
    'a=mid:0', `a=ice-ufrag:${peer.ufrag}`, `a=ice-pwd:${peer.pwd}`,
    `a=fingerprint:${peer.fingerprint}`, `a=setup:${peer.dtls_client ? 'passive' : 'active'}`, 'a=sctp-port:5000',
    ...hosts.map((h, i) => `a=candidate:${i + 1} 1 UDP ${2130706431 - i} ${h.host} ${h.port} typ host`),
    'a=end-of-candidates', '',
  ].join('\r\n');
}

// A peer connection to a native party: it is ICE-lite and learns our
// address from our checks.
async function connectNative(peer) {
  const pc = new RTCPeerConnection({ certificates: [webrtc.cert] });
  webrtc.connections.push(pc);
  openChannel(pc, peer);
  await pc.setLocalDescription(await announcedOffer(pc));
  await pc.setRemoteDescription({ type: 'answer', sdp: answerFrom(peer, { iceLite: true }) });
}

// The prepared connection for a browser peer, completed with its answer.
async function connectBrowser(peer) {
  const { pc } = webrtc.prepared[peer.connection];
  openChannel(pc, peer);
  await pc.setRemoteDescription({ type: 'answer', sdp: answerFrom(peer, { iceLite: false }) });
}

function connectPeers(peers) {
  const used = new Set();
  for (const peer of peers) {
    const browser = peer.connection !== undefined;
    if (browser && !webrtc.prepared[peer.connection]) continue;
    if (browser) used.add(peer.connection);
    // A failure leaves this peer on the relay; the worker stops waiting for
    // its channel after a few seconds.
    (browser ? connectBrowser(peer) : connectNative(peer))
      .catch((e) => console.warn(`no WebRTC to party ${peer.index}: ${e.message || e}`));
  }
  // Those prepared for native peers (or peers without WebRTC).
  webrtc.prepared.forEach(({ pc }, i) => { if (!used.has(i)) pc.close(); });
}

let pythonReady = false;
let joined = false;
// From Join until the program has ended: closing or reloading the page would
// end the session for every party, so the browser asks first.
let running = false;
window.addEventListener('beforeunload', (event) => {
  if (running) event.preventDefault();
});
let refreshTimer = null;

function sessionText(view) {
  const label = view.label ? ` “${view.label}”` : '';
  const names = view.joined.length ? `: ${view.joined.join(', ')}` : '';
  return `Session ${view.session}${label}. ${view.joined.length} of ${view.parties} parties joined${names}.`;
}

function onMessage({ data }) {
  switch (data.type) {
    case 'pyodide':
      if (data.phase === 'ready') {
        pythonReady = true;
        $('python-status').textContent = `Python and MPyC ready (started in ${(data.ms / 1000).toFixed(1)} s).`;
        $('python-status').dataset.ms = data.ms;
      } else {
        $('python-status').textContent = `Starting Python: ${data.phase}…`;
      }
      break;
    case 'invite-error':
      fail(`This invite cannot be used: ${data.message}`);
      $('session-info').textContent = 'No session.';
      clearInterval(refreshTimer);
      break;
    case 'code-error':
      $('error').textContent = `The code did not work: ${data.message}`;
      show('error');
      $('session-info').textContent = 'No session yet: enter the code the host gave you.';
      $('use-code').disabled = false;
      show('code-form');
      break;
    case 'code-accepted':
      show('error', false);
      show('code-form', false);
      startRefreshing();
      break;
    case 'session':
      sessionParties = data.view.parties;
      if (!joined) {
        $('session-info').textContent = sessionText(data.view);
        if (data.view.state === 'done') fail('This session has already finished.');
        else show('join-form');
      }
      break;
    case 'session-unavailable':
      if (!joined) $('session-info').textContent = `Cannot update the session just now: ${data.message}`;
      break;
    case 'input-error':
      // Nothing was announced: the person fixes the field and joins again.
      joined = false;
      $('error').textContent = data.message;
      show('error');
      show('run', false);
      show('join-form');
      $('join').disabled = false;
      break;
    case 'joining':
      running = true;
      show('error', false);
      clearInterval(refreshTimer);
      localStorage.setItem('partyline-name', data.name);
      break;
    case 'progress':
      $('session-info').textContent =
        `${data.joined.length} of ${data.expected} parties joined: ${data.joined.join(', ')}.`;
      $('status').textContent = data.joined.length < data.expected
        ? `Waiting for ${data.expected - data.joined.length} more ${data.expected - data.joined.length === 1 ? 'party' : 'parties'} to join…`
        : 'Everyone is here; checking the roster…';
      break;
    case 'roster':
      $('members').replaceChildren(...data.members.map((m) => {
        const li = document.createElement('li');
        // Identities are verified but not remembered: the page has no address book.
        const identity = m.you ? ''
          : m.identity ? ` — identity ${m.identity.split(' ').slice(0, 6).join(' ')}…, not remembered in the browser`
          : ' — no identity';
        li.textContent = `${m.name}${m.you ? ' (you)' : ''}${identity}`;
        li.dataset.you = m.you;
        li.dataset.index = m.index;
        return li;
      }));
      $('fingerprint').textContent = data.short;
      $('fingerprint-full').textContent = data.fingerprint;
      show('roster');
      $('status').textContent = `Roster verified: you are party ${data.index}. Connecting to the other parties…`;
      break;
    case 'accepted':
      $('status').textContent = 'Waiting until every party has accepted the roster…';
      break;
    case 'confirm':
      show('confirm-form');
      $('typed').focus();
      $('status').textContent = 'Waiting for you to type the fingerprint the others read out…';
      break;
    case 'refused':
      running = false;
      show('confirm-form', false);
      fail(data.message);
      $('status').textContent = 'Your program did not start; the session has ended for every party.';
      document.body.dataset.finished = 'refused';
      break;
    case 'webrtc':
      connectPeers(data.peers);
      break;
    case 'connected':
      // Each peer's path: a direct WebRTC data channel, or the relay.
      for (const li of $('members').children) {
        const path = data.paths.find((p) => String(p.index) === li.dataset.index);
        if (path) li.textContent += ` · connected via ${path.path}`;
      }
      $('status').textContent = pythonReady
        ? 'Every party accepted the roster. Running the program…'
        : 'Every party accepted the roster. Waiting for Python to finish starting…';
      break;
    case 'output':
      $('output').textContent += `${data.text}\n`;
      break;
    case 'finished':
      running = false;
      for (const pc of webrtc.connections) pc.close();
      if (data.ok) {
        $('status').innerHTML = '';
        const done = document.createElement('span');
        done.className = 'ok';
        done.textContent = `Finished in ${data.seconds.toFixed(2)} s.`;
        $('status').append(done);
      } else {
        $('status').textContent = 'The program failed.';
        fail(`The program failed: ${data.error}`);
      }
      document.body.dataset.finished = data.ok ? 'ok' : 'failed';
      document.body.dataset.seconds = data.seconds;
      break;
    case 'error':
      running = false;
      fail(data.message);
      document.body.dataset.finished = 'failed';
      break;
  }
}

async function programSource() {
  const choice = document.querySelector('input[name=program]:checked').value;
  if (choice !== 'paste') {
    const response = await fetch(`/web/programs/${choice}`);
    if (!response.ok) throw new Error(`cannot load the bundled program ${choice}`);
    return { name: choice, source: await response.text() };
  }
  const file = $('upload').files[0];
  if (file) return { name: file.name, source: await file.text() };
  const source = $('source').value;
  if (!source.trim()) throw new Error('paste a program or choose a file first');
  return { name: 'program.py', source };
}

// Who has joined, until we join ourselves (then the worker reports progress).
function startRefreshing() {
  refreshTimer = setInterval(() => worker.postMessage({ type: 'refresh' }), 3000);
}

// A short code in the link's fragment: `/join#code=7-orbit-lamp-quiz` or
// `/join#7-orbit-lamp-quiz` (an invite's fragment starts with `pl`).
function codeInFragment(fragment) {
  let text;
  try {
    text = decodeURIComponent(fragment.replace(/^code=/, ''));
  } catch {
    return null;
  }
  return /^\s*\d/.test(text) ? text.trim() : null;
}

// Asks the worker to exchange the code for the invite with the session's host.
function useCode(code) {
  $('use-code').disabled = true;
  show('error', false);
  $('session-info').textContent = 'Checking the code with the session\'s host…';
  worker.postMessage({ type: 'open-code', code, origin: location.origin });
}

let worker = null;

function start() {
  const missing = missingFeatures();
  if (missing.length) {
    fail(`This browser cannot run a partyline party: it lacks ${missing.join(', ')}. ` +
      'Use a current Chrome, Edge or Chromium (version 137 or later; on Android too), ' +
      'or join with the partyline command on a computer.');
    $('session-info').textContent = 'Not available in this browser.';
    $('python-status').textContent = '';
    return;
  }
  // Two workers: the network (worker.js) and Python (python.js), so that
  // Python computing never holds up the network's keep-alives; they talk
  // over a channel of their own.
  worker = new Worker('/web/worker.js', { type: 'module' });
  const python = new Worker('/web/python.js', { type: 'module' });
  for (const w of [worker, python]) {
    w.onmessage = onMessage;
    w.onerror = (e) => fail(`The page's worker failed: ${e.message || 'it could not start'}`);
  }
  const channel = new MessageChannel();
  worker.postMessage({ type: 'port' }, [channel.port1]);
  python.postMessage({ type: 'port' }, [channel.port2]);
  const fragment = location.hash.slice(1);
  const code = codeInFragment(fragment);
  $('code-form').onsubmit = (event) => {
    event.preventDefault();
    useCode($('code').value);
  };
  if (fragment && !code) {
    // The invite is the link without its query, which may preset the expected
    // parties (`/join?expect=alice,bob,carol#pl1.…`).
    worker.postMessage({ type: 'open', link: location.origin + location.pathname + location.hash, origin: location.origin });
    startRefreshing();
  } else {
    // No invite: a short code, from the link or typed.
    show('code-form');
    $('session-info').textContent = 'No session yet: enter the code the host gave you.';
    if (code) {
      $('code').value = code;
      useCode(code);
    }
  }
  $('expect').value = new URLSearchParams(location.search).get('expect') || '';
  // The invite's secret (or the code) is in the fragment: once handed to the
  // worker, keep it out of the address bar, the history and anyone looking
  // over a shoulder.
  history.replaceState(null, '', location.pathname + location.search);

  $('name').value = localStorage.getItem('partyline-name') || '';
  for (const radio of document.querySelectorAll('input[name=program]')) {
    radio.onchange = () => show('custom', radio.value === 'paste' && radio.checked);
  }
  $('join-form').onsubmit = async (event) => {
    event.preventDefault();
    let program;
    try {
      program = await programSource();
    } catch (e) {
      fail(e.message);
      return;
    }
    const name = $('name').value;
    show('error', false);
    joined = true;
    $('join').disabled = true;
    show('join-form', false);
    show('run');
    $('status').textContent = 'Joining…';
    const args = $('args').value.split(/\s+/).filter(Boolean);
    const expected = $('expect').value;
    const confirm = $('confirm-fingerprint').checked;
    const webrtcData = await webrtcOffer(sessionParties);
    worker.postMessage({ type: 'join', name, expected, confirm, program, args, webrtc: webrtcData });
  };
  $('confirm-form').onsubmit = (event) => {
    event.preventDefault();
    $('confirm').disabled = true;
    $('status').textContent = 'Checking the fingerprint…';
    worker.postMessage({ type: 'typed', fingerprint: $('typed').value });
  };
}

start();
