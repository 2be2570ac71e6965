"""partyline's hook: the party's program listens on the socket partyline bound.

partyline binds the program's address (PARTYLINE_ADDR, on loopback) itself,
keeps the socket open for the program (its file descriptor is in
PARTYLINE_LISTEN_FD; with several ports, every port's is in
PARTYLINE_LISTEN_FDS) and puts this file first on PYTHONPATH. MPyC 0.11 calls
`loop.create_server(factory, port=PORT)` with no host, which would listen on
every interface; here that call (host None, the handed socket's port) serves
on the handed socket instead, as does one naming the handed socket's own
host (a program listening on PARTYLINE_ADDR), so only local processes (partyline's tunnels) can reach the program,
and no other process can take the port first. A connection from a process
of another local user is closed before the program sees a byte of it: on a
shared machine, another account could otherwise connect to the loopback port
first and claim a seat. Nothing else changes.

A sitecustomize module the user or the system had is run after this one.
"""

import os
import socket
import sys


def _handed_sockets():
    """The listening TCP sockets partyline handed over: one per port."""
    fds = os.environ.get("PARTYLINE_LISTEN_FDS") or os.environ.get("PARTYLINE_LISTEN_FD", "")
    sockets = [_handed_socket(fd) for fd in fds.split(",") if fd]
    return [sock for sock in sockets if sock is not None]


def _handed_socket(fd):
    """The listening TCP socket at descriptor `fd`, or None."""
    try:
        sock = socket.socket(fileno=int(fd))
    except (ValueError, OSError):
        # Not a socket here: a process started by the program inherits the
        # variable but not the socket.
        return None
    listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    if sock.type != socket.SOCK_STREAM or not listening:
        sock.detach()
        return None
    # Processes the program starts must not hold the program's port open.
    sock.set_inheritable(False)
    return sock


def _owner_uid(client, server):
    """The uid owning the loopback TCP socket at `client` connected to `server`.

    Linux lists every TCP socket in /proc/net/tcp with its owner; the
    connecting side's entry has the client address as its local end.
    """
    def hex_addr(addr):
        return "%08X:%04X" % (int.from_bytes(socket.inet_aton(addr[0]), "little"), addr[1])

    local, remote = hex_addr(client), hex_addr(server)
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            if fields[1] == local and fields[2] == remote:
                return int(fields[7])
    return None


class _SameUserOnly:
    """Wraps the program's protocol: connections from other users never reach it."""

    def __init__(self, inner):
        self._inner = inner

    def connection_made(self, transport):
        client = transport.get_extra_info("peername")
        server = transport.get_extra_info("sockname")
        try:
            uid = _owner_uid(client, server)
        except (OSError, TypeError, ValueError):
            uid = None
        if uid != os.getuid():
            sys.stderr.write(
                "partyline: refused a connection to the program from %s (uid %s): "
                "not this user's\n" % (client, uid)
            )
            transport.abort()
            self._inner = None
            return
        self._inner.connection_made(transport)

    def connection_lost(self, exc):
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def _serve_on_handed_sockets(handed):
    import asyncio.base_events

    handed_host = handed[0].getsockname()[0]
    original = asyncio.base_events.BaseEventLoop.create_server
    unused = {sock.getsockname()[1]: sock for sock in handed}

    async def create_server(self, protocol_factory, host=None, port=None, **kwargs):
        ours = host is None or host == handed_host
        if ours and port in unused and kwargs.get("sock") is None:
            kwargs.pop("sock", None)

            def same_user_only():
                return _SameUserOnly(protocol_factory())

            return await original(self, same_user_only, sock=unused.pop(port), **kwargs)
        return await original(self, protocol_factory, host, port, **kwargs)

    asyncio.base_events.BaseEventLoop.create_server = create_server
    # MPyC would otherwise pick uvloop when it is installed, whose event loop
    # does not go through asyncio's create_server (and so would fail to bind
    # the port partyline holds).
    os.environ.setdefault("MPYC_NOUVLOOP", "1")


def _run_next_sitecustomize():
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


_handed = _handed_sockets()
if _handed:
    _serve_on_handed_sockets(_handed)
del _handed
_run_next_sitecustomize()
