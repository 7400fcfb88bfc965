#!/usr/bin/env python3
"""Async client fan-out: `poetry get --async` fetching N poems at once from one reactor-edition server
(100 B every 0.1 s: 31 sends, 3.1 s a poem), against a raw-epoll C client doing the same and, with --peers, the
Python clients people use for this (asyncio, uvloop, Twisted; from PyPI in Benchmarks/.venv), alternating.
Reports client CPU (user + system) and peak RSS, and select/poll against epoll at 1,000 (with the C client's own
poll against its epoll beside it: what poll(2) costs with no framework around it).
Usage: Benchmarks/fanout_bench.py [--count 10000] [--rounds 3] [--peers asyncio,uvloop,twisted]
"""
import argparse
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import ROOT, build_c_client, build_release, python_peers_env, free_port, machine, median, raise_fd_limit, table, wait_for_port


def timed(args):
    """Runs a command; returns (user+sys CPU seconds, peak RSS in KB, wall seconds from its own report, stdout)."""
    out = subprocess.run(["/usr/bin/time", "-f", "TIME %U %S %M %e"] + args, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {out.stdout[-300:]} {out.stderr[-300:]}")
    user, system, rss, wall = re.search(r"TIME ([\d.]+) ([\d.]+) (\d+) ([\d.]+)", out.stderr).groups()
    return float(user) + float(system), int(rss), float(wall), out.stdout


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peers", default="", help="comma-separated: asyncio, uvloop, twisted")
    opts = parser.parse_args()
    peers = [p for p in opts.peers.split(",") if p]
    python = python_peers_env([p for p in peers if p != "asyncio"]) if peers else None
    if peers and not python:
        sys.exit("could not install the Python peers from PyPI")
    peer_client = os.path.join(ROOT, "Benchmarks/peers/poetry_client.py")
    raise_fd_limit(opts.count * 2 + 100)
    poetry = build_release()
    client_c = build_c_client()
    port = free_port()
    server = subprocess.Popen([poetry, "serve", "--async", "--port", str(port), "--num-bytes", "100", "--delay", "0.1",
                               os.path.join(ROOT, "poetry/ecstasy.txt")], stdout=subprocess.DEVNULL)
    results = {}
    try:
        wait_for_port(port)
        ours = lambda n, backend="epoll": [poetry, "get", "--async", "--quiet", "--reactor", backend, "--timeout", "60", ",".join([str(port)] * n)]
        idle = timed(ours(1))
        results["idle"] = idle
        for round_ in range(opts.rounds):
            clients = [("poetry get --async (epoll)", ours(opts.count)), ("C raw epoll", [client_c, str(port), str(opts.count)])]
            clients += [(f"Python {peer}", [python, peer_client, peer, str(port), str(opts.count)]) for peer in peers]
            for name, args in clients:
                cpu, rss, wall, out = timed(args)
                assert f"Got {opts.count} poems" in out, out[-200:]
                results.setdefault(name, []).append((cpu, rss, wall))
                print(f"round {round_ + 1} {name}: {cpu:.2f} s CPU, {rss / 1024:.1f} MB peak RSS, {wall:.2f} s wall", flush=True)
            for backend in ("epoll", "poll", "select"):
                cpu, rss, wall, out = timed(ours(1000, backend))
                results.setdefault(f"1,000 with {backend}", []).append((cpu, rss, wall))
                print(f"round {round_ + 1} 1,000 with {backend}: {cpu:.3f} s CPU, {wall:.2f} s wall", flush=True)
            # The C client's own poll against its epoll: what poll(2) costs with no framework around it.
            for mode in ("epoll", "poll"):
                cpu, rss, wall, out = timed([client_c, str(port), "1000"] + (["poll"] if mode == "poll" else []))
                results.setdefault(f"1,000 C raw {mode}", []).append((cpu, rss, wall))
                print(f"round {round_ + 1} 1,000 C raw {mode}: {cpu:.3f} s CPU, {wall:.2f} s wall", flush=True)
    finally:
        server.terminate()
        server.wait()

    print(f"\nMachine: {machine()}. {opts.count} poems of 3,003 bytes, 100 B every 0.1 s; medians of {opts.rounds} rounds.\n")
    rows = []
    for name, runs in results.items():
        if name == "idle":
            continue
        rows.append([name, f"{median([r[0] for r in runs]):.2f}", f"{median([r[1] for r in runs]) / 1024:.1f}", f"{median([r[2] for r in runs]):.2f}"])
    print(table(["client", "CPU s", "peak RSS MB", "wall s"], rows))
    ours_cpu = median([r[0] for r in results["poetry get --async (epoll)"]])
    c_cpu = median([r[0] for r in results["C raw epoll"]])
    ours_rss = median([r[1] for r in results["poetry get --async (epoll)"]])
    per_connection = (ours_rss - results["idle"][1]) * 1024 / opts.count
    print(f"\nclient CPU, ours / raw epoll C: {ours_cpu / c_cpu:.2f}×")
    for peer in peers:
        print(f"client CPU, Python {peer} / ours: {median([r[0] for r in results[f'Python {peer}']]) / ours_cpu:.2f}×")
    print(f"peak RSS over idle ({results['idle'][1] / 1024:.1f} MB): {per_connection:.0f} bytes per connection")
    epoll = median([r[0] for r in results["1,000 with epoll"]])
    for backend in ("poll", "select"):
        print(f"1,000 concurrent, {backend} / epoll CPU: {median([r[0] for r in results[f'1,000 with {backend}']]) / epoll:.2f}×")
    c_epoll = median([r[0] for r in results["1,000 C raw epoll"]])
    c_poll = median([r[0] for r in results["1,000 C raw poll"]])
    print(f"1,000 concurrent, the C client's poll / its epoll CPU: {c_poll / c_epoll:.2f}× (poll(2) with no framework around it); "
          f"ours with poll / C with poll: {median([r[0] for r in results['1,000 with poll']]) / c_poll:.2f}×")


if __name__ == "__main__":
    main()
