#!/usr/bin/env python
"""Verdict stability: the leak corpora run 5 times quietly and 5 times beside noisy neighbours.

    python benchmarks/bench_stability.py [--runs 5] [--quick]

Corpora: ``../shared/zoo/public`` (when present, scored by its own score.py) and this project's
``benchmarks/corpus``. The noisy runs start two neighbour processes for their duration: a CPU
hog (a busy loop) and a memory churner (allocates, touches and frees 256 MiB in a loop). Every
test's verdict must be identical across all runs. Prints a table and one ``Summary:`` line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as c

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
ZOO_SCORE = os.path.normpath(os.path.join(ROOT, "..", "shared", "zoo", "score.py"))
CORPUS = os.path.join(BENCH, "corpus")

HOG = "while True: pass"
CHURN = (
    "import time\n"
    "while True:\n"
    "    b = bytearray(256 * 1024 * 1024)\n"
    "    b[::4096] = b'x' * len(b[::4096])\n"
    "    del b\n"
    "    time.sleep(0.05)\n"
)


def neighbours() -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", code]) for code in (HOG, CHURN)]


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
        p.wait()


def run_corpus(path: str) -> dict[str, str]:
    """Verdicts of one plugin run over a corpus folder."""
    fd, report = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        subprocess.run(
            [sys.executable, "-m", "pytest", path, "--memleak-all", f"--memleak-report={report}",
             "-p", "no:cacheprovider", "-q", "-p", "no:randomly"],
            cwd=path, capture_output=True, text=True, timeout=900, check=False,
        )
        with open(report, encoding="utf-8") as f:
            doc = json.load(f)
    finally:
        os.unlink(report)
    return {t["nodeid"].split("/")[-1]: t["verdict"] for t in doc["tests"]}


def run_zoo() -> dict[str, str]:
    fd, out = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        subprocess.run(
            [sys.executable, ZOO_SCORE, "--set", "public", "--no-baseline", "--quiet-table",
             "--json-out", out],
            capture_output=True, text=True, timeout=900, check=True,
        )
        with open(out, encoding="utf-8") as f:
            doc = json.load(f)
    finally:
        os.unlink(out)
    return {f"zoo/{k}": v for k, v in doc["runs"][0]["verdicts"].items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="runs per condition (default 5)")
    ap.add_argument("--quick", action="store_true", help="1 run per condition, corpus only")
    a = ap.parse_args()
    runs = 1 if a.quick else a.runs
    corpora = [("corpus", lambda: run_corpus(CORPUS))]
    if os.path.exists(ZOO_SCORE) and not a.quick:
        corpora.append(("zoo", run_zoo))
    results: dict[str, list[dict[str, str]]] = {}
    times: dict[str, list[float]] = {}
    for condition in ("quiet", "noisy"):
        for k in range(runs):
            procs = neighbours() if condition == "noisy" else []
            try:
                for name, fn in corpora:
                    t0 = time.perf_counter()
                    verdicts = fn()
                    times.setdefault(f"{name}/{condition}", []).append(time.perf_counter() - t0)
                    results.setdefault(name, []).append(verdicts)
                    print(f"[{condition} {k + 1}/{runs}] {name}: {len(verdicts)} verdicts",
                          file=sys.stderr)
            finally:
                stop(procs)
    c.header("bench_stability.py", a.quick, f"{runs} quiet + {runs} noisy runs per corpus "
             "(noisy: beside a CPU hog and a 256 MiB memory churner)")
    print("| corpus | tests | runs | tests whose verdict differed | leak verdicts | "
          "median wall s quiet / noisy |")
    print("|---|---|---|---|---|---|")
    total_diff = 0
    for name, runs_list in results.items():
        keys = sorted(set().union(*runs_list))
        differ = [k for k in keys if len({r.get(k) for r in runs_list}) > 1]
        total_diff += len(differ)
        leaks = sum(1 for v in runs_list[0].values() if v == "leak")
        q = sorted(times[f"{name}/quiet"])[len(times[f"{name}/quiet"]) // 2]
        n = sorted(times[f"{name}/noisy"])[len(times[f"{name}/noisy"]) // 2]
        print(f"| {name} | {len(keys)} | {len(runs_list)} | {len(differ)} | {leaks} | "
              f"{q:.1f} / {n:.1f} |")
        for k in differ:
            print(f"|  differs: {k} | | | {[r.get(k) for r in runs_list]} | | |")
    verdict = "identical" if total_diff == 0 else f"{total_diff} tests DIFFER"
    print(f"\nSummary: verdicts {verdict} across {2 * runs} runs per corpus "
          f"({runs} quiet, {runs} beside a CPU hog and a 256 MiB memory churner)")
    return 0 if total_diff == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
