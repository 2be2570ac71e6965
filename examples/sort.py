"""Secure sorting: the parties sort all their private numbers together.

Every party contributes `n` private 32-bit integers (default 16), derived
deterministically from its index so that runs are reproducible; MPyC sorts the
secret-shared list of all parties' numbers with a fixed sorting network, and
every party prints the sorted list. The number of rounds and bytes depends
only on `n` and the number of parties, which makes this a steady, round-bound
workload for benchmarks.

Usage: python sort.py [n] [MPyC options]
For example:
    python sort.py -M1                             (one party, no network)
    python sort.py 16 -M3 -I0 -P localhost:11365 -P localhost:11366 -P localhost:11367
                                                   (party 0 of 3; start -I1 and -I2 likewise)
"""

import random
import sys

from mpyc.runtime import mpc


def private_numbers(pid, n):
    """Return party pid's n private numbers."""
    rng = random.Random(f'partyline sort {pid}')
    return [rng.randrange(-2**31, 2**31) for _ in range(n)]


async def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    await mpc.start()
    secint = mpc.SecInt(32)
    mine = [secint(x) for x in private_numbers(mpc.pid, n)]
    everyone = [x for pid in range(len(mpc.parties)) for x in mpc.input(mine, senders=pid)]
    result = await mpc.output(mpc.sorted(everyone))
    print(f'sorted: {result}')
    await mpc.shutdown()


mpc.run(main())
