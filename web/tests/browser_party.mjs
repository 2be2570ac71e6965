// End-to-end tests of the browser party: headless Debian Chromium (driven by
// npm playwright-core) joins sessions together with native `partyline join`
// processes, against a real `partyline serve` on loopback.
//
// Run by scripts/test-web.sh, which builds target/web and installs
// playwright-core; env: PARTYLINE_BIN, PLAYWRIGHT_DIR, PARTYLINE_PYTHON (a
// Python with mpyc 0.11, for the plain-TCP reference run), WEB_TEST_OUT.
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { copyFileSync, existsSync, linkSync, mkdtempSync, rmSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

const require = createRequire(`${process.env.PLAYWRIGHT_DIR}/`);
const { chromium } = require('playwright-core');

const repo = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const BIN = process.env.PARTYLINE_BIN || join(repo, 'target/debug/partyline');
const PYTHON = process.env.PARTYLINE_PYTHON;
const OUT = process.env.WEB_TEST_OUT || join(repo, 'target/web-test');
// Debian's Chromium without mDNS host candidates (see the script).
const CHROMIUM = join(repo, 'web/tests/chromium.sh');
const SANTA = join(repo, 'examples/secretsanta.py');
const SUM = join(repo, 'examples/securesum.py');
const ROUNDS = join(repo, 'web/tests/programs/rounds.py');
const DRAWS = join(repo, 'web/tests/programs/santa_draws.py');
// Secret Santa's draw a fixed number of times, among 8 people: the
// figures' browser/native ratio for the same amount of work.
const DRAWS_ARGS = ['6', '8'];
// The background-tab test: how long the tab stays behind another one (with
// the default --peer-timeout of 5 s), and rounds enough (one a second) to
// outlast it.
const BACKGROUND_MS = Number(process.env.WEB_TEST_BACKGROUND_MS || 30_000);
const BACKGROUND_ROUNDS = 45;
// Round 5, while hidden, starts with 8 s of Python computing without a break:
// longer than --peer-timeout, which the network must outlast.
const BACKGROUND_ARGS = [String(BACKGROUND_ROUNDS), '5', '8'];
const WEB = join(repo, 'target/web');
// The same partyline built with the web app inside (feature embed-web).
const EMBEDDED_BIN = process.env.PARTYLINE_EMBEDDED_BIN;
const SESSION_LIMIT_MS = Number(process.env.WEB_TEST_LIMIT_MS || 180_000);
// A whole test, however it hangs (a wait with no timeout of its own, a
// process that never exits), fails after this instead of stalling the suite.
const TEST_LIMIT_MS = Number(process.env.WEB_TEST_TEST_LIMIT_MS || 480_000);
mkdirSync(OUT, { recursive: true });

const cleanups = [];
const log = (...args) => console.error('web-test:', ...args);

// Everything a test starts is stopped at the end, also on failure, and even
// when node itself dies of an unexpected error.
const children = [];
const killAll = () => children.forEach((c) => { if (c.exitCode === null) c.kill('SIGKILL'); });
process.on('exit', killAll);

function track(child) {
  children.push(child);
  cleanups.push(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  return child;
}

function collect(child) {
  const out = { child, stdout: '', stderr: '' };
  child.stdout.on('data', (d) => { out.stdout += d; });
  child.stderr.on('data', (d) => { out.stderr += d; });
  out.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  return out;
}

// `partyline serve` on loopback, by default with the web app from target/web;
// `bin` and `cwd` another binary and its working directory, `webDir` null
// for none given.
async function startServer({ bin = BIN, cwd = repo, webDir = WEB } = {}) {
  const data = mkdtempSync(join(tmpdir(), 'partyline-web-test-'));
  cleanups.push(() => rmSync(data, { recursive: true, force: true }));
  const web = webDir ? ['--web-dir', webDir] : [];
  const env = { ...process.env };
  delete env.PARTYLINE_WEB_DIR;
  const child = track(spawn(bin, ['serve', '--listen', '127.0.0.1:0', '--data-dir', data, ...web],
    { cwd, env, stdio: ['ignore', 'pipe', 'inherit'] }));
  // The first lines, up to the one saying what browsers get.
  const ready = await new Promise((resolve, reject) => {
    let text = '';
    child.stdout.on('data', (d) => {
      text += d;
      if (text.includes('browsers:')) resolve(text);
    });
    child.on('exit', (code) => reject(new Error(`partyline serve exited with ${code}`)));
  });
  const link = ready.split('\n')[0].replace('partyline server ready: ', '').trim();
  const origin = link.split('#')[0];
  serverOrigins.push(origin);
  return { link, origin, ready };
}

async function createInvite(server, parties) {
  const child = collect(spawn(BIN, ['create', '-n', String(parties), '--server', server.link]));
  assert.equal(await child.exited, 0, child.stderr);
  return child.stdout.trim().split('\n').pop();
}

// `partyline create --code`: the host process and the code it printed
// (the first line of its stdout).
async function hostCode(server, parties) {
  const host = collect(track(spawn(BIN, ['create', '--code', '-n', String(parties), '--server', server.link,
    '--timeout', '300'], { stdio: ['ignore', 'pipe', 'pipe'] })));
  for (let tries = 0; tries < 600 && !host.stdout.includes('\n'); tries++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const code = host.stdout.split('\n')[0].trim();
  assert.match(code, /^\d+(-[a-z]+){3}$/, `no code from create --code:\n${host.stderr}`);
  return { host, code };
}

function joinNative(invite, name, program, flags = []) {
  return collect(track(spawn(BIN, ['join', invite, '--name', name, '--timeout', '120', ...flags, '--', ...program],
    { stdio: ['ignore', 'pipe', 'pipe'] })));
}

// Waits until a native party's stderr contains `text`.
async function stderrSays(party, text) {
  for (let tries = 0; tries < 600 && !party.stderr.includes(text); tries++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(party.stderr.includes(text), `never said ${text}:\n${party.stderr}`);
}

// Chromium's own log of every network request it makes, pages and workers
// alike, checked after the browser has closed.
const NET_LOG = join(OUT, 'chromium-netlog.json');
const PLAIN_NET_LOG = join(OUT, 'chromium-plain-netlog.json');
const netLogs = [];
const serverOrigins = [];

async function launchBrowser() {
  const userData = mkdtempSync(join(tmpdir(), 'partyline-chromium-'));
  cleanups.push(() => rmSync(userData, { recursive: true, force: true }));
  rmSync(NET_LOG, { force: true });
  netLogs.push(NET_LOG);
  const context = await chromium.launchPersistentContext(userData, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--ignore-certificate-errors',
      `--log-net-log=${NET_LOG}`],
    viewport: { width: 900, height: 1100 },
    // For the route that plays a lying coordinator (its requests come from
    // playwright, which must accept the test server's certificate too).
    ignoreHTTPSErrors: true,
  });
  cleanups.push(() => context.close().catch(() => {}));
  return context;
}

// A Chromium driven over the DevTools protocol directly, without Playwright,
// for the background-tab test: Playwright keeps every page it controls
// "visible" (its focus emulation holds a capture on the tab), and launches
// Chromium with switches that turn background throttling off. This one runs
// with Chromium's own defaults, so a tab behind another one is hidden and
// throttled as in a desktop browser.
class PlainChromium {
  static async launch() {
    const userData = mkdtempSync(join(tmpdir(), 'partyline-chromium-plain-'));
    cleanups.push(() => rmSync(userData, { recursive: true, force: true }));
    rmSync(PLAIN_NET_LOG, { force: true });
    netLogs.push(PLAIN_NET_LOG);
    const child = track(spawn(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--ignore-certificate-errors', '--remote-debugging-pipe', `--user-data-dir=${userData}`,
      `--log-net-log=${PLAIN_NET_LOG}`, 'about:blank'],
      { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] }));
    return new PlainChromium(child);
  }

  constructor(child) {
    this.child = child;
    this.lastId = 0;
    this.waiting = new Map();
    let buffer = '';
    child.stdio[4].on('data', (data) => {
      buffer += data;
      for (let end; (end = buffer.indexOf('\0')) >= 0; buffer = buffer.slice(end + 1)) {
        const message = JSON.parse(buffer.slice(0, end));
        const answer = this.waiting.get(message.id);
        if (answer) {
          this.waiting.delete(message.id);
          answer(message);
        }
      }
    });
  }

  async send(method, params = {}, sessionId = undefined) {
    const id = ++this.lastId;
    const answered = new Promise((resolve) => this.waiting.set(id, resolve));
    this.child.stdio[3].write(`${JSON.stringify({ id, method, params, sessionId })}\0`);
    const message = await answered;
    if (message.error) throw new Error(`${method}: ${message.error.message}`);
    return message.result;
  }

  // A new tab in front, showing `url`: {targetId, sessionId}.
  async open(url) {
    const { targetId } = await this.send('Target.createTarget', { url });
    const { sessionId } = await this.send('Target.attachToTarget', { targetId, flatten: true });
    return { targetId, sessionId };
  }

  async evaluate({ sessionId }, expression) {
    const { result, exceptionDetails } = await this.send('Runtime.evaluate',
      { expression, returnByValue: true, awaitPromise: true }, sessionId);
    if (exceptionDetails) throw new Error(`${expression}: ${exceptionDetails.exception?.description}`);
    return result.value;
  }

  // Polls `expression` in the tab until it is truthy (or `ms` have passed);
  // it may throw while the page is still loading.
  async waitFor(tab, expression, ms) {
    const until = Date.now() + ms;
    for (;;) {
      const value = await this.evaluate(tab, expression).catch(() => undefined);
      if (value) return value;
      if (Date.now() > until) throw new Error(`still false after ${ms} ms: ${expression}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  // Closes the browser so that it completes its network log.
  async close() {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.on('exit', resolve));
    await Promise.race([this.send('Browser.close').catch(() => {}), exited]);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

// A browser party: opens the invite, records every request, joins, runs.
// Keeps what the page asks of every RTCPeerConnection it makes (its ICE
// servers) in `window.peerConnectionConfigs`, for the tests to read.
function recordPeerConnections() {
  const Original = window.RTCPeerConnection;
  if (!Original) return;
  window.peerConnectionConfigs = [];
  window.RTCPeerConnection = class extends Original {
    constructor(config) {
      super(config);
      window.peerConnectionConfigs.push({ iceServers: config?.iceServers });
    }
  };
}

async function openPage(context, invite) {
  const page = await context.newPage();
  await page.addInitScript(recordPeerConnections);
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('websocket', (ws) => requests.push(ws.url()));
  page.on('worker', (w) => requests.push(w.url()));
  // The announcements its worker posted (with WebRTC data), as sent.
  const announcements = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && r.postData()?.includes('ufrag')) announcements.push(r.postData());
  });
  const console = [];
  page.on('console', (m) => console.push(m.text()));
  page.on('pageerror', (e) => console.push(`page error: ${e.message}`));
  await page.goto(invite);
  return { page, requests, announcements, console };
}

// `expect` and `confirm` are the page's "check before you share" fields,
// left as they are when not given.
// `program`: a bundled program's name, or the path of one to paste.
async function joinInPage({ page }, name, program, args = '', { expect, confirm } = {}) {
  await page.waitForSelector('#join-form:not([hidden])', { timeout: 30_000 });
  await page.fill('#name', name);
  if (isAbsolute(program)) {
    await page.check('input[name=program][value=paste]');
    await page.fill('#source', readFileSync(program, 'utf8'));
  } else {
    await page.check(`input[name=program][value="${program}"]`);
  }
  await page.fill('#args', args);
  if (expect !== undefined) await page.fill('#expect', expect);
  if (confirm) await page.check('#confirm-fingerprint');
  await page.click('#join');
}

// The fingerprint a page shows once it asks for it to be typed: its full form.
async function pageFingerprint({ page }) {
  await page.waitForSelector('#confirm-form:not([hidden])', { timeout: SESSION_LIMIT_MS });
  const short = (await page.textContent('#fingerprint')).trim().split(' ');
  const words = (await page.textContent('#fingerprint-full')).trim().split(' ');
  assert.equal(words.length, 12, words.join(' '));
  assert.deepEqual(short, words.slice(0, 6), 'the short form is not the first 6 words');
  return words;
}

// The fingerprint a native party printed with its roster.
function nativeFingerprint(party) {
  const m = party.stderr.match(/session fingerprint ([a-z ]+):/);
  assert.ok(m, `no fingerprint in:\n${party.stderr}`);
  return m[1].split(' ');
}

// The page party refused the roster saying `says` before its MPyC started;
// the native party stopped naming the page's refusal, its program never
// started (the ready barrier); nobody computed.
async function assertPageRefused(browser, native, says) {
  const result = await pageResult(browser);
  assert.equal(result.finished, 'refused', `the page did not refuse: ${result.error}\n${result.output}`);
  for (const text of [says, 'your program did not start']) {
    assert.ok(result.error.includes(text), `the page does not say ${text}: ${result.error}`);
  }
  assert.ok(!result.output.includes('MPyC'), `MPyC started in the page:\n${result.output}`);
  assert.ok(await browser.page.isHidden('#confirm-form'));
  const code = await withinSessionLimit(native.exited, 'native party timed out');
  assert.notEqual(code, 0, `the native party exited 0:\n${native.stderr}`);
  assert.ok(native.stderr.includes('(browser0) ended the session: browser0 refused to start'),
    `the native party does not name the page's refusal:\n${native.stderr}`);
  assert.ok(!native.stderr.includes('mesh ready'), `the native party started its program:\n${native.stderr}`);
  assert.deepEqual(resultLines(result.output, ['sum', 'product', 'max']), []);
  assert.deepEqual(resultLines(native.stdout, ['sum', 'product', 'max']), []);
}

async function pageResult({ page, console: lines }) {
  try {
    // Checked every 100 ms, not on every frame: polling per frame keeps the
    // page's main thread, compositor and GPU process busy on a 2-core machine
    // while the workers compute.
    await page.waitForFunction(() => document.body.dataset.finished, null,
      { timeout: SESSION_LIMIT_MS, polling: 100 });
  } catch (e) {
    const state = await page.evaluate(() => ['status', 'output', 'error']
      .map((id) => `${id}: ${document.getElementById(id).textContent}`).join('\n'));
    throw new Error(`${e.message}\npage state:\n${state}\nconsole:\n${lines.join('\n')}`);
  }
  return {
    finished: await page.evaluate(() => document.body.dataset.finished),
    seconds: Number(await page.evaluate(() => document.body.dataset.seconds)),
    pyodideMs: Number(await page.evaluate(() => document.getElementById('python-status').dataset.ms)),
    output: await page.textContent('#output'),
    error: await page.textContent('#error'),
  };
}

function resultLines(text, keys) {
  return text.split('\n').map((l) => l.trim()).filter((l) => keys.some((k) => l.startsWith(`${k}:`)));
}

// MPyC's own "elapsed time" of a run (from mpc.start to mpc.shutdown), in seconds.
function mpycElapsed(text) {
  const m = text.match(/Stop MPyC -- elapsed time: (\d+):(\d+):([\d.]+)/);
  return m ? Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) : NaN;
}

function assertDerangement(line) {
  const perm = JSON.parse(line.replace('derangement:', '').trim());
  assert.deepEqual([...perm].sort((a, b) => a - b), perm.map((_, i) => i), `not a permutation: ${line}`);
  perm.forEach((p, i) => assert.notEqual(p, i, `fixed point ${i}: ${line}`));
}

// What `promise` gives, or an error saying `message` (a string, or a function
// giving it then) once SESSION_LIMIT_MS has passed.
function withinSessionLimit(promise, message) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(typeof message === 'function' ? message() : message)),
      SESSION_LIMIT_MS);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

async function nativeResult(party) {
  const code = await withinSessionLimit(party.exited, 'native party timed out');
  assert.equal(code, 0, `native party failed:\n${party.stderr}`);
  return party.stdout;
}

function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// The reference: the same program as m plain MPyC processes over loopback TCP.
// A port freePort found free can be taken by another process's connection
// before MPyC binds it, and the other parties then wait for that party
// forever: such a run is ended and tried again on new ports.
async function plainTcp(program, m, attempts = 3) {
  const ports = await Promise.all(Array.from({ length: m }, freePort));
  const hosts = ports.flatMap((p) => ['-P', `127.0.0.1:${p}`]);
  const runs = Array.from({ length: m }, (_, i) =>
    collect(track(spawn(PYTHON, [...program, '-M', String(m), '-I', String(i), ...hosts]))));
  const taken = () => runs.some((r) => /address already in use/i.test(r.stderr));
  const outputs = [];
  for (const run of runs) {
    // MPyC retries a peer it cannot reach forever: bounded here.
    const code = await withinSessionLimit(Promise.race([run.exited, new Promise((resolve) => {
      const poll = setInterval(() => { if (taken()) { clearInterval(poll); resolve('taken'); } }, 100);
      run.exited.then(() => clearInterval(poll));
    })]), () => `plain MPyC timed out:\n${run.stderr}`);
    if ((code === 'taken' || taken()) && attempts > 1) {
      runs.forEach((r) => { if (r.child.exitCode === null) r.child.kill('SIGKILL'); });
      log(`a port of the plain-TCP run was taken, trying new ports`);
      return plainTcp(program, m, attempts - 1);
    }
    assert.equal(code, 0, run.stderr);
    outputs.push(run.stdout);
  }
  return outputs;
}

// One GET with node's own client (no browser cache, no decoding): status,
// headers and the body's bytes as sent.
function fetchRaw(url, headers = {}) {
  return new Promise((resolve, reject) => {
    httpsGet(url, { headers, rejectUnauthorized: false }, (response) => {
      const chunks = [];
      response.on('data', (c) => chunks.push(c));
      response.on('end', () => resolve({ status: response.statusCode, headers: response.headers,
        body: Buffer.concat(chunks) }));
      response.on('error', reject);
    }).on('error', reject);
  });
}

// The web app's file a URL of the page names (`/join` is the page itself).
function webFile(origin, url) {
  const path = url.slice(origin.length).split('?')[0];
  if (path === '/join') return 'index.html';
  return path.startsWith('/web/') ? path.slice('/web/'.length) : null;
}

const CONTENT_TYPES = {
  html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8',
  mjs: 'text/javascript; charset=utf-8', wasm: 'application/wasm', json: 'application/json',
  css: 'text/css; charset=utf-8', py: 'text/plain; charset=utf-8',
  zip: 'application/octet-stream', whl: 'application/octet-stream',
};

// A mixed session: `browsers` pages and `natives` processes run one program.
// With `pythonFirst`, the pages join once Python has started, as a person who
// reads the page first would; `wall` then leaves out the page's start-up,
// which is a figure of its own.
// `beforeNatives(pages)`, if given, runs once the pages have joined and
// before the native parties join.
async function mixedSession(context, { browsers, natives, program, args, server, pythonFirst = false, beforeNatives }) {
  server ??= await startServer();
  const invite = await createInvite(server, browsers + natives);
  const pages = [];
  for (let b = 0; b < browsers; b++) pages.push(await openPage(context, invite));
  if (pythonFirst) {
    for (const { page } of pages) {
      await page.waitForFunction(() => document.getElementById('python-status').dataset.ms, null,
        { timeout: SESSION_LIMIT_MS, polling: 100 });
    }
  }
  const started = Date.now();
  for (let b = 0; b < browsers; b++) await joinInPage(pages[b], `browser${b}`, program, args.join(' '));
  if (beforeNatives) await beforeNatives(pages);
  const parties = Array.from({ length: natives }, (_, n) =>
    joinNative(invite, `native${n}`, [isAbsolute(program) ? program : join(repo, 'examples', program), ...args]));
  let pageResults;
  try {
    pageResults = await Promise.all(pages.map(pageResult));
  } catch (e) {
    const natives = parties.map((p, n) => `native${n} stderr:\n${p.stderr}`).join('\n');
    throw new Error(`${e.message}\n${natives}`);
  }
  const nativeOutputs = await Promise.all(parties.map(nativeResult));
  const wall = (Date.now() - started) / 1000;
  for (const r of pageResults) assert.equal(r.finished, 'ok', `browser party failed: ${r.error}\n${r.output}`);
  for (const p of pages) {
    const foreign = p.requests.filter((u) => !u.startsWith(`${server.origin}/`)
      && !u.startsWith(server.origin.replace('https://', 'wss://') + '/'));
    assert.deepEqual(foreign, [], 'the page reached another origin than the server');
  }
  return { server, pages, pageResults, natives: parties, nativeOutputs, wall };
}

// A browser and a native party whose WebRTC port is `port` (blocked by the
// caller): the session runs through the relay.
async function relayedSession(context, port) {
  const server = await startServer();
  const invite = await createInvite(server, 2);
  const browser = await openPage(context, invite);
  await joinInPage(browser, 'browser0', 'securesum.py', '4 5');
  await browser.page.waitForFunction(() => document.getElementById('status').textContent
    .startsWith('Waiting for 1 more party'), null, { timeout: 30_000 });
  const started = Date.now();
  const native = joinNative(invite, 'native0', [SUM, '4', '5'], ['--webrtc-port', String(port)]);
  const result = await pageResult(browser);
  assert.equal(result.finished, 'ok', `the page did not run: ${result.error}\n${result.output}\n${native.stderr}`);
  const output = await nativeResult(native);
  const sums = ['sum: 9', 'product: 20', 'max: 5'];
  assert.deepEqual(resultLines(result.output, ['sum', 'product', 'max']), sums);
  assert.deepEqual(resultLines(output, ['sum', 'product', 'max']), sums);
  const members = await browser.page.$$eval('#members li', (items) => items.map((li) => li.textContent));
  assert.ok(members.some((m) => m.startsWith('native0') && m.endsWith('· connected via relay')), members.join('\n'));
  assert.match(native.stderr, /browser0 \([^)]*\), connected via relay/);
  return { webrtc_blocked_sum_2_parties_wall_s: (Date.now() - started) / 1000 };
}

// The ICE username fragment a page announced, once it has.
async function announcedUfrag({ announcements }) {
  for (let tries = 0; tries < 300 && !announcements.length; tries++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(announcements.length, 'the page announced no WebRTC data');
  return JSON.parse(JSON.parse(announcements[0]).body).webrtc.ufrag;
}

// Two pages and a native party (seat 2) draw a Secret Santa; every
// browser↔peer path must report `path`, in the pages and in the native's
// report. The native joins once both pages have announced; `beforeNative`
// is given their ICE username fragments then. Figures under `prefix`: the
// session wall (from join, Python ready) and MPyC's elapsed time per party.
async function twoBrowsersAndNative(context, path, prefix, { beforeNative } = {}) {
  const s = await mixedSession(context, {
    browsers: 2, natives: 1, program: 'secretsanta.py', args: ['8'], pythonFirst: true,
    beforeNatives: async (pages) => {
      const ufrags = await Promise.all(pages.map(announcedUfrag));
      if (beforeNative) beforeNative(ufrags);
    },
  });
  const lines = [...s.pageResults.map((r) => r.output), ...s.nativeOutputs]
    .map((o) => resultLines(o, ['derangement'])[0]);
  lines.forEach((l) => assert.equal(l, lines[0]));
  assertDerangement(lines[0]);
  for (const [b, { page }] of s.pages.entries()) {
    const peers = await page.$$eval('#members li[data-you="false"]', (items) => items.map((li) => li.textContent));
    assert.equal(peers.length, 2, `browser${b} shows ${peers.join('\n')}`);
    for (const peer of peers) assert.ok(peer.endsWith(`· connected via ${path}`), `browser${b}: ${peer}`);
  }
  const said = path.replace(/[()]/g, '\\$&');
  for (const b of [0, 1]) {
    assert.match(s.natives[0].stderr, new RegExp(`browser${b} \\([^)]*\\), connected via ${said}(,|$)`, 'm'));
  }
  const elapsed = Object.fromEntries([
    ...s.pageResults.map((r, b) => [`browser${b}`, mpycElapsed(r.output)]),
    ['native0', mpycElapsed(s.natives[0].stdout)],
  ]);
  log(`${prefix}: wall ${s.wall.toFixed(2)} s, MPyC elapsed ${JSON.stringify(elapsed)}`);
  return { [`${prefix}_wall_s`]: s.wall, [`${prefix}_mpyc_elapsed_s`]: elapsed };
}

// Drops the ICE connectivity checks of the parties whose ICE username
// fragments `block` is given, on loopback: UDP whose payload has the STUN
// magic cookie at offset 4 (over IPv4 after a header of any length, over
// IPv6 after the fixed header) and holds one of the fragments (a check's
// USERNAME names both ends). Other tests' parties on this machine are not
// touched. `dropped()` counts what the rules dropped; `remove()` removes
// them and checks they are gone (also run at the end of the suite).
function iceBlocker() {
  const cookies = [['iptables', '0>>22&0x3C@12=0x2112A442'], ['ip6tables', '52=0x2112A442']];
  const comment = `partyline-web-test-ice-${process.pid}`;
  const tables = (tool, args) => spawnSync(tool, ['-w', '5', ...args], { encoding: 'utf8', timeout: 10_000 });
  const added = [];
  const remove = () => {
    while (added.length) {
      const [tool, rule] = added.pop();
      const run = tables(tool, ['-D', ...rule]);
      assert.equal(run.status, 0, `${tool} -D: ${run.stderr}`);
      assert.notEqual(tables(tool, ['-C', ...rule]).status, 0, `${tool}: the rule is still there`);
    }
  };
  cleanups.push(remove);
  return {
    block(ufrags) {
      for (const ufrag of ufrags) {
        for (const [tool, cookie] of cookies) {
          const rule = ['INPUT', '-i', 'lo', '-p', 'udp', '-m', 'u32', '--u32', cookie,
            '-m', 'string', '--algo', 'bm', '--string', ufrag, '-m', 'comment', '--comment', comment, '-j', 'DROP'];
          const run = tables(tool, ['-I', ...rule]);
          assert.equal(run.status, 0, `${tool} -I: ${run.stderr}`);
          added.push([tool, rule]);
        }
      }
    },
    dropped: () => cookies.reduce((sum, [tool]) => sum + tables(tool, ['-L', 'INPUT', '-v', '-n', '-x'])
      .stdout.split('\n').filter((l) => l.includes(comment))
      .reduce((n, l) => n + Number(l.trim().split(/\s+/)[0]), 0), 0),
    remove,
  };
}

// Stands in for a lying coordinator: every session answer the page gets
// is rewritten by `alter` (once `expect` appears in one, if given) while a
// native party waits; the page must refuse the session before joining.
async function pageRefusesAltered(context, alter, expect) {
  const server = await startServer();
  const invite = await createInvite(server, 2);
  const native = joinNative(invite, 'native0', [SANTA]);
  const page = await context.newPage();
  let altered = false;
  await page.route('**/v1/sessions/**', async (route) => {
    try {
      const response = await route.fetch();
      const body = alter(await response.text());
      altered ||= expect === undefined || body.includes(expect);
      await route.fulfill({ response, body });
    } catch (e) {
      log(`the lying coordinator failed: ${e.message}`);
      await route.abort();
    }
  });
  await stderrSays(native, '1 of 2 parties joined');
  await page.goto(invite);
  await page.waitForSelector('#error:not([hidden])', { timeout: 30_000 });
  assert.ok(altered, 'the lying coordinator found nothing to alter');
  assert.match(await page.textContent('#error'),
    /announcement \(entry 0\) that is not from a holder of this invite/);
  assert.ok(await page.isHidden('#join-form'), 'the join form must stay hidden');
  native.child.kill('SIGKILL');
}

const tests = {
  async 'one browser and two native parties draw the same Secret Santa'(context) {
    const s = await mixedSession(context,
      { browsers: 1, natives: 2, program: 'secretsanta.py', args: ['8'], pythonFirst: true });
    const lines = [...s.pageResults.map((r) => r.output), ...s.nativeOutputs]
      .map((o) => resultLines(o, ['derangement']));
    for (const l of lines) assert.equal(l.length, 1, `no derangement in ${l}`);
    lines.forEach((l) => assert.equal(l[0], lines[0][0]));
    assertDerangement(lines[0][0]);
    await s.pages[0].page.screenshot({ path: join(OUT, 'screenshot.png'), fullPage: true });
    // The same page at a phone's width, for the README's "what a phone user sees".
    await s.pages[0].page.setViewportSize({ width: 390, height: 844 });
    await s.pages[0].page.screenshot({ path: join(OUT, 'screenshot-phone.png'), fullPage: true });
    // The QUIC round-trip time a native party measured to the browser, over WebRTC.
    const rtt = s.natives[0].stderr.match(/browser0 \([^)]*\), connected via direct \(webrtc\), rtt ([0-9.]+) ms/);
    return { santa_1_browser_wall_s: s.wall, pyodide_startup_ms: s.pageResults[0].pyodideMs,
      browser_program_s: s.pageResults[0].seconds, native_to_browser_rtt_ms: rtt && Number(rtt[1]),
      santa_1_browser_mpyc_elapsed_s: Math.max(mpycElapsed(s.pageResults[0].output),
        ...s.natives.map((p) => mpycElapsed(p.stdout))) };
  },

  async 'a secure sum with one browser equals the plain-TCP run'(context) {
    const args = ['5', '-3', '8'];
    const s = await mixedSession(context, { browsers: 1, natives: 2, program: 'securesum.py', args });
    const reference = resultLines((await plainTcp([SUM, ...args], 3))[0], ['sum', 'product', 'max']);
    assert.equal(reference.length, 3);
    for (const o of [...s.pageResults.map((r) => r.output), ...s.nativeOutputs]) {
      assert.deepEqual(resultLines(o, ['sum', 'product', 'max']), reference);
    }
  },

  async 'two browsers and one native party: Secret Santa and a secure sum'(context) {
    const santa = await mixedSession(context, { browsers: 2, natives: 1, program: 'secretsanta.py', args: ['8'] });
    const lines = [...santa.pageResults.map((r) => r.output), ...santa.nativeOutputs]
      .map((o) => resultLines(o, ['derangement'])[0]);
    lines.forEach((l) => assert.equal(l, lines[0]));
    assertDerangement(lines[0]);
    const args = ['11', '22', '-33'];
    const sum = await mixedSession(context, { browsers: 2, natives: 1, program: 'securesum.py', args });
    const reference = resultLines((await plainTcp([SUM, ...args], 3))[0], ['sum', 'product', 'max']);
    for (const o of [...sum.pageResults.map((r) => r.output), ...sum.nativeOutputs]) {
      assert.deepEqual(resultLines(o, ['sum', 'product', 'max']), reference);
    }
  },

  async 'the browser party speaks the peer protocol the native server reports'(context) {
    // Both sides take it from partyline_proto::PROTOCOL: the wasm module
    // exports its copy, the server reports its own in /v1/info.
    const server = await startServer();
    const page = await context.newPage();
    await page.goto(`${server.origin}/join`);
    const { browser, native } = await page.evaluate(async () => {
      const wasm = await import('/web/pkg/partyline_web.js');
      await wasm.default({ module_or_path: '/web/pkg/partyline_web_bg.wasm' });
      const info = await (await fetch('/v1/info')).json();
      return { browser: wasm.protocol(), native: info.protocol };
    });
    assert.match(native, /^partyline\/mesh\/\d+$/);
    assert.equal(browser, native);
  },

  async 'a binary with the web app inside serves a session from an empty directory'(context) {
    assert.ok(EMBEDDED_BIN, 'PARTYLINE_EMBEDDED_BIN is not set (scripts/test-web.sh builds it)');
    // The binary alone in a directory of its own, run from there: no
    // target/web next to it or the working directory, no --web-dir.
    const empty = mkdtempSync(join(tmpdir(), 'partyline-embedded-'));
    cleanups.push(() => rmSync(empty, { recursive: true, force: true }));
    const bin = join(empty, 'partyline');
    try { linkSync(EMBEDDED_BIN, bin); } catch { copyFileSync(EMBEDDED_BIN, bin); }
    const server = await startServer({ bin, cwd: empty, webDir: null });
    assert.match(server.ready, /browsers: +invite links open the web app \(built into this binary\)/);
    const args = ['4', '-7', '9'];
    const s = await mixedSession(context, { browsers: 1, natives: 1, program: 'securesum.py', args, server });
    const reference = resultLines((await plainTcp([SUM, ...args], 2))[0], ['sum', 'product', 'max']);
    for (const o of [...s.pageResults.map((r) => r.output), ...s.nativeOutputs]) {
      assert.deepEqual(resultLines(o, ['sum', 'product', 'max']), reference);
    }
    assert.deepEqual(readdirSync(empty), ['partyline'], 'serve wrote into its working directory');
    // Every file the page and its worker loaded, fetched again, plain and
    // gzipped: the very bytes build-web.sh wrote, with the right type.
    const files = [...new Set(s.pages[0].requests.map((u) => webFile(server.origin, u)).filter(Boolean))];
    for (const needed of ['index.html', 'app.js', 'worker.js', 'python.js', 'pkg/partyline_web.js',
      'pkg/partyline_web_bg.wasm', 'pyodide/pyodide.mjs', 'pyodide/pyodide.asm.wasm',
      'pyodide/python_stdlib.zip', 'versions.json', 'partyline_shim.py', 'programs/securesum.py']) {
      assert.ok(files.includes(needed), `the page did not load ${needed}: ${files.join(' ')}`);
    }
    for (const file of files) {
      const url = file === 'index.html' ? `${server.origin}/join` : `${server.origin}/web/${file}`;
      const plain = await fetchRaw(url, { 'accept-encoding': 'identity' });
      assert.equal(plain.status, 200, url);
      assert.ok(plain.body.equals(readFileSync(join(WEB, file))), `${file} differs from target/web`);
      assert.equal(plain.headers['content-type'], CONTENT_TYPES[file.split('.').pop()], file);
      assert.equal(plain.headers['cache-control'], 'no-cache', file);
      assert.match(plain.headers['content-security-policy'], /default-src 'self'/, file);
      const gzipped = await fetchRaw(url, { 'accept-encoding': 'gzip' });
      const copy = join(WEB, `${file}.gz`);
      assert.equal(gzipped.headers['content-encoding'], existsSync(copy) ? 'gzip' : undefined, file);
      assert.ok(gzipped.body.equals(readFileSync(existsSync(copy) ? copy : join(WEB, file))),
        `${file} (gzip) differs from target/web`);
      const again = await fetchRaw(url, { 'accept-encoding': 'gzip', 'if-none-match': gzipped.headers.etag });
      assert.equal(again.status, 304, `${file}: no 304 for its own ETag`);
    }
    log(`the embedded web app served ${files.length} files, each equal to target/web: ${files.join(' ')}`);
  },

  async 'browser parties join by a short code, typed or in the link, and a wrong one is refused'(context) {
    const server = await startServer();
    const { host, code } = await hostCode(server, 3);
    // A page opened without an invite asks for a code; a wrong one is
    // refused with what it means, and costs one of the host's tries.
    const typed = await openPage(context, `${server.origin}/join`);
    await typed.page.waitForSelector('#code-form:not([hidden])', { timeout: 30_000 });
    const words = code.split('-');
    words[words.length - 1] = words.at(-1) === 'abandon' ? 'ability' : 'abandon';
    await typed.page.fill('#code', words.join('-'));
    await typed.page.click('#use-code');
    await typed.page.waitForSelector('#error:not([hidden])', { timeout: 90_000 });
    assert.match(await typed.page.textContent('#error'),
      /The code did not work: the code was not accepted, and no invite was released/);
    assert.ok(await typed.page.isHidden('#join-form'), 'the join form must stay hidden');
    await stderrSays(host, 'wrong code (1 of 3');
    // The right code, typed; then a page with the code in its link; then a
    // native party by code: all three compute the same secure sum.
    await typed.page.fill('#code', code);
    await typed.page.click('#use-code');
    await joinInPage(typed, 'browser0', 'securesum.py');
    const linked = await openPage(context, `${server.origin}/join#code=${code}`);
    await joinInPage(linked, 'browser1', 'securesum.py');
    assert.ok(!linked.page.url().includes(code), 'the code stayed in the address bar');
    const native = joinNative(code, 'native0', [SUM], ['--server', server.link]);
    const results = await Promise.all([typed, linked].map(pageResult));
    const sums = resultLines(await nativeResult(native), ['sum', 'product', 'max']);
    assert.equal(sums.length, 3, native.stdout);
    for (const r of results) {
      assert.equal(r.finished, 'ok', `a browser party failed: ${r.error}\n${r.output}`);
      assert.deepEqual(resultLines(r.output, ['sum', 'product', 'max']), sums);
    }
    assert.equal(await host.exited, 0, host.stderr);
    assert.ok(host.stderr.includes('all 3 parties joined'), host.stderr);
  },

  async 'a tampered invite is refused in the page'(context) {
    const server = await startServer();
    const invite = await createInvite(server, 2);
    // Change one character of the secret part of the fragment.
    const at = invite.length - 10;
    const swapped = invite[at] === 'A' ? 'B' : 'A';
    const { page, requests } = await openPage(context, invite.slice(0, at) + swapped + invite.slice(at + 1));
    await page.waitForSelector('#error:not([hidden])', { timeout: 30_000 });
    const error = await page.textContent('#error');
    assert.match(error, /This invite cannot be used: .*checksum/);
    assert.ok(await page.isHidden('#join-form'), 'the join form must stay hidden');
    assert.ok(requests.every((u) => u.startsWith(`${server.origin}/`)));
  },

  async 'a coordinator that alters an announcement is refused in the page'(context) {
    // The MAC covers the name.
    await pageRefusesAltered(context, (body) => body.replaceAll('native0', 'mallory'));
  },

  async 'a coordinator that swaps a DTLS fingerprint is refused in the page'(context) {
    // Its own certificate's fingerprint for the native party's, to sit in
    // the middle of the data channel: the MAC covers it too.
    const liars = `sha-256 ${Array(32).fill('5A').join(':')}`;
    await pageRefusesAltered(context,
      (body) => body.replace(/sha-256 (?:[0-9A-F]{2}:){31}[0-9A-F]{2}/g, liars), liars);
  },

  async 'a pasted program runs in a one-party session'(context) {
    const server = await startServer();
    const { page } = await openPage(context, await createInvite(server, 1));
    await page.waitForSelector('#join-form:not([hidden])', { timeout: 30_000 });
    await page.fill('#name', 'solo');
    await page.check('input[name=program][value="paste"]');
    await page.fill('#source', [
      'from mpyc.runtime import mpc',
      'async def main():',
      '    await mpc.start()',
      '    x = mpc.SecInt(16)(21)',
      "    print('doubled:', await mpc.output(x * 2))",
      '    await mpc.shutdown()',
      'mpc.run(main())',
    ].join('\n'));
    await page.click('#join');
    const result = await pageResult({ page, console: [] });
    assert.equal(result.finished, 'ok', result.error);
    assert.deepEqual(resultLines(result.output, ['doubled']), ['doubled: 42']);
  },

  async 'a native party that dies ends the browser party with a clear error'(context) {
    const server = await startServer();
    const invite = await createInvite(server, 2);
    const browser = await openPage(context, invite);
    await joinInPage(browser, 'browser0', 'secretsanta.py', '40');
    const native = joinNative(invite, 'native0', [SANTA, '40']);
    await browser.page.waitForFunction(
      () => document.getElementById('output').textContent.includes('All 2 parties connected'),
      null, { timeout: 60_000 });
    // While the session runs, closing the page asks first; the person stays.
    const asked = browser.page.waitForEvent('dialog', { timeout: 10_000 });
    await browser.page.close({ runBeforeUnload: true });
    const dialog = await asked;
    assert.equal(dialog.type(), 'beforeunload');
    await dialog.dismiss();
    assert.ok(!browser.page.isClosed(), 'the page closed mid-session without asking');
    native.child.kill('SIGKILL');
    const killed = Date.now();
    const result = await pageResult(browser);
    log(`the browser party stopped ${((Date.now() - killed) / 1000).toFixed(1)} s after the kill`);
    assert.equal(result.finished, 'failed');
    assert.match(result.error,
      /The program failed: ConnectionResetError: lost the connection to party \d \(native0\): .*it was stopped or lost its network/);
    // Once it has ended, the page closes without asking.
    browser.page.on('dialog', (d) => d.dismiss());
    const closed = browser.page.waitForEvent('close', { timeout: 10_000 });
    await browser.page.close({ runBeforeUnload: true });
    await closed;
  },

  async 'a native party claiming another seat is named and refused by the browser party'(context) {
    // Seats by join time: alice 0, mallory 1 (a real party whose program
    // dials the browser claiming alice's MPyC party id), the browser 2.
    const server = await startServer();
    const invite = await createInvite(server, 3);
    const alice = joinNative(invite, 'alice', [SUM]);
    await stderrSays(alice, '1 of 3 parties joined');
    const mallory = joinNative(invite, 'mallory',
      [join(repo, 'crates/partyline/tests/programs/seat_attacker.py'), 'wrong-pid'], ['--no-mpyc-flags']);
    await stderrSays(mallory, '2 of 3 parties joined');
    const browser = await openPage(context, invite);
    await joinInPage(browser, 'browser0', 'securesum.py');
    const result = await pageResult(browser);
    const named = 'party 1 (mallory) claimed MPyC party id 0 on its stream, but its seat is 1';
    assert.equal(result.finished, 'failed');
    assert.ok(result.error.includes(named), `the page does not name mallory: ${result.error}`);
    assert.deepEqual(resultLines(result.output, ['sum', 'product', 'max']), []);
    assert.notEqual(await alice.exited, 0, 'alice exited 0');
    assert.ok(alice.stderr.includes(named), `alice does not name mallory:\n${alice.stderr}`);
    assert.deepEqual(resultLines(alice.stdout, ['sum', 'product', 'max']), []);
  },

  async 'a page expecting other parties than the roster refuses before MPyC starts'(context) {
    const server = await startServer();
    for (const [expect, says, preset] of [
      ['browser0, native0, carol', '(missing: carol)', true],
      ['browser0', '(not expected: native0)', false],
      ['browser0,robert', '(missing: robert; not expected: native0)', false],
    ]) {
      const invite = await createInvite(server, 2);
      const native = joinNative(invite, 'native0', [SUM]);
      // The first through the link's query, which presets the field.
      const link = preset ? invite.replace('/join#', `/join?expect=${encodeURIComponent(expect)}#`) : invite;
      const browser = await openPage(context, link);
      if (preset) {
        await browser.page.waitForSelector('#join-form:not([hidden])', { timeout: 30_000 });
        assert.equal(await browser.page.inputValue('#expect'), expect);
      }
      await joinInPage(browser, 'browser0', 'securesum.py', '', preset ? {} : { expect });
      await assertPageRefused(browser, native, says);
    }
  },

  async 'a page confirming the fingerprint refuses a wrong one and runs on the right one'(context) {
    const server = await startServer();
    let invite = await createInvite(server, 2);
    let native = joinNative(invite, 'native0', [SUM]);
    let browser = await openPage(context, invite);
    await joinInPage(browser, 'browser0', 'securesum.py', '', { confirm: true });
    const words = await pageFingerprint(browser);
    await stderrSays(native, 'session fingerprint');
    assert.deepEqual(words, nativeFingerprint(native), 'the page and the native party show different fingerprints');
    // One word off, as a fingerprint read out from a different roster would be.
    words[5] = words[5] === 'zoo' ? 'zone' : 'zoo';
    await browser.page.fill('#typed', words.slice(0, 6).join(' '));
    await browser.page.click('#confirm');
    await assertPageRefused(browser, native, "the fingerprint typed is not this session's fingerprint");

    // The right one, as read out on a call (short form, capitals), with the
    // expected parties too; the page's name typed decomposed (e + U+0308)
    // joins in normal form C, as the native party's roster and --expect show.
    invite = await createInvite(server, 2);
    native = joinNative(invite, 'native0', [SUM], ['--expect', 'native0,Zo\u00eb']);
    browser = await openPage(context, invite);
    await joinInPage(browser, 'Zoe\u0308', 'securesum.py', '', { expect: 'native0, Zoe\u0308', confirm: true });
    const right = await pageFingerprint(browser);
    await browser.page.fill('#typed', right.slice(0, 6).join(' ').toUpperCase());
    await browser.page.click('#confirm');
    const result = await pageResult(browser);
    assert.equal(result.finished, 'ok', `the page did not run: ${result.error}\n${result.output}`);
    const nativeOutput = await nativeResult(native);
    const sums = resultLines(nativeOutput, ['sum', 'product', 'max']);
    assert.equal(sums.length, 3, nativeOutput);
    assert.deepEqual(resultLines(result.output, ['sum', 'product', 'max']), sums);
    assert.ok(native.stderr.includes(': Zo\u00eb ('), `the native roster lacks Zo\u00eb in NFC:\n${native.stderr}`);
    assert.ok((await browser.page.$$eval('#members li', (items) => items.map((li) => li.textContent)))
      .includes('Zo\u00eb (you)'), 'the page does not show its own name in NFC');
  },

  async 'a page name or expected party with an invisible character is refused with the rule'(context) {
    const server = await startServer();
    const invite = await createInvite(server, 2);
    const browser = await openPage(context, invite);
    const { page } = browser;
    const refused = async (says) => {
      await page.waitForFunction((text) => !document.getElementById('error').hidden
        && document.getElementById('error').textContent.includes(text), says[0], { timeout: 30_000 });
      const error = await page.textContent('#error');
      for (const text of [...says, 'a name may hold only letters, digits, spaces']) {
        assert.ok(error.includes(text), `the page does not say ${text}: ${error}`);
      }
      assert.ok(await page.isVisible('#join-form'), 'the join form must stay usable');
      assert.ok(await page.isEnabled('#join'));
    };
    await joinInPage(browser, 'al\u200bice', 'securesum.py');
    await refused(['your name is not usable', 'U+200B']);
    await joinInPage(browser, 'alice', 'securesum.py', '', { expect: 'alice, \u202ebob' });
    await refused(['the expected parties are not usable', 'U+202E']);
    // Neither was announced: with the fields fixed, a two-party session
    // runs (a stray announcement would have taken the second seat).
    await joinInPage(browser, 'alice', 'securesum.py', '', { expect: '' });
    // Alice announced first, so she holds seat 0 (the check below).
    await page.waitForFunction(() => document.getElementById('status').textContent
      .startsWith('Waiting for 1 more party'), null, { timeout: 30_000 });
    const native = joinNative(invite, 'bob', [SUM]);
    const result = await pageResult(browser);
    assert.equal(result.finished, 'ok', `the page did not run: ${result.error}\n${result.output}`);
    await nativeResult(native);
    assert.ok(native.stderr.includes('party 0: alice ('), native.stderr);
  },

  async 'a browser talks to native parties over WebRTC, whichever side dials'(context) {
    // Seats: native0 (dials the browser), browser0, native1 (dialled by
    // the browser); each browser↔native pair goes over a data channel.
    const server = await startServer();
    const invite = await createInvite(server, 3);
    const args = ['7', '-2', '30'];
    const browser = await openPage(context, invite);
    const first = joinNative(invite, 'native0', [SUM, ...args]);
    await stderrSays(first, '1 of 3 parties joined');
    await joinInPage(browser, 'browser0', 'securesum.py', args.join(' '));
    await browser.page.waitForFunction(() => document.getElementById('status').textContent
      .startsWith('Waiting for 1 more party'), null, { timeout: 30_000 });
    const started = Date.now();
    const second = joinNative(invite, 'native1', [SUM, ...args]);
    const result = await pageResult(browser);
    assert.equal(result.finished, 'ok', `the page did not run: ${result.error}\n${result.output}\n${first.stderr}\n${second.stderr}`);
    const outputs = await Promise.all([first, second].map(nativeResult));
    const wall = (Date.now() - started) / 1000;
    const sums = resultLines(result.output, ['sum', 'product', 'max']);
    assert.deepEqual(sums, ['sum: 35', 'product: -420', 'max: 30']);
    for (const o of outputs) assert.deepEqual(resultLines(o, ['sum', 'product', 'max']), sums);
    const members = await browser.page.$$eval('#members li', (items) => items.map((li) => li.textContent));
    for (const name of ['native0', 'native1']) {
      assert.ok(members.some((m) => m.startsWith(name) && m.endsWith('· connected via direct (webrtc)')),
        members.join('\n'));
    }
    const rtts = [first, second].map((p) => {
      const m = p.stderr.match(/browser0 \([^)]*\), connected via direct \(webrtc\), rtt ([0-9.]+) ms/);
      assert.ok(m, `the native party does not report a WebRTC path to the browser:\n${p.stderr}`);
      return Number(m[1]);
    });
    // The natives between themselves keep their own direct UDP path.
    assert.match(first.stderr, /native1 \([^)]*\), connected via direct, rtt/);
    // The connections prepared for browser peers (one per other party,
    // before announcing) name the server's own STUN responder as their only
    // ICE server; those to the ICE-lite natives need none.
    const stunPort = server.ready.match(/stun: +UDP port (\d+)/)?.[1];
    assert.ok(stunPort, `serve names no STUN port:\n${server.ready}`);
    const configs = await browser.page.evaluate(() => window.peerConnectionConfigs);
    const named = configs.filter((c) => c.iceServers?.length);
    assert.equal(named.length, 2, JSON.stringify(configs));
    for (const config of named) {
      assert.deepEqual(config.iceServers, [{ urls: `stun:127.0.0.1:${stunPort}` }]);
    }
    return { webrtc_native_to_browser_rtt_ms: Math.max(...rtts), webrtc_sum_3_parties_wall_s: wall,
      webrtc_sum_browser_mpyc_elapsed_s: mpycElapsed(result.output) };
  },

  async 'with WebRTC blocked a browser reaches a native party through the relay'(context) {
    // The native's WebRTC port dropped by the firewall, as a closed port
    // on a real network: the browser's checks never arrive, the data
    // channel never opens, and after its wait the browser dials through
    // the relay.
    const port = await freePort();
    const rule = ['INPUT', '-p', 'udp', '--dport', String(port), '-m', 'comment',
      '--comment', `partyline-web-test-${process.pid}`, '-j', 'DROP'];
    const iptables = (action) => {
      const run = spawnSync('iptables', ['-w', '5', action, ...rule], { encoding: 'utf8', timeout: 10_000 });
      assert.equal(run.status, 0, `iptables ${action}: ${run.stderr}`);
    };
    iptables('-I');
    let blocked = true;
    const unblock = () => {
      if (blocked) iptables('-D');
      blocked = false;
    };
    cleanups.push(unblock);
    try {
      return await relayedSession(context, port);
    } finally {
      unblock();
    }
  },

  async 'two browsers and a native party: every browser↔peer path is direct (webrtc)'(context) {
    return twoBrowsersAndNative(context, 'direct (webrtc)', 'webrtc_santa_2_browsers');
  },

  async 'with WebRTC blocked two browsers and a native party complete through the relay'(context) {
    const ice = iceBlocker();
    try {
      const figures = await twoBrowsersAndNative(context, 'relay', 'webrtc_blocked_santa_2_browsers',
        { beforeNative: ice.block });
      // The rules were in the way: the pages' and their peers' checks were dropped.
      assert.ok(ice.dropped() > 0, 'no ICE check was dropped');
      return figures;
    } finally {
      ice.remove();
    }
  },

  async 'a native party with an identity shows its words in the page, which keeps no address book'(context) {
    const config = mkdtempSync(join(tmpdir(), 'partyline-web-id-'));
    cleanups.push(() => rmSync(config, { recursive: true, force: true }));
    const made = collect(spawn(BIN, ['--config-dir', config, 'id', 'new']));
    assert.equal(await made.exited, 0, made.stderr);
    const words = made.stdout.trim().split(' ');
    assert.equal(words.length, 12, made.stdout);
    const server = await startServer();
    const invite = await createInvite(server, 2);
    const browser = await openPage(context, invite);
    await joinInPage(browser, 'alice', 'securesum.py', '', { expect: '' });
    const native = joinNative(invite, 'bob', [SUM], ['--config-dir', config]);
    const result = await pageResult(browser);
    assert.equal(result.finished, 'ok', `the page did not run: ${result.error}\n${result.output}`);
    await nativeResult(native);
    const members = await browser.page.textContent('#members');
    const shown = `bob — identity ${words.slice(0, 6).join(' ')}…, not remembered in the browser · connected via direct (webrtc)`;
    assert.ok(members.includes(shown), members);
    assert.match(native.stderr, /party \d: alice \(no identity\), connected via direct \(webrtc\)/);
  },

  async 'a browser party whose tab is in the background for 30 s keeps its session'() {
    const server = await startServer();
    const invite = await createInvite(server, 3);
    const chromium = await PlainChromium.launch();
    cleanups.push(() => chromium.close());
    const tab = await chromium.open(invite);
    const natives = [];
    const pageText = (id) => chromium.evaluate(tab, `document.getElementById('${id}').textContent`);
    // What the page and the native parties said, when a wait ends in failure.
    const explained = async (e) => {
      const page = await Promise.all(['status', 'output', 'error'].map((id) => pageText(id).catch(() => '?')));
      return new Error(`${e.message}\npage:\n${page.join('\n')}\n${natives.map((p) => p.stderr).join('\n')}`);
    };
    await chromium.waitFor(tab, "!document.getElementById('join-form').hidden", 30_000);
    await chromium.evaluate(tab, `(() => {
      document.getElementById('name').value = 'browser0';
      document.querySelector('input[name=program][value=paste]').click();
      document.getElementById('source').value = ${JSON.stringify(readFileSync(ROUNDS, 'utf8'))};
      document.getElementById('args').value = '${BACKGROUND_ARGS.join(' ')}';
      document.getElementById('join').click();
    })()`);
    natives.push(...[0, 1].map((n) => joinNative(invite, `native${n}`, [ROUNDS, ...BACKGROUND_ARGS])));
    const rounds = (text) => text.split('\n').map((l) => l.trim()).filter((l) => /^round \d+:/.test(l));
    await chromium.waitFor(tab, "document.getElementById('output').textContent.includes('round 1:')",
      SESSION_LIMIT_MS).catch(async (e) => { throw await explained(e); });
    // Another tab in front: ours is hidden, as when the person switches tabs.
    const front = await chromium.open('about:blank');
    assert.equal(await chromium.evaluate(tab, 'document.visibilityState'), 'hidden');
    const hiddenAt = Date.now();
    await new Promise((r) => setTimeout(r, BACKGROUND_MS));
    const hiddenRounds = rounds(await pageText('output')).length;
    assert.equal(await chromium.evaluate(tab, 'document.visibilityState'), 'hidden');
    log(`the tab was hidden ${((Date.now() - hiddenAt) / 1000).toFixed(1)} s; ${hiddenRounds} rounds done by then`);
    await chromium.send('Target.closeTarget', { targetId: front.targetId });
    await chromium.send('Target.activateTarget', { targetId: tab.targetId });
    const state = await chromium.waitFor(tab, 'document.body.dataset.finished', SESSION_LIMIT_MS)
      .catch(async (e) => { throw await explained(e); });
    const output = await pageText('output');
    assert.equal(state, 'ok', `the browser party failed: ${await pageText('error')}\n${output}`);
    const outputs = [output, ...await Promise.all(natives.map(nativeResult))];
    const expected = Array.from({ length: BACKGROUND_ROUNDS }, (_, i) => `round ${i}: ${6 * i}`);
    for (const o of outputs) assert.deepEqual(rounds(o), expected);
    // Rounds ran while the tab was hidden, not only after it came back.
    assert.ok(hiddenRounds > 2 && hiddenRounds < BACKGROUND_ROUNDS, `${hiddenRounds} rounds while hidden`);
  },

  async 'a browser without JSPI is told so instead of a stuck page'(context) {
    const server = await startServer();
    const invite = await createInvite(server, 2);
    const page = await context.newPage();
    // What Safari and Firefox look like today: WebAssembly without stack switching.
    await page.addInitScript(() => { delete WebAssembly.Suspending; });
    await page.goto(invite);
    await page.waitForSelector('#error:not([hidden])', { timeout: 30_000 });
    assert.match(await page.textContent('#error'),
      /This browser cannot run a partyline party: it lacks WebAssembly JavaScript Promise Integration/);
    assert.ok(await page.isHidden('#join-form'));
  },

  async 'a fixed number of Secret Santa draws: one browser and two native parties against all native'(context) {
    const drawMs = (text) => Number(resultLines(text, ['draw ms'])[0]?.replace('draw ms:', ''));
    const server = await startServer();
    const invite = await createInvite(server, 3);
    const parties = [0, 1, 2].map((n) => joinNative(invite, `native${n}`, [DRAWS, ...DRAWS_ARGS]));
    const native = await Promise.all(parties.map(nativeResult));
    const mixed = await mixedSession(context,
      { browsers: 1, natives: 2, program: DRAWS, args: DRAWS_ARGS, server, pythonFirst: true });
    const outputs = [...native, mixed.pageResults[0].output, ...mixed.nativeOutputs];
    for (const o of outputs) assert.ok(drawMs(o) > 0, `no draw time in:\n${o}`);
    const counts = (os) => new Set(os.map((o) => resultLines(o, ['derangements'])[0]));
    assert.equal(counts(native).size, 1, 'the native parties disagree');
    assert.equal(counts(outputs.slice(3)).size, 1, 'the mixed session\'s parties disagree');
    const slowest = (os) => Math.max(...os.map(drawMs));
    const roundMs = (os) => Math.max(...os.map((o) => Number(resultLines(o, ['round ms'])[0]?.replace('round ms:', ''))));
    const figures = {
      santa_draw_all_native_ms: slowest(native), santa_draw_1_browser_ms: slowest(outputs.slice(3)),
      round_all_native_ms: roundMs(native), round_1_browser_ms: roundMs(outputs.slice(3)),
    };
    figures.santa_draw_1_browser_ratio = figures.santa_draw_1_browser_ms / figures.santa_draw_all_native_ms;
    log(`a draw: ${figures.santa_draw_1_browser_ms} ms with the page, ${figures.santa_draw_all_native_ms} ms all native;`
      + ` a round: ${figures.round_1_browser_ms} ms, ${figures.round_all_native_ms} ms`);
    return figures;
  },

  async 'all native parties run Secret Santa (the baseline for the figures)'() {
    const server = await startServer();
    const invite = await createInvite(server, 3);
    const started = Date.now();
    const parties = [0, 1, 2].map((n) => joinNative(invite, `native${n}`, [SANTA, '8']));
    const outputs = await Promise.all(parties.map(nativeResult));
    const wall = (Date.now() - started) / 1000;
    const lines = outputs.map((o) => resultLines(o, ['derangement'])[0]);
    lines.forEach((l) => assert.equal(l, lines[0]));
    return { santa_all_native_wall_s: wall,
      santa_all_native_mpyc_elapsed_s: Math.max(...parties.map((p) => mpycElapsed(p.stdout))) };
  },
};

const only = process.argv[2];
const figures = {};
let failed = 0;
const context = await launchBrowser();
try {
  for (const [name, test] of Object.entries(tests)) {
    if (only && !name.includes(only)) continue;
    const started = Date.now();
    let timer;
    const limit = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no result after ${TEST_LIMIT_MS / 1000} s`)), TEST_LIMIT_MS);
    });
    try {
      Object.assign(figures, await Promise.race([test(context), limit]));
      log(`ok   ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    } catch (e) {
      failed += 1;
      log(`FAIL ${name}: ${e.stack || e}`);
      // A test that ran out of time may still be waiting on its processes:
      // ending them ends it, so it cannot touch the next test.
      killAll();
    } finally {
      clearTimeout(timer);
    }
    for (const page of context.pages()) await page.close();
  }
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup();
}
// Every request a page or its worker started (Chromium's network log marks
// them with the page's origin as initiator; the browser's own background
// requests, which no page causes, carry none) must go to our servers. Read
// after the browsers have closed, so the logs are complete.
const fromPages = netLogs.flatMap((file) => {
  const netLog = JSON.parse(readFileSync(file, 'utf8'));
  const startJob = netLog.constants.logEventTypes.URL_REQUEST_START_JOB;
  return netLog.events
    .filter((e) => e.type === startJob && /^https?:\/\//.test(e.params?.initiator || ''))
    .map((e) => e.params.url);
});
const sameOrigin = (u) => serverOrigins.some((o) =>
  u.startsWith(`${o}/`) || u.startsWith(`${o.replace('https://', 'wss://')}/`));
const foreign = fromPages.filter((u) => !sameOrigin(u));
if (fromPages.length === 0 || foreign.length) {
  failed += 1;
  log(`FAIL the network logs show requests only to the server's origin: ${fromPages.length} requests, foreign: ${foreign.join(' ')}`);
} else {
  const relay = fromPages.filter((u) => u.startsWith('wss://')).length;
  log(`ok   the network logs show requests only to the server's origin (${fromPages.length} requests, ${relay} relay WebSockets)`);
}
writeFileSync(join(OUT, 'figures.json'), `${JSON.stringify(figures, null, 2)}\n`);
log('figures:', JSON.stringify(figures));
process.exit(failed ? 1 : 0);
