// The browser party's network worker: partyline's wasm party (invite,
// roster check, QUIC connections through the relay) and nothing else, so that
// its timers (QUIC keep-alives every second, acknowledgements, the relay's
// pings) fire on time whatever Python does: MPyC runs in python.js, a worker
// of its own, and its bytes cross a MessagePort to and from the wasm streams.
// Timers in dedicated workers keep their pace in a background tab, where
// Chromium throttles the page's own to once a second.
//
// Messages from the page: {type: 'port'} with a MessagePort to python.js,
// {type: 'open', link, origin}, {type: 'open-code', code, origin},
// {type: 'refresh'},
// {type: 'join', name, expected, confirm, program: {name, source}, args, webrtc},
// {type: 'typed', fingerprint}, {type: 'channel', peer, channel} (a data
// channel to a peer, transferred).
// Messages to the page: {type: 'session', view},
// {type: 'invite-error', message}, {type: 'code-error', message}, {type: 'code-accepted'},
// {type: 'session-unavailable', message},
// {type: 'input-error', message}, {type: 'joining', name},
// {type: 'progress', joined, expected},
// {type: 'roster', index, fingerprint, short, members},
// {type: 'webrtc', peers} (the peers to make or complete a data channel
// to: see Party::webrtc_peers), {type: 'confirm'},
// {type: 'refused', message}, {type: 'accepted'}, {type: 'connected', ms, paths},
// {type: 'finished', ok, seconds, error?}, {type: 'error', message}.
// On the port to python.js: see there.
import init, { Session, check_expected, party_name } from './pkg/partyline_web.js';

const post = (message) => self.postMessage(message);
const errorText = (e) => (e && e.message) || String(e);
const JOIN_TIMEOUT_SECS = 600;

let session = null;
// Our party once the roster is verified: the page's data channels go to it.
let joinedParty = null;
// The port to python.js, which runs the program.
let python = null;
// Resolves with what the person typed, while the confirm step waits for it.
let typedFingerprint = null;

const wasmReady = init({ module_or_path: new URL('./pkg/partyline_web_bg.wasm', import.meta.url) });

async function open({ link, origin }) {
  await wasmReady;
  try {
    session = Session.open(link, origin);
  } catch (e) {
    post({ type: 'invite-error', message: errorText(e) });
    return;
  }
  try {
    post({ type: 'session', view: await session.view() });
  } catch (e) {
    post({ type: 'invite-error', message: errorText(e) });
  }
}

// A short code instead of the invite: the wasm runs the PAKE with the
// session's host through this server and gets the invite from it.
async function openCode({ code, origin }) {
  await wasmReady;
  try {
    session = await Session.open_code(code, origin);
  } catch (e) {
    post({ type: 'code-error', message: errorText(e) });
    return;
  }
  post({ type: 'code-accepted' });
  await refresh();
}

// While the user reads the page: who has joined. A failure here (the server
// restarting, a flaky network) is shown but does not stop the user joining.
async function refresh() {
  if (!session) return;
  try {
    post({ type: 'session', view: await session.view() });
  } catch (e) {
    post({ type: 'session-unavailable', message: errorText(e) });
  }
}

// The checks the person asked for, as `join --expect` and `--confirm` run
// them: once connected, before our ready is sent. A refusal has ended the
// session for every party when the promise rejects.
async function accept(party, confirm) {
  await party.accept_expected();
  if (!confirm) return;
  const typed = new Promise((resolve) => { typedFingerprint = resolve; });
  post({ type: 'confirm' });
  await party.confirm(await typed);
}

async function join({ name, expected, confirm, program, args, webrtc }) {
  // Checked before anything is announced, by the rules every party applies;
  // the name in the normal form the others will see.
  try {
    name = party_name(name);
    check_expected(expected);
  } catch (e) {
    post({ type: 'input-error', message: errorText(e) });
    return;
  }
  post({ type: 'joining', name });
  const party = await session.join(name, expected, (p) => post({ type: 'progress', ...p }),
    JOIN_TIMEOUT_SECS, webrtc ?? null);
  joinedParty = party;
  post({
    type: 'roster',
    index: party.index,
    fingerprint: party.fingerprint,
    short: party.short_fingerprint,
    members: party.members(),
  });
  // Always, so that the page closes the connections it prepared for nobody.
  post({ type: 'webrtc', peers: party.webrtc_peers() });
  const connectStarted = performance.now();
  try {
    await party.connect(JOIN_TIMEOUT_SECS);
  } catch (e) {
    // Tell the peers we reached that we give up, as a native party does.
    await party.abort('a browser party could not connect to every party');
    throw e;
  }
  try {
    await accept(party, confirm);
  } catch (e) {
    post({ type: 'refused', message: errorText(e) });
    return;
  }
  post({ type: 'accepted' });
  try {
    // No MPyC before every party has accepted the roster.
    await party.ready(JOIN_TIMEOUT_SECS);
  } catch (e) {
    // The barrier has told the peers why; our endpoint closes too.
    await party.abort('the browser party did not start its program');
    throw e;
  }
  post({ type: 'connected', ms: Math.round(performance.now() - connectStarted), paths: party.paths() });
  await runInPython(party, program, args);
}

// Has python.js run the program on our streams; resolves when it has ended
// and every peer has been told how.
function runInPython(party, program, args) {
  const streams = new Map();
  return new Promise((resolve, reject) => {
    python.onmessage = ({ data }) => {
      if (data.type === 'finished') finish(party, data).then(resolve, reject);
      else carry(party, streams, data);
    };
    python.postMessage({
      type: 'run', program, args,
      party: { index: party.index, parties: party.parties, members: party.members() },
    });
  });
}

// One message of python.js about a peer stream.
async function carry(party, streams, { type, peer, bytes }) {
  const ended = (error) => python.postMessage({ type: 'end', peer, error, breach: party.breach });
  if (type === 'stream') {
    const onData = (chunk) => {
      // The wasm party hands over a fresh array each time: move it, not copy it.
      const own = chunk.byteLength === chunk.buffer.byteLength ? chunk : chunk.slice();
      python.postMessage({ type: 'data', peer, bytes: own.buffer }, [own.buffer]);
    };
    try {
      streams.set(peer, await party.stream(peer, onData, ended));
      python.postMessage({ type: 'attached', peer });
    } catch (e) {
      python.postMessage({ type: 'refused', peer, message: errorText(e) });
    }
  } else if (type === 'write') {
    try {
      streams.get(peer)?.write(new Uint8Array(bytes));
    } catch (e) {
      ended(errorText(e));
    }
  } else if (type === 'close') {
    streams.get(peer)?.close();
  }
}

async function finish(party, { ok, seconds, error }) {
  await party.finish(ok, ok ? 'program finished' : `its program failed in the browser: ${error}`);
  post({ type: 'finished', ok, seconds, error });
}

self.onmessage = async ({ data, ports }) => {
  try {
    if (data.type === 'port') python = ports[0];
    else if (data.type === 'open') await open(data);
    else if (data.type === 'open-code') await openCode(data);
    else if (data.type === 'refresh') await refresh();
    else if (data.type === 'join') await join(data);
    else if (data.type === 'typed' && typedFingerprint) typedFingerprint(data.fingerprint);
    else if (data.type === 'channel') joinedParty?.add_channel(data.peer, data.channel);
  } catch (e) {
    post({ type: 'error', message: errorText(e) });
  }
};
