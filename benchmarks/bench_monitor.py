#!/usr/bin/env python
"""Cost of ``pytest-memleak monitor``: its own CPU and memory while it watches a process.

    python benchmarks/bench_monitor.py [--seconds 12] [--repeat 3] [--quick]

An idle Python process is watched with ``--pid`` (so the monitor's rusage, read with wait4,
is its own and not the target's) for a short run (2 s) and a long one (``--seconds``), at the
default interval (100 ms), at 10 ms, and at 100 ms with ``--serve`` and one dashboard client
reading the event stream. The steady CPU share is the difference of the two runs' CPU time over
the difference of their wall times (start-up and the final report cancel out); the peak RSS is
the monitor process's maximum resident set. Prints a table and one ``Summary:`` line.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as c

SHORT_S = 2.0
ARMS = {
    "100 ms (default)": ("--interval", "100ms"),
    "10 ms": ("--interval", "10ms"),
    "100 ms, --serve + 1 dashboard": ("--interval", "100ms", "--serve", "127.0.0.1:0"),
}


def _client(proc: subprocess.Popen[str], stop: threading.Event) -> None:
    """Read the monitor's URL from its output, then its event stream until told to stop."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("http://127.0.0.1:"):
            url = line.strip()
            break
    else:
        return
    try:
        with urllib.request.urlopen(url + "/api/events", timeout=60) as resp:
            while not stop.is_set() and resp.readline():
                pass
    except OSError:
        pass
    for _ in proc.stdout:  # drain
        pass


def run(pid: int, seconds: float, args: tuple[str, ...]) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS bytes) of one monitor run."""
    cmd = [
        c.PYTHON,
        "-m",
        "pytest_memleak",
        "monitor",
        "--pid",
        str(pid),
        "--duration",
        f"{seconds}s",
        "--report",
        "off",
        *args,
    ]
    serve = "--serve" in args
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE if serve else subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
    )
    stop = threading.Event()
    reader = threading.Thread(target=_client, args=(proc, stop), daemon=True)
    if serve:
        reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    stop.set()
    if serve:
        reader.join(timeout=5)
        assert proc.stdout is not None
        proc.stdout.close()
    if proc.returncode != 0:
        raise SystemExit(f"monitor exited {proc.returncode}: {' '.join(cmd)}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024.0


def sample_bytes() -> float:
    """Memory one kept sample takes (the dict of a monitor row, values included)."""
    row = {"rss": 1.0e7, "fds": 4.0, "threads": 1.0, "children": 0.0, "uss": 5.0e6, "t": 1.5}
    return sys.getsizeof(row) + sum(sys.getsizeof(v) for v in row.values()) + 8


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="a 4 s run, 1 repeat")
    a = ap.parse_args()
    seconds, repeat = (4.0, 1) if a.quick else (a.seconds, a.repeat)
    target = subprocess.Popen([c.PYTHON, "-c", "import time; time.sleep(1e6)"])
    share: dict[str, list[float]] = {k: [] for k in ARMS}
    startup: dict[str, list[float]] = {k: [] for k in ARMS}
    peak: dict[str, list[float]] = {k: [] for k in ARMS}
    try:
        for r in range(repeat):
            for name, args in ARMS.items():
                c.log(f"repeat {r + 1}/{repeat}: {name}")
                w1, cpu1, _ = run(target.pid, SHORT_S, args)
                w2, cpu2, rss2 = run(target.pid, seconds, args)
                share[name].append((cpu2 - cpu1) / (w2 - w1))
                startup[name].append(cpu1 - SHORT_S * share[name][-1])
                peak[name].append(rss2)
    finally:
        target.kill()
        target.wait()
    c.header(
        "bench_monitor.py",
        a.quick,
        f"monitor cost: an idle process watched with --pid, {SHORT_S:g} s and {seconds:g} s runs x {repeat}",
    )
    per_sample = sample_bytes()
    rows = []
    for name in ARMS:
        rows.append(
            [
                name,
                "%.2f %%" % (statistics.median(share[name]) * 100),
                "%.2f s" % statistics.median(startup[name]),
                c.fmt_bytes(statistics.median(peak[name])),
            ]
        )
    c.table(["monitor", "steady CPU, share of one core", "start-up + report CPU", "peak RSS"], rows)
    print(
        f"Samples kept: {per_sample:.0f} B each, {per_sample * 1000 / 1024:.0f} KiB at the "
        "default 1000-sample retention."
    )
    print()
    d = "100 ms (default)"
    s = "100 ms, --serve + 1 dashboard"
    c.summary(
        f"at the default 100 ms interval the monitor uses "
        f"{statistics.median(share[d]) * 100:.2f} % of one core "
        f"({statistics.median(share[s]) * 100:.2f} % with --serve and one dashboard open) "
        f"and peaks at {c.fmt_bytes(statistics.median(peak[d]))} RSS"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
