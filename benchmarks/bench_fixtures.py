#!/usr/bin/env python
"""Cost of fresh function-scoped fixtures per iteration (``fixtures = per-iteration``, the
default) against fixtures set up once for all calls (``fixtures = shared``).

    python benchmarks/bench_fixtures.py [--pairs 3] [--tests 40] [--quick]

A generated suite of clean checked tests, each using typical function-scoped fixtures
(``tmp_path``, ``monkeypatch``, a fixture of its own built on them), runs with both settings,
alternating (A B, B A, ...) in one run. Prints the median wall and CPU time of each arm, the
per-test time of the loop (sum of the report's ``duration_s`` / tests) and the ratios, and one
``Summary:`` line. Verdicts must be ``ok`` in both arms.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as c

MODULE = '''
import pytest


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("APP_HOME", str(tmp_path))
    (tmp_path / "config.ini").write_text("[app]\\nname = x\\n")
    return tmp_path


@pytest.mark.parametrize("n", range({tests}))
def test_reads_config(workdir, n):
    text = (workdir / "config.ini").read_text()
    assert "name" in text
'''


def one(folder: str, mode: str) -> tuple[float, float, float, dict[str, int]]:
    report = os.path.join(folder, f"report-{mode}.json")
    proc, wall, cpu = c.run_cpu(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         "--memleak-all", f"--memleak-fixtures={mode}", f"--memleak-report={report}"],
        cwd=folder, timeout=900,
    )
    if proc.returncode not in (0, 1):
        raise SystemExit(f"pytest failed ({proc.returncode}):\n{c.tail(proc)}")
    doc = c.load_json(report)
    loop = sum(t["duration_s"] for t in doc["tests"]) / max(1, len(doc["tests"]))
    verdicts: dict[str, int] = {}
    for t in doc["tests"]:
        verdicts[t["verdict"]] = verdicts.get(t["verdict"], 0) + 1
    return wall, cpu, loop, verdicts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--tests", type=int, default=40)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.pairs, args.tests = 1, 10
    c.header("bench_fixtures.py", args.quick, f"{args.tests} tests, {args.pairs} pairs")
    with tempfile.TemporaryDirectory(prefix="bench_fixtures_") as folder:
        c.pytest_ini(folder)
        with open(os.path.join(folder, "test_fixtures.py"), "w") as f:
            f.write(MODULE.format(tests=args.tests))
        arms = ("per-iteration", "shared")
        data: dict[str, list[tuple[float, float, float, dict[str, int]]]] = {a: [] for a in arms}
        for k in range(args.pairs):
            order = arms if c.alternate(k) else arms[::-1]
            for mode in order:
                c.log(f"pair {k + 1}: {mode}")
                data[mode].append(one(folder, mode))
    rows = []
    for mode in arms:
        runs = data[mode]
        rows.append([
            mode,
            c.fmt_s(c.median([r[0] for r in runs])),
            c.fmt_s(c.median([r[1] for r in runs])),
            "%.1f ms" % (1000 * c.median([r[2] for r in runs])),
            ", ".join(f"{n} {v}" for v, n in sorted(runs[-1][3].items())),
        ])
    c.table(["fixtures", "wall (median)", "CPU (median)", "loop per test", "verdicts"], rows)
    med = {m: [c.median([r[i] for r in data[m]]) for i in range(3)] for m in arms}
    ratio_wall = med["per-iteration"][0] / med["shared"][0]
    ratio_loop = med["per-iteration"][2] / med["shared"][2]
    clean = all(set(r[3]) == {"ok"} for m in arms for r in data[m])
    c.summary(
        "per-iteration / shared: wall %.2fx, loop per test %.2fx; verdicts all ok: %s"
        % (ratio_wall, ratio_loop, "yes" if clean else "NO")
    )


if __name__ == "__main__":
    main()
