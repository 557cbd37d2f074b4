"""A run against a baseline run, test by test: pure functions on the model.

:func:`compare_runs` matches the tests of two runs by :attr:`TestResult.key` (the node id, plus
the label of a fixture measurement) and judges each pair with :func:`compare_test` under a
:class:`~.rules.Rule`::

    rule = parse_rule("rate:10%,rate:4KiB,new-leaks")
    comparison = compare_runs(read_report(Storage().resolve("latest")), report.tests, rule)
    if comparison.failed: ...

What is compared, per test (all in bytes):

* **rate**: the largest ``bytes_per_iter`` over the test's findings. Findings are the metrics
  whose growth was *confirmed* (failing or tolerated), so a test that passes with tolerated
  growth still has a rate; a test without confirmed growth has rate 0. Count-only metrics
  (file descriptors, threads) have no byte rate and are left out: their leaks are caught by
  ``new-leaks``.
* **total growth**: the largest total growth in bytes over the same findings (``py_blocks``
  totals are converted with the finding's bytes-per-block estimate).
* **leak fingerprints** of the unsuppressed leaks.

Each rule term is checked on its own; any broken term fails the test. Regressions are judged on
the numbers, not on the verdicts: a test that passes in both runs still regresses under
``rate:1KiB`` when its tolerated growth went from 0 to 3 KiB/iter.

Noise floor: a percent term only breaks when the absolute increase also exceeds
``max(RATE_FLOOR, 1 % of the old value)`` (``RATE_FLOOR`` = 256 B/iter) for rates, or
``max(GROWTH_FLOOR, 1 % of the old value)`` (``GROWTH_FLOOR`` = 4 KiB) for total growth. Without
it, ``rate:10%`` would fail a test going from 0 to 90 B/iter of allocator jitter (an infinite
percentage). Size terms are their own floor. The same floors separate ``improved``/``worse``
from ``same`` in the status column.

Every text a row carries (``failures``, ``hint``, ``reason``) is built here, when the row is;
the renderers only lay the rows out.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence

from ..model import Comparison, ComparisonRow, Leak, RunRef, RunReport, TestResult
from ..units import format_size, safe
from .rules import Rule, Term

__all__ = [
    "GROWTH_FLOOR",
    "RATE_FLOOR",
    "RELATIVE_FLOOR",
    "STATUSES",
    "compare_runs",
    "compare_test",
    "fingerprints_of",
    "function_name",
    "rate_of",
    "total_of",
]

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

_UNMEASURED = ("error", "skipped")


# --------------------------------------------------------------------------------------------
# What is compared


def _number(value: float | None) -> float | None:
    """``value`` as a finite float, else None (a non-finite number reads as "unknown")."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def rate_of(test: TestResult) -> float:
    """Largest bytes-per-iteration growth over the test's confirmed findings, or 0."""
    rates = [_number(f.bytes_per_iter) for f in test.findings]
    return max([r for r in rates if r is not None] + [0.0])


def total_of(test: TestResult) -> float:
    """Largest total growth in bytes over the test's confirmed findings, or 0."""
    totals = [0.0]
    for f in test.findings:
        bpi, rpi, total = _number(f.bytes_per_iter), _number(f.rate_per_iter), _number(f.total)
        if bpi is None or total is None or not rpi:
            continue
        totals.append(total * bpi / rpi)  # bytes metrics: bpi == rpi; py_blocks: bytes/block
    return max(totals)


def fingerprints_of(test: TestResult) -> dict[str, Leak]:
    """Unsuppressed leaks by fingerprint (``type@source`` when a leak has none)."""
    out: dict[str, Leak] = {}
    for lk in test.active_leaks:
        out.setdefault(lk.fingerprint or f"{lk.type}@{lk.source}", lk)
    return out


def function_name(nodeid: str) -> str:
    """``"a/test_x.py::TestK::test_f[1-2]"`` -> ``"test_f"``."""
    return nodeid.split("[", 1)[0].rsplit("::", 1)[-1]


# --------------------------------------------------------------------------------------------
# Text


def few(items: Iterable[str], limit: int = 3) -> str:
    """The first ``limit`` items, made safe, and how many more there are."""
    shown = list(items)
    text = ", ".join(safe(k, 120) for k in shown[:limit])
    return text + (f" (+{len(shown) - limit} more)" if len(shown) > limit else "")


def _signed(n: float) -> str:
    return ("+" if n > 0 else "") + format_size(n)


def _rate_text(rate: float | None) -> str:
    return "-" if rate is None else f"{format_size(rate)}/iter"


def _pct(old: float, new: float) -> float | None:
    """Percent change; None when the old value is 0 and the new one is not (infinite)."""
    if old:
        return (new - old) / abs(old) * 100.0
    return 0.0 if new == old else None


def _floor(old: float, absolute: float) -> float:
    return max(absolute, RELATIVE_FLOOR * abs(old))


def _direction(delta: float, floor: float) -> int:
    return 1 if delta > floor else -1 if delta < -floor else 0


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
        f"{term} broke: {what} {format_size(old)}{per} -> {format_size(new)}{per} "
        f"({_signed(delta)}{per}, {pct_text}; allowed {allowed})"
    )


def _describe_leak(fp: str, lk: Leak) -> str:
    rate = _number(lk.growth_rate)
    unit = lk.unit or "bytes"
    rate_text = (
        ""
        if rate is None
        else f", {format_size(rate)}/iter"
        if unit == "bytes"
        else f", {rate:+.2f} {unit}/iter"
    )
    return f"leak {fp} ({lk.type} at {safe(lk.source, 120)}{rate_text})"


def _reason(row: ComparisonRow) -> str:
    """One human line: the broken terms, or what changed."""
    if row.failures:
        text = "; ".join(row.failures)
    elif row.status == "removed":
        text = "not in the new run"
    elif row.status in _UNMEASURED:
        text = f"new run: {row.status}, nothing to compare"
    elif row.status == "new" and row.old_verdict in _UNMEASURED:
        text = f"baseline has no measurement ({row.old_verdict})"
    elif row.status == "new":
        text = "not in the baseline"
    else:
        text = f"rate {_rate_text(row.old_rate)} -> {_rate_text(row.new_rate)}"
        if row.old_verdict != row.new_verdict:
            text += f", verdict {row.old_verdict} -> {row.new_verdict}"
    return f"{text}; {row.hint}" if row.hint else text


def _finish(row: ComparisonRow, renamed: Sequence[str] = ()) -> ComparisonRow:
    """The row with its rename hint and the fields computed from the others: ``name``,
    ``old_nodeid`` (a new test's likely former name) and ``reason``."""
    if renamed:
        now_or_was = "now" if row.status == "removed" else "was"
        row = dataclasses.replace(
            row, renamed=tuple(renamed), hint=f"renamed? {now_or_was} {few(renamed)}"
        )
    return dataclasses.replace(
        row,
        name=row.nodeid + (f" [{row.label}]" if row.label else ""),
        old_nodeid=row.renamed[0] if row.status == "new" and row.renamed else None,
        reason=_reason(row),
    )


# --------------------------------------------------------------------------------------------
# One test


def _judge(old: TestResult | None, new: TestResult, rule: Rule) -> ComparisonRow:
    """The row of ``new`` against ``old`` (None: not in the baseline), before its texts."""
    old_rate = old_total = None
    if old is not None and old.verdict not in _UNMEASURED:
        old_rate, old_total = rate_of(old), total_of(old)
    row = ComparisonRow(
        key=new.key,
        nodeid=new.nodeid,
        label=new.label,
        status="same",
        old_verdict=old.verdict if old is not None else None,
        new_verdict=new.verdict,
        old_rate=old_rate,
        old_total=old_total,
    )
    if new.verdict in _UNMEASURED:
        return dataclasses.replace(row, status=new.verdict)
    n_rate, n_total = rate_of(new), total_of(new)
    row = dataclasses.replace(row, new_rate=n_rate, new_total=n_total)
    if old is None or old_rate is None or old_total is None:
        return dataclasses.replace(row, status="new")
    o_rate, o_total = old_rate, old_total
    old_fps = fingerprints_of(old)
    new_leaks = {fp: lk for fp, lk in fingerprints_of(new).items() if fp not in old_fps}

    rate_floor, growth_floor = _floor(o_rate, RATE_FLOOR), _floor(o_total, GROWTH_FLOOR)
    failures: list[str] = []
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
            failures.append(line)

    move = _direction(n_rate - o_rate, rate_floor) or _direction(n_total - o_total, growth_floor)
    if failures:
        status = "regressed"
    elif old.verdict == "leak" and new.verdict == "ok":
        status = "fixed"
    elif move > 0 or (old.verdict == "ok" and new.verdict == "leak"):
        status = "worse"
    elif move < 0:
        status = "improved"
    else:
        status = "same"
    return dataclasses.replace(
        row,
        status=status,
        delta=n_rate - o_rate,
        delta_pct=_pct(o_rate, n_rate),
        total_delta=n_total - o_total,
        total_delta_pct=_pct(o_total, n_total),
        new_fingerprints=tuple(sorted(new_leaks)),
        failures=tuple(failures),
    )


def compare_test(old: TestResult | None, new: TestResult, rule: Rule | None) -> ComparisonRow:
    """This test against its baseline entry (``old`` None: the baseline lacks it) under
    ``rule`` (None or empty: nothing fails)."""
    return _finish(_judge(old, new, rule or Rule()))


# --------------------------------------------------------------------------------------------
# Two runs


def _removed(old: TestResult) -> ComparisonRow:
    measured = old.verdict not in _UNMEASURED
    return ComparisonRow(
        key=old.key,
        nodeid=old.nodeid,
        label=old.label,
        status="removed",
        old_verdict=old.verdict,
        old_rate=rate_of(old) if measured else None,
        old_total=total_of(old) if measured else None,
    )


def _renames(removed: Sequence[TestResult], added: Sequence[TestResult]) -> dict[str, list[str]]:
    """Removed and new tests that look like the same test under another name (the same
    function name and label, or a leak fingerprint in common): key -> the counterparts' keys,
    fingerprint matches first."""
    out: dict[str, list[str]] = {}
    for old in removed:
        old_fps = set(fingerprints_of(old))
        by_fp, by_name = [], []
        for new in added:
            if old_fps & set(fingerprints_of(new)):
                by_fp.append(new)
            elif function_name(old.nodeid) == function_name(new.nodeid) and old.label == new.label:
                by_name.append(new)
        for new in by_fp + by_name:
            out.setdefault(old.key, []).append(new.key)
            out.setdefault(new.key, []).append(old.key)
    return out


def _by_key(tests: Iterable[TestResult]) -> dict[str, TestResult]:
    return {t.key: t for t in tests}  # a repeated key (re-run): the last entry wins


def _counts(rows: Sequence[ComparisonRow]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[r.status] = out.get(r.status, 0) + 1
    return {s: out[s] for s in STATUSES if s in out}


def compare_runs(
    old: RunReport,
    new: Sequence[TestResult],
    rule: Rule | None = None,
    *,
    old_name: str = "",
    new_name: str = "",
    new_created: str = "",
) -> Comparison:
    """This run's tests against a baseline run, test by test (see :func:`compare_test`): rows
    in the new run's order, then the tests only in the baseline (status ``removed``).
    ``old_name``/``new_name`` label the sides (file names)."""
    rule = rule or Rule()
    old_tests, new_tests = _by_key(old.tests), _by_key(new)
    judged = [_judge(old_tests.get(key), t, rule) for key, t in new_tests.items()]
    added = [new_tests[r.key] for r in judged if r.key not in old_tests and r.status == "new"]
    removed = [t for key, t in old_tests.items() if key not in new_tests]
    renamed: Mapping[str, list[str]] = _renames(removed, added)
    rows = tuple(
        _finish(r, renamed.get(r.key, ())) for r in [*judged, *(_removed(t) for t in removed)]
    )
    return Comparison(
        baseline=old_name or old.created,  # what the HTML header shows
        old=RunRef(name=old_name, created=old.created),
        new=RunRef(name=new_name, created=new_created),
        rule=str(rule),
        failed=any(r.failed for r in rows),
        counts=_counts(rows),
        floors={"rate": RATE_FLOOR, "growth": GROWTH_FLOOR, "relative": RELATIVE_FLOOR},
        rows=rows,
    )
