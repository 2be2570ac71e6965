"""Test program: party 0's secret input, shared and also sent in the clear.

Party 0's input is the integer given as the first argument; the others input
their party id. The parties compute the secure sum and print 'sum: S'. Then
party 0 sends its input to every party as a private MPyC message, once as an
integer and once as a 64 KiB block of its 8 little-endian bytes repeated;
MPyC writes such messages unencrypted (pickled) on its TCP connections, so
only the transport under MPyC protects them. Every party prints
'received: N' and 'block: B bytes' once the block checks out.
"""
import sys

from mpyc.runtime import mpc

COPIES = 8192


async def main():
    secret = int(sys.argv[1])
    await mpc.start()
    secint = mpc.SecInt(64)
    mine = secret if mpc.pid == 0 else mpc.pid
    total = await mpc.output(mpc.sum(mpc.input(secint(mine))))
    print('sum:', total, flush=True)
    sent = (secret, secret.to_bytes(8, 'little') * COPIES) if mpc.pid == 0 else None
    received, block = await mpc.transfer(sent, senders=0)
    print('received:', received, flush=True)
    if block == received.to_bytes(8, 'little') * COPIES:
        print('block:', len(block), 'bytes', flush=True)
    await mpc.shutdown()


mpc.run(main())
