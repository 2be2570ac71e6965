"""partyline's transport for MPyC in the browser (Pyodide, in a Web Worker).

MPyC 0.11 runs unmodified; this module replaces the two places where it
assumes a desktop Python:

* ``Runtime.start`` opens TCP connections.  Here party i instead gets one byte
  stream per peer from partyline's wasm party (an iroh QUIC stream through the
  relay, the same stream native parties forward their TCP connections into;
  the wasm party runs in a worker of its own, its bytes cross a MessagePort),
  and feeds it to MPyC's own ``asyncoro.MessageExchanger`` through a small
  transport object (``write``, ``writelines``, ``close``, ``is_closing``), so
  the bytes on the wire are exactly those of a TCP run: pid and PRSS keys from
  the lower seat first, then ``pc`` (i64 LE), ``size`` (u32 LE), payload.
* ``Runtime.run`` spins on ``coro.send(None)`` when the event loop is already
  running, which it always is under Pyodide, so a network wait would never
  yield to the browser.  Here it blocks with Pyodide's ``run_sync`` instead,
  which suspends the WebAssembly stack (JavaScript Promise Integration) while
  the browser's event loop delivers the network data.

And one place where it assumes a 64-bit Python: MPyC labels every message with
a program counter that hops by ``hash(tuple(pc))``, and CPython's hash depends
on the word size.  Pyodide is a 32-bit Python, so its counters would never
match those of native parties (every party would wait for messages labelled
differently).  ``_hop64`` computes exactly what 64-bit CPython's tuple hash
gives, so native parties need no flag (MPyC's own ``--mix32-64bit`` would work
too, but every party would have to pass it).
"""

import asyncio
import collections
import logging
import runpy
import sys
import time

from pyodide.ffi import can_run_sync, create_proxy, jsnull, run_sync, to_js

# CPython's hash of a tuple of ints on 64-bit platforms (Objects/tupleobject.c,
# xxHash-based since 3.8; ints hash modulo the Mersenne prime 2**61 - 1).
_MASK = (1 << 64) - 1
_MODULUS = (1 << 61) - 1
_XXPRIME_1 = 11400714785074694791
_XXPRIME_2 = 14029467366897019727
_XXPRIME_5 = 2870177450012600261


def _int_hash64(n):
    h = abs(n) % _MODULUS
    if n < 0:
        h = -h
    return -2 if h == -1 else h


def _hop64(a):
    """MPyC's program counter hop, ``hash(tuple(a))``, as 64-bit CPython computes it."""
    acc = _XXPRIME_5
    for item in a:
        acc = (acc + (_int_hash64(item) & _MASK) * _XXPRIME_2) & _MASK
        acc = ((acc << 31) | (acc >> 33)) & _MASK
        acc = (acc * _XXPRIME_1) & _MASK
    acc = (acc + (len(a) ^ (_XXPRIME_5 ^ 3527539))) & _MASK
    if acc == _MASK:
        return 1546275796
    return acc - (1 << 64) if acc >> 63 else acc


# The party of the running program: python.js's stand-in for the wasm Party
# (crates/partyline-web), which runs in the network worker.
_party = None


class StreamTransport(asyncio.Transport):
    """An asyncio transport over one partyline peer stream."""

    def __init__(self, loop, peer, protocol):
        super().__init__()
        self._loop = loop
        self._peer = peer
        self._protocol = protocol
        self._stream = None
        self._early = []  # data that arrived before connection_made
        self._unsent = []  # written since the last flush
        self._closing = False
        self._lost = False
        # JS keeps these callbacks after the call that hands them over returns.
        self.on_data = create_proxy(self._on_data)
        self.on_end = create_proxy(self._on_end)

    def attach(self, stream):
        """Connects the protocol once the stream exists, then delivers early data."""
        self._stream = stream
        self._protocol.connection_made(self)
        early, self._early = self._early, None
        for data in early:
            self._protocol.data_received(data)

    def _on_data(self, chunk):
        data = chunk.to_bytes()
        if self._early is not None:
            self._early.append(data)
        else:
            # Called from python.js's message handler: MPyC takes it in the
            # ready queue's next batch.
            self._loop.call_soon(self._protocol.data_received, data)

    def _on_end(self, error):
        if error is None or error is jsnull:
            self._loop.call_soon(self._connection_lost, None)
        elif _party.breach is not None:
            # A peer broke the seat rules and this party closed every connection.
            message = f'{_party.breach}; this party ended the session'
            self._loop.call_soon(self._connection_lost, ConnectionAbortedError(message))
        else:
            name = _party.members().to_py()[self._peer]['name']
            message = (f'lost the connection to party {self._peer} ({name}): {error}; '
                       'it was stopped or lost its network')
            self._loop.call_soon(self._connection_lost, ConnectionResetError(message))

    def _connection_lost(self, exc):
        if self._lost:
            return
        self._lost = True
        self._closing = True
        self._unsent.clear()
        if self._stream is not None:
            self._stream.close()
        self.on_data.destroy()
        self.on_end.destroy()
        if exc is None:
            self._protocol.connection_lost(None)
        else:
            _fail(exc)

    def write(self, data):
        if self._closing:
            return
        if not self._unsent:
            # Flushed once the callbacks ready now have run: what MPyC sends
            # in one pass (a message per operation in flight) crosses to the
            # network worker, and leaves in QUIC packets, together.
            self._loop.call_soon(self._flush)
        self._unsent.append(bytes(data))

    def _flush(self):
        if self._unsent:
            data = b''.join(self._unsent)
            self._unsent.clear()
            self._stream.write(to_js(data))

    def writelines(self, list_of_data):
        self.write(b''.join(list_of_data))

    def close(self):
        # Like TCP: our direction ends after the queued bytes (FIN), and the
        # protocol hears of it on the next turn.
        if not self._closing:
            self._flush()
            self._closing = True
            self._stream.close()
            self._loop.call_soon(self._connection_lost, None)

    def is_closing(self):
        return self._closing


class ReadyQueue:
    """``call_soon`` as asyncio's own loops do it: a queue, run in batches.

    Pyodide's WebLoop turns every ``call_soon`` into a browser task of its own
    (a message on a MessageChannel, then a call from JavaScript into Python),
    and MPyC schedules about ten callbacks per message it receives (futures
    resolved, tasks stepped): thousands per second of a run, each paying that
    hop.  Here the callbacks wait in a queue that one browser task runs, as
    asyncio's ``_run_once`` runs its ready queue; after ``BATCH_SECS`` the
    rest goes to the next task, so that messages from the network worker get
    their turn in between, as asyncio polls its sockets between batches.
    """

    BATCH_SECS = 0.005

    def __init__(self, loop):
        self._loop = loop
        # The WebLoop's own: one browser task per call.
        self._schedule = loop.call_soon
        self._ready = collections.deque()
        self._scheduled = False

    @classmethod
    def install(cls, loop):
        """Takes over ``loop.call_soon``, once."""
        if not isinstance(getattr(loop.call_soon, '__self__', None), cls):
            loop.call_soon = cls(loop).call_soon

    def call_soon(self, callback, *args, context=None):
        handle = asyncio.Handle(callback, args, self._loop, context=context)
        self._ready.append(handle)
        if not self._scheduled:
            self._scheduled = True
            self._schedule(self._run_batch)
        return handle

    def _run_batch(self):
        deadline = time.monotonic() + self.BATCH_SECS
        try:
            while self._ready:
                handle = self._ready.popleft()
                if not handle.cancelled():
                    handle._run()
                if time.monotonic() > deadline:
                    break
        finally:
            # Also after SystemExit, which the WebLoop passes on.
            if self._ready:
                self._schedule(self._run_batch)
            else:
                self._scheduled = False


_main_task = None
_failure = None


def _fail(exc):
    """A peer stream broke: stop the program with that reason, as TCP would."""
    global _failure
    if _failure is None:
        _failure = exc
        if _main_task is not None:
            _main_task.cancel()


async def _start(self):
    """Runtime.start with partyline streams instead of TCP connections."""
    from mpyc import asyncoro

    logging.info(f'Start MPyC runtime v{self.version} (partyline browser transport)')
    m = len(self.parties)
    if m == 1:
        self.start_time = time.time()
        return

    loop = self._loop
    for peer in self.parties:
        peer.protocol = asyncio.Future(loop=loop) if peer.pid == self.pid else None

    async def connect(peer):
        # The lower seat is MPyC's client: it opens the stream and speaks first.
        if peer.pid > self.pid:
            protocol = asyncoro.MessageExchanger(self, peer.pid)
        else:
            protocol = asyncoro.MessageExchanger(self)
        transport = StreamTransport(loop, peer.pid, protocol)
        stream = await _party.stream(peer.pid, transport.on_data, transport.on_end)
        transport.attach(stream)

    await asyncio.gather(*(connect(p) for p in self.parties if p.pid != self.pid))
    await self.parties[self.pid].protocol
    logging.info(f'All {m} parties connected.')
    self.start_time = time.time()


def _run(self, f):
    """Runtime.run that lets the browser's event loop turn while it waits."""
    global _main_task
    _main_task = asyncio.ensure_future(f)
    try:
        return run_sync(_main_task)
    except asyncio.CancelledError:
        if _failure is not None:
            raise _failure from None
        raise


def run(path, args, party):
    """Runs the MPyC program at `path` as party `party.index` of `party.parties`."""
    global _party
    if not can_run_sync():
        raise RuntimeError(
            'this browser cannot pause Python while it waits for the network '
            '(it lacks WebAssembly JavaScript Promise Integration); use a current '
            'Chrome, Edge or Chromium, or join with the partyline command instead')
    _party = party
    # MPyC reads its flags from sys.argv when mpyc.runtime is first imported.
    sys.argv = [path, *args, '-M', str(party.parties), '-I', str(party.index)]
    ReadyQueue.install(asyncio.get_event_loop())
    from mpyc import asyncoro, runtime
    if not runtime.mpc.options.mix32_64bit:
        asyncoro._hop = _hop64
    runtime.Runtime.start = _start
    runtime.Runtime.run = _run
    runpy.run_path(path, run_name='__main__')

