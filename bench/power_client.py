#!/usr/bin/env python3
"""Latency of pdudaemon's TCP protocol (`PDU PORT on`, no terminator, answer then close) against
any server that speaks it: lava-power's gateway or pdudaemon itself. Used by bench/power.sh.

    power_client.py HOST PORT PDU sequential N      -> p50/p99 of N one-at-a-time requests
    power_client.py HOST PORT PDU concurrent N      -> N requests at once over outlets 1..8
"""
import socket
import statistics
import sys
import threading
import time


def request(host, port, pdu, outlet, action="on"):
    t0 = time.perf_counter()
    s = socket.create_connection((host, port), timeout=120)
    s.sendall(f"{pdu} {outlet} {action}".encode())
    reply = s.recv(16384)
    s.close()
    return time.perf_counter() - t0, reply.strip() == b"ack"


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def main():
    host, port, pdu, mode, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
    if mode == "sequential":
        for _ in range(20):  # warm-up
            request(host, port, pdu, 1)
        lat, bad = [], 0
        for i in range(n):
            t, ok = request(host, port, pdu, i % 8 + 1)
            lat.append(t)
            bad += not ok
        print(f"sequential n={n} p50={pct(lat, 50)*1000:.2f}ms p99={pct(lat, 99)*1000:.2f}ms "
              f"mean={statistics.mean(lat)*1000:.2f}ms failed={bad}")
    else:
        results = [None] * n
        def one(i):
            try:
                results[i] = request(host, port, pdu, i % 8 + 1)
            except OSError as e:
                results[i] = (0.0, False)
        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        ok = sum(1 for r in results if r and r[1])
        lat = [r[0] for r in results if r and r[1]] or [0.0]
        print(f"concurrent n={n} answered_ack={ok} wall={wall:.2f}s p50={pct(lat, 50)*1000:.0f}ms "
              f"p99={pct(lat, 99)*1000:.0f}ms")


if __name__ == "__main__":
    main()
