"""Secret Santa: the parties jointly draw a uniformly random derangement.

Every party contributes to n secret random sort keys, and the indices 0..n-1
are sorted obliviously by these keys, which gives a secret, uniformly random
permutation.  A single secure zero test then checks that all keys were
distinct and that the permutation has no fixed points; if not, the draw is
repeated.  Only the final derangement is opened: person i gives a present
to person derangement[i].

Usage: python secretsanta.py [n] [MPyC options]
n defaults to the number of parties, but is at least 3.  For example:
    python secretsanta.py -M1                      (one party, no network)
    python secretsanta.py 8 -M3                    (3 local processes; shows party 0's output)
    python secretsanta.py -M3 -I0 -P localhost:11365 -P localhost:11366 -P localhost:11367
                                                   (party 0 of 3; start -I1 and -I2 likewise)
"""

import sys

from mpyc.runtime import mpc

KEY_BITS = 31  # random sort keys are in range(2**KEY_BITS)
secint = mpc.SecInt(KEY_BITS + 1)


async def random_derangement(n):
    """Return a secret, uniformly random derangement of range(n) (n >= 2)."""
    while True:
        keys = [mpc.random.getrandbits(secint, KEY_BITS) for _ in range(n)]
        pairs = mpc.sorted([[key, secint(i)] for i, key in enumerate(keys)], key=lambda p: p[0])
        perm = [index for _, index in pairs]
        # In a prime field, the product is zero iff some factor is zero: either two keys
        # are equal (the sorted order would not be uniform) or perm has a fixed point.
        gaps = [b[0] - a[0] for a, b in zip(pairs, pairs[1:])]
        shifts = [perm[i] - i for i in range(n)]
        if not await mpc.is_zero_public(mpc.prod(gaps + shifts)):
            return perm


async def main():
    if len(sys.argv) > 2:
        sys.exit(__doc__)
    n = int(sys.argv[1]) if len(sys.argv) == 2 else max(3, len(mpc.parties))
    if n < 2:
        sys.exit('n must be at least 2: there is no derangement of fewer than 2 elements')

    await mpc.start()
    derangement = await mpc.output(await random_derangement(n))
    await mpc.shutdown()
    print(f'derangement: {derangement}')


if __name__ == '__main__':
    mpc.run(main())
