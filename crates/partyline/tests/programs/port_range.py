"""Test program (generic, run with --no-mpyc-flags --ports N): one port per purpose.

Party i listens on each of its PARTYLINE_PORTS consecutive ports from
PARTYLINE_ADDR's (asyncio with the own host, which partyline's hook serves on
the handed sockets), connects to every other party once on each of its ports
and sends 'i offset', and answers each connection with its own index and the
port offset it was reached on. It prints
    index: i
    heard: [(sender, offset), ...]   every connection it accepted, sorted
    answers: [(peer, offset), ...]   every answer it got, sorted
"""
import asyncio
import os
import sys

index = int(os.environ['PARTYLINE_INDEX'])
ports = int(os.environ['PARTYLINE_PORTS'])
addrs = [(h, int(p)) for h, p in (a.rsplit(':', 1) for a in os.environ['PARTYLINE_ADDRS'].split(','))]
others = [j for j in range(len(addrs)) if j != index]
heard = []
done = asyncio.Event()


def serving(offset):
    async def serve(reader, writer):
        sender, claimed = map(int, (await reader.readline()).split())
        heard.append((sender, claimed if claimed == offset else -1))
        writer.write(f'{index} {offset}\n'.encode())
        await writer.drain()
        writer.close()
        if len(heard) == ports * len(others):
            done.set()
    return serve


async def ask(j, offset):
    host, port = addrs[j]
    reader, writer = await asyncio.open_connection(host, port + offset)
    writer.write(f'{index} {offset}\n'.encode())
    await writer.drain()
    answer = tuple(map(int, (await reader.readline()).split()))
    writer.close()
    return answer


async def main():
    host, port = addrs[index]
    servers = [await asyncio.start_server(serving(o), host, port + o) for o in range(ports)]
    answers = await asyncio.gather(*(ask(j, o) for j in others for o in range(ports)))
    await asyncio.wait_for(done.wait(), 60)
    for server in servers:
        server.close()
    print('index:', index, flush=True)
    print('heard:', sorted(heard), flush=True)
    print('answers:', sorted(answers), flush=True)


try:
    asyncio.run(main())
except Exception as e:
    print(f'party {index}: {e!r}', file=sys.stderr)
    sys.exit(1)
