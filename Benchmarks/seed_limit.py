#!/usr/bin/env python3
"""The physical limit of the lesson: the seed's scenario with its real delays (ecstasy at 30 bytes, fascination
and science at 10, every 0.1 s, on the seed's blocking servers). Async should take about the slowest poem's send
time, blocking about the sum.
Usage: Benchmarks/seed_limit.py
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import ROOT, build_release, free_port, wait_for_port


def seconds(text):
    h, m, s = re.search(r"Got 3 poems in (\d+):(\d+):([\d.]+)", text).groups()
    return int(h) * 3600 + int(m) * 60 + float(s)


def main():
    poetry = build_release()
    plan = [("ecstasy.txt", 30), ("fascination.txt", 10), ("science.txt", 10)]
    servers, ports, send_times = [], [], []
    for poem, num_bytes in plan:
        port = free_port()
        path = os.path.join(ROOT, "poetry", poem)
        servers.append(subprocess.Popen([poetry, "serve", "--port", str(port), "--num-bytes", str(num_bytes), path],
                                        stdout=subprocess.DEVNULL))
        ports.append(str(port))
        size = os.path.getsize(path)
        send_times.append(-(-size // num_bytes) * 0.1)  # the seed sleeps after every send, the last included
    try:
        for port in ports:
            wait_for_port(int(port))
        results = {}
        for mode in ("blocking", "async"):
            out = subprocess.run([poetry, "get", f"--{mode}", "--quiet"] + ports, capture_output=True, text=True, check=True).stdout
            results[mode] = seconds(out)
    finally:
        for server in servers:
            server.terminate()
    slowest, total = max(send_times), sum(send_times)
    print(f"send time of the slowest poem {slowest:.2f} s, of all three {total:.2f} s")
    print(f"async    {results['async']:.3f} s = {results['async'] / slowest:.4f} × the slowest ({(results['async'] / slowest - 1) * 100:+.2f} %)")
    print(f"blocking {results['blocking']:.3f} s = {results['blocking'] / total:.4f} × the sum ({(results['blocking'] / total - 1) * 100:+.2f} %)")
    print(f"speedup of async over blocking: {results['blocking'] / results['async']:.2f}×")


if __name__ == "__main__":
    main()
