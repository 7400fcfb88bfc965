#!/usr/bin/env python3
"""Server fan-out: `poetry serve --async` pacing N clients (default 10,000) at 100 B every 0.1 s; reports how late
the sends were against their deadlines (the server measures each send; the load comes from the raw-epoll client).
Usage: Benchmarks/serve_lateness.py [--count 10000]
"""
import argparse
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import ROOT, build_c_client, build_release, free_port, machine, raise_fd_limit, wait_for_port


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10000)
    opts = parser.parse_args()
    raise_fd_limit(opts.count * 2 + 100)
    poetry = build_release()
    client = build_c_client()
    port = free_port()
    server = subprocess.Popen([poetry, "serve", "--async", "--report-lateness", "--port", str(port), "--num-bytes", "100",
                               "--delay", "0.1", os.path.join(ROOT, "poetry/ecstasy.txt")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for_port(port)
    out = subprocess.run([client, str(port), str(opts.count)], capture_output=True, text=True)
    server.send_signal(signal.SIGTERM)
    _, err = server.communicate(timeout=10)
    print(f"Machine: {machine()}.")
    print(f"client: {out.stdout.strip()}")
    print(f"server: {err.strip()}")


if __name__ == "__main__":
    main()
