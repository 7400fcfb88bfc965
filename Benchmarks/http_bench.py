#!/usr/bin/env python3
"""HTTP benchmark: the gateway's GET /healthz against its peers, side by side, alternating: nginx (1 worker), a
SwiftNIO server (1 event-loop thread, NIOHTTP1; Benchmarks/peers/nio), a Hummingbird 2 app (1 thread;
Benchmarks/peers/hummingbird-peer), a hand-written asyncio Protocol and Twisted web (from PyPI, in Benchmarks/.venv).

wrk -t1 -c64 for keep-alive; the same with `Connection: close` for connection-per-request; and the same keep-alive
connections with 16 requests pipelined in each write (Benchmarks/pipeline.lua, TechEmpower's plaintext depth; wrk
counts every response). Without pipelining wrk's one thread is the limit on this machine (it spends a core
making the requests the servers answer), so the servers' CPU per request is the measure there; pipelined, wrk
makes requests for a fraction of that and the server is the limit, so throughput is. Server CPU per request
comes from /proc (user + system time of the server's processes during the run). Every server gets a second of
warm-up load first, and each round starts with the next server in turn. Prints medians, the ratios of the
medians and the median of each round's own ratio (its two runs seconds apart, so host drift cancels).
With --threads 1,2 it also runs the gateway with `--threads 2` against nginx with 2 workers (`reuseport`: a
listener per worker, as the gateway has one per thread; wrk -t2 -c128), in the same rounds; the single-threaded
peers run at N = 1 only.
With --cpu-quota F every server runs in one cgroup limited to F of a core (CFS quota, 10 ms period; root only): each
then has the same CPU budget while wrk has a core of its own, so keep-alive throughput measures the servers rather
than wrk, without pipelining.
Usage: Benchmarks/http_bench.py [--duration 10] [--rounds 3] [--peers nginx,nio,hummingbird,asyncio,twisted] [--pin]
                                [--threads 1,2] [--reactors epoll,io_uring] [--binary PATH] [--cpu-quota 0.5]
--reactors runs one gateway per reactor backend (each compared with every other server at its N); --binary uses a
poetry binary already built (say with its own --scratch-path) instead of building .build/release.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import ROOT, build_release, build_swift_peer, python_peers_env, children, cpu_seconds, free_port, machine, median, table, wait_for_port

NGINX_CONF = """
worker_processes {workers};
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port}{reuseport};
        location /healthz {{ default_type text/plain; return 200 "ok\\n"; }}
    }}
}}
"""


# With --pin, every server runs on CPU 1 and wrk on CPU 0, so no run depends on where the scheduler put whom.
PIN_SERVER = []
PIN_LOAD = []


PIPELINE_SCRIPT = os.path.join(ROOT, "Benchmarks/pipeline.lua")
KINDS = (("keep", "keep-alive"), ("close", "Connection: close"), ("pipelined", "pipelined ×16"))


def run_wrk(port, duration, kind, threads=1):
    args = PIN_LOAD + ["wrk", f"-t{threads}", f"-c{64 * threads}", f"-d{duration}s", "--latency", f"http://127.0.0.1:{port}/healthz"]
    if kind == "close":
        args[len(PIN_LOAD) + 1:len(PIN_LOAD) + 1] = ["-H", "Connection: close"]
    elif kind == "pipelined":
        args[len(PIN_LOAD) + 1:len(PIN_LOAD) + 1] = ["-s", PIPELINE_SCRIPT]
        args += ["--", "16"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1, "s": 1000}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, requests, float(p99.group(1)) * scale, int(errors.group(1)) if errors else 0


def limited_cpu_group(fraction):
    """A cgroup whose processes share `fraction` of one core, in 10 ms periods (so a throttled server waits at most
    a few milliseconds): cgroup v2's cpu.max, or v1's cpu controller. Returns its cgroup.procs path."""
    period = 10000
    quota = int(period * fraction)
    for root, v2 in (("/sys/fs/cgroup", True), ("/sys/fs/cgroup/cpu", False)):
        if v2 and not os.path.exists(f"{root}/cpu.max") and not os.path.exists(f"{root}/cgroup.controllers"):
            continue
        if not v2 and not os.path.exists(f"{root}/cpu.cfs_quota_us"):
            continue
        group = f"{root}/poetry_http_bench"
        try:
            os.makedirs(group, exist_ok=True)
            if v2:
                with open(f"{group}/cpu.max", "w") as f:
                    f.write(f"{quota} {period}")
            else:
                with open(f"{group}/cpu.cfs_period_us", "w") as f:
                    f.write(str(period))
                with open(f"{group}/cpu.cfs_quota_us", "w") as f:
                    f.write(str(quota))
            return f"{group}/cgroup.procs"
        except OSError:
            continue
    sys.exit("--cpu-quota needs a writable cgroup cpu controller (run as root)")


def gateway_name(threads, reactor=None):
    name = "poetry-gateway" if reactor is None else f"poetry-gateway ({reactor})"
    return name if threads == 1 else f"{name} {threads} threads"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peers", default="nginx,nio,hummingbird,asyncio,twisted")
    parser.add_argument("--pin", action="store_true", help="servers on CPU 1, wrk on CPU 0 (taskset)")
    parser.add_argument("--cpu-quota", type=float, help="every server limited to this fraction of a core (cgroup)")
    parser.add_argument("--threads", default="1", help="reactor threads / nginx workers to compare at, e.g. 1,2")
    parser.add_argument("--reactors", default="epoll", help="the gateway's backends, one gateway each: epoll,io_uring")
    parser.add_argument("--binary", help="a poetry binary already built, instead of building .build/release")
    opts = parser.parse_args()
    if opts.pin and opts.threads != "1":
        sys.exit("--pin puts every server on one CPU: use it with --threads 1 only")
    if opts.pin and shutil.which("taskset") and os.cpu_count() >= 2:
        PIN_SERVER[:] = ["taskset", "-c", "1"]
        PIN_LOAD[:] = ["taskset", "-c", "0"]
    wanted = set(opts.peers.split(","))
    if not shutil.which("wrk") or not shutil.which("nginx"):
        sys.exit("needs wrk and nginx: apt-get install wrk nginx-light")
    poetry = opts.binary or build_release()
    work = tempfile.mkdtemp()
    servers = {}
    # Name -> N: every server runs with wrk -tN -c64N and is compared with the servers at its N.
    level = {}
    processes = []
    counts = [int(n) for n in opts.threads.split(",")]
    reactors = opts.reactors.split(",")
    gateways = []
    for n in counts:
        for reactor in reactors:
            gport = free_port()
            gateway = subprocess.Popen(PIN_SERVER + [poetry, "gateway", "--port", str(gport), "--threads", str(n), "--reactor", reactor,
                                        "--public-dir", os.path.join(ROOT, "public"), "--poetry-dir", os.path.join(ROOT, "poetry")],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            name = gateway_name(n, reactor if len(reactors) > 1 else None)
            servers[name] = (gport, lambda pid=gateway.pid: [pid])
            level[name] = n
            gateways.append(name)
            processes.append(gateway)

    def start(name, args, cwd=None):
        port = free_port()
        process = subprocess.Popen(PIN_SERVER + [a.format(port=port, dir=work) for a in args], cwd=cwd,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(process)
        servers[name] = (port, lambda: [process.pid] + children(process.pid))
        level[name] = 1
        return port

    for n in counts if "nginx" in wanted else []:
        port = free_port()
        folder = f"{work}/nginx{n}"
        os.makedirs(folder)
        with open(f"{folder}/nginx.conf", "w") as f:
            # With several workers, one listener each on the shared port, as the gateway's threads have.
            f.write(NGINX_CONF.format(dir=folder, port=port, workers=n, reuseport=" reuseport" if n > 1 else ""))
        nginx = subprocess.Popen(PIN_SERVER + ["nginx", "-c", f"{folder}/nginx.conf"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(nginx)
        name = "nginx 1 worker" if n == 1 else f"nginx {n} workers"
        servers[name] = (port, lambda nginx=nginx: [nginx.pid] + children(nginx.pid))
        level[name] = n
    single = 1 in counts
    for key, name, folder, product in (("nio", "SwiftNIO 1 thread", "nio", "NIOPeer"),
                                       ("hummingbird", "Hummingbird 2, 1 thread", "hummingbird-peer", "HummingbirdPeer")):
        if key in wanted and single:
            binary = build_swift_peer(folder, product)
            if binary:
                start(name, [binary, "{port}"])
            else:
                print(f"{name} did not build; left out", file=sys.stderr)
    peers_dir = os.path.join(ROOT, "Benchmarks/peers")
    if "asyncio" in wanted and single:
        start("asyncio Protocol", [sys.executable, os.path.join(peers_dir, "asyncio_server.py"), "{port}"])
    if "twisted" in wanted and single:
        python = python_peers_env(["twisted"])
        if python:
            start("Twisted web", [python, os.path.join(peers_dir, "twisted_server.py"), "{port}"])
        else:
            print("Twisted could not be installed from PyPI; left out", file=sys.stderr)
    results = {name: {kind: [] for kind, _ in KINDS} for name in servers}
    try:
        for port, _ in servers.values():
            wait_for_port(port)
        if opts.cpu_quota:
            procs = limited_cpu_group(opts.cpu_quota)
            for name, (_, pids) in servers.items():
                for pid in pids():
                    with open(procs, "w") as f:
                        f.write(str(pid))
        # A second of load each before anything is measured, so no server's first round pays for its warm-up.
        for name, (port, _) in servers.items():
            run_wrk(port, 1, "keep", level[name])
        names = list(servers)
        for round_ in range(opts.rounds):
            # Each round starts with the next server, so none always runs first (or right after the same peer).
            order = names[round_ % len(names):] + names[:round_ % len(names)]
            for kind, label in KINDS:
                for name in order:
                    port, pids = servers[name]
                    before = cpu_seconds(pids())
                    rps, requests, p99, errors = run_wrk(port, opts.duration, kind, level[name])
                    cpu = cpu_seconds(pids()) - before
                    results[name][kind].append((rps, cpu / requests * 1e6, p99, errors))
                    print(f"round {round_ + 1} {label} {name}: {rps:.0f} req/s, "
                          f"{cpu / requests * 1e6:.1f} µs CPU/req, p99 {p99:.2f} ms, non-2xx {errors}", flush=True)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait()
        shutil.rmtree(work, ignore_errors=True)

    quota = f", every server limited to {opts.cpu_quota} of a core" if opts.cpu_quota else ""
    print(f"\nMachine: {machine()}. wrk -tN -c64N -d{opts.duration}s (N = the server's threads), {opts.rounds} rounds, medians{quota}.\n")
    rows = []
    for name, r in results.items():
        for kind, label in KINDS:
            runs = r[kind]
            # wrk times a pipelined batch by its first request only, so its percentiles say nothing there.
            rows.append([name, label,
                         f"{median([x[0] for x in runs]):.0f}", f"{median([x[1] for x in runs]):.1f}",
                         "n/a" if kind == "pipelined" else f"{median([x[2] for x in runs]):.2f}"])
    print(table(["server", "requests", "req/s", "CPU µs/req", "p99 ms"], rows))
    print("Ratios: of the medians, then [the median of each round's own ratio, whose two runs were seconds apart].")
    for position, name in enumerate(gateways):
        ours = results[name]
        # Each gateway against every peer at its N, and against the gateways at its N listed before it
        # (io_uring / epoll).
        for peer, theirs in results.items():
            if peer == name or level[peer] != level[name] or (peer in gateways and gateways.index(peer) > position):
                continue
            for kind, label in KINDS:
                parts = []
                for field, what in ((0, "throughput"), (1, "CPU per request"), (2, "p99"))[:2 if kind == "pipelined" else 3]:
                    of_medians = median([x[field] for x in ours[kind]]) / median([x[field] for x in theirs[kind]])
                    paired = median([a[field] / b[field] for a, b in zip(ours[kind], theirs[kind])])
                    parts.append(f"{what} {of_medians:.2f}× [{paired:.2f}×]")
                print(f"{label}: {name} / {peer}: " + ", ".join(parts))


if __name__ == "__main__":
    main()
