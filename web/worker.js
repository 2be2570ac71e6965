// The browser party's worker: partyline's wasm party (network, roster check)
// and MPyC in Pyodide share this thread, so MPyC's transport calls the wasm
// streams directly and no byte crosses a postMessage.
//
// Messages from the page: {type: 'open', link, origin}, {type: 'open-code', code, origin},
// {type: 'refresh'},
// {type: 'join', name, expected, confirm, program: {name, source}, args},
// {type: 'typed', fingerprint}.
// Messages to the page: {type: 'pyodide', phase, ms?}, {type: 'session', view},
// {type: 'invite-error', message}, {type: 'code-error', message}, {type: 'code-accepted'},
// {type: 'session-unavailable', message},
// {type: 'input-error', message}, {type: 'joining', name},
// {type: 'progress', joined, expected},
// {type: 'roster', index, fingerprint, short, members}, {type: 'confirm'},
// {type: 'refused', message}, {type: 'accepted'}, {type: 'connected', ms},
// {type: 'output', text}, {type: 'finished', ok, seconds, error?},
// {type: 'error', message}.
import init, { Session, check_expected, party_name } from './pkg/partyline_web.js';
import { loadPyodide } from './pyodide/pyodide.mjs';

const post = (message) => self.postMessage(message);
const errorText = (e) => (e && e.message) || String(e);
const JOIN_TIMEOUT_SECS = 600;

let session = null;
// Resolves with what the person typed, while the confirm step waits for it.
let typedFingerprint = null;

// Pyodide takes seconds to start: begin at once, while the user reads the page.
const pyodideStarted = performance.now();
const pyodideReady = (async () => {
  post({ type: 'pyodide', phase: 'loading Python (Pyodide)' });
  const pyodide = await loadPyodide({ indexURL: new URL('./pyodide/', import.meta.url).href });
  // build-web.sh writes the pinned versions (versions.env) into the app.
  const versions = await (await fetch(new URL('./versions.json', import.meta.url))).json();
  post({ type: 'pyodide', phase: `installing MPyC ${versions.mpyc}` });
  const wheel = await fetch(new URL(versions.mpyc_wheel, import.meta.url));
  pyodide.unpackArchive(await wheel.arrayBuffer(), 'wheel');
  const shim = await fetch(new URL('./partyline_shim.py', import.meta.url));
  pyodide.FS.writeFile('/home/pyodide/partyline_shim.py', await shim.text());
  pyodide.setStdout({ batched: (text) => post({ type: 'output', text }) });
  pyodide.setStderr({ batched: (text) => post({ type: 'output', text }) });
  const shimModule = pyodide.pyimport('partyline_shim');
  const ms = Math.round(performance.now() - pyodideStarted);
  post({ type: 'pyodide', phase: 'ready', ms });
  return { pyodide, shimModule };
})();
pyodideReady.catch((e) => post({ type: 'error', message: `Python did not start: ${errorText(e)}` }));

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

async function join({ name, expected, confirm, program, args }) {
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
  const party = await session.join(name, expected, (p) => post({ type: 'progress', ...p }), JOIN_TIMEOUT_SECS);
  post({
    type: 'roster',
    index: party.index,
    fingerprint: party.fingerprint,
    short: party.short_fingerprint,
    members: party.members(),
  });
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
  post({ type: 'connected', ms: Math.round(performance.now() - connectStarted) });
  const { pyodide, shimModule } = await pyodideReady;
  const path = `/home/pyodide/${program.name.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
  pyodide.FS.writeFile(path, program.source);
  const started = performance.now();
  let ok = true;
  let error;
  try {
    // callPromising lets the program block in mpc.run (run_sync) while the
    // browser delivers network data.
    await shimModule.run.callPromising(path, pyodide.toPy(args), party);
  } catch (e) {
    ok = false;
    // A Python traceback: all of it to the output, its last line (the
    // exception itself) as the message.
    const text = errorText(e).trim();
    post({ type: 'output', text });
    error = text.split('\n').pop();
  }
  const seconds = (performance.now() - started) / 1000;
  await party.finish(ok, ok ? 'program finished' : `its program failed in the browser: ${error}`);
  post({ type: 'finished', ok, seconds, error });
}

self.onmessage = async ({ data }) => {
  try {
    if (data.type === 'open') await open(data);
    else if (data.type === 'open-code') await openCode(data);
    else if (data.type === 'refresh') await refresh();
    else if (data.type === 'join') await join(data);
    else if (data.type === 'typed' && typedFingerprint) typedFingerprint(data.fingerprint);
  } catch (e) {
    post({ type: 'error', message: errorText(e) });
  }
};
