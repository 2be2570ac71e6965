"""Test program: a fixed number of rounds, then a sum the test can check.

Prints 'running' once all parties are connected, then runs ROUNDS (the first
argument) secure multiplications one after another, each needing every party,
so a test can stall a party mid-run. Prints 'longest round: SECONDS' (how
long the longest of them took) and 'sum: S' (the sum of the parties' indices).
"""
import sys
import time

from mpyc.runtime import mpc


async def main():
    rounds = int(sys.argv[1])
    await mpc.start()
    print('running', flush=True)
    secint = mpc.SecInt(32)
    x = secint(1)
    longest = 0.0
    for _ in range(rounds):
        began = time.monotonic()
        x = x * secint(1)
        await mpc.output(x)
        longest = max(longest, time.monotonic() - began)
    total = await mpc.output(mpc.sum(mpc.input(secint(mpc.pid))))
    print(f'longest round: {longest:.2f}', flush=True)
    print('sum:', total, flush=True)
    await mpc.shutdown()


mpc.run(main())
