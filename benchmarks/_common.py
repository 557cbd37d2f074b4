"""Shared helpers of the benchmark scripts: paths, the run header, Markdown tables, timing.

Every script prints Markdown to stdout (a header line, one or more tables, one ``Summary:``
line) so that its output can be pasted into docs/benchmarks.md as it is; progress goes to stderr.
Standard library only.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Iterable, Sequence

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
CORPUS = os.path.join(BENCH, "corpus")
ZOO = os.path.normpath(os.path.join(ROOT, "..", "shared", "zoo"))
PYTHON = sys.executable
TIME_BIN = "/usr/bin/time"


# ------------------------------------------------------------------------------- reporting
def log(msg: str) -> None:
    """Progress to stderr (stdout is reserved for the pasteable report)."""
    sys.stderr.write(msg.rstrip() + "\n")
    sys.stderr.flush()


def git_rev() -> str:
    try:
        out = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        rev = out.stdout.strip() or "?"
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "pytest_memleak"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "?"


def plugin_version() -> str:
    try:
        import pytest_memleak

        return pytest_memleak.__version__
    except Exception:  # the package may be mid-edit: the header must still print
        return "?"


def machine() -> str:
    return "nproc %d, Python %s (%s), %s %s, load %s" % (
        os.cpu_count() or 0, platform.python_version(), platform.python_implementation(),
        platform.system(), platform.machine(), _load())


def _load() -> str:
    try:
        return "%.2f" % os.getloadavg()[0]
    except OSError:
        return "?"


def header(name: str, quick: bool, extra: str = "") -> None:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print("`%s`%s: %s; %s; pytest-memleak %s @ %s%s" % (
        name, " --quick" if quick else "", now, machine(), plugin_version(), git_rev(),
        ("; " + extra) if extra else ""))
    print()


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], title: str = "") -> None:
    """A Markdown table (numbers right-aligned)."""
    rows = [[_cell(c) for c in r] for r in rows]
    if title:
        print(title)
        print()
    numeric = []
    for i in range(len(headers)):
        col = [r[i] for r in rows if i < len(r)]
        numeric.append(bool(col) and all(_looks_numeric(c) for c in col))
    widths = [max([len(h)] + [len(r[i]) for r in rows if i < len(r)]) for i, h in enumerate(headers)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |")
    print("|" + "|".join(("-" * (w + 1) + ":") if n else ("-" * (w + 2))
                         for w, n in zip(widths, numeric)) + "|")
    for r in rows:
        cells = [(c.rjust(w) if n else c.ljust(w)) for c, w, n in zip(r, widths, numeric)]
        print("| " + " | ".join(cells) + " |")
    print()


def _cell(c: Any) -> str:
    if c is None:
        return "-"
    if isinstance(c, float):
        return "%.3g" % c
    return str(c).replace("|", "\\|").replace("\n", " ")


def _looks_numeric(s: str) -> bool:
    t = s.strip().rstrip("x%").replace(",", "").replace("+", "").replace("-", "", 1)
    if t in ("", "-"):
        return s.strip() == "-"
    try:
        float(t.split()[0])
        return True
    except ValueError:
        return False


def summary(text: str) -> None:
    print("Summary: " + text)
    sys.stdout.flush()


def verdict_vs_target(value: float, target: float, fmt: str = "%.3g", lower_is_better: bool = True
                      ) -> str:
    """'MET' or 'MISSED (value vs target, N% over)' for a value against a target."""
    ok = value <= target if lower_is_better else value >= target
    if ok:
        return "MET"
    if lower_is_better:
        return "MISSED (%s vs <= %s, %.0f%% over)" % (fmt % value, fmt % target, 100.0 * (value / target - 1))
    return "MISSED (%s vs >= %s)" % (fmt % value, fmt % target)


# ------------------------------------------------------------------------------- numbers
def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= size:
            return "%.1f %s" % (n / size, unit)
    return "%d B" % n


def fmt_s(s: float) -> str:
    return "%.2f" % s if s < 100 else "%.0f" % s


# ------------------------------------------------------------------------------- processes
def env(**extra: str) -> dict[str, str]:
    """The environment for child pytest runs: no user addopts/plugins, no .pyc writes."""
    e = dict(os.environ)
    for k in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_XDIST_AUTO_NUM_WORKERS"):
        e.pop(k, None)
    e["PYTHONDONTWRITEBYTECODE"] = "1"
    e.update(extra)
    return e


def run(cmd: Sequence[str], cwd: str | None = None, extra_env: dict[str, str] | None = None,
        timeout: float = 600, time_v: bool = False) -> tuple[subprocess.CompletedProcess, float, int | None]:
    """Run ``cmd``; returns (process, wall seconds, max RSS in KiB when ``time_v``)."""
    rss = None
    tv_path = None
    full = list(cmd)
    if time_v and os.path.exists(TIME_BIN):
        fd, tv_path = tempfile.mkstemp(prefix="bench_time_", suffix=".txt")
        os.close(fd)
        full = [TIME_BIN, "-v", "-o", tv_path] + full
    t0 = time.perf_counter()
    proc = subprocess.run(full, cwd=cwd, env=env(**(extra_env or {})), capture_output=True,
                          text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    if tv_path:
        try:
            with open(tv_path) as f:
                for line in f:
                    if "Maximum resident set size" in line:
                        rss = int(line.rsplit(":", 1)[1])
        finally:
            os.unlink(tv_path)
    return proc, wall, rss


def run_cpu(cmd: Sequence[str], cwd: str | None = None, extra_env: dict[str, str] | None = None,
            timeout: float = 600) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run ``cmd``; returns (process, wall seconds, CPU seconds (user + sys) of it and its children).

    CPU time is far less disturbed than wall time by other work on a shared machine."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc, wall, _ = run(cmd, cwd=cwd, extra_env=extra_env, timeout=timeout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc, wall, cpu


def tail(proc: subprocess.CompletedProcess, n: int = 2000) -> str:
    return ((proc.stdout or "") + (proc.stderr or ""))[-n:]


def load_json(path: str) -> Any:
    with open(path) as f:
        return json.load(f)


def pytest_ini(folder: str, extra: str = "") -> None:
    """A minimal pytest.ini so a generated suite does not inherit the project's settings."""
    with open(os.path.join(folder, "pytest.ini"), "w") as f:
        f.write("[pytest]\n" + extra)


def alternate(k: int) -> bool:
    """True when repetition ``k`` should run arm A first (A B, B A, A B, ...)."""
    return k % 2 == 0
