"""Shared helpers for the benchmark drivers: free ports, process CPU time, medians, tables."""
import os
import re
import socket
import statistics
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def cpu_seconds(pids):
    """User + system CPU seconds of these processes (and their threads)."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def children(pid):
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]
    except Exception:
        return []


def build_release():
    subprocess.run(["swift", "build", "-c", "release", "--product", "poetry"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    return os.path.join(ROOT, ".build/release/poetry")


def raise_fd_limit(wanted):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, wanted)), hard))


def build_c_client():
    """The raw-epoll C client, compiled with the system's cc."""
    path = os.path.join(ROOT, ".build/raw_epoll_client")
    subprocess.run(["cc", "-O2", "-o", path, os.path.join(ROOT, "Benchmarks/raw_epoll_client.c")], check=True)
    return path


def median(values):
    return statistics.median(values) if values else float("nan")


def table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for l in f:
            if l.startswith("model name"):
                cpu = l.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {cpu}"


def python_peers_env(packages):
    """A virtual environment at Benchmarks/.venv holding `packages` (from PyPI); its python, or None if pip fails."""
    venv = os.path.join(ROOT, "Benchmarks/.venv")
    python = os.path.join(venv, "bin/python")
    if not os.path.exists(python):
        if subprocess.run(["python3", "-m", "venv", venv], stdout=subprocess.DEVNULL).returncode != 0:
            return None
    missing = [p for p in packages
               if subprocess.run([python, "-c", f"import {p}"], stderr=subprocess.DEVNULL).returncode != 0]
    if missing and subprocess.run([python, "-m", "pip", "install", "-q", *missing]).returncode != 0:
        return None
    return python


def build_swift_peer(folder, product):
    """A Swift peer server (Benchmarks/peers/FOLDER, a package of its own), or None if it does not build."""
    package = os.path.join(ROOT, "Benchmarks/peers", folder)
    if subprocess.run(["swift", "build", "-c", "release"], cwd=package, stdout=subprocess.DEVNULL).returncode != 0:
        return None
    return os.path.join(package, ".build/release", product)
