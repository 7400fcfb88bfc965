#!/usr/bin/env python3
"""Shutdown soak: start and stop `poetry serve --async`, `poetry get` and `poetry gateway` many times in a row, each
stopped by one SIGTERM, SIGINT or SIGHUP sent 0-2 s after it starts, and check each exits within 2 s.

Not part of scripts/test.sh (500 rounds of three programs take about ten minutes). Usage:

    scripts/shutdown_soak.py [--runs 500] [--binary .build/debug/poetry] [--limit 2] [--max-delay 2]

The three programs' rounds run side by side (one thread each). A program that does not exit in time is killed
with SIGKILL and reported with its command line, the signal and the delay. Exit status 1 when any did not exit.
"""
import argparse
import collections
import os
import random
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIGNALS = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP]


def start(command):
    # A new session: a signal meant for the program never reaches this script, and SIGHUP starts at its default.
    return subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=lambda: [signal.signal(s, signal.SIG_DFL) for s in SIGNALS])


def soak(name, make_command, runs, limit, max_delay, results, lock, rng):
    for index in range(runs):
        command = make_command(index)
        signo = SIGNALS[index % len(SIGNALS)]
        delay = rng.uniform(0, max_delay)
        process = start(command)
        time.sleep(delay)
        sent = time.monotonic()
        process.send_signal(signo)
        try:
            status = process.wait(timeout=limit)
            took = time.monotonic() - sent
            outcome = "exit 0" if status == 0 else (f"exit {status}" if status > 0 else f"killed by {signal.Signals(-status).name}")
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            took = None
            outcome = "HUNG"
        with lock:
            results[name]["runs"] += 1
            results[name][outcome] += 1
            if took is not None:
                results[name]["max"] = max(results[name]["max"], took)
            else:
                results[name]["hung"].append(f"{' '.join(command)} ({signal.Signals(signo).name} after {delay:.2f}s)")
                print(f"{name}: did not exit within {limit}s: {' '.join(command)}, "
                      f"{signal.Signals(signo).name} sent {delay:.2f}s after start", flush=True)
        if (index + 1) % 50 == 0:
            print(f"{name}: {index + 1}/{runs}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=500, help="starts and stops per program (default 500)")
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build/debug/poetry"))
    parser.add_argument("--limit", type=float, default=2.0, help="seconds a program may take to exit (default 2)")
    parser.add_argument("--max-delay", type=float, default=2.0, help="latest signal, in seconds after start")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    poetry = args.binary
    if not os.access(poetry, os.X_OK):
        sys.exit(f"{poetry} is not built (swift build, or give --binary)")
    rng = random.Random(args.seed)

    # One slow server for every `poetry get`: 3,003 bytes at 10 every 0.1 s keeps a fetch busy for 30 s.
    target = subprocess.Popen([poetry, "serve", "--async", "--threads", "1", "--num-bytes", "10", "--delay", "0.1",
                               "poetry/ecstasy.txt"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port = target.stdout.readline().split()[-1].rstrip(".")
    # Keep reading its lines: a full pipe would block the server's loop in write(2) and keep it from stopping.
    threading.Thread(target=lambda: [None for _ in target.stdout], daemon=True).start()

    programs = {
        "serve --async": lambda i: [poetry, "serve", "--async", "--threads", str(1 + i % 4), "poetry/science.txt"],
        "get": lambda i: [poetry, "get", "--quiet"] + (["--blocking"] if i % 2 else ["--async"]) + [port, port],
        "gateway": lambda i: [poetry, "gateway", "--port", "0"] + (["--demo"] if i % 2 else []),
    }
    results = {name: collections.defaultdict(int, max=0.0, hung=[]) for name in programs}
    lock = threading.Lock()
    threads = [threading.Thread(target=soak, args=(name, make, args.runs, args.limit, args.max_delay, results, lock,
                                                    random.Random(rng.random())))
               for name, make in programs.items()]
    begun = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    target.terminate()
    target.wait()

    print(f"\n{args.runs} starts and stops per program in {time.monotonic() - begun:.0f}s, "
          f"each signalled 0-{args.max_delay:g}s after start (SIGTERM, SIGINT, SIGHUP in turn):")
    failed = False
    for name, result in results.items():
        outcomes = ", ".join(f"{key}: {value}" for key, value in sorted(result.items())
                             if key not in ("runs", "max", "hung"))
        print(f"  {name}: {result['runs']} runs, slowest exit {result['max']:.3f}s after the signal; {outcomes}")
        failed = failed or bool(result["hung"])
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
