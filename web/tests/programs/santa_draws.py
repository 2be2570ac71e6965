"""Secret Santa's draw (examples/secretsanta.py), exactly DRAWS times: the
same amount of work in every run, for the figures of web/tests/browser_party.mjs.
secretsanta.py draws until the permutation is a derangement (about 1 in 3
draws for 8 people), so its time swings with luck; this one does not.

Usage: python santa_draws.py DRAWS N [MPyC options]; every party prints
"derangements: K" (how many of the draws were derangements, the same at every
party), "draw ms: T", the mean wall time of a draw at this party, and
"round ms: R", the mean wall time of one round of the network alone (an
opened share, 40 times in a row, before the draws).
"""

import sys
import time

from mpyc.runtime import mpc

ROUNDS = 40
KEY_BITS = 31
secint = mpc.SecInt(KEY_BITS + 1)


async def draw(n):
    """One draw of secretsanta.py's random_derangement: is it a derangement?"""
    keys = [mpc.random.getrandbits(secint, KEY_BITS) for _ in range(n)]
    pairs = mpc.sorted([[key, secint(i)] for i, key in enumerate(keys)], key=lambda p: p[0])
    perm = [index for _, index in pairs]
    gaps = [b[0] - a[0] for a, b in zip(pairs, pairs[1:])]
    shifts = [perm[i] - i for i in range(n)]
    return not await mpc.is_zero_public(mpc.prod(gaps + shifts))


async def main():
    draws, n = int(sys.argv[1]), int(sys.argv[2])
    await mpc.start()
    started = time.perf_counter()
    for _ in range(ROUNDS):
        await mpc.output(secint(1))
    round_ms = (time.perf_counter() - started) * 1000 / ROUNDS
    started = time.perf_counter()
    derangements = 0
    for _ in range(draws):
        derangements += await draw(n)
    draw_ms = (time.perf_counter() - started) * 1000 / draws
    await mpc.shutdown()
    print(f'derangements: {derangements}')
    print(f'draw ms: {draw_ms:.1f}')
    print(f'round ms: {round_ms:.2f}')


if __name__ == '__main__':
    mpc.run(main())
