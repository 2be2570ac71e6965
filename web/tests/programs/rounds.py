"""Secure sums, one a second: a session that lasts while its browser party's
tab is in the background (web/tests/browser_party.mjs).

Usage: python rounds.py ROUNDS [BUSY_ROUND BUSY_SECS] [MPyC options]; every
party prints "round i: S" with S the sum of all parties' (pid + 1) * i, and
in round BUSY_ROUND first computes BUSY_SECS seconds without a break, as a
program's own heavy step would (no network round, no await).
"""

import asyncio
import sys
import time

from mpyc.runtime import mpc


async def main():
    rounds = int(sys.argv[1])
    busy_round, busy_secs = (int(a) for a in sys.argv[2:4]) if len(sys.argv) > 3 else (-1, 0)
    await mpc.start()
    secint = mpc.SecInt(32)
    for i in range(rounds):
        if i == busy_round:
            started = time.monotonic()
            while time.monotonic() - started < busy_secs:
                pass
        shares = mpc.input(secint((mpc.pid + 1) * i))
        print(f'round {i}: {await mpc.output(mpc.sum(shares))}', flush=True)
        await asyncio.sleep(1)
    await mpc.shutdown()


mpc.run(main())
