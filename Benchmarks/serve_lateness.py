#!/usr/bin/env python3
"""Server fan-out: `poetry serve --async` pacing N clients (default 10,000) at 100 B every 0.1 s; reports how late
the sends were against their deadlines (the server measures each send; the load comes from the raw-epoll client),
for one reactor thread and for two sharing the port (--threads 2), alternating, with the median of each figure.
Without --threads, `poetry serve --async` runs one reactor per core: the row marked "default" is that count.
Usage: Benchmarks/serve_lateness.py [--count 10000] [--runs 3] [--threads 1,2]
"""
import argparse
import os
import re
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import ROOT, build_c_client, build_release, free_port, machine, median, raise_fd_limit, table, wait_for_port


def run_once(poetry, client, count, threads):
    port = free_port()
    server = subprocess.Popen([poetry, "serve", "--async", "--threads", str(threads), "--report-lateness",
                               "--port", str(port), "--num-bytes", "100", "--delay", "0.1",
                               os.path.join(ROOT, "poetry/ecstasy.txt")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for_port(port)
    out = subprocess.run([client, str(port), str(count)], capture_output=True, text=True)
    server.send_signal(signal.SIGTERM)
    _, err = server.communicate(timeout=20)
    pacing = re.search(r"p50 ([\d.]+) ms, p90 ([\d.]+) ms, p99 ([\d.]+) ms, worst ([\d.]+) ms", err)
    wall = re.search(r"in ([\d.]+) s", out.stdout)
    if not pacing or not wall or "0 failed" not in out.stdout:
        raise RuntimeError(f"run failed: {out.stdout.strip()} {err.strip()[-300:]}")
    return [float(x) for x in pacing.groups()] + [float(wall.group(1))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", default="1,2")
    opts = parser.parse_args()
    raise_fd_limit(opts.count * 2 + 100)
    poetry = build_release()
    client = build_c_client()
    variants = [int(t) for t in opts.threads.split(",")]
    results = {t: [] for t in variants}
    for run in range(opts.runs):
        for threads in variants:
            figures = run_once(poetry, client, opts.count, threads)
            results[threads].append(figures)
            print(f"run {run + 1}, {threads} thread(s): p50 {figures[0]} ms, p90 {figures[1]} ms, p99 {figures[2]} ms, "
                  f"worst {figures[3]} ms, client done in {figures[4]} s", flush=True)
    print(f"\nMachine: {machine()}. {opts.count} clients, 31 sends each; medians of {opts.runs} runs.\n")
    cores = len(os.sched_getaffinity(0))
    rows = [[f"{threads}{' (default here)' if threads == min(cores, 64) else ''}", *(f"{median([r[i] for r in runs]):.1f}" for i in range(4)), f"{median([r[4] for r in runs]):.2f}"]
            for threads, runs in results.items()]
    print(table(["reactor threads", "p50 ms", "p90 ms", "p99 ms", "worst ms", "client wall s"], rows))


if __name__ == "__main__":
    main()
