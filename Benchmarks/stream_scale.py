#!/usr/bin/env python3
"""Gateway streaming at scale: N concurrent /api/fetch streams (async, one poem each from a reactor-edition poetry
server in its own process), driven by poetry-bench on the project's own reactor. Reports completions, the
gateway's memory per stream and the p99 event delay. N defaults to 9,990: the gateway holds two descriptors per
stream plus a few of its own, and this machine's hard limit is 20,000 (10,000 streams would need 20,000 + 8).
Usage: Benchmarks/stream_scale.py [--count 9990]
"""
import argparse
import os
import resource
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import ROOT, build_release, free_port, machine, wait_for_port


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=9990)
    opts = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    poetry = build_release()
    subprocess.run(["swift", "build", "-c", "release", "--product", "PoetryBench"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    bench = os.path.join(ROOT, ".build/release/PoetryBench")
    pport, gport = free_port(), free_port()
    server = subprocess.Popen([poetry, "serve", "--async", "--threads", "1", "--port", str(pport), "--num-bytes", "100", "--delay", "0.1",
                               os.path.join(ROOT, "poetry/ecstasy.txt")], stdout=subprocess.DEVNULL)
    gateway = subprocess.Popen([poetry, "gateway", "--port", str(gport), "--max-connections", "20000",
                                "--public-dir", os.path.join(ROOT, "public"), "--poetry-dir", os.path.join(ROOT, "poetry")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(pport)
        wait_for_port(gport)
        idle = rss_kb(gateway.pid)
        peak = [idle]
        done = threading.Event()

        def watch():
            while not done.is_set():
                peak[0] = max(peak[0], rss_kb(gateway.pid))
                time.sleep(0.05)
        watcher = threading.Thread(target=watch)
        watcher.start()
        out = subprocess.run([bench, "streams", str(gport), str(pport), str(opts.count)], capture_output=True, text=True)
        done.set()
        watcher.join()
        print(f"Machine: {machine()}. {opts.count} concurrent streams, each one poem of 3,003 bytes at 100 B every 0.1 s.")
        print(out.stdout.strip() or out.stderr.strip())
        import urllib.request
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{gport}/metrics").read().decode()
        delays = {line.split()[0]: float(line.split()[1]) for line in metrics.splitlines()
                  if line.startswith("poetry_stream_event_delay_seconds")}
        p50 = delays.get('poetry_stream_event_delay_seconds{quantile="0.5"}', 0) * 1000
        p99 = delays.get('poetry_stream_event_delay_seconds{quantile="0.99"}', 0) * 1000
        count = delays.get("poetry_stream_event_delay_seconds_count", 0)
        print(f"in-gateway event delay (bytes arrived -> chunk written): p50 {p50:.1f} ms, p99 {p99:.1f} ms "
              f"(0.1 ms buckets, {count:.0f} events)")
        print(f"gateway RSS: idle {idle / 1024:.1f} MB, peak {peak[0] / 1024:.1f} MB, "
              f"{(peak[0] - idle) * 1024 / opts.count:.0f} bytes per stream")
    finally:
        gateway.terminate()
        server.terminate()
        gateway.wait()
        server.wait()


if __name__ == "__main__":
    main()
