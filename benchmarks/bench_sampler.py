#!/usr/bin/env python
"""Cost of the soak / watch sampler: CPU share, slowdown of the test, memory of the samples.

    python benchmarks/bench_sampler.py [--seconds 3] [--repeat 3] [--quick]

A CPU-bound workload runs for a fixed time with no sampler and with the sampler at the default
interval (100 ms) and at 10 ms, alternating, in one process. Reported: the work done relative to
no sampler (median of the repeats), the sampler thread's own CPU time as a share of the wall
time, and the memory the kept samples take (per sample, and at the default retention cap).
Prints a table and one ``Summary:`` line.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytest_memleak.probes import Probes
from pytest_memleak.settings import resolve
from pytest_memleak.soak import SOAK_FIELDS, Sampler, own_reader

import _common as c


def workload(seconds: float) -> int:
    """Count loop turns of a small CPU-bound body for ``seconds``."""
    end = time.perf_counter() + seconds
    turns = 0
    while time.perf_counter() < end:
        sum(i * i for i in range(200))
        turns += 1
    return turns


def deep_size(samples: list[dict[str, float]]) -> int:
    size = sys.getsizeof(samples)
    for row in samples:
        size += sys.getsizeof(row) + sum(sys.getsizeof(v) for v in row.values())
    return size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="0.5 s, 1 repeat")
    a = ap.parse_args()
    seconds, repeat = (0.5, 1) if a.quick else (a.seconds, a.repeat)
    probes = Probes()
    default = resolve([])
    arms = {"no sampler": None, "100 ms (default)": default.interval, "10 ms": 0.01}
    work: dict[str, list[int]] = {k: [] for k in arms}
    share: dict[str, list[float]] = {k: [] for k in arms}
    per_sample: dict[str, float] = {}
    for _ in range(repeat):
        for name, interval in arms.items():
            sampler = None
            if interval is not None:
                sampler = Sampler(own_reader(probes), SOAK_FIELDS, interval, default.retention)
                sampler.start()
            t0 = time.perf_counter()
            work[name].append(workload(seconds))
            wall = time.perf_counter() - t0
            if sampler is not None:
                sampler.stop()
                share[name].append(sampler.cpu_s / wall)
                per_sample[name] = deep_size(sampler.samples) / max(1, len(sampler.samples))
    base = statistics.median(work["no sampler"])
    c.header("bench_sampler.py", a.quick, f"soak sampler cost: {seconds:g} s CPU-bound workload "
             f"x {repeat}, alternating")
    print("| sampler | work done vs none (median) | sampler CPU share of wall | "
          "memory per sample | memory at retention cap |")
    print("|---|---|---|---|---|")
    for name in arms:
        ratio = statistics.median(work[name]) / base
        if name == "no sampler":
            print(f"| {name} | 1.000 | - | - | - |")
            continue
        cpu = statistics.median(share[name]) * 100
        mem = per_sample[name]
        cap = mem * default.retention / 1024
        print(f"| {name} | {ratio:.3f} | {cpu:.2f} % | {mem:.0f} B | {cap:.0f} KiB |")
    d = statistics.median(share["100 ms (default)"]) * 100
    r = statistics.median(work["100 ms (default)"]) / base
    print(f"\nSummary: at the default 100 ms interval the sampler uses {d:.2f} % of one core and "
          f"the test keeps {r * 100:.1f} % of its throughput; samples cost "
          f"{per_sample['100 ms (default)']:.0f} B each, "
          f"{per_sample['100 ms (default)'] * default.retention / 1024:.0f} KiB at the "
          f"{default.retention}-sample cap")
    return 0


if __name__ == "__main__":
    sys.exit(main())
