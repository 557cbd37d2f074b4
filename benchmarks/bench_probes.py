#!/usr/bin/env python
"""Cost of one snapshot of the cheap probes, and of the garbage collection around it.

    .venv/bin/python benchmarks/bench_probes.py [--quick] [--reads N]

In a fresh child process holding 10k, 100k and 1M live objects (small lists, all tracked by the
garbage collector), times:

* one ``Probes.read`` (all default probes: time, rss, py_blocks, malloc, fds, threads, children):
  median, 99th percentile and max over ``--reads`` reads (default 3000), and the median of each
  probe alone;
* the standard-library cache clearing the loop does between iterations (``CacheClearer``);
* ``gc.collect()`` on its own: a full collection as is, and after ``gc.freeze()`` (what the loop
  does between iterations once the objects that existed before it are frozen), with nothing
  young and with 1,000 fresh tracked objects to look at.

Target: <= 100 us median for one Probes.read. --quick: 300 reads, fewer collections.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as c

TARGET_US = 100.0
SIZES = (10_000, 100_000, 1_000_000)


def timed(fn, n: int) -> list[float]:
    out = []
    pc = time.perf_counter
    for _ in range(n):
        t0 = pc()
        fn()
        out.append(pc() - t0)
    return out


def child(args: argparse.Namespace) -> None:
    from array import array

    from pytest_memleak.caches import CacheClearer
    from pytest_memleak.probes import WIDTH, Probes

    held = [[i, None] for i in range(args.objects)]
    gc.collect()
    t0 = time.perf_counter()
    probes = Probes()
    init_ms = (time.perf_counter() - t0) * 1000
    buf = array("d", bytes(8 * WIDTH))
    reads = args.reads
    read = timed(lambda: probes.read(buf, 0), reads)
    each = {}
    for name, fn in (("rss", probes.rss), ("py_blocks", sys.getallocatedblocks), ("malloc", probes.malloc),
                     ("fds", probes.fds), ("threads", __import__("threading").active_count),
                     ("children", probes.children)):
        each[name] = statistics.median(timed(fn, max(100, reads // 5)))
    clearer = CacheClearer()
    clear = timed(clearer, max(50, reads // 10))
    full = timed(gc.collect, 3 if args.quick else 7)
    gc.freeze()
    frozen = timed(gc.collect, 20 if args.quick else 100)
    young = []
    for _ in range(20 if args.quick else 100):  # with 1,000 fresh tracked objects to look at
        scratch = [[j] for j in range(1000)]
        t0 = time.perf_counter()
        gc.collect()
        young.append(time.perf_counter() - t0)
        del scratch
    gc.unfreeze()
    read.sort()
    json.dump({
        "objects": args.objects, "tracked": len(gc.get_objects()), "init_ms": init_ms, "reads": reads,
        "median_us": statistics.median(read) * 1e6, "p99_us": read[int(0.99 * (len(read) - 1))] * 1e6,
        "max_us": read[-1] * 1e6, "each_us": {k: v * 1e6 for k, v in each.items()},
        "clear_us": statistics.median(clear) * 1e6, "gc_full_ms": statistics.median(full) * 1e3,
        "gc_frozen_us": statistics.median(frozen) * 1e6, "gc_young_us": statistics.median(young) * 1e6,
    }, sys.stdout)
    del held


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 300 reads per size (< 30 s)")
    ap.add_argument("--reads", type=int, default=None, help="reads per size (default 3000)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--objects", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.reads is None:
        args.reads = 300 if args.quick else 3000
    if args.child:
        child(args)
        return 0
    results = []
    for n in SIZES:
        c.log("child process holding %d objects ..." % n)
        cmd = [c.PYTHON, os.path.abspath(__file__), "--child", "--objects", str(n), "--reads", str(args.reads)]
        if args.quick:
            cmd.append("--quick")
        proc, _, _ = c.run(cmd, cwd=c.ROOT, timeout=600)
        if proc.returncode != 0:
            raise SystemExit("bench_probes: child failed (exit %d):\n%s" % (proc.returncode, c.tail(proc)))
        results.append(json.loads(proc.stdout))

    c.header("bench_probes.py", args.quick, "%d reads per size" % args.reads)
    c.table(["objects held", "gc-tracked", "read median us", "read p99 us", "read max us", "<= 100 us"]
            + ["%s us" % k for k in results[0]["each_us"]] + ["cache clear us", "Probes() ms"],
            [["%dk" % (r["objects"] // 1000), "%dk" % (r["tracked"] // 1000), "%.1f" % r["median_us"],
              "%.1f" % r["p99_us"], "%.0f" % r["max_us"], "MET" if r["median_us"] <= TARGET_US else "MISSED"]
             + ["%.1f" % v for v in r["each_us"].values()] + ["%.1f" % r["clear_us"], "%.1f" % r["init_ms"]]
             for r in results],
            title="One Probes.read (all default probes), each probe alone (median), the cache clearing "
                  "between iterations, and the one-off Probes() construction")
    c.table(["objects held", "gc-tracked", "gc.collect() full ms", "gc.collect() after gc.freeze() us",
             "after gc.freeze(), 1k young objects us"],
            [["%dk" % (r["objects"] // 1000), "%dk" % (r["tracked"] // 1000), "%.2f" % r["gc_full_ms"],
              "%.1f" % r["gc_frozen_us"], "%.0f" % r["gc_young_us"]] for r in results],
            title="gc.collect() alone (median), without and with gc.freeze()")
    worst = max(results, key=lambda r: r["median_us"])
    c.summary("Probes.read median %s us (10k/100k/1M objects), worst max %.0f us; target <= 100 us median: "
              "%s; gc.collect() %s ms full vs %s us after gc.freeze()" % (
                  "/".join("%.0f" % r["median_us"] for r in results), max(r["max_us"] for r in results),
                  c.verdict_vs_target(worst["median_us"], TARGET_US, "%.0f us"),
                  "/".join("%.1f" % r["gc_full_ms"] for r in results),
                  "/".join("%.1f" % r["gc_frozen_us"] for r in results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
