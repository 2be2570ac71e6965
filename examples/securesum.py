"""Secure sum, product and maximum of one private integer per party.

Party i's private input is, in order of preference: the environment variable
PARTYLINE_INPUT, the i-th of the values given on the command line, or
(i+1)*1000 + 7.  Inputs are signed 32-bit integers.  All three results are
computed exactly on secret shares and opened to every party, which prints
    sum: S
    product: P
    max: M

Usage: python securesum.py [values...] [MPyC options]
For example:
    python securesum.py -M1                        (one party, no network)
    python securesum.py 5 -3 8 -M3                 (3 local processes; shows party 0's output)
    python securesum.py -M3 -I0 -P localhost:11365 -P localhost:11366 -P localhost:11367
                                                   (party 0 of 3; start -I1 and -I2 likewise)
"""

import os
import sys

from mpyc.runtime import mpc

INPUT_BITS = 32


def private_input():
    """Return this party's private input."""
    if 'PARTYLINE_INPUT' in os.environ:
        return int(os.environ['PARTYLINE_INPUT'])
    values = sys.argv[1:]
    if mpc.pid < len(values):
        return int(values[mpc.pid])
    return (mpc.pid + 1) * 1000 + 7


async def main():
    x = private_input()
    if not -2**(INPUT_BITS - 1) <= x < 2**(INPUT_BITS - 1):
        sys.exit(f'input {x} is not a signed {INPUT_BITS}-bit integer')

    m = len(mpc.parties)
    secint = mpc.SecInt(INPUT_BITS + m.bit_length())  # large enough for the sum of m inputs
    secint_prod = mpc.SecInt(INPUT_BITS * m + 1)      # large enough for the product of m inputs

    await mpc.start()
    xs = mpc.input(secint(x))
    ys = mpc.input(secint_prod(x))
    total = mpc.output(mpc.sum(xs))
    product = mpc.output(mpc.prod(ys))
    maximum = mpc.output(mpc.max(xs))
    total, product, maximum = await total, await product, await maximum
    await mpc.shutdown()
    print(f'sum: {total}')
    print(f'product: {product}')
    print(f'max: {maximum}')


if __name__ == '__main__':
    mpc.run(main())
