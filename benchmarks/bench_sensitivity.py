#!/usr/bin/env python
"""The smallest per-iteration leak the default settings catch, and how many iterations a verdict takes.

    .venv/bin/python benchmarks/bench_sensitivity.py [--quick] [--trials N]

Uses ``pytest_memleak.check(fn)`` with the default settings (warmup 5, 10 iterations a round, at
most 30) on bodies that retain a known amount per call, at increasing sizes:

* Python objects: N empty dicts per call (kept in a preallocated list, so no container grows);
* bytes objects: one ``bytes`` of k bytes per call (preallocated list);
* bytearray growth: one bytearray extended by k bytes per call (object count constant);
* native malloc: ``libc.malloc(k)`` per call through ctypes, never freed during the check (the
  pointers go into a preallocated ``array('Q')``; they are freed after each check).

Each size is checked ``--trials`` times (default 5); a size counts as caught when every trial says
``leak``; the summary gives, per kind, the smallest size from which every size tried was caught in
every trial (and the smallest caught at least once). Then the number of measured iterations
(``TestResult.iterations``) the verdict took, for clean and for leaking bodies. --quick: 1 trial,
fewer sizes.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
import time
from array import array

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as c

CAP = 4096  # slots per check: more than warmup + max_iterations + the diagnosis pass need

_libc = ctypes.CDLL(None)
_libc.malloc.restype = ctypes.c_void_p
_libc.malloc.argtypes = [ctypes.c_size_t]
_libc.free.restype = None
_libc.free.argtypes = [ctypes.c_void_p]
_libc.memset.restype = ctypes.c_void_p
_libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]


class Sink:
    """Preallocated storage for what a body retains; emptied after each check."""

    def __init__(self, per_call: int = 1) -> None:
        self.slots: list = [None] * (CAP * per_call)
        self.ptrs = array("Q", bytes(8 * CAP))
        self.i = 0
        self.blob = bytearray()

    def release(self) -> None:
        for k in range(min(self.i, CAP)):
            if self.ptrs[k]:
                _libc.free(self.ptrs[k])
        self.slots = []
        self.blob = bytearray()


def dicts_body(sink: Sink, n: int):
    def body():
        base = sink.i * n
        for j in range(n):
            sink.slots[base + j] = {}
        sink.i += 1
    return body


def bytes_body(sink: Sink, k: int):
    def body():
        sink.slots[sink.i] = bytes(k)
        sink.i += 1
    return body


def bytearray_body(sink: Sink, k: int):
    chunk = b"\x01" * k

    def body():
        sink.blob.extend(chunk)
        sink.i += 1
    return body


def malloc_body(sink: Sink, k: int):
    def body():
        p = _libc.malloc(k)
        _libc.memset(p, 1, k)
        sink.ptrs[sink.i] = p
        sink.i += 1
    return body


KINDS = {
    "python objects (empty dicts per call)": (dicts_body, "dict(s)", [1, 2, 3, 4, 6, 8, 16, 32, 64],
                                              [1, 2, 4, 16]),
    "bytes object of k B per call": (bytes_body, "B", [2, 16, 64, 256, 1024, 4096, 16384, 65536],
                                     [2, 1024, 65536]),
    "bytearray grown by k B per call": (bytearray_body, "B", [8, 32, 64, 96, 128, 160, 192, 256, 384, 512,
                                                              1024, 4096, 16384],
                                        [32, 256, 4096]),
    "native malloc of k B per call (ctypes)": (malloc_body, "B", [8, 16, 32, 64, 96, 128, 160, 192, 256,
                                                                  384, 512, 1024, 4096, 16384, 65536,
                                                                  262144],
                                               [16, 256, 4096, 65536]),
}


# clean bodies and fixed leaks for the iteration counts
def noop():
    return None


def temporaries():
    rows = [{"k": i, "v": str(i)} for i in range(200)]
    del rows


class _Node:
    def __init__(self):
        self.peer = None
        self.payload = bytearray(2048)


def cycles():
    a, b = _Node(), _Node()
    a.peer, b.peer = b, a


def check(fn):
    from pytest_memleak import check as memleak_check

    return memleak_check(fn)


def run_level(make, size: int, trials: int) -> tuple[int, list]:
    caught, results = 0, []
    for _ in range(trials):
        sink = Sink(per_call=size if make is dicts_body else 1)
        r = check(make(sink, size))
        sink.release()
        caught += r.verdict == "leak"
        results.append(r)
    return caught, results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 trial, fewer sizes (< 30 s)")
    ap.add_argument("--trials", type=int, default=None, help="checks per size (default 5; 1 with --quick)")
    args = ap.parse_args()
    trials = args.trials or (1 if args.quick else 5)
    t_start = time.perf_counter()
    check(noop)  # one-off costs (mean block size, imports) before anything is timed

    rows, smallest = [], {}
    for kind, (make, unit, sizes, quick_sizes) in KINDS.items():
        first_all = first_any = None
        for size in (quick_sizes if args.quick else sizes):
            c.log("%s: %d %s x%d ..." % (kind, size, unit, trials))
            caught, results = run_level(make, size, trials)
            if caught and first_any is None:
                first_any = size
            if caught == trials and first_all is None:
                first_all = size  # reliable from here on, unless a larger size is missed
            elif caught < trials:
                first_all = None
            metrics = sorted({f.metric for r in results for f in r.findings if f.failing})
            iters = sorted(r.iterations for r in results)
            rows.append([kind, "%d %s" % (size, unit), "%d/%d" % (caught, trials), ",".join(metrics) or "-",
                         "%d" % c.median(iters) if iters else "-",
                         "%.2f" % c.median([r.duration_s for r in results])])
        smallest[kind] = (first_all, first_any, unit)

    c.log("iteration counts ...")
    it_rows = []
    it_trials = max(3, trials) if not args.quick else 2
    cases = [
        ("clean: no-op", lambda: noop),
        ("clean: 200 dicts made and freed", lambda: temporaries),
        ("clean: 2 KiB reference cycles (gc frees them)", lambda: cycles),
        ("leak: 1 empty dict per call", lambda: dicts_body(Sink(), 1)),
        ("leak: 1 KiB bytes per call", lambda: bytes_body(Sink(), 1024)),
        ("leak: 64 KiB malloc per call", lambda: malloc_body(Sink(), 65536)),
    ]
    for name, make in cases:
        results = []
        for _ in range(it_trials):
            body = make()
            results.append(check(body))
            sink = getattr(body, "__closure__", None)
            for cell in sink or ():
                if isinstance(cell.cell_contents, Sink):
                    cell.cell_contents.release()
        iters = sorted(r.iterations for r in results)
        it_rows.append([name, len(results), " ".join(sorted({r.verdict for r in results})),
                        "%d" % c.median(iters), "%d-%d" % (iters[0], iters[-1]),
                        "%d" % c.median([r.warmup for r in results]),
                        " ".join(sorted({"/".join(map(str, r.rounds)) for r in results})),
                        " ".join(sorted({r.stop_reason for r in results})),
                        "%.2f" % c.median([r.duration_s for r in results])])

    c.header("bench_sensitivity.py", args.quick, "pytest_memleak.check() with default settings, %d trial(s) "
             "per size; run took %.0f s" % (trials, time.perf_counter() - t_start))
    c.table(["leak kind", "per call", "caught", "failing metrics", "iterations (median)", "check s (median)"],
            rows, title="Leak size per call against the verdict")
    c.table(["body", "checks", "verdicts", "measured iterations (median)", "range", "warm-up",
             "rounds at", "stop reason", "s per check"], it_rows,
            title="Measured iterations the verdict took (TestResult.iterations)")
    parts = []
    for kind, (all_, any_, unit) in smallest.items():
        short = {"python": "empty dicts", "bytes": "bytes objects", "bytearray": "bytearray growth",
                 "native": "native malloc"}[kind.split()[0]]
        if all_ is None:
            parts.append("%s: not reliably caught at any size tried" % short)
        else:
            parts.append("%s: %d %s%s" % (short, all_, unit,
                                          "" if any_ == all_ else " (sometimes from %d)" % any_))
    clean_iters = [r for r in it_rows if r[0].startswith("clean")]
    leak_iters = [r for r in it_rows if r[0].startswith("leak")]
    c.summary("caught in every trial from (and at every larger size): %s; measured iterations: clean %s, leaking %s "
              "(no numeric target)" % ("; ".join(parts), "/".join(r[3] for r in clean_iters),
                                      "/".join(r[3] for r in leak_iters)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
