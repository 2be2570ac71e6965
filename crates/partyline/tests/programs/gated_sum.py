"""Test program: a secure sum of the parties' indices, with gates for the test.

Party 0 prints 'tunnels: ADDRS' (partyline's PARTYLINE_ADDRS) and waits until
the test writes a line to the FIFO named by the first argument; then it starts
MPyC, prints 'connected' and waits at the FIFO again before computing. The
other parties compute at once. Every party prints 'sum: S'.
"""
import os
import sys

from mpyc.runtime import mpc


def gate():
    with open(sys.argv[1]) as fifo:
        fifo.readline()


async def main():
    party0 = mpc.pid == 0
    if party0:
        print('tunnels:', os.environ['PARTYLINE_ADDRS'], flush=True)
        gate()
    await mpc.start()
    if party0:
        print('connected', flush=True)
        gate()
    secint = mpc.SecInt(16)
    total = await mpc.output(mpc.sum(mpc.input(secint(mpc.pid))))
    print('sum:', total, flush=True)
    await mpc.shutdown()


mpc.run(main())
