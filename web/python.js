// The browser party's Python worker: MPyC in Pyodide, and nothing else.
//
// The network (partyline's wasm party, its QUIC connections and their
// keep-alives) lives in worker.js, a worker of its own. Python runs for
// seconds without a break while Pyodide starts or MPyC imports and computes,
// and longer in a background tab, whose renderer gets less CPU; in a shared
// thread that silenced the keep-alives and the peers took the party for gone
// after --peer-timeout (5 s). Here Python may take as long as it needs.
//
// Messages from the page: {type: 'port'} with a MessagePort to worker.js.
// Messages to the page: {type: 'pyodide', phase, ms?}, {type: 'output', text},
// {type: 'error', message}.
// On the port, from worker.js: {type: 'run', program: {name, source}, args,
// party: {index, parties, members}}, then per peer stream {type: 'attached',
// peer} or {type: 'refused', peer, message}, {type: 'data', peer, bytes},
// {type: 'end', peer, error, breach}. To worker.js: {type: 'stream', peer},
// {type: 'write', peer, bytes}, {type: 'close', peer},
// {type: 'finished', ok, seconds, error?}.
import { loadPyodide } from './pyodide/pyodide.mjs';

const post = (message) => self.postMessage(message);
const errorText = (e) => (e && e.message) || String(e);

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
  // MPyC's bytecode now, while the user reads the page: the import at Join
  // would otherwise first compile its 15,000 lines, which takes about a
  // second in Pyodide while the peers wait. (Only compiled: importing it
  // here would read MPyC's flags from an argv that is not the program's.)
  pyodide.runPython(`import compileall, importlib.util
compileall.compile_dir(importlib.util.find_spec('mpyc').submodule_search_locations[0], quiet=1)`);
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

// The party as partyline_shim.py sees it (the wasm Party's `index`,
// `parties`, `members()`, `breach` and `stream()`), its streams carried over
// the port to worker.js.
class RemoteParty {
  constructor(port, { index, parties, members }) {
    this.port = port;
    this.index = index;
    this.parties = parties;
    this.memberList = members;
    this.breach = undefined;
    this.peers = new Map();
  }

  members() {
    return this.memberList;
  }

  // Resolves with the stream to `peer` ({write, close}) once worker.js has
  // it; bytes from the peer go to `onData(Uint8Array)`, its end to
  // `onEnd(null | message)`, possibly before that.
  stream(peer, onData, onEnd) {
    return new Promise((resolve, reject) => {
      this.peers.set(peer, { onData, onEnd, resolve, reject });
      this.port.postMessage({ type: 'stream', peer });
    });
  }

  receive({ type, peer, bytes, error, breach, message }) {
    const stream = this.peers.get(peer);
    if (!stream) return;
    if (type === 'attached') {
      stream.resolve({
        // Copied out of Python's memory, then handed over without another copy.
        write: (data) => {
          const copy = data.slice();
          this.port.postMessage({ type: 'write', peer, bytes: copy }, [copy.buffer]);
        },
        close: () => this.port.postMessage({ type: 'close', peer }),
      });
    } else if (type === 'refused') {
      stream.reject(new Error(message));
    } else if (type === 'data') {
      stream.onData(new Uint8Array(bytes));
    } else if (type === 'end') {
      if (breach !== undefined) this.breach = breach;
      stream.onEnd(error);
    }
  }
}

async function run(port, { program, args, party: roster }) {
  const { pyodide, shimModule } = await pyodideReady;
  const party = new RemoteParty(port, roster);
  port.onmessage = ({ data }) => party.receive(data);
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
  port.postMessage({ type: 'finished', ok, seconds, error });
}

self.onmessage = ({ data, ports }) => {
  if (data.type !== 'port') return;
  const [port] = ports;
  port.onmessage = ({ data: message }) => {
    if (message.type === 'run') {
      run(port, message).catch((e) => post({ type: 'error', message: errorText(e) }));
    }
  };
};
