"""Bulk transfer: every party sends a large pseudo-random blob to every other party.

Party i's blob is SHAKE-256("partyline bulk <i>") truncated to the requested size,
so every party can recompute every other party's blob.  The blobs are exchanged
with MPyC's own messaging (mpc.transfer), in chunks of 1 MiB.  Each party prints
    received: <bytes received> bytes, digest: <sha256 of the received blobs, in party order>
    expected: <the same digest, computed locally from the other parties' seeds>
    sent: <bytes sent> bytes
and exits with status 1 if the digests differ.  Byte counts are payload only.

Usage: python bulk.py [megabytes] [MPyC options]     (megabytes defaults to 10; 1 MB = 10**6 bytes)
For example:
    python bulk.py -M1                             (one party, no network)
    python bulk.py 10 -M3 -I0 -P localhost:11365 -P localhost:11366 -P localhost:11367
                                                   (party 0 of 3; start -I1 and -I2 likewise)
"""

import hashlib
import sys

from mpyc.runtime import mpc

CHUNK = 1 << 20


def blob(pid, size):
    """Return the deterministic blob of the given party."""
    return hashlib.shake_256(f'partyline bulk {pid}'.encode()).digest(size)


async def main():
    if len(sys.argv) > 2:
        sys.exit(__doc__)
    size = int(float(sys.argv[1]) * 10**6) if len(sys.argv) == 2 else 10 * 10**6
    m = len(mpc.parties)
    others = [j for j in range(m) if j != mpc.pid]
    mine = blob(mpc.pid, size)

    await mpc.start()
    received = {j: bytearray() for j in others}
    for offset in range(0, size, CHUNK):
        chunks = await mpc.transfer(mine[offset:offset + CHUNK])
        for j in others:
            received[j] += chunks[j]
    await mpc.shutdown()

    digest = hashlib.sha256()
    expected = hashlib.sha256()
    for j in others:
        digest.update(received[j])
        expected.update(blob(j, size))
    nbytes = sum(len(data) for data in received.values())
    print(f'received: {nbytes} bytes, digest: {digest.hexdigest()}')
    print(f'expected: {expected.hexdigest()}')
    print(f'sent: {size * len(others)} bytes')
    if digest.digest() != expected.digest():
        sys.exit('bulk: received data differ from the expected data')


if __name__ == '__main__':
    mpc.run(main())
