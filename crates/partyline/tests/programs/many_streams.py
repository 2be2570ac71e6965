"""Test program (generic, run with --no-mpyc-flags): several connections to
every other party, in both directions.

Party i accepts on the listening socket partyline hands it
(PARTYLINE_LISTEN_FD), connects twice to
every other party's tunnel end and sends its index on each connection, and
accepts the same number of connections from the others. Prints
'heard: [indices]' with the index read on every accepted connection, sorted.
With a FIFO as first argument, party 0 first prints 'tunnels: ADDRS' and waits
until the test writes a line to it.
"""
import os
import socket
import sys
import threading

index = int(os.environ['PARTYLINE_INDEX'])
addrs = [a.rsplit(':', 1) for a in os.environ['PARTYLINE_ADDRS'].split(',')]
others = [j for j in range(len(addrs)) if j != index]
PER_PEER = 2

if index == 0 and len(sys.argv) > 1:
    print('tunnels:', os.environ['PARTYLINE_ADDRS'], flush=True)
    with open(sys.argv[1]) as fifo:
        fifo.readline()

listener = socket.socket(fileno=int(os.environ['PARTYLINE_LISTEN_FD']))
heard = []


def accept_all():
    for _ in range(PER_PEER * len(others)):
        conn, _ = listener.accept()
        with conn:
            heard.append(int(conn.makefile().readline()))


receiver = threading.Thread(target=accept_all)
receiver.start()
for j in others:
    for _ in range(PER_PEER):
        with socket.create_connection((addrs[j][0], int(addrs[j][1]))) as conn:
            conn.sendall(f'{index}\n'.encode())
receiver.join(timeout=60)
print('heard:', sorted(heard), flush=True)
