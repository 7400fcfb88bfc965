#!/usr/bin/env python3
"""Slow and idle clients: 1,000 connections trickling their request heads a byte a second and 1,000 idle keep-alive
connections, while a normal client keeps asking GET /healthz. Reports the normal client's latency (p50/p99) and
when the slow ones were closed (the header timeout is set to 5 s for the run).
Usage: Benchmarks/slow_clients.py [--slow 1000] [--idle 1000] [--seconds 8]
"""
import argparse
import http.client
import os
import resource
import selectors
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import ROOT, build_release, free_port, machine, wait_for_port


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--slow", type=int, default=1000)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--header-timeout", type=float, default=5)
    opts = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * (opts.slow + opts.idle) + 100), hard))
    poetry = build_release()
    port = free_port()
    gateway = subprocess.Popen([poetry, "gateway", "--port", str(port), "--header-timeout", str(opts.header_timeout),
                                "--public-dir", os.path.join(ROOT, "public"), "--poetry-dir", os.path.join(ROOT, "poetry")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        idle = []
        for _ in range(opts.idle):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            s.recv(4096)
            idle.append(s)
        selector = selectors.DefaultSelector()
        head = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 10000
        slow = {}
        start = time.monotonic()
        for _ in range(opts.slow):
            s = socket.create_connection(("127.0.0.1", port))
            s.setblocking(False)
            slow[s] = {"sent": 0, "closed_at": None}
            selector.register(s, selectors.EVENT_READ)
        latencies = []
        normal = http.client.HTTPConnection("127.0.0.1", port)
        next_drip = start
        while time.monotonic() - start < opts.seconds:
            now = time.monotonic()
            if now >= next_drip:
                for s, state in slow.items():
                    if state["closed_at"] is None:
                        try:
                            s.send(head[state["sent"]:state["sent"] + 1])
                            state["sent"] += 1
                        except OSError:
                            state["closed_at"] = now - start
                next_drip += 1.0
            for key, _ in selector.select(timeout=0):
                state = slow[key.fileobj]
                try:
                    data = key.fileobj.recv(4096)
                except OSError:
                    data = b""
                if not data and state["closed_at"] is None:
                    state["closed_at"] = time.monotonic() - start
                    selector.unregister(key.fileobj)
                elif data and b"408" in data[:20] and state["closed_at"] is None:
                    pass
            t0 = time.monotonic()
            normal.request("GET", "/healthz")
            normal.getresponse().read()
            latencies.append(time.monotonic() - t0)
            time.sleep(0.005)
        closed = [s["closed_at"] for s in slow.values() if s["closed_at"] is not None]
        latencies.sort()
        p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
        print(f"Machine: {machine()}. {opts.slow} slow heads (1 byte/s), {opts.idle} idle keep-alive connections, "
              f"header timeout {opts.header_timeout} s, {opts.seconds} s run.")
        print(f"normal client: {len(latencies)} requests, p50 {p(0.5):.2f} ms, p99 {p(0.99):.2f} ms, max {latencies[-1] * 1000:.2f} ms")
        if closed:
            print(f"slow clients closed by the server: {len(closed)}/{opts.slow}, between {min(closed):.1f} s and {max(closed):.1f} s")
        else:
            print(f"slow clients closed by the server: 0/{opts.slow}")
    finally:
        gateway.terminate()
        gateway.wait()


if __name__ == "__main__":
    main()
