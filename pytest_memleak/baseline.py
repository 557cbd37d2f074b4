"""Run history and baseline comparison, in the spirit of pytest-benchmark's storage and
``--benchmark-compare-fail``.

:class:`Storage` keeps one JSON report per run in a folder (``.memleak/history`` by default),
named ``<YYYYmmdd-HHMMSS>_<short git commit or "nogit">.json``. :func:`compare_docs` matches the
tests of two reports by :func:`test_key` and judges each pair with :func:`compare_test` under a
:class:`Rule` parsed by :func:`parse_rule`::

    rule = parse_rule("rate:10%,rate:4KiB,new-leaks")
    comparison = compare_docs(read_report(Storage().resolve("latest")), new_doc, rule)
    if comparison.failed: ...

What is compared, per test (all in bytes):

* **rate**: the largest ``bytes_per_iter`` over the test's findings. Findings are the metrics
  whose growth was *confirmed* (failing or tolerated), so a test that passes with tolerated
  growth still has a rate; a test without confirmed growth has rate 0. Count-only metrics
  (file descriptors, threads) have no byte rate and are left out: their leaks are caught by
  ``new-leaks``.
* **total growth**: the largest total growth in bytes over the same findings (``py_blocks``
  totals are converted with the finding's bytes-per-block estimate).
* **leak fingerprints** of the unsuppressed leak entries.

Rule terms (comma separated, each checked on its own, any broken term fails the test):

* ``rate:10%``: the rate grew by more than 10 % of the baseline's rate;
* ``rate:4KiB`` (or ``rate:4KiB/iter``): the rate grew by more than 4 KiB per iteration;
* ``growth:20%`` / ``growth:1MiB``: the same for the total growth;
* ``new-leaks``: the test has a leak whose fingerprint the baseline test did not have.

Regressions are judged on the numbers, not on the verdicts: a test that passes in both runs
still regresses under ``rate:1KiB`` when its tolerated growth went from 0 to 3 KiB/iter.

Noise floor: a percent term only breaks when the absolute increase also exceeds
``max(RATE_FLOOR, 1 % of the old value)`` (``RATE_FLOOR`` = 256 B/iter) for rates, or
``max(GROWTH_FLOOR, 1 % of the old value)`` (``GROWTH_FLOOR`` = 4 KiB) for total growth. Without
it, ``rate:10%`` would fail a test going from 0 to 90 B/iter of allocator jitter (an infinite
percentage). Size terms are their own floor. The same floors separate ``improved``/``worse``
from ``same`` in the status column.

This module has no pytest dependency: the plugin and the ``pytest-memleak`` command share it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from tabulate import tabulate

from . import model
from .errors import ConfigError, ReportError
from .model import to_object
from .render.terminal import safe
from .units import format_size, parse_float, parse_rate, parse_size

__all__ = [
    "GROWTH_FLOOR",
    "HISTORY_DIR",
    "RATE_FLOOR",
    "RELATIVE_FLOOR",
    "RULE_EXPECTED",
    "STATUSES",
    "Comparison",
    "Rule",
    "Storage",
    "Term",
    "TestComparison",
    "compare_docs",
    "compare_test",
    "parse_rule",
    "test_key",
]

HISTORY_DIR = ".memleak/history"

#: Smallest rate increase (bytes per iteration) that a percent term or the status counts.
RATE_FLOOR = 256.0
#: Smallest total-growth increase (bytes) that a percent term or the status counts.
GROWTH_FLOOR = 4096.0
#: ... or this fraction of the old value, when larger.
RELATIVE_FLOOR = 0.01

#: Every status a comparison row can have.
STATUSES = (
    "regressed",  # a rule term broke
    "worse",  # more growth than the baseline, beyond the noise floor, but no term broke
    "new",  # not in the baseline (or the baseline has no measurement: error/skipped there)
    "removed",  # only in the baseline
    "fixed",  # leaked in the baseline, passes now
    "improved",  # less growth than the baseline, beyond the noise floor
    "same",  # within the noise floor
    "error",  # the body raised in the new run: nothing to compare
    "skipped",  # the body skipped in the new run: nothing to compare
)

RULE_EXPECTED = (
    "comma-separated terms: rate:10% or rate:4KiB (growth rate per iteration), growth:20% or "
    "growth:1MiB (total growth), new-leaks (a leak fingerprint not in the baseline)"
)

_UNMEASURED = ("error", "skipped")


# --------------------------------------------------------------------------------------------
# Rules


@dataclass(frozen=True)
class Term:
    """One rule term: ``kind`` is ``rate``, ``growth`` or ``new-leaks``; ``rate``/``growth``
    carry either ``percent`` or ``bytes`` (the allowed increase)."""

    kind: str
    percent: float | None = None
    bytes: float | None = None

    def __str__(self) -> str:
        if self.kind == "new-leaks":
            return "new-leaks"
        if self.percent is not None:
            return f"{self.kind}:{self.percent:g}%"
        return f"{self.kind}:{_exact_size(self.bytes or 0.0)}"


@dataclass(frozen=True)
class Rule:
    """A comparison rule: the terms of ``--memleak-compare-fail``; empty never fails."""

    terms: tuple[Term, ...] = ()

    def __str__(self) -> str:
        return ",".join(str(t) for t in self.terms)

    def __bool__(self) -> bool:
        return bool(self.terms)

    @property
    def new_leaks(self) -> bool:
        return any(t.kind == "new-leaks" for t in self.terms)


def parse_rule(text: str, key: str = "--memleak-compare-fail") -> Rule:
    """Parse ``"rate:10%,growth:1MiB,new-leaks"``; raise ConfigError naming ``key`` if malformed."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(key, text, RULE_EXPECTED)
    terms: list[Term] = []
    for raw in text.split(","):
        part = raw.strip()
        term = _parse_term(part, key)
        if term is None:
            bad = f"{RULE_EXPECTED}; {part!r} is not a term" if part else RULE_EXPECTED
            raise ConfigError(key, text, bad)
        terms.append(term)
    return Rule(tuple(terms))


def _parse_term(part: str, key: str) -> Term | None:
    name, sep, value = part.partition(":")
    name = name.strip().lower().replace("_", "-")
    value = value.strip()
    if name == "new-leaks" and not sep:
        return Term("new-leaks")
    if name not in ("rate", "growth") or not value:
        return None
    try:
        if value.endswith("%"):
            return Term(name, percent=parse_float(value[:-1], key, minimum=0.0))
        if name == "rate":
            rate = parse_rate(value, key)  # "4KiB" or "4KiB/iter"
            return Term(name, bytes=rate.bytes) if rate.per == "iter" else None
        return Term(name, bytes=float(parse_size(value, key)))
    except ConfigError:
        return None


# --------------------------------------------------------------------------------------------
# What is compared


def test_key(entry: dict[str, Any]) -> str:
    """``nodeid``, plus ``::label`` for a fixture measurement (same as ``TestResult.key``)."""
    label = entry.get("label") or ""
    return f"{entry.get('nodeid', '')}::{label}" if label else str(entry.get("nodeid", ""))


test_key.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def rate_of(entry: dict[str, Any]) -> float:
    """Largest bytes-per-iteration growth over the test's confirmed findings, or 0."""
    rates = [_number(f.get("bytes_per_iter")) for f in entry.get("findings") or []]
    return max([r for r in rates if r is not None] + [0.0])


def total_of(entry: dict[str, Any]) -> float:
    """Largest total growth in bytes over the test's confirmed findings, or 0."""
    totals = [0.0]
    for f in entry.get("findings") or []:
        bpi, rpi, total = (_number(f.get(k)) for k in ("bytes_per_iter", "rate_per_iter", "total"))
        if bpi is None or total is None or not rpi:
            continue
        totals.append(total * bpi / rpi)  # bytes metrics: bpi == rpi; py_blocks: bytes/block
    return max(totals)


def fingerprints_of(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Unsuppressed leaks by fingerprint (``type@source`` when a leak has none)."""
    out: dict[str, dict[str, Any]] = {}
    for lk in entry.get("leaks") or []:
        if not isinstance(lk, dict) or lk.get("suppressed"):
            continue
        fp = lk.get("fingerprint") or f"{lk.get('type', 'unknown')}@{lk.get('source', '?')}"
        out.setdefault(str(fp), lk)
    return out


def function_name(nodeid: str) -> str:
    """``"a/test_x.py::TestK::test_f[1-2]"`` -> ``"test_f"``."""
    return nodeid.split("[", 1)[0].rsplit("::", 1)[-1]


def _size(n: float) -> str:
    return format_size(n)


def _exact_size(n: float) -> str:
    """A size that parses back to exactly ``n``: "4KiB", "1MiB", "1000000B"."""
    for power, unit in ((3, "GiB"), (2, "MiB"), (1, "KiB")):
        if n and n % 1024**power == 0:
            return f"{int(n // 1024**power)}{unit}"
    return f"{int(n)}B" if float(n).is_integer() else f"{n!r}B"


def _signed(n: float) -> str:
    return ("+" if n > 0 else "") + _size(n)


def _pct(old: float, new: float) -> float | None:
    """Percent change; None when the old value is 0 and the new one is not (infinite)."""
    if old:
        return (new - old) / abs(old) * 100.0
    return 0.0 if new == old else None


def _floor(old: float, absolute: float) -> float:
    return max(absolute, RELATIVE_FLOOR * abs(old))


# --------------------------------------------------------------------------------------------
# Comparing one test


@dataclass
class TestComparison:
    """One row of a comparison. Rates are bytes/iteration, totals bytes; ``None`` when the side
    is missing or unmeasured. ``delta``/``delta_pct`` compare rates (``delta_pct`` is None when
    the baseline rate is 0 and the new one is not)."""

    __test__ = False  # not a pytest test class

    key: str
    nodeid: str
    label: str
    status: str
    old_verdict: str | None = None
    new_verdict: str | None = None
    old_rate: float | None = None
    new_rate: float | None = None
    old_total: float | None = None
    new_total: float | None = None
    delta: float | None = None
    delta_pct: float | None = None
    total_delta: float | None = None
    total_delta_pct: float | None = None
    new_fingerprints: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    hint: str = ""  # "renamed? ..." for removed/new rows
    renamed: list[str] = field(default_factory=list)  # keys of the likely counterparts

    @property
    def failed(self) -> bool:
        return bool(self.failures)

    @property
    def name(self) -> str:
        return self.nodeid + (f" [{self.label}]" if self.label else "")

    @property
    def reason(self) -> str:
        """One human line: the broken terms, or what changed."""
        if self.failures:
            text = "; ".join(self.failures)
        elif self.status == "removed":
            text = "not in the new run"
        elif self.status in _UNMEASURED:
            text = f"new run: {self.status}, nothing to compare"
        elif self.status == "new" and self.old_verdict in _UNMEASURED:
            text = f"baseline has no measurement ({self.old_verdict})"
        elif self.status == "new":
            text = "not in the baseline"
        else:
            text = f"rate {_rate_text(self.old_rate)} -> {_rate_text(self.new_rate)}"
            if self.old_verdict != self.new_verdict:
                text += f", verdict {self.old_verdict} -> {self.new_verdict}"
        return f"{text}; {self.hint}" if self.hint else text

    def to_dict(self) -> dict[str, Any]:
        return clean(  # type: ignore[no-any-return]
            {
                "key": self.key,
                "nodeid": self.nodeid,
                "label": self.label,
                "name": self.name,
                "status": self.status,
                "old_verdict": self.old_verdict,
                "new_verdict": self.new_verdict,
                "old_rate": self.old_rate,
                "new_rate": self.new_rate,
                "delta": self.delta,
                "delta_pct": self.delta_pct,
                "old_total": self.old_total,
                "new_total": self.new_total,
                "total_delta": self.total_delta,
                "total_delta_pct": self.total_delta_pct,
                "new_fingerprints": list(self.new_fingerprints),
                "failures": list(self.failures),
                "hint": self.hint,
                "renamed": list(self.renamed),
                # a new test's likely former name (the HTML report shows "was ...")
                "old_nodeid": self.renamed[0] if self.status == "new" and self.renamed else None,
                "reason": self.reason,
            }
        )


def _rate_text(rate: float | None) -> str:
    return "-" if rate is None else f"{_size(rate)}/iter"


def _check_term(
    term: Term, what: str, old: float, new: float, floor: float, per: str
) -> str | None:
    """The failure line when ``term`` breaks for values old -> new, else None."""
    delta = new - old
    pct = _pct(old, new)
    if term.percent is not None:
        broke = delta > floor and (pct is None or pct > term.percent)
        allowed = f"+{term.percent:g}%"
    else:
        broke = delta > (term.bytes or 0.0)
        allowed = _signed(term.bytes or 0.0) + per
    if not broke:
        return None
    pct_text = "from zero" if pct is None else f"{pct:+.1f}%"
    return (
        f"{term} broke: {what} {_size(old)}{per} -> {_size(new)}{per} "
        f"({_signed(delta)}{per}, {pct_text}; allowed {allowed})"
    )


def _compare_entries(
    old: dict[str, Any] | None, new: dict[str, Any], rule: Rule | None = None
) -> TestComparison:
    """Compare one test's report entries (``old`` None: not in the baseline) under ``rule``."""
    rule = rule or Rule()
    row = TestComparison(
        key=test_key(new),
        nodeid=str(new.get("nodeid", "")),
        label=str(new.get("label") or ""),
        status="same",
        new_verdict=new.get("verdict"),
    )
    if old is not None:
        row.old_verdict = old.get("verdict")
        if row.old_verdict not in _UNMEASURED:
            row.old_rate, row.old_total = rate_of(old), total_of(old)
    if row.new_verdict in _UNMEASURED:
        row.status = str(row.new_verdict)
        return row
    row.new_rate, row.new_total = rate_of(new), total_of(new)
    if old is None or row.old_rate is None or row.old_total is None:
        row.status = "new"
        return row
    o_rate, n_rate, o_total, n_total = row.old_rate, row.new_rate, row.old_total, row.new_total
    row.delta, row.delta_pct = n_rate - o_rate, _pct(o_rate, n_rate)
    row.total_delta, row.total_delta_pct = n_total - o_total, _pct(o_total, n_total)
    old_fps = fingerprints_of(old)
    new_leaks = {fp: lk for fp, lk in fingerprints_of(new).items() if fp not in old_fps}
    row.new_fingerprints = sorted(new_leaks)

    rate_floor, growth_floor = _floor(o_rate, RATE_FLOOR), _floor(o_total, GROWTH_FLOOR)
    for term in rule.terms:
        if term.kind == "rate":
            line = _check_term(term, "rate", o_rate, n_rate, rate_floor, "/iter")
        elif term.kind == "growth":
            line = _check_term(term, "total growth", o_total, n_total, growth_floor, "")
        else:
            line = None
            if new_leaks:
                described = [_describe_leak(fp, lk) for fp, lk in sorted(new_leaks.items())]
                line = "new-leaks broke: not in the baseline: " + "; ".join(described)
        if line:
            row.failures.append(line)

    rate_move = _direction(n_rate - o_rate, rate_floor)
    move = rate_move or _direction(n_total - o_total, growth_floor)
    if row.failures:
        row.status = "regressed"
    elif row.old_verdict == "leak" and row.new_verdict == "ok":
        row.status = "fixed"
    elif move > 0 or (row.old_verdict == "ok" and row.new_verdict == "leak"):
        row.status = "worse"
    elif move < 0:
        row.status = "improved"
    return row


def _direction(delta: float, floor: float) -> int:
    return 1 if delta > floor else -1 if delta < -floor else 0


def _describe_leak(fp: str, lk: dict[str, Any]) -> str:
    rate = _number(lk.get("growth_rate"))
    unit = lk.get("unit") or "bytes"
    rate_text = (
        ""
        if rate is None
        else f", {_size(rate)}/iter"
        if unit == "bytes"
        else f", {rate:+.2f} {unit}/iter"
    )
    return (
        f"leak {fp} ({lk.get('type', 'unknown')} at {safe(str(lk.get('source', '?')), 120)}"
        f"{rate_text})"
    )


# --------------------------------------------------------------------------------------------
# Comparing two reports


@dataclass
class Comparison:
    """Every test of either report, in the new report's order, then the removed ones."""

    rows: list[TestComparison]
    rule: Rule = field(default_factory=Rule)
    old_name: str = ""
    new_name: str = ""
    old_created: str = ""
    new_created: str = ""

    @property
    def failed(self) -> bool:
        """Whether any test broke a rule term."""
        return any(r.failed for r in self.rows)

    @property
    def failures(self) -> list[TestComparison]:
        return [r for r in self.rows if r.failed]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rows:
            out[r.status] = out.get(r.status, 0) + 1
        return {s: out[s] for s in STATUSES if s in out}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON, the input of the HTML report's "Baseline comparison" section."""
        return clean(  # type: ignore[no-any-return]
            {
                "baseline": self.old_name or self.old_created,  # what the HTML header shows
                "old": {"name": self.old_name, "created": self.old_created},
                "new": {"name": self.new_name, "created": self.new_created},
                "rule": str(self.rule),
                "failed": self.failed,
                "counts": self.counts(),
                "floors": {"rate": RATE_FLOOR, "growth": GROWTH_FLOOR, "relative": RELATIVE_FLOOR},
                "rows": [r.to_dict() for r in self.rows],
            }
        )

    def summary_line(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in self.counts().items()) or "nothing"
        line = f"memleak compare: {len(self.rows)} tests: {counts}"
        if self.rule:
            bad = len(self.failures)
            verdict = f"FAILED ({bad} test{'s' if bad != 1 else ''})" if bad else "passed"
            line += f"; rule {self.rule}: {verdict}"
        return line

    def table_lines(self) -> list[str]:
        """The comparison table, then one block per failing test and per rename hint, then a
        summary line."""
        lines: list[str] = []
        if self.old_name or self.new_name:
            lines.append(f"baseline: {_side(self.old_name, self.old_created)}")
            lines.append(f"current:  {_side(self.new_name, self.new_created)}")
        table = [
            [
                safe(r.name, 70),
                r.status,
                _rate_text(r.old_rate),
                _rate_text(r.new_rate),
                _delta_text(r),
                _verdicts(r),
            ]
            for r in self.rows
        ]
        lines += tabulate(
            table,
            headers=["test", "status", "old rate", "new rate", "Δ", "verdict"],
            tablefmt="simple",
        ).splitlines()
        for r in self.rows:
            if r.failures:
                lines.append("")
                lines.append(f"REGRESSED {safe(r.name)}:")
                lines += [f"  - {safe(f, 400)}" for f in r.failures]
        hints = [r for r in self.rows if r.hint and r.status == "removed"]
        if hints:
            lines.append("")
            lines += [f"{safe(r.name)}: removed; {safe(r.hint, 300)}" for r in hints]
        lines.append("")
        lines.append(self.summary_line())
        return lines


def _side(name: str, created: str) -> str:
    return f"{name or '?'}" + (f" (created {created})" if created else "")


def _delta_text(r: TestComparison) -> str:
    if r.delta is None:
        return "-"
    text = _signed(r.delta) + "/iter"
    if r.delta_pct is None:
        return text + " (from 0)"
    return text + (f" ({r.delta_pct:+.0f}%)" if r.delta else "")


def _verdicts(r: TestComparison) -> str:
    def show(v: str | None) -> str:
        return "-" if v is None else v.upper() if v == "leak" else v

    if r.old_verdict is not None and r.new_verdict is not None and r.old_verdict != r.new_verdict:
        return f"{show(r.old_verdict)} -> {show(r.new_verdict)}"
    return show(r.new_verdict if r.new_verdict is not None else r.old_verdict)


def _entries(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for t in doc.get("tests") or []:
        if isinstance(t, dict):
            out[test_key(t)] = t  # a repeated key (re-run): the last entry wins
    return out


def _removed(old: dict[str, Any]) -> TestComparison:
    row = TestComparison(
        key=test_key(old),
        nodeid=str(old.get("nodeid", "")),
        label=str(old.get("label") or ""),
        status="removed",
        old_verdict=old.get("verdict"),
    )
    if row.old_verdict not in _UNMEASURED:
        row.old_rate, row.old_total = rate_of(old), total_of(old)
    return row


def _hint_renames(
    removed: list[tuple[TestComparison, dict[str, Any]]],
    added: list[tuple[TestComparison, dict[str, Any]]],
) -> None:
    """Mark removed and new tests that look like the same test under another name: the same
    function name (and label), or a leak fingerprint in common."""
    for old_row, old_entry in removed:
        old_fps = set(fingerprints_of(old_entry))
        by_fp, by_name = [], []
        for new_row, new_entry in added:
            if old_fps & set(fingerprints_of(new_entry)):
                by_fp.append(new_row)
            elif (
                function_name(old_row.nodeid) == function_name(new_row.nodeid)
                and old_row.label == new_row.label
            ):
                by_name.append(new_row)
        for new_row in by_fp + by_name:
            old_row.renamed.append(new_row.key)
            new_row.renamed.append(old_row.key)
    for row, _ in removed:
        if row.renamed:
            row.hint = "renamed? now " + _few(row.renamed)
    for row, _ in added:
        if row.renamed:
            row.hint = "renamed? was " + _few(row.renamed)


def _few(keys: Iterable[str], limit: int = 3) -> str:
    keys = list(keys)
    text = ", ".join(safe(k, 120) for k in keys[:limit])
    return text + (f" (+{len(keys) - limit} more)" if len(keys) > limit else "")


def compare_docs(
    old_doc: dict[str, Any],
    new_doc: dict[str, Any],
    rule: Rule | None = None,
    *,
    old_name: str = "",
    new_name: str = "",
) -> Comparison:
    """Compare two reports test by test (see :func:`compare_test`); tests only in ``old_doc``
    get status ``removed``. ``old_name``/``new_name`` label the sides (file names)."""
    rule = rule or Rule()
    old_tests, new_tests = _entries(old_doc), _entries(new_doc)
    rows: list[TestComparison] = []
    added: list[tuple[TestComparison, dict[str, Any]]] = []
    for key, entry in new_tests.items():
        row = _compare_entries(old_tests.get(key), entry, rule)
        rows.append(row)
        if key not in old_tests and row.status == "new":
            added.append((row, entry))
    removed = [(_removed(e), e) for k, e in old_tests.items() if k not in new_tests]
    rows += [row for row, _ in removed]
    _hint_renames(removed, added)
    return Comparison(
        rows=rows,
        rule=rule,
        old_name=old_name,
        new_name=new_name,
        old_created=str(old_doc.get("created") or ""),
        new_created=str(new_doc.get("created") or ""),
    )


# --------------------------------------------------------------------------------------------
# History folder

_RUN_NAME = re.compile(r"^(\d{8}-\d{6})_([A-Za-z0-9]+)(?:-(\d+))?\.json$")
_COMMIT = re.compile(r"[0-9a-f]{4,40}")


class Storage:
    """A folder of saved runs: ``<YYYYmmdd-HHMMSS>_<commit>.json``, ``-2``, ``-3``... when a
    name is taken. ``commit`` overrides ``git rev-parse --short HEAD`` (run in ``cwd``)."""

    def __init__(
        self, root: str = HISTORY_DIR, *, commit: str | None = None, cwd: str | None = None
    ) -> None:
        self.root = str(root)
        self.cwd = cwd
        self._commit = commit

    def __repr__(self) -> str:
        return f"Storage({self.root!r})"

    def commit(self) -> str:
        """Short git commit of ``cwd``, or ``"nogit"`` when git is missing, slow or fails."""
        if self._commit is None:
            self._commit = "nogit"
            try:
                out = subprocess.run(
                    ["git", "rev-parse", "--short", "HEAD"],
                    cwd=self.cwd,
                    capture_output=True,
                    text=True,
                    timeout=5,
                    check=False,
                    stdin=subprocess.DEVNULL,
                )
            except (OSError, subprocess.SubprocessError, ValueError):
                return self._commit
            text = out.stdout.strip()
            if out.returncode == 0 and _COMMIT.fullmatch(text):
                self._commit = text
        return self._commit

    def save(self, doc: dict[str, Any], *, now: float | None = None) -> str:
        """Write ``doc`` as a new run and return its path; never overwrites a saved run."""
        root = Path(self.root)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
        commit = re.sub(r"[^A-Za-z0-9]", "", self.commit()) or "nogit"
        text = json.dumps(clean(doc), indent=1, ensure_ascii=True, allow_nan=False)
        try:
            root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".save.", suffix=".tmp", dir=root)
        except OSError as exc:
            raise ReportError(self.root, f"cannot save the run: {exc.strerror or exc}") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            for n in itertools.count(1):
                target = root / (
                    f"{stamp}_{commit}.json" if n == 1 else f"{stamp}_{commit}-{n}.json"
                )
                try:
                    os.link(tmp, target)  # atomic, and fails if the name is taken
                except FileExistsError:
                    continue
                except OSError:  # no hard links here: check, then rename
                    if target.exists():
                        continue
                    os.replace(tmp, target)
                return str(target)
        except OSError as exc:
            raise ReportError(self.root, f"cannot save the run: {exc.strerror or exc}") from None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise AssertionError("unreachable")  # pragma: no cover

    def list(self) -> list[str]:
        """Paths of the saved runs, oldest first (by the time stamp in the name, then counter)."""
        try:
            names = os.listdir(self.root)
        except OSError:
            return []
        runs = []
        for name in names:
            m = _RUN_NAME.match(name)
            if m and os.path.isfile(os.path.join(self.root, name)):
                runs.append(((m.group(1), int(m.group(3) or 1), name), name))
        return [os.path.join(self.root, name) for _, name in sorted(runs)]

    def latest(self) -> str | None:
        """Path of the most recent saved run, or None."""
        runs = self.list()
        return runs[-1] if runs else None

    def resolve(self, ref: str) -> str:
        """Path of ``ref``: ``"latest"``, the exact name (``.json`` optional) or a unique prefix
        of a saved run, or a path to a JSON file. ReportError names ``ref`` and lists the runs."""
        runs = self.list()
        names = [os.path.basename(p) for p in runs]
        if ref == "latest":
            if not runs:
                raise ReportError(ref, f"there are no saved runs in {self.root}")
            return runs[-1]
        if not ref.strip():
            raise ReportError(repr(ref), "empty reference; give a saved run or a report path")
        if os.sep not in ref:
            for candidate in (ref, ref + ".json"):
                if os.path.isfile(os.path.join(self.root, candidate)):
                    return os.path.join(self.root, candidate)
        if os.path.isfile(ref):
            return ref
        matches = [p for p, n in zip(runs, names) if n.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise ReportError(
                ref,
                f"matches {len(matches)} saved runs in {self.root}: "
                f"{_few(os.path.basename(p) for p in matches)}; "
                "give more of the name",
            )
        if os.path.isdir(ref):
            raise ReportError(ref, "is a directory; give a report file or a saved run")
        known = (
            f"saved runs: {_few(reversed(names), 5)} (newest first)"
            if names
            else "there are no saved runs there"
        )
        raise ReportError(ref, f"no such file, and no saved run in {self.root} matches it; {known}")


def clean(value: Any) -> Any:
    return model.to_json(value)


def compare_test(
    old: model.TestResult | None, new: model.TestResult, rule: Rule
) -> model.ComparisonRow:
    """This test against its baseline entry (``None`` when the baseline lacks it)."""
    row = _compare_entries(to_object(old) if old is not None else None, to_object(new), rule)
    return model.from_json(model.ComparisonRow, row.to_dict())


def compare_runs(
    old: model.RunReport,
    new: tuple[model.TestResult, ...],
    rule: Rule,
    *,
    old_name: str = "",
    new_name: str = "",
) -> tuple[model.Comparison, list[str]]:
    """This run against a baseline run: the comparison, and its terminal table."""
    new_doc = {"tests": [to_object(t) for t in new], "created": ""}
    comp = compare_docs(to_object(old), new_doc, rule, old_name=old_name, new_name=new_name)
    return model.from_json(model.Comparison, comp.to_dict()), comp.table_lines()
