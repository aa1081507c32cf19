#!/usr/bin/env python3
"""The kernel's share of a fan-out on this machine: 100 loopback TCP connections, and the time
one thread takes to write one 275-byte message to each of them (TCP_NODELAY on the writing
side, the reading side registered in an epoll set and not reading meanwhile, as the `chill
serve` bench's client does while its reads are held). Prints p50 / p90 / p99 over 300 rounds.

Usage: python3 benches/loopback_writes.py
"""

import select
import socket
import time

CONNECTIONS = 100
ROUNDS = 300
MESSAGE = b"x" * 275


def main():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(CONNECTIONS)
    readers, writers = [], []
    for _ in range(CONNECTIONS):
        reader = socket.create_connection(listener.getsockname())
        reader.setblocking(False)
        readers.append(reader)
        writer, _ = listener.accept()
        writer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        writers.append(writer)
    ready = select.epoll()
    for reader in readers:
        ready.register(reader.fileno(), select.EPOLLIN | select.EPOLLET)
    rounds = []
    for _ in range(ROUNDS):
        time.sleep(0.01)
        for reader in readers:
            try:
                reader.recv(65536)
            except BlockingIOError:
                pass
        start = time.perf_counter_ns()
        for writer in writers:
            writer.send(MESSAGE)
        rounds.append((time.perf_counter_ns() - start) / 1000)
    rounds.sort()
    pick = lambda q: rounds[min(len(rounds) - 1, int(q * len(rounds)))]
    print(
        f"{CONNECTIONS} writes of {len(MESSAGE)} bytes, one thread: "
        f"p50 {pick(0.5):.0f} µs, p90 {pick(0.9):.0f} µs, p99 {pick(0.99):.0f} µs"
    )


if __name__ == "__main__":
    main()
