"""Secure sums, one a second: a session that lasts while its browser party's
tab is in the background (web/tests/browser_party.mjs).

Usage: python rounds.py ROUNDS [MPyC options]; every party prints
"round i: S" with S the sum of all parties' (pid + 1) * i.
"""

import asyncio
import sys

from mpyc.runtime import mpc


async def main():
    rounds = int(sys.argv[1])
    await mpc.start()
    secint = mpc.SecInt(32)
    for i in range(rounds):
        shares = mpc.input(secint((mpc.pid + 1) * i))
        print(f'round {i}: {await mpc.output(mpc.sum(shares))}', flush=True)
        await asyncio.sleep(1)
    await mpc.shutdown()


mpc.run(main())
