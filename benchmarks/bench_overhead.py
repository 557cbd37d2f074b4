#!/usr/bin/env python
"""Time overhead of the memcheck loop over plain calls of the same body.

    .venv/bin/python benchmarks/bench_overhead.py [--quick] [--reps N]

For each kind of body (allocation-heavy, CPU-bound, I/O to a temp file, numpy), calibrated to
take about 1 ms, 5 ms and 50 ms a call: the wall time of one memcheck loop
(``analysis.make_loop(settings)`` with the default settings + ``runner.drive``) against the same
number of plain calls of the body in the same process. The two arms alternate (A B, B A, ...);
the ratio is taken per call (memcheck s/call over plain s/call) of each repetition, and the
median over the repetitions is reported. ``finish ms`` is the verdict and report building that
the plugin does after the loop (``analysis.finish``), not included in the ratio.

Everything is run twice, each in a fresh child process: with an empty heap and after allocating
1M live objects (1M small lists, all tracked by the garbage collector). The fixed cost per
iteration is measured with a no-op body: (memcheck time - plain time) / calls, split into the
loop's own work between two calls (timed directly: cache clearing, gc.collect() with the old
objects frozen, one probe snapshot) and the rest, a cost per loop.
The bodies are calibrated (to 1, 5 and 50 ms a call) in the empty-heap process; the 1M-object
process runs the same bodies (same n), so its ms/call may differ.

Target: <= 1.25x for clean bodies of >= 5 ms. --quick: 5 ms bodies only, 3 repetitions.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as c

TARGET_RATIO = 1.25
TARGET_MIN_MS = 5.0
BIG_HEAP = 1_000_000


# ------------------------------------------------------------------------------- bodies
def make_body(kind: str, n: int, tmpdir: str):
    if kind == "alloc":
        def body():
            rows = [{"k": i, "v": [i, i]} for i in range(n)]
            del rows
    elif kind == "cpu":
        def body():
            x = 0
            for i in range(n):
                x += i * i
            return x
    elif kind == "io":
        path = os.path.join(tmpdir, "io.dat")
        chunk = b"\x5a" * 4096

        def body():
            with open(path, "wb") as f:
                for _ in range(n):
                    f.write(chunk)
                    f.flush()
            with open(path, "rb") as f:
                while f.read(65536):
                    pass
    elif kind == "numpy":
        import numpy as np

        rng = np.random.default_rng(0)

        def body():
            a = rng.random(n)
            a.sort()
            return float(a[n // 2])
    elif kind == "noop":
        def body():
            return None
    else:
        raise ValueError(kind)
    return body


KINDS = {
    "alloc": "allocation-heavy (n dicts with a list, freed)",
    "cpu": "CPU-bound (integer loop, no allocation)",
    "io": "I/O (n x 4 KiB writes + flush to a temp file, read back)",
    "numpy": "numpy (random array of n, sorted)",
}


def per_call(body, calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        body()
    return (time.perf_counter() - t0) / calls


def calibrate(kind: str, target_ms: float, tmpdir: str) -> tuple[int, float]:
    """n such that one call takes about target_ms (median of 3 batches of >= 30 ms each)."""
    import statistics

    n = 64
    body = make_body(kind, n, tmpdir)
    body()
    ms = per_call(body, 3) * 1000
    for _ in range(8):
        if ms > 0:
            n = max(1, int(n * target_ms / ms))
        else:
            n *= 10
        body = make_body(kind, n, tmpdir)
        body()
        batch = max(3, int(30 / target_ms))
        ms = statistics.median(per_call(body, batch) * 1000 for _ in range(3))
        if ms > 0 and abs(ms - target_ms) / target_ms < 0.08:
            break
    return n, ms


def step_cost(settings, n: int) -> float:
    """Median us of the loop's own work between two calls (settle: cache clearing + gc.collect,
    then one probe snapshot), measured directly with the objects frozen as the loop does."""
    from array import array

    from pytest_memleak import analysis
    from pytest_memleak.probes import WIDTH

    loop = analysis.make_loop(settings)
    settle = getattr(loop, "settle", None) or loop._settle
    buf = array("d", bytes(8 * WIDTH))
    read = loop.probes.read
    gc.collect()
    gc.freeze()
    try:
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            settle()
            read(buf, 0)
            samples.append(time.perf_counter() - t0)
    finally:
        gc.unfreeze()
    return c.median(samples) * 1e6


# ------------------------------------------------------------------------------- child
def child(args: argparse.Namespace) -> None:
    from pytest_memleak import analysis
    from pytest_memleak.runner import drive
    from pytest_memleak.settings import resolve

    heap = None
    if args.heap:
        t0 = time.perf_counter()
        heap = [[i, None] for i in range(args.heap)]
        c.log("  %d live lists allocated in %.2f s" % (len(heap), time.perf_counter() - t0))
    settings = resolve([])
    tmpdir = tempfile.mkdtemp(prefix="bench_overhead_")
    targets = [5.0] if args.quick else [1.0, 5.0, 50.0]
    gc_ms = []
    for _ in range(3):
        t0 = time.perf_counter()
        gc.collect()
        gc_ms.append((time.perf_counter() - t0) * 1000)
    out = []

    def one(kind: str, target_ms: float | None, n: int, reps: int, settings=settings) -> dict:
        raw = make_body(kind, n, tmpdir)
        count = [0]

        def body():
            count[0] += 1
            raw()

        # a preflight loop: warms both paths and tells how many calls the loop makes
        loop = analysis.make_loop(settings)
        drive(loop, body)
        calls_known = count[0]
        ratios, mem_s, plain_s, extra_us, calls_seen, finish_ms, verdicts = [], [], [], [], [], [], []
        for k in range(reps):
            arms = ("mem", "plain") if c.alternate(k) else ("plain", "mem")
            t_mem = t_plain = 0.0
            calls_mem = calls_known
            for arm in arms:
                if arm == "mem":
                    count[0] = 0
                    t0 = time.perf_counter()
                    loop = analysis.make_loop(settings)
                    drive(loop, body)
                    t_mem = time.perf_counter() - t0
                    calls_mem = calls_known = count[0]
                    t1 = time.perf_counter()
                    result = analysis.finish(loop, "bench")
                    finish_ms.append((time.perf_counter() - t1) * 1000)
                    verdicts.append(result.verdict)
                else:
                    t0 = time.perf_counter()
                    for _ in range(calls_known):
                        body()
                    t_plain = (time.perf_counter() - t0) / calls_known * calls_mem
            # plain time is scaled to the memcheck arm's call count (same per-call basis)
            ratios.append(t_mem / t_plain)
            mem_s.append(t_mem)
            plain_s.append(t_plain)
            extra_us.append((t_mem - t_plain) / calls_mem * 1e6)
            calls_seen.append(calls_mem)
        return {"heap": args.heap, "kind": kind, "target_ms": target_ms, "n": n,
                "gc_ms": c.median(gc_ms), "gc_objects": len(gc.get_objects()),
                "iterations_setting": settings.iterations,
                "ms_per_call": c.median(plain_s) / c.median(calls_seen) * 1000,
                "calls": sorted(set(calls_seen)), "mem_s": c.median(mem_s),
                "plain_s": c.median(plain_s), "ratio": c.median(ratios),
                "ratio_min": min(ratios), "ratio_max": max(ratios),
                "extra_us": c.median(extra_us), "finish_ms": c.median(finish_ms),
                "verdicts": sorted(set(verdicts)), "reps": reps}

    given = json.loads(args.sizes) if args.sizes else {}
    for target in targets:
        for kind in KINDS:
            key = "%s/%g" % (kind, target)
            if key in given:  # the same work as in the empty-heap process
                n, ms = given[key], float("nan")
            else:
                n, ms = calibrate(kind, target, tmpdir)
            reps = args.reps or (3 if args.quick else {1.0: 9, 5.0: 7, 50.0: 5}[target])
            c.log("  heap %d: %s %.0f ms (n=%d, %.2f ms) x%d" % (args.heap, kind, target, n, ms, reps))
            out.append(one(kind, target, n, reps))
    c.log("  heap %d: noop" % args.heap)
    reps = args.reps or (3 if args.quick else 21)
    noop = one("noop", None, 0, reps)
    noop["step_us"] = step_cost(settings, 200 if args.quick else 2000)
    out.append(noop)
    del heap
    json.dump(out, sys.stdout)


# ------------------------------------------------------------------------------- parent
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 5 ms bodies, 3 reps (< 30 s)")
    ap.add_argument("--reps", type=int, default=None, help="repetitions per cell (default 9/7/5 by size)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--heap", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--sizes", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return 0
    results = []
    for heap in (0, BIG_HEAP):
        c.log("child process, %d live objects ..." % heap)
        cmd = [c.PYTHON, os.path.abspath(__file__), "--child", "--heap", str(heap)]
        if results:  # the 1M-object process runs the bodies calibrated in the empty one
            cmd += ["--sizes", json.dumps({"%s/%g" % (r["kind"], r["target_ms"]): r["n"]
                                           for r in results if r["kind"] != "noop"})]
        if args.quick:
            cmd.append("--quick")
        if args.reps:
            cmd += ["--reps", str(args.reps)]
        proc, _, _ = c.run(cmd, cwd=c.ROOT, timeout=1200)
        if proc.returncode != 0:
            raise SystemExit("bench_overhead: child failed (exit %d):\n%s" % (proc.returncode, c.tail(proc)))
        results += json.loads(proc.stdout)

    c.header("bench_overhead.py", args.quick, "default settings (warmup 5, iterations 10/round, "
             "max 30); ratio = median over repetitions of memcheck s/call over plain s/call")
    rows = []
    worst = None
    for r in results:
        if r["kind"] == "noop":
            continue
        clean = r["verdicts"] == ["ok"]
        in_scope = clean and r["target_ms"] >= TARGET_MIN_MS
        if in_scope and (worst is None or r["ratio"] > worst["ratio"]):
            worst = r
        check = ("MET" if r["ratio"] <= TARGET_RATIO else "MISSED") if in_scope else \
            ("(< 5 ms)" if clean else "(not clean)")
        rows.append(["1M objects" if r["heap"] else "empty", r["kind"], "%g" % r["target_ms"],
                     "%.2f" % r["ms_per_call"], "/".join(map(str, r["calls"])),
                     "%.3f" % r["mem_s"], "%.3f" % r["plain_s"],
                     "%.2fx" % r["ratio"], "%.2f-%.2f" % (r["ratio_min"], r["ratio_max"]),
                     "%.0f" % r["extra_us"], "%.1f" % r["finish_ms"], ",".join(r["verdicts"]), check])
    c.table(["heap", "body", "target ms", "ms/call", "calls", "memcheck s", "plain s", "ratio",
             "ratio range", "extra us/call", "finish ms", "verdict", "<= 1.25x"], rows,
            title="Bodies (sizes calibrated in the empty process, the same bodies in the 1M-object one): "
                  + "; ".join("%s = %s" % kv for kv in KINDS.items()))
    noop = [r for r in results if r["kind"] == "noop"]
    rows, fixed_parts = [], []
    for r in noop:
        name = "1M objects" if r["heap"] else "empty"
        calls = c.median(r["calls"])
        per_loop = (r["mem_s"] - r["plain_s"]) - calls * r["step_us"] / 1e6
        rows.append([name, "/".join(map(str, r["calls"])), "%.4f" % r["mem_s"], "%.5f" % r["plain_s"],
                     "%.0f" % r["extra_us"], "%.0f" % r["step_us"], "%.1f" % (per_loop * 1e3),
                     "%.1f (%dk objects)" % (r["gc_ms"], r["gc_objects"] // 1000), ",".join(r["verdicts"])])
        fixed_parts.append("%s: %.0f us/iteration + %.1f ms/loop" % (name, r["step_us"], per_loop * 1e3))
    c.table(["heap", "calls", "memcheck s", "plain s", "average us/call", "us/iteration (settle + snapshot)",
             "fixed ms/loop", "one full gc.collect ms", "verdict"], rows,
            title="Fixed cost with a no-op body: average = (memcheck - plain) / calls; per iteration = the "
                  "loop's work between two calls timed directly (cache clearing, gc.collect() with the "
                  "old objects frozen, one snapshot); fixed per loop = the rest (setup, gc.freeze(), "
                  "screening, trend analysis); one full gc.collect = the gc floor without freeze, for "
                  "comparison (no longer part of the loop)")
    fixed = "; ".join(fixed_parts)
    not_clean = [r for r in results if r["kind"] != "noop" and r["verdicts"] != ["ok"]]
    if worst is None:
        verdict = "no clean body >= 5 ms measured"
    else:
        verdict = "worst %.2fx (%s %g ms, %s): %s" % (
            worst["ratio"], worst["kind"], worst["target_ms"], "1M objects" if worst["heap"] else "empty heap",
            c.verdict_vs_target(worst["ratio"], TARGET_RATIO, "%.2fx"))
    per_heap = []
    for heap in (0, BIG_HEAP):
        rs = [r["ratio"] for r in results if r["kind"] != "noop" and r["heap"] == heap
              and r["verdicts"] == ["ok"] and r["target_ms"] >= TARGET_MIN_MS]
        if rs:
            per_heap.append("%s median %.2fx, worst %.2fx" % ("1M objects" if heap else "empty heap",
                                                               c.median(rs), max(rs)))
    c.summary("overhead for clean bodies >= 5 ms (%s), target <= 1.25x: %s; fixed cost %s%s" % (
        "; ".join(per_heap), verdict, fixed, ("; %d bodies judged leaking: %s" % (len(not_clean), ", ".join(
            "%s %g ms" % (r["kind"], r["target_ms"]) for r in not_clean))) if not_clean else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
