"""Test program: many rounds of secure multiplication until stopped.

Prints 'running' once all parties are connected, then keeps computing for at
most a minute, so a test can stop one party while the others are mid-run.
"""
import time

from mpyc.runtime import mpc


async def main():
    await mpc.start()
    print('running', flush=True)
    secint = mpc.SecInt(32)
    x = secint(1)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        x = x * secint(1)
        await mpc.output(x)
    await mpc.shutdown()


mpc.run(main())
