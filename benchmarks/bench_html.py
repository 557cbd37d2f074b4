#!/usr/bin/env python
"""Size and speed of the HTML report for a large run: 1,000 tests.

    .venv/bin/python benchmarks/bench_html.py [--quick] [--tests N] [--runs N] [--compare DIR] [--keep DIR]

Builds a report of ``--tests`` tests (default 1,000) from the model, seeded, with the series a
real run records: clean tests of 6, 11 or 16 snapshots (decided after 5, 10 or 15 iterations),
leaking ones of 21 or 31 snapshots with their leaks, findings and traced diagnosis, a few errors
and skips, and soak and watch tests of 300 to 1,000 samples (3 % leak, 1 % error, 0.5 % skipped,
1 % sampled). Renders it ``--runs`` times (default 3) and reports the page size and the median
time to render; when ``chromium`` is installed, the median time headless Chromium takes to open
the page: as the page itself measures it (a copy of the page, without its CSP, with a script that
on the load event forces a layout of the whole page and records the milliseconds since the
navigation started: parse, scripts, style and layout), and the wall time of a 1280x2000
``--screenshot`` run (paint too, and Chromium's start-up: the same for a one-line page is
subtracted in the "net" column).

``--compare DIR`` renders the same report with the package found in ``DIR`` too (a copy of an
older ``pytest_memleak``: ``DIR/pytest_memleak``), in a subprocess, and times both pages side by
side, alternating (A B, B A, ...). ``--keep DIR`` writes the pages there. --quick: 200 tests,
1 run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as c

# ------------------------------------------------------------------------------- the report


def _walk(rng: random.Random, n: int, start: float, step: float, noise: float) -> tuple[float, ...]:
    """``n`` readings from ``start`` growing ``step`` a point, with page-sized jitter."""
    return tuple(float(round(start + k * step + rng.uniform(-noise, noise))) for k in range(n))


def _growth(model, metric: str, unit: str, pattern: str, slope: float, slope_s: float, total: float):
    return model.Growth(
        metric,
        unit,
        pattern,
        slope,
        slope_s,
        total,
        0.9 if pattern != "stable" else 0.0,
        0.001 if pattern != "stable" else 1.0,
        0.8,
        0.9,
        0.99 if pattern != "stable" else 0.0,
        0.0,
        "No sustained growth: nothing to do." if pattern == "stable" else "",
    )


SETTINGS = {
    "iterations": 10,
    "warmup": 5,
    "max_iterations": 30,
    "fail_on": "low",
    "mode": "repeat",
    "interval": 0.1,
    "retention": 1000,
    "diagnose": "auto",
    "suppress": [],
}


def _loop_test(model, rng: random.Random, i: int, verdict: str):
    """A repeat-loop test: clean (6, 11 or 16 snapshots) or leaking (21 or 31)."""
    nodeid = "tests/unit/test_module_%02d.py::TestThing::test_case_%04d[param-%d]" % (i % 40, i, i % 7)
    leaking = verdict == "leak"
    n = rng.choice((21, 31)) if leaking else rng.choice((6, 6, 11, 16))
    step = rng.choice((4096.0, 8192.0, 65536.0)) if leaking else 0.0
    rss = _walk(rng, n, 60e6 + rng.uniform(0, 40e6), step, 0 if rng.random() < 0.7 else 4096)
    heap = _walk(rng, n, 30e6 + rng.uniform(0, 10e6), step * 0.9, 256)
    snaps = {
        "t": tuple(round(k * 0.004, 6) for k in range(n)),
        "rss": rss,
        "heap": heap,
        "external": tuple(r - h for r, h in zip(rss, heap)),
        "malloc": heap,
        "malloc_main": heap,
        "py_blocks": _walk(rng, n, 150000, 1.0 if leaking else 0.0, 2),
        "fds": (12.0,) * n,
        "threads": (1.0,) * n,
        "children": (0.0,) * n,
        "external_ratio": tuple(round((r - h) / h, 4) for r, h in zip(rss, heap)),
    }
    metrics = (
        ("py_blocks", "count"),
        ("malloc", "bytes"),
        ("rss", "bytes"),
        ("heap", "bytes"),
        ("external", "bytes"),
        ("fds", "count"),
        ("threads", "count"),
        ("children", "count"),
    )
    growth = {}
    for m, unit in metrics:
        grows = leaking and m in ("malloc", "rss", "heap", "py_blocks")
        slope = (1.0 if m == "py_blocks" else step) if grows else 0.0
        growth[m] = _growth(model, m, unit, "linear" if grows else "stable", slope, slope * 250, slope * (n - 1))
    findings, leaks, diagnosis, message = (), (), None, ""
    if leaking:
        reason = "malloc grew +%s/iter over %d iterations; pattern linear, confidence 1.00" % (c.fmt_bytes(step), n - 1)
        findings = (
            model.Finding("malloc", step, step, step * 250, step * (n - 1), "linear", 0.99, "medium", True, reason),
            model.Finding(
                "rss",
                step,
                step,
                step * 250,
                step * (n - 1),
                "linear",
                0.97,
                "medium",
                True,
                reason.replace("malloc", "rss"),
            ),
        )
        source = "src/pkg/module_%02d.py:%d" % (i % 40, 100 + i % 300)
        leaks = (
            model.Leak(
                id="L1",
                type="python_object",
                source=source,
                severity="medium",
                estimated_size=step * (n - 1),
                growth_rate=step,
                evidence=(
                    "tracemalloc: %s grew %s/iter in 6 of 6 traced iterations" % (source, c.fmt_bytes(step)),
                    reason,
                ),
                recommendation="Objects accumulate: remove them when done, bound the cache, or hold them "
                "through weakref.",
                stack_trace=tuple("%s: frame_%d()" % (source, k) for k in range(6)),
                confidence=0.99,
                fingerprint="%016x" % rng.getrandbits(64),
                retainer_path="pkg.module_%02d.CACHE (dict) -> [key] (list)" % (i % 40),
                details=model.LeakDetails(pattern="linear", metric="malloc"),
                origin="code under test",
            ),
        )
        diagnosis = model.DiagnosisRecord(
            iterations=18,
            seconds=0.2,
            resources={"files": [], "file_count": 0, "threads": [], "thread_count": 0},
            lines={"malloc": ({"source": source, "per_iter": step, "allocations": 6, "frees": 0},)},
            modules=({"module": "builtins", "category": "other", "per_iter": 48.0},),
            notes=("diagnosis: 18 traced iterations in 0.20 s",),
        )
        message = "memleak: %s leaks (%d iterations)\n  - %s" % (nodeid, n - 1, reason)
    error = (
        "RuntimeError: the body raised on iteration 3\n" + "  File x.py, line 1\n" * 8 if verdict == "error" else None
    )
    if verdict in ("error", "skipped"):
        snaps = {} if verdict == "skipped" else {k: v[:4] for k, v in snaps.items()}
        growth, findings = {}, ()
    return model.TestResult(
        nodeid=nodeid,
        verdict=verdict,
        iterations=n - 1,
        warmup=5,
        severity="medium" if leaking else "none",
        message=message,
        stop_reason="confirmed growth" if leaking else "flat",
        error=error,
        error_iteration=3 if error else None,
        duration_s=round(rng.uniform(0.01, 0.5), 3),
        rounds=(10, 20) if leaking else (n - 1,),
        screens=dict.fromkeys(("py_blocks", "malloc", "rss"), ("suspect" if leaking else "clean",)),
        snapshots=snaps,
        trend=model.Trend(
            rss_slope_per_iter=step,
            heap_slope_per_iter=step * 0.9,
            divergence_start=30e6,
            divergence_end=30e6 + step * 0.1 * n,
            divergence_slope_per_iter=step * 0.1,
            external_ratio=1.0,
            health="warning" if leaking else "healthy",
        ),
        growth=growth,
        findings=findings,
        leaks=leaks,
        settings=dict(SETTINGS),
        diagnosis=diagnosis,
    )


def _sampled_test(model, rng: random.Random, i: int, leaking: bool, watch: bool):
    """A soak (or a watch of another process): 300 to 1,000 samples, rates per second."""
    n = rng.randint(300, 1000)
    per_s = 262144.0 if leaking else 0.0
    dt = 0.1
    rss = _walk(rng, n, 80e6, per_s * dt, 8192)
    snaps = {
        "t": tuple(round(k * dt, 3) for k in range(n)),
        "rss": rss,
        "fds": (9.0,) * n,
        "threads": (3.0,) * n,
        "children": (0.0,) * n,
    }
    if not watch:
        snaps["malloc"] = _walk(rng, n, 40e6, per_s * dt * 0.9, 1024)
        snaps["py_blocks"] = _walk(rng, n, 1e5, 0.0, 10)
    total = per_s * dt * (n - 1)
    growth = {
        m: _growth(
            model,
            m,
            "bytes" if m in ("rss", "malloc") else "count",
            "linear" if leaking and m == "rss" else "stable",
            per_s * dt if leaking and m == "rss" else 0.0,
            per_s if leaking and m == "rss" else 0.0,
            total if leaking and m == "rss" else 0.0,
        )
        for m in snaps
        if m != "t"
    }
    findings, leaks = (), ()
    where = "pid %d" % (4000 + i) if watch else "tests/soak/test_soak.py::test_soak_%d" % i
    if leaking:
        reason = "rss grew 256.0 KiB/s, %s over %.1f s; pattern linear, confidence 1.00" % (c.fmt_bytes(total), n * dt)
        findings = (model.Finding("rss", per_s * dt, None, per_s, total, "linear", 1.0, "high", True, reason),)
        leaks = (
            model.Leak(
                id="L1",
                type="unknown",
                source=where,
                severity="high",
                estimated_size=total,
                growth_rate=per_s,
                unit="bytes/s",
                evidence=(reason,),
                growth_rate_per_s=per_s,
                recommendation="Memory grows while the test runs.",
                confidence=1.0,
                details=model.LeakDetails(pattern="linear", metric="rss"),
            ),
        )
    process = model.ProcessInfo(pid=4000 + i, cmdline="python server.py --port 0") if watch else None
    return model.TestResult(
        nodeid="tests/soak/test_soak.py::test_soak_%d" % i,
        label="watch pid %d" % (4000 + i) if watch else "",
        origin="watch" if watch else "marker",
        verdict="leak" if leaking else "ok",
        severity="high" if leaking else "none",
        iterations=n,
        stop_reason="clean",
        duration_s=n * dt,
        snapshots=snaps,
        growth=growth,
        findings=findings,
        leaks=leaks,
        settings=dict(SETTINGS, mode="soak"),
        trend=model.Trend(
            mode="watch" if watch else "soak",
            samples=n,
            interval_s=dt,
            judged_samples=n,
            interval_achieved_s=dt,
            sampler_cpu_s=0.05,
            process=process,
        ),
    )


def build(n_tests: int):
    from pytest_memleak import model

    rng = random.Random(20261203)
    tests = []
    for i in range(n_tests):
        r = rng.random()
        if r < 0.01:
            tests.append(_sampled_test(model, rng, i, leaking=rng.random() < 0.5, watch=rng.random() < 0.5))
        elif r < 0.04:
            tests.append(_loop_test(model, rng, i, "leak"))
        elif r < 0.05:
            tests.append(_loop_test(model, rng, i, "error"))
        elif r < 0.055:
            tests.append(_loop_test(model, rng, i, "skipped"))
        else:
            tests.append(_loop_test(model, rng, i, "ok"))
    tests = tuple(tests)
    env = model.Environment(
        "3.11.7",
        "Linux-6.1-x86_64",
        "0.1.0",
        "8.3.0",
        implementation="CPython",
        machine="x86_64",
        argv=("pytest", "--memleak-all", "--memleak-html=r.html"),
    )
    return model.RunReport(
        env,
        model.summarise(tests),
        tests,
        created="2026-12-03T12:00:00+0000",
        config={"iterations": 10, "sources": {"iterations": "default"}},
    )


# ------------------------------------------------------------------------------- measuring


def render_pages(n_tests: int, runs: int, out: str) -> dict[str, float]:
    """Build the report, render it ``runs`` times, write the page; the figures."""
    from pytest_memleak.render import html

    t0 = time.perf_counter()
    report = build(n_tests)
    built = time.perf_counter() - t0
    times = []
    page = ""
    for _ in range(runs):
        t0 = time.perf_counter()
        page = html.render(report)
        times.append(time.perf_counter() - t0)
    html.write(out, page)
    return {
        "build_s": built,
        "render_s": c.median(times),
        "bytes": len(page.encode("utf-8")),
        "tests": len(report.tests),
        "verdicts": json.dumps(_verdicts(report)),
    }


def _verdicts(report) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in report.tests:
        key = ("%s (%s)" % (t.verdict, t.trend.mode)) if t.trend.mode else t.verdict
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))


#: Appended to a copy of each page (whose CSP is removed so that it may run): on the load event,
#: forces a layout of the whole page and records the time since navigation started.
PROBE = (
    '<script>addEventListener("load",function(){document.documentElement.scrollWidth;'
    'document.body.setAttribute("data-probe-ms",String(Math.round(performance.now())));});</script>'
)


def probe_copy(path: str) -> str:
    """A copy of the page that records its own load time (see :data:`PROBE`)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", text)
    text = text.replace("</body>", PROBE + "</body>") if "</body>" in text else text + PROBE
    out = path[:-5] + ".probe.html"
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)
    return out


def chromium(binary: str, url: str, mode: str) -> tuple[float, str]:
    """One headless Chromium run on ``url``: ``dump-dom`` or a 1280x2000 ``screenshot``.
    Returns its wall seconds and what it printed."""
    profile = tempfile.mkdtemp(prefix="bench_html_profile_")
    args = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--user-data-dir=" + profile,
        "--window-size=1280,2000",
    ]
    if mode == "dump-dom":
        args += ["--dump-dom", url]
    else:
        args += ["--screenshot=" + os.path.join(profile, "shot.png"), "--hide-scrollbars", url]
    try:
        t0 = time.perf_counter()
        proc = subprocess.run(args, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError("chromium failed (%d): %s" % (proc.returncode, proc.stderr[-1000:]))
    return wall, proc.stdout


def load_ms(binary: str, probe: str) -> float:
    """Milliseconds from navigation to the load event and a full layout, as the page measured."""
    _, dom = chromium(binary, "file://" + probe, "dump-dom")
    m = re.search(r'data-probe-ms="(\d+)"', dom)
    if m is None:
        raise RuntimeError("%s recorded no load time" % probe)
    return float(m.group(1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 200 tests, 1 run")
    ap.add_argument("--tests", type=int, default=None, help="tests in the report (default 1000)")
    ap.add_argument("--runs", type=int, default=None, help="renders and Chromium loads per page (default 3)")
    ap.add_argument("--compare", metavar="DIR", help="also render with the pytest_memleak package in DIR")
    ap.add_argument("--keep", metavar="DIR", help="write the pages to DIR")
    ap.add_argument("--render-only", metavar="FILE", help=argparse.SUPPRESS)
    args = ap.parse_args()
    n = args.tests or (200 if args.quick else 1000)
    runs = args.runs or (1 if args.quick else 3)
    if args.render_only:  # the --compare child: this package, one page, figures as JSON
        print(json.dumps(render_pages(n, runs, args.render_only)))
        return 0
    folder = args.keep or tempfile.mkdtemp(prefix="bench_html_")
    os.makedirs(folder, exist_ok=True)
    try:
        pages = {}
        c.log("rendering %d tests with this package ..." % n)
        pages["this package"] = (
            render_pages(n, runs, os.path.join(folder, "new.html")),
            os.path.join(folder, "new.html"),
        )
        if args.compare:
            c.log("rendering with the package in %s ..." % args.compare)
            old = os.path.join(folder, "old.html")
            cmd = [c.PYTHON, os.path.abspath(__file__), "--tests", str(n), "--runs", str(runs), "--render-only", old]
            proc, _, _ = c.run(cmd, cwd=c.ROOT, extra_env={"PYTHONPATH": os.path.abspath(args.compare)})
            if proc.returncode != 0:
                c.log(c.tail(proc))
                return 1
            pages["--compare " + args.compare] = (json.loads(proc.stdout.strip().splitlines()[-1]), old)
        binary = shutil.which("chromium")
        loads: dict[str, dict[str, list[float]]] = {}
        if binary:
            blank = os.path.join(folder, "blank.html")
            with open(blank, "w") as f:
                f.write("<!DOCTYPE html><title>x</title><p>x</p>\n")
            arms = [("one-line page", blank)] + [(k, p) for k, (_, p) in pages.items()]
            probes = {name: probe_copy(path) for name, path in arms}
            loads = {k: {"load": [], "screenshot": []} for k, _ in arms}
            for k in range(runs):
                order = arms if c.alternate(k) else arms[:1] + arms[1:][::-1]
                for name, path in order:
                    loads[name]["load"].append(load_ms(binary, probes[name]))
                    loads[name]["screenshot"].append(chromium(binary, "file://" + path, "screenshot")[0])
                    c.log(
                        "%s: load %.0f ms, screenshot %.2f s"
                        % (name, loads[name]["load"][-1], loads[name]["screenshot"][-1])
                    )
        first = next(iter(pages.values()))[0]
        c.header(
            "bench_html.py",
            args.quick,
            "HTML report of %d tests %s, %d run(s) each%s"
            % (
                first["tests"],
                first["verdicts"].replace('"', ""),
                runs,
                "" if chromium else "; chromium not installed: no load times",
            ),
        )
        base = {m: c.median(v) for m, v in loads.get("one-line page", {}).items()}
        rows = []
        for name, (fig, _) in pages.items():
            row = [
                name,
                "%.2f MB" % (fig["bytes"] / 1e6),
                "%.0f" % (fig["bytes"] / fig["tests"]),
                "%.2f" % fig["render_s"],
            ]
            if name in loads:
                shot = c.median(loads[name]["screenshot"])
                row += ["%.0f" % c.median(loads[name]["load"]), "%.2f" % shot, "%.2f" % (shot - base["screenshot"])]
            else:
                row += ["-", "-", "-"]
            rows.append(row)
        if loads:
            rows.append(["one-line page", "-", "-", "-", "%.0f" % base["load"], "%.2f" % base["screenshot"], "0"])
        c.table(
            [
                "page",
                "size",
                "bytes/test",
                "render s (median)",
                "Chromium load + layout ms (in page)",
                "Chromium screenshot s (wall)",
                "net of start-up s",
            ],
            rows,
        )
        parts = []
        for name, (fig, _) in pages.items():
            text = "%s: %.2f MB, rendered in %.2f s" % (name, fig["bytes"] / 1e6, fig["render_s"])
            if name in loads:
                text += ", loaded and laid out by Chromium in %.2f s" % (c.median(loads[name]["load"]) / 1000)
            parts.append(text)
        c.summary("; ".join(parts))
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
