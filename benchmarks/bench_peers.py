#!/usr/bin/env python
"""Wall time of the plugin against pytest-memray's ``limit_leaks`` on the leak zoo.

    .venv/bin/python benchmarks/bench_peers.py [--quick] [--reps N] [--memray-python PATH]
                                               [--plugin-python PATH] [--no-install]

Four arms on ../shared/zoo/public, alternated over ``--reps`` repetitions (default 3), each the
wall time of the pytest subprocess:

* plugin: ``score.py --set public --iterations 30 --warmup 10 --no-baseline`` (score.py's own
  ``wall_s``: its pytest run with --memleak-all);
* plugin at its defaults: the same without ``--iterations``/``--warmup``;
* pytest-memray: pytest with ``limit_leaks("1 KB")`` on every test (benchmarks/peers/
  memray_limit_leaks.py, injected with ``-p``): 10 untracked warm-up calls, then 30 calls inside
  one memray-tracked call; run with the Python of a separate venv (default /tmp/memray-venv,
  created with ``pip install pytest-memray numpy`` when missing, unless --no-install);
* plain: the zoo's own baseline (anchors/plain_conftest.py: 40 calls, nothing measured), with the
  plugin off (``-p no:memleak``).

Equal footing: pytest-memray runs in a venv holding only it, pytest and numpy; so do the plugin
and plain arms (default /tmp/memleak-venv: ``pip install -e`` of this checkout, which brings its
runtime dependencies only). The development venv loads eight more pytest plugins (xdist,
hypothesis, asyncio, anyio, mock, flaky, rerunfailures, timeout, benchmark): 0.85 s more start-up
per run on the zoo, paid by the plugin arms only if they ran there. ``--plugin-python`` names
another interpreter (the development venv's, say).

Verdicts of both tools are scored against public/expected.json (recall, false alarms) for
context. When pytest-memray cannot be installed, the zoo README's figures are printed instead,
labelled "quoted, not measured". --quick: test_objects.py and test_clean.py only, 1 repetition,
and no venv creation (< 30 s).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as c

PEERS = os.path.join(c.BENCH, "peers")
PUBLIC = os.path.join(c.ZOO, "public")
ANCHORS = os.path.join(c.ZOO, "anchors")
QUICK_FILES = ["test_objects.py", "test_clean.py"]
QUOTED = ("pytest-memray limit_leaks(\"1 KB\") at 10 warm-up + 30 iterations: about 5 s wall, 5x the "
          "plain calls; caught 23/26 leaks with 5/21 false alarms (zoo README; quoted, not measured)")


def memray_python(args: argparse.Namespace) -> str | None:
    py = args.memray_python
    if os.path.exists(py):
        proc, _, _ = c.run([py, "-c", "import pytest_memray, numpy"], timeout=120)
        if proc.returncode == 0:
            return py
    if args.quick or args.no_install:
        return None
    venv = os.path.dirname(os.path.dirname(py))
    c.log("creating %s with pytest-memray ..." % venv)
    try:
        proc, _, _ = c.run([sys.executable, "-m", "venv", venv], timeout=300)
        if proc.returncode == 0:
            proc, _, _ = c.run([py, "-m", "pip", "install", "-q", "pytest-memray", "numpy"], timeout=600)
    except Exception as exc:
        c.log("could not install pytest-memray: %r" % exc)
        return None
    if proc.returncode != 0:
        c.log("could not install pytest-memray:\n" + c.tail(proc))
        return None
    proc, _, _ = c.run([py, "-c", "import pytest_memray, numpy"], timeout=120)
    return py if proc.returncode == 0 else None


def plugin_python(args: argparse.Namespace) -> str:
    """The interpreter of the plugin and plain arms: a venv with this checkout installed
    (editable) and nothing else but its dependencies, created when missing."""
    py = args.plugin_python
    check = [py, "-c", "import pytest_memleak, numpy, os, sys; "
             "sys.exit(os.path.dirname(os.path.dirname(pytest_memleak.__file__)) != %r)" % c.ROOT]
    if os.path.exists(py) and c.run(check, timeout=120)[0].returncode == 0:
        return py
    if args.no_install or args.quick:
        c.log("no plugin venv at %s: using %s" % (py, c.PYTHON))
        return c.PYTHON
    venv = os.path.dirname(os.path.dirname(py))
    c.log("creating %s with this checkout ..." % venv)
    proc, _, _ = c.run([sys.executable, "-m", "venv", "--clear", venv], timeout=300)
    if proc.returncode == 0:
        proc, _, _ = c.run([py, "-m", "pip", "install", "-q", "-e", c.ROOT], timeout=900)
    if proc.returncode != 0 or c.run(check, timeout=120)[0].returncode != 0:
        raise SystemExit("bench_peers: could not create the plugin venv:\n" + c.tail(proc))
    return py


def expected() -> dict:
    data = c.load_json(os.path.join(PUBLIC, "expected.json"))
    return {k: v for k, v in data.items() if not k.startswith("_")}


def score(verdicts: dict, exp: dict) -> tuple[int, int, int, int]:
    exp = {k: v for k, v in exp.items() if k in verdicts}
    leaks = [k for k, v in exp.items() if v["leak"]]
    clean = [k for k, v in exp.items() if not v["leak"]]
    return (sum(verdicts[k] == "leak" for k in leaks), len(leaks),
            sum(verdicts[k] == "leak" for k in clean), len(clean))


def run_plugin(python: str, quick: bool, defaults: bool = False) -> tuple[float, dict | None, str]:
    """The plugin on the zoo at 10 warm-up + 30 iterations (or at its own defaults)."""
    footing = [] if defaults else ["--iterations", "30", "--warmup", "10"]
    if not quick:
        cmd = [python, os.path.join(c.ZOO, "score.py"), "--set", "public", *footing,
               "--no-baseline", "--quiet-table"]
        proc, _, _ = c.run(cmd, cwd=c.ROOT, timeout=3600)
        m = re.search(r"recall (\d+)/(\d+)\s+false_positives (\d+)/(\d+).*?wall_s ([\d.]+)", proc.stdout)
        if proc.returncode != 0 or not m:
            raise SystemExit("bench_peers: score.py failed (exit %d):\n%s" % (proc.returncode, c.tail(proc)))
        rec, lt, fp, ct, wall = m.groups()
        return float(wall), None, "%s/%s" % (rec, lt) + "|" + "%s/%s" % (fp, ct)
    fd, report = tempfile.mkstemp(prefix="bench_peers_", suffix=".json")
    os.close(fd)
    os.unlink(report)
    cmd = [python, "-m", "pytest"] + [os.path.join(PUBLIC, f) for f in QUICK_FILES] + [
        "--memleak-all", "--memleak-report=" + report, "-p", "no:cacheprovider", "-q"] + (
        [] if defaults else ["--memleak-iterations=30", "--memleak-warmup=10"])
    proc, wall, _ = c.run(cmd, cwd=PUBLIC, timeout=1200)
    try:
        doc = c.load_json(report)
        os.unlink(report)
    except (OSError, ValueError):
        raise SystemExit("bench_peers: the plugin run wrote no report:\n" + c.tail(proc)) from None
    return wall, {t["nodeid"].split("public/")[-1]: t["verdict"] for t in doc["tests"]}, ""


def run_anchor(python: str, plugin: str, quick: bool, extra_env: dict) -> tuple[float, dict | None]:
    fd, report = tempfile.mkstemp(prefix="bench_peers_", suffix=".json")
    os.close(fd)
    targets = [os.path.join(PUBLIC, f) for f in QUICK_FILES] if quick else [PUBLIC]
    cmd = [python, "-m", "pytest"] + targets + ["-p", plugin, "-p", "no:cacheprovider", "-q"]
    if plugin == "plain_conftest":
        cmd += ["-p", "no:memleak"]
    env = {"PYTHONPATH": PEERS + os.pathsep + ANCHORS, "ZOO_WARMUP": "10", "ZOO_ITERATIONS": "30",
           "ZOO_REPORT": report, "PEERS_REPORT": report}
    env.update(extra_env)
    proc, wall, _ = c.run(cmd, cwd=PUBLIC, extra_env=env, timeout=3600)
    try:
        doc = c.load_json(report)
    except (OSError, ValueError):
        doc = None
    finally:
        os.unlink(report)
    if not doc:
        raise SystemExit("bench_peers: the %s run produced no results (exit %d):\n%s"
                         % (plugin, proc.returncode, c.tail(proc)))
    if plugin == "plain_conftest":
        return wall, None
    return wall, {k.split("public/")[-1]: v for k, v in doc.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 zoo files, 1 repetition (< 30 s)")
    ap.add_argument("--reps", type=int, default=None, help="repetitions per arm (default 3)")
    ap.add_argument("--memray-python", default="/tmp/memray-venv/bin/python",
                    help="Python of a venv with pytest-memray (default /tmp/memray-venv/bin/python)")
    ap.add_argument("--plugin-python", default="/tmp/memleak-venv/bin/python",
                    help="Python of a venv with only this checkout installed (default "
                         "/tmp/memleak-venv/bin/python, created when missing)")
    ap.add_argument("--no-install", action="store_true", help="do not create the venvs when missing")
    ap.add_argument("--memray-limit", default="1 KB", help='limit_leaks argument (default "1 KB")')
    args = ap.parse_args()
    reps = args.reps or (1 if args.quick else 3)
    if not os.path.exists(os.path.join(c.ZOO, "score.py")):
        raise SystemExit("bench_peers: no zoo at %s" % c.ZOO)
    mp = memray_python(args)
    pp = plugin_python(args)
    exp = expected()
    arms = ["plugin", "defaults", "plain"] + (["memray"] if mp else [])
    walls = {a: [] for a in arms}
    scores = {}
    for k in range(reps):
        order = arms if c.alternate(k) else arms[::-1]
        for arm in order:
            c.log("rep %d/%d: %s ..." % (k + 1, reps, arm))
            if arm in ("plugin", "defaults"):
                wall, verdicts, line = run_plugin(pp, args.quick, defaults=arm == "defaults")
                scores[arm] = line.split("|") if line else ["%d/%d" % score(verdicts, exp)[:2],
                                                            "%d/%d" % score(verdicts, exp)[2:]]
            elif arm == "memray":
                wall, verdicts = run_anchor(mp, "memray_limit_leaks", args.quick, {"MEMRAY_LIMIT": args.memray_limit})
                s = score(verdicts, exp)
                scores[arm] = ["%d/%d" % s[:2], "%d/%d" % s[2:]]
            else:
                wall, _ = run_anchor(pp, "plain_conftest", args.quick, {})
            walls[arm].append(wall)

    scope = ("zoo public: %s" % ", ".join(QUICK_FILES)) if args.quick else "zoo public (51 tests)"
    c.header("bench_peers.py", args.quick,
             "%s, 10 warm-up + 30 iterations (and the plugin at its defaults), %d repetition(s), alternating;"
             " plugin and plain arms on %s, pytest-memray on %s" % (scope, reps, pp, mp or "-"))
    plain = c.median(walls["plain"])
    names = {"plugin": "pytest-memleak (--memleak-all)",
             "defaults": "pytest-memleak at its defaults (--memleak-all)",
             "memray": "pytest-memray limit_leaks(%r)" % args.memray_limit,
             "plain": "plain calls (zoo plain_conftest)"}
    rows = []
    for arm in ["plugin", "defaults", "memray", "plain"]:
        if arm not in walls:
            continue
        w = c.median(walls[arm])
        sc = scores.get(arm, ["-", "-"])
        rows.append([names[arm], " ".join("%.1f" % x for x in walls[arm]), "%.1f" % w, "%.1fx" % (w / plain),
                     sc[0], sc[1], "measured"])
    if not mp:
        rows.append(['pytest-memray limit_leaks("1 KB")', "-", "~5", "~5x", "23/26", "5/21",
                     "quoted, not measured (zoo README)"])
    c.table(["tool", "wall s per run", "median s", "x plain", "recall", "false alarms", "source"], rows)
    pw = c.median(walls["plugin"])
    dw = c.median(walls["defaults"])
    if mp:
        mw = c.median(walls["memray"])
        rel = ("pytest-memray %.1f s (%.1fx plain); plugin/memray %.2fx at 10+30 (target <= 1.0: %s), "
               "%.2fx at the plugin's defaults (target <= 0.6: %s)"
               % (mw, mw / plain, pw / mw, "MET" if pw / mw <= 1.0 else "MISSED",
                  dw / mw, "MET" if dw / mw <= 0.6 else "MISSED"))
    else:
        rel = QUOTED + " (targets need a measured pytest-memray)"
    c.summary("plugin %.1f s at 10+30 (%.1fx the plain calls' %.1f s, recall %s, false alarms %s), "
              "%.1f s at its defaults (recall %s, false alarms %s); %s"
              % (pw, pw / plain, plain, scores["plugin"][0], scores["plugin"][1], dw,
                 scores["defaults"][0], scores["defaults"][1], rel))
    return 0


if __name__ == "__main__":
    sys.exit(main())
