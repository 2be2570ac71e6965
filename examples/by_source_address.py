"""A secure sum that identifies its peers the way HTTP-based MPC libraries do.

Every party runs a small HTTP server on its own address and sends each
message in a POST of its own, with a header naming the port it listens on.
The receiver tells who sent a message only by the connection's source address
plus that advertised port, looked up in the party list; anything else is
refused as an unknown sender. This works over plain IP, WireGuard or
Tailscale, where every party has one address that all others see, and over
partyline on Linux, where party k is 127.X.Y.(k+1) on every machine and a
connection from party k comes from that address.

The computation: each party splits its input into random additive shares
modulo 2**32 and sends share j to party j (round 1); each party sends the sum
of the shares it holds to every party (round 2); everyone prints
    sum: S
Party i's input is PARTYLINE_INPUT, or (i+1)*1000 + 7.

Usage, with partyline (which sets PARTYLINE_ADDRS and PARTYLINE_INDEX):
    partyline join INVITE --no-mpyc-flags -- python3 examples/by_source_address.py
Without partyline, one process per party:
    python3 by_source_address.py --addrs 127.0.0.1:9001,127.0.0.1:9002 --index 0
"""

import argparse
import asyncio
import os
import secrets
import sys

MODULUS = 2**32
PORT_HEADER = 'x-party-port'
TIMEOUT = 120


def party_list():
    """The parties' (host, port) in index order, our index, and the list as given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--addrs', default=os.environ.get('PARTYLINE_ADDRS'))
    parser.add_argument('--index', type=int, default=os.environ.get('PARTYLINE_INDEX'))
    args = parser.parse_args()
    if args.addrs is None or args.index is None:
        parser.error('give --addrs and --index, or run under partyline')
    addrs = []
    for entry in args.addrs.split(','):
        host, port = entry.rsplit(':', 1)
        addrs.append((host, int(port)))
    return addrs, int(args.index), args.addrs


class Party:
    def __init__(self, addrs, index):
        self.addrs = addrs
        self.index = index
        self.by_source = {addr: k for k, addr in enumerate(addrs)}
        self.received = {1: {}, 2: {}}
        self.arrived = asyncio.Condition()
        self.unknown = []

    async def serve(self, reader, writer):
        """One HTTP request: POST /round/R with our sender's port in a header."""
        try:
            request = (await reader.readline()).decode().split()
            headers = {}
            while (line := (await reader.readline()).decode().strip()):
                name, _, value = line.partition(':')
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get('content-length', 0)))
            source_host = writer.get_extra_info('peername')[0]
            claimed = (source_host, int(headers.get(PORT_HEADER, 0)))
            sender = self.by_source.get(claimed)
            if sender is None or sender == self.index:
                self.unknown.append(claimed)
                print(f'unknown sender {claimed[0]}:{claimed[1]}', file=sys.stderr, flush=True)
                writer.write(b'HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n')
            else:
                round_ = int(request[1].rsplit('/', 1)[1])
                async with self.arrived:
                    self.received[round_][sender] = int(body)
                    self.arrived.notify_all()
                writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')
            await writer.drain()
        finally:
            writer.close()

    async def send(self, to, round_, value):
        """POSTs `value` to party `to`, retrying while its server starts."""
        host, port = self.addrs[to]
        body = str(value).encode()
        while True:
            try:
                reader, writer = await asyncio.open_connection(host, port)
                break
            except ConnectionRefusedError:
                await asyncio.sleep(0.1)
        own_port = self.addrs[self.index][1]
        writer.write(
            f'POST /round/{round_} HTTP/1.1\r\nHost: {host}:{port}\r\n'
            f'{PORT_HEADER}: {own_port}\r\nContent-Length: {len(body)}\r\n'
            f'Connection: close\r\n\r\n'.encode() + body
        )
        await writer.drain()
        status = (await reader.readline()).decode().split()
        writer.close()
        if status[1:2] != ['200']:
            raise RuntimeError(f'party {to} refused our round {round_} message: {status}')

    async def collect(self, round_):
        """Waits until every other party's message of `round_` has arrived."""
        others = len(self.addrs) - 1
        async with self.arrived:
            await self.arrived.wait_for(
                lambda: len(self.received[round_]) == others or self.unknown
            )
        if self.unknown:
            raise RuntimeError(f'refused messages from unknown senders: {self.unknown}')
        return sum(self.received[round_].values())

    async def run(self, value):
        n = len(self.addrs)
        host, port = self.addrs[self.index]
        server = await asyncio.start_server(self.serve, host, port)
        async with server:
            shares = [secrets.randbelow(MODULUS) for _ in range(n - 1)]
            shares.append((value - sum(shares)) % MODULUS)
            others = [j for j in range(n) if j != self.index]
            await asyncio.gather(*(self.send(j, 1, shares[j]) for j in others))
            partial = (shares[self.index] + await self.collect(1)) % MODULUS
            await asyncio.gather(*(self.send(j, 2, partial) for j in others))
            return (partial + await self.collect(2)) % MODULUS


def main():
    addrs, index, given = party_list()
    value = int(os.environ.get('PARTYLINE_INPUT', (index + 1) * 1000 + 7))
    print('addrs:', given, flush=True)
    try:
        total = asyncio.run(asyncio.wait_for(Party(addrs, index).run(value), TIMEOUT))
    except (RuntimeError, asyncio.TimeoutError) as e:
        print(f'party {index}: {e!r}', file=sys.stderr)
        sys.exit(1)
    print('sum:', total, flush=True)


if __name__ == '__main__':
    main()
