#!/usr/bin/env python3
"""Async client fan-out: `poetry get --async PORT PORT …` fetching N poems at once from one reactor-edition server
(100 B every 0.1 s: 31 sends, 3.1 s a poem), the addresses typed as the seed types them (one argument each), against
the tight C client `../shared/bench/epoll_client.c` (one read per readiness event when the read comes back short,
close without EPOLL_CTL_DEL), both printing a line per read (the C client with --print, stdio-buffered), and, with
--peers, the Python clients people use for this (asyncio, uvloop, Twisted; from PyPI in Benchmarks/.venv),
alternating, each round starting with the next client in turn. Reports client CPU (user + system), wall and peak
RSS, and select/poll against epoll at 1,000. `Benchmarks/raw_epoll_client.c` stays for one thing only: its poll
mode against its own epoll mode at 1,000 (what poll(2) costs with no framework around it).
With --reactors epoll,io_uring our client runs once per backend in each round (default: epoll alone); an entry
`io_uring:0` runs it with `--batch-wait 0` (io_uring's waits then wake at the first completion, as epoll's do).
Usage: Benchmarks/fanout_bench.py [--count 10000] [--rounds 3] [--peers asyncio,uvloop,twisted]
       [--reference ../shared/bench/epoll_client.c] [--reactors epoll,io_uring] [--poetry PATH]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import ROOT, build_c_client, build_release, python_peers_env, free_port, machine, median, raise_fd_limit, table, wait_for_port


def timed(args):
    """Runs a command; returns (user+sys CPU seconds, peak RSS in KB, wall seconds, the last 4 KB of stdout and of
    stderr). Standard output goes to a file, not a pipe read by Python, so a client printing a line per read is not
    slowed by this script draining it."""
    with tempfile.TemporaryFile() as stdout:
        out = subprocess.run(["/usr/bin/time", "-f", "TIME %U %S %M %e"] + args, stdout=stdout, stderr=subprocess.PIPE, text=True)
        stdout.seek(max(0, stdout.seek(0, os.SEEK_END) - 4096))
        tail = stdout.read().decode(errors="replace")
    if out.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {tail[-300:]} {out.stderr[-300:]}")
    user, system, rss, wall = re.search(r"TIME ([\d.]+) ([\d.]+) (\d+) ([\d.]+)", out.stderr).groups()
    return float(user) + float(system), int(rss), float(wall), tail + out.stderr[-4096:]


def build_reference_client(source):
    """The tight C client, compiled with gcc -O2 as its header says."""
    path = os.path.join(ROOT, ".build/epoll_client")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    subprocess.run(["gcc", "-O2", "-o", path, source], check=True)
    return path


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peers", default="", help="comma-separated: asyncio, uvloop, twisted")
    parser.add_argument("--reference", default=os.path.join(ROOT, "../shared/bench/epoll_client.c"),
                        help="the tight C client's source")
    parser.add_argument("--poetry", help="a poetry binary already built in release (default: swift build -c release)")
    parser.add_argument("--reactors", default="epoll", help="our client's backends at 10,000, e.g. epoll,io_uring")
    opts = parser.parse_args()
    peers = [p for p in opts.peers.split(",") if p]
    reactors = [r for r in opts.reactors.split(",") if r]
    python = python_peers_env([p for p in peers if p != "asyncio"]) if peers else None
    if peers and not python:
        sys.exit("could not install the Python peers from PyPI")
    peer_client = os.path.join(ROOT, "Benchmarks/peers/poetry_client.py")
    raise_fd_limit(opts.count * 2 + 100)
    poetry = opts.poetry or build_release()
    reference = build_reference_client(opts.reference)  # first: it makes .build/ for both
    client_c = build_c_client()  # raw_epoll_client: only its poll mode against its epoll mode, at 1,000
    port = free_port()
    server = subprocess.Popen([poetry, "serve", "--async", "--port", str(port), "--num-bytes", "100", "--delay", "0.1",
                               os.path.join(ROOT, "poetry/ecstasy.txt")], stdout=subprocess.DEVNULL)
    results = {}
    try:
        wait_for_port(port)
        # The seed's form: every address its own argument, every read printed.
        def ours(n, spec="epoll"):
            backend, _, batch_wait = spec.partition(":")
            extra = ["--batch-wait", batch_wait] if batch_wait else []
            return [poetry, "get", "--async", "--reactor", backend, "--timeout", "60"] + extra + [str(port)] * n
        idle = timed(ours(1))
        results["idle"] = idle
        def rotated(items, by):
            return items[by % len(items):] + items[:by % len(items)]

        for round_ in range(opts.rounds):
            # Each round starts with the next client in turn, so none always runs first (or right after the same one).
            clients = [(f"poetry get --async ({backend})", ours(opts.count, backend)) for backend in reactors]
            clients += [("C epoll_client --print", [reference, "--print"] + [str(port)] * opts.count)]
            clients += [(f"Python {peer}", [python, peer_client, peer, str(port), str(opts.count)]) for peer in peers]
            for name, args in rotated(clients, round_):
                cpu, rss, wall, out = timed(args)
                assert f"Got {opts.count} poems" in out or f"POEMS={opts.count} FAILED=0" in out, out[-200:]
                results.setdefault(name, []).append((cpu, rss, wall))
                print(f"round {round_ + 1} {name}: {cpu:.2f} s CPU, {rss / 1024:.1f} MB peak RSS, {wall:.2f} s wall", flush=True)
            # 1,000 at once with each of our backends, and the C client's own poll against its epoll: what poll(2)
            # costs with no framework around it.
            small = [(f"1,000 with {backend}", ours(1000, backend) + ["--quiet"]) for backend in ("epoll", "poll", "select")]
            small += [(f"1,000 C raw {mode}", [client_c, str(port), "1000"] + (["poll"] if mode == "poll" else [])) for mode in ("epoll", "poll")]
            for name, args in rotated(small, round_):
                cpu, rss, wall, out = timed(args)
                results.setdefault(name, []).append((cpu, rss, wall))
                print(f"round {round_ + 1} {name}: {cpu:.3f} s CPU, {wall:.2f} s wall", flush=True)
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
    def paired(a, b):
        """The median of each round's own ratio of a's CPU to b's: runs seconds apart, so the host's drift cancels."""
        return median([x[0] / y[0] for x, y in zip(results[a], results[b])])

    c_cpu = median([r[0] for r in results["C epoll_client --print"]])
    c_wall = median([r[2] for r in results["C epoll_client --print"]])
    print("\nRatios: of the medians, then [the median of each round's own ratio].")
    for backend in reactors:
        name = f"poetry get --async ({backend})"
        ours_cpu = median([r[0] for r in results[name]])
        ours_wall = median([r[2] for r in results[name]])
        ours_rss = median([r[1] for r in results[name]])
        per_connection = (ours_rss - results["idle"][1]) * 1024 / opts.count
        print(f"client CPU, ours ({backend}) / C epoll_client: {ours_cpu / c_cpu:.2f}× [{paired(name, 'C epoll_client --print'):.2f}×]; "
              f"wall {ours_wall / c_wall:.2f}×; peak RSS over idle ({results['idle'][1] / 1024:.1f} MB): "
              f"{per_connection:.0f} bytes per connection")
    if len(reactors) > 1:
        first = f"poetry get --async ({reactors[0]})"
        for backend in reactors[1:]:
            name = f"poetry get --async ({backend})"
            print(f"client CPU, ours {backend} / ours {reactors[0]}: "
                  f"{median([r[0] for r in results[name]]) / median([r[0] for r in results[first]]):.2f}× [{paired(name, first):.2f}×]")
    ours_cpu = median([r[0] for r in results[f"poetry get --async ({reactors[0]})"]])
    for peer in peers:
        print(f"client CPU, Python {peer} / ours ({reactors[0]}): {median([r[0] for r in results[f'Python {peer}']]) / ours_cpu:.2f}×")
    epoll = median([r[0] for r in results["1,000 with epoll"]])
    for backend in ("poll", "select"):
        print(f"1,000 concurrent, {backend} / epoll CPU: {median([r[0] for r in results[f'1,000 with {backend}']]) / epoll:.2f}× "
              f"[{paired(f'1,000 with {backend}', '1,000 with epoll'):.2f}×]")
    c_epoll = median([r[0] for r in results["1,000 C raw epoll"]])
    c_poll = median([r[0] for r in results["1,000 C raw poll"]])
    print(f"1,000 concurrent, the C client's poll / its epoll CPU: {c_poll / c_epoll:.2f}× [{paired('1,000 C raw poll', '1,000 C raw epoll'):.2f}×] "
          f"(poll(2) with no framework around it); ours with poll / C with poll: "
          f"{median([r[0] for r in results['1,000 with poll']]) / c_poll:.2f}× [{paired('1,000 with poll', '1,000 C raw poll'):.2f}×]")


if __name__ == "__main__":
    main()
