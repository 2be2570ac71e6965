"""Test program: a roster member that breaks MPyC's seat rules.

Run by `partyline join --no-mpyc-flags`, so its own partyline forwards
whatever it opens; the honest parties run MPyC. Usage: seat_attacker.py ATTACK
with ATTACK one of
    wrong-pid        dial the next higher seat, claiming the next lower seat's party id
    second-stream    dial the next higher seat twice, with its own party id
    wrong-direction  dial the next lower seat, with its own party id
Needs a seat with a lower and a higher neighbour. Then it waits until
partyline stops it, or at most 30 seconds.
"""
import os
import socket
import sys

index = int(os.environ['PARTYLINE_INDEX'])
addrs = os.environ['PARTYLINE_ADDRS'].split(',')
assert 0 < index < len(addrs) - 1, f'seat {index} of {len(addrs)} has no neighbour on both sides'


def dial(seat, party_id):
    host, port = addrs[seat].rsplit(':', 1)
    sock = socket.create_connection((host, int(port)))
    sock.sendall(party_id.to_bytes(2, 'little'))
    return sock


attack = sys.argv[1]
# Said first: partyline may stop this program as soon as the attack is seen.
print(f'attacking: {attack}', flush=True)
if attack == 'wrong-pid':
    held = [dial(index + 1, index - 1)]
elif attack == 'second-stream':
    held = [dial(index + 1, index)]
    held.append(dial(index + 1, index))
elif attack == 'wrong-direction':
    held = [dial(index - 1, index)]
else:
    sys.exit(f'unknown attack {attack!r}')
held[0].settimeout(30)
try:
    held[0].recv(1)
except OSError:
    pass
