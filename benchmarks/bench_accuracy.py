#!/usr/bin/env python
"""Accuracy of the plugin's verdicts: recall, false alarms, leak type and source, stability.

    .venv/bin/python benchmarks/bench_accuracy.py [--quick] [--repeat N] [--no-zoo]
                                                  [--iterations N] [--warmup N]

Two corpora, each run ``--repeat`` times (default 5) with ``pytest --memleak-all``:

(a) benchmarks/corpus/ (10 leaking + 10 clean tests, ground truth in corpus/expected.json);
(b) the shared leak zoo (../shared/zoo, 26 leaking + 21 clean) through its own score.py, when
    present.

A leak is *caught* when the test's verdict is ``leak``; a clean test with verdict ``leak`` is a
false alarm. Type accuracy counts caught leaks with a reported leak of the expected type (socket
and file_handle are equivalent, as in score.py); source accuracy counts caught leaks with a
reported source within 2 lines of the allocating line. Stability: tests whose verdict was the
same in every run. --quick runs the benchmark corpus once and skips the zoo (a smoke run, < 30 s;
add --zoo to score the zoo once too).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as c

EQUIV_TYPES = [{"socket", "file_handle"}]


def types_match(got: str, want: str) -> bool:
    return got == want or any(got in eq and want in eq for eq in EQUIV_TYPES)


def source_matches(source: str | None, hint: str | None) -> bool:
    if not source or not hint:
        return False
    fname, line = hint.rsplit(":", 1)
    return any(abs(int(m.group(1)) - int(line)) <= 2
               for m in re.finditer(re.escape(fname) + r":(\d+)", source))


def normalise(nodeid: str) -> str:
    nodeid = nodeid.replace("\\", "/")
    for marker in ("corpus/", "zoo/public/"):
        if marker in nodeid:
            nodeid = nodeid.split(marker, 1)[1]
    return nodeid


def load_expected(path: str) -> dict:
    data = c.load_json(path)
    return {k: v for k, v in data.items() if not k.startswith("_")}


def check_hints(expected: dict, folder: str) -> None:
    """Warn when a source_hint no longer points at a '# leak-source' line (the file was edited)."""
    for nid, exp in expected.items():
        hint = exp.get("source_hint")
        if not hint:
            continue
        fname, line = hint.rsplit(":", 1)
        try:
            with open(os.path.join(folder, fname)) as f:
                text = f.read().splitlines()[int(line) - 1]
        except (OSError, IndexError):
            text = ""
        if "leak-source" not in text:
            c.log("warning: %s: source_hint %s is not a '# leak-source' line" % (nid, hint))


# ------------------------------------------------------------------------------- runs
def run_corpus(args: argparse.Namespace) -> tuple[list[dict], list[float]]:
    """Per run: nodeid -> {verdict, types, sources}; and the wall time of each run."""
    runs, walls = [], []
    for k in range(args.repeat):
        fd, report = tempfile.mkstemp(prefix="bench_acc_", suffix=".json")
        os.close(fd)
        os.unlink(report)
        cmd = [c.PYTHON, "-m", "pytest", c.CORPUS, "--memleak-all", "--memleak-report=" + report,
               "-p", "no:cacheprovider", "-q"]
        if args.iterations is not None:
            cmd.append("--memleak-iterations=%d" % args.iterations)
        if args.warmup is not None:
            cmd.append("--memleak-warmup=%d" % args.warmup)
        c.log("corpus run %d/%d ..." % (k + 1, args.repeat))
        proc, wall, _ = c.run(cmd, cwd=c.CORPUS, timeout=900)
        try:
            doc = c.load_json(report)
            os.unlink(report)
        except (OSError, ValueError):
            raise SystemExit("bench_accuracy: the corpus run wrote no report (pytest exit %d):\n%s"
                             % (proc.returncode, c.tail(proc))) from None
        res = {}
        for t in doc.get("tests", []):
            leaks = [lk for lk in t.get("leaks") or [] if isinstance(lk, dict) and not lk.get("suppressed")]
            res[normalise(t["nodeid"])] = {
                "verdict": t.get("verdict"),
                "types": [str(lk.get("type")) for lk in leaks],
                "sources": [str(lk.get("source")) for lk in leaks],
            }
        runs.append(res)
        walls.append(wall)
    return runs, walls


def run_zoo(args: argparse.Namespace) -> tuple[list[dict], list[float]] | None:
    score = os.path.join(c.ZOO, "score.py")
    if not os.path.exists(score) or not os.path.exists(os.path.join(c.ZOO, "public", "expected.json")):
        c.log("no zoo at %s: skipped" % c.ZOO)
        return None
    fd, out = tempfile.mkstemp(prefix="bench_acc_zoo_", suffix=".json")
    os.close(fd)
    cmd = [c.PYTHON, score, "--set", "public", "--repeat", str(args.repeat), "--no-baseline",
           "--quiet-table", "--json-out", out]
    if args.iterations is not None:
        cmd += ["--iterations", str(args.iterations)]
    if args.warmup is not None:
        cmd += ["--warmup", str(args.warmup)]
    c.log("zoo: score.py --repeat %d ..." % args.repeat)
    proc, _, _ = c.run(cmd, cwd=c.ROOT, timeout=3600)
    try:
        doc = c.load_json(out)
    except (OSError, ValueError):
        raise SystemExit("bench_accuracy: score.py failed (exit %d):\n%s"
                         % (proc.returncode, c.tail(proc))) from None
    finally:
        os.unlink(out)
    runs, walls = [], []
    for r in doc["runs"]:
        res = {}
        for nid, verdict in r["verdicts"].items():
            res[normalise(nid)] = {"verdict": verdict, "type_ok": r["type_ok"].get(nid),
                                   "source_ok": r["source_ok"].get(nid),
                                   "detail": (r.get("details") or {}).get(nid) or ""}
        runs.append(res)
        walls.append(r["wall_s"])
    return runs, walls


# ------------------------------------------------------------------------------- scoring
def score(expected: dict, runs: list[dict], precomputed: bool) -> tuple[list[dict], dict]:
    """Per-test rows and the corpus totals (ranges over the runs)."""
    rows = []
    per_run = [collections.Counter() for _ in runs]
    stable = 0
    for nid, exp in sorted(expected.items()):
        verdicts, type_oks, src_oks, extras = [], [], [], 0
        for k, res in enumerate(runs):
            r = res.get(nid, {"verdict": "missing", "types": [], "sources": []})
            v = r["verdict"]
            verdicts.append(v)
            if v in ("error", "missing"):
                per_run[k]["errors"] += 1
            if exp["leak"]:
                per_run[k]["leaks"] += 1
                if v == "leak":
                    per_run[k]["caught"] += 1
                    if precomputed:
                        t_ok, s_ok = r.get("type_ok"), r.get("source_ok")
                    else:
                        t_ok = any(types_match(t, exp["type"]) for t in r["types"]) if r["types"] else None
                        s_ok = (any(source_matches(s, exp["source_hint"]) for s in r["sources"])
                                if r["sources"] else None)
                        extras += sum(1 for s in r["sources"] if not source_matches(s, exp["source_hint"]))
                    if t_ok is not None:
                        per_run[k]["typed"] += 1
                        per_run[k]["type_ok"] += bool(t_ok)
                        type_oks.append(bool(t_ok))
                    if s_ok is not None:
                        per_run[k]["sourced"] += 1
                        per_run[k]["source_ok"] += bool(s_ok)
                        src_oks.append(bool(s_ok))
            else:
                per_run[k]["clean"] += 1
                per_run[k]["false_alarms"] += v == "leak"
        counts = collections.Counter(verdicts)
        is_stable = len(counts) == 1
        stable += is_stable
        hits = counts.get("leak", 0)
        if exp["leak"]:
            result = "hit" if hits == len(runs) else ("MISS" if hits == 0 else "UNSTABLE hit %d/%d" % (hits, len(runs)))
        else:
            result = "ok" if hits == 0 else ("FALSE ALARM" if hits == len(runs) else
                                             "UNSTABLE alarm %d/%d" % (hits, len(runs)))
        other = [v for v in counts if v not in ("ok", "leak")]
        if other:
            result += " (%s)" % ",".join(other)
        rows.append({
            "test": nid, "expected": ("LEAK %s" % exp["type"]) if exp["leak"] else "clean/%s" % exp.get("pattern", ""),
            "verdicts": " ".join("%s x%d" % (v, n) for v, n in sorted(counts.items())),
            "type": _frac(type_oks), "source": _frac(src_oks), "extra": extras if not precomputed else None,
            "result": result, "perfect": result in ("hit", "ok") and all(type_oks) and all(src_oks),
        })

    def rng(key: str) -> str:
        vals = [pr[key] for pr in per_run]
        return "%d" % vals[0] if min(vals) == max(vals) else "%d-%d" % (min(vals), max(vals))

    def total(key: str) -> int:
        return sum(pr[key] for pr in per_run)

    first = per_run[0]
    totals = {
        "tests": len(expected), "leaks": first["leaks"], "clean": first["clean"],
        "recall": "%s/%d" % (rng("caught"), first["leaks"]),
        "false_alarms": "%s/%d" % (rng("false_alarms"), first["clean"]),
        "type": ("%d/%d" % (total("type_ok"), total("caught"))) if any(pr["typed"] for pr in per_run)
        else "n/a (no leak types reported)",
        "source": ("%d/%d" % (total("source_ok"), total("caught"))) if any(pr["sourced"] for pr in per_run)
        else "n/a (no leak sources reported)",
        "stable": "%d/%d" % (stable, len(expected)),
        "errors": rng("errors"),
        "recall_min": min(pr["caught"] for pr in per_run),
        "fa_max": max(pr["false_alarms"] for pr in per_run),
        "stable_n": stable,
    }
    return rows, totals


def _frac(oks: list[bool]) -> str | None:
    if not oks:
        return None
    return "yes" if all(oks) else ("no" if not any(oks) else "%d/%d" % (sum(oks), len(oks)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: the corpus once, no zoo (< 30 s)")
    ap.add_argument("--repeat", type=int, default=None, help="runs per corpus (default 5; 1 with --quick)")
    ap.add_argument("--no-zoo", action="store_true", help="skip ../shared/zoo")
    ap.add_argument("--zoo", action="store_true", help="score the zoo even with --quick")
    ap.add_argument("--iterations", type=int, default=None, help="--memleak-iterations (default: the plugin's)")
    ap.add_argument("--warmup", type=int, default=None, help="--memleak-warmup (default: the plugin's)")
    args = ap.parse_args()
    if args.repeat is None:
        args.repeat = 1 if args.quick else 5
    settings = "plugin defaults" if args.iterations is None and args.warmup is None else \
        "iterations %s, warmup %s" % (args.iterations or "default",
                                      args.warmup if args.warmup is not None else "default")

    expected = load_expected(os.path.join(c.CORPUS, "expected.json"))
    check_hints(expected, c.CORPUS)
    corpus_runs, corpus_walls = run_corpus(args)
    skip_zoo = args.no_zoo or (args.quick and not args.zoo)
    zoo = None if skip_zoo else run_zoo(args)

    c.header("bench_accuracy.py", args.quick, "%d run(s) per corpus, %s" % (args.repeat, settings))
    rows, tot = score(expected, corpus_runs, precomputed=False)
    c.table(["test", "expected", "verdicts", "type", "source", "other sources", "result"],
            [[r["test"], r["expected"], r["verdicts"], r["type"], r["source"], r["extra"], r["result"]]
             for r in rows],
            title="benchmarks/corpus (other sources: reported leak sources other than the marked "
                  "allocating line, summed over runs; not necessarily wrong)")
    totals = [("benchmarks/corpus", tot, corpus_walls)]
    if zoo is not None:
        zexp = load_expected(os.path.join(c.ZOO, "public", "expected.json"))
        zrows, ztot = score(zexp, zoo[0], precomputed=True)
        bad = [r for r in zrows if not r["perfect"]]
        if bad:
            c.table(["test", "expected", "verdicts", "type", "source", "result"],
                    [[r["test"], r["expected"], r["verdicts"], r["type"], r["source"], r["result"]]
                     for r in bad],
                    title="../shared/zoo (public): the %d of %d tests with a miss, false alarm, "
                          "unstable verdict, wrong type or wrong source" % (len(bad), len(zrows)))
        else:
            print("../shared/zoo (public): every test right in every run.")
            print()
        totals.append(("../shared/zoo public", ztot, zoo[1]))
    elif args.quick and not args.no_zoo:
        print("../shared/zoo: not scored with --quick (about 20 s a run; add --zoo to score it).")
        print()
    c.table(["corpus", "runs", "recall", "false alarms", "type right", "source right",
             "stable verdicts", "errors", "wall s (median)"],
            [[name, args.repeat, t["recall"], t["false_alarms"], t["type"], t["source"], t["stable"],
              t["errors"], c.fmt_s(c.median(w))] for name, t, w in totals],
            title="Totals (recall, false alarms: a-b is the range over the runs; type and source right: "
                  "caught leaks summed over all runs)")
    parts = []
    for name, t, _ in totals:
        parts.append("%s: recall %s, false alarms %s, type right %s, source right %s, stable %s over %d run(s)" % (
            name, t["recall"], t["false_alarms"], t["type"].split(" (")[0], t["source"].split(" (")[0],
            t["stable"], args.repeat))
    perfect = all(t["recall_min"] == t["leaks"] and t["fa_max"] == 0 and t["stable_n"] == t["tests"]
                  for _, t, _ in totals)
    c.summary("; ".join(parts) + "; goal (all leaks caught, no false alarm, identical verdicts): %s"
              % ("MET" if perfect else "MISSED"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
