#!/usr/bin/env python
"""Run every benchmark script one after another and print their reports as one Markdown text.

    .venv/bin/python benchmarks/run_all.py [--quick] [--only NAME ...] > /tmp/bench.md

Each section is the command and the script's own output (header line, tables, Summary line),
ready to paste into docs/benchmarks.md. A script that fails is reported with its exit code and
the tail of its error output; the others still run. The exit code is non-zero when any failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SCRIPTS = ["bench_accuracy", "bench_overhead", "bench_probes", "bench_idle", "bench_sensitivity",
           "bench_scale", "bench_peers", "bench_stability", "bench_sampler", "bench_html", "bench_monitor",
           "bench_long_run"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="pass --quick to every script")
    ap.add_argument("--only", nargs="*", default=None, help="run only these scripts (e.g. bench_idle)")
    args = ap.parse_args()
    failed = 0
    for name in args.only or SCRIPTS:
        name = name[:-3] if name.endswith(".py") else name
        cmd = [sys.executable, os.path.join("benchmarks", name + ".py")] + (["--quick"] if args.quick else [])
        shown = ".venv/bin/python benchmarks/%s.py%s" % (name, " --quick" if args.quick else "")
        sys.stderr.write("== %s\n" % shown)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        took = time.perf_counter() - t0
        print("### %s\n\n    %s\n" % (name, shown))
        if proc.returncode != 0:
            failed += 1
            err = (proc.stderr or proc.stdout)[-3000:]
            print("FAILED (exit %d after %.0f s):\n\n```\n%s\n```\n" % (proc.returncode, took, err))
        else:
            print(proc.stdout.rstrip() + "\n")
            print("(%.0f s)\n" % took)
        sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
