"""Terminal summary: a row per checked test, a line per leak, an entry per shared cause."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

from tabulate import tabulate

from ..model import (
    KEPT_NOTE,
    Comparison,
    ComparisonRow,
    Finding,
    Leak,
    LeakGroup,
    NotChecked,
    RunRef,
    TestResult,
)
from ..units import cut, format_leak_rate, format_size, printable, safe
from ..vocabulary import FLOORS

#: The columns a reader needs first (the default table, fitted to the terminal width).
HEADERS = ["verdict", "test", "grew", "rate", "severity"]
#: Every column (``-v`` or ``--memleak-table=wide``).
WIDE_HEADERS = [
    "verdict",
    "test",
    "grew",
    "rate",
    "severity",
    "measured",
    "RSS Δ",
    "heap Δ",
    "external Δ",
    "pattern",
    "health",
]
#: The narrowest the test column gets, whatever the terminal width.
MIN_NAME = 24


def _delta(series: Sequence[float | None] | None) -> str:
    if not series or series[0] is None or series[-1] is None:
        return "n/a"
    d = series[-1] - series[0]
    return ("+" if d >= 0 else "") + format_size(d)


def _external(r: TestResult) -> str:
    """External (RSS beyond the Python heap) growth, only where it means something: RSS moves in
    pages and lags the heap, so for a small heap leak RSS - heap goes negative. Shown when RSS
    itself grew beyond its noise floor and external memory grew; "-" otherwise."""
    rss, ext = r.snapshots.get("rss") or (), r.snapshots.get("external") or ()
    r0, r1 = (rss[0], rss[-1]) if rss else (None, None)
    e0, e1 = (ext[0], ext[-1]) if ext else (None, None)
    if r0 is None or r1 is None or e0 is None or e1 is None:
        return "n/a"
    if r1 - r0 <= FLOORS["rss"] * max(1, r.iterations) or e1 - e0 <= 0:
        return "-"
    return "+" + format_size(e1 - e0)


def _main_finding(r: TestResult) -> Finding | None:
    pool = [f for f in r.findings if f.failing] or r.findings
    return max(pool, key=lambda f: abs(f.bytes_per_iter or 0.0) or f.total, default=None)


def _sampled(r: TestResult) -> bool:
    return r.trend.mode in ("soak", "watch")


def name_of(r: TestResult) -> str:
    return r.nodeid + (f" [{r.label}]" if r.label else "")


def shorten(text: str, width: int) -> str:
    """``text`` made printable and, when longer than ``width``, shortened in the middle (the
    file and the test name's end are what tell test ids apart)."""
    return cut(printable(text, oneline=True), width, middle=True)


def row(r: TestResult, wide: bool = False) -> list[str]:
    f = _main_finding(r)
    grew = "-" if f is None else f.metric
    if f is None:
        rate, pattern = "-", "stable"
    elif _sampled(r):
        unit = "bytes/s" if f.metric in ("rss", "malloc") else f"{f.metric}/s"
        rate, pattern = format_leak_rate(f.rate_per_s, unit), f.pattern
    elif f.bytes_per_iter is not None:
        rate, pattern = format_leak_rate(f.bytes_per_iter), f.pattern
    else:
        rate, pattern = format_leak_rate(f.rate_per_iter, f.metric), f.pattern
    verdict = r.verdict.upper() if r.verdict == "leak" else r.verdict
    if r.partial and r.verdict not in ("error", "skipped"):
        verdict += " (partial)"
    cells = [verdict, name_of(r), grew, rate, r.severity]
    if wide:
        cells += [
            f"{r.iterations} {'samples' if _sampled(r) else 'calls'}",
            _delta(r.snapshots.get("rss")),
            _delta(r.snapshots.get("heap")),
            _external(r),
            pattern,
            r.trend.health,
        ]
    return cells


def table_lines(results: Sequence[TestResult], width: int, wide: bool = False) -> list[str]:
    """One row per result. The test column takes the room the others leave in ``width`` (never
    less than MIN_NAME); long ids are shortened in the middle."""
    headers = WIDE_HEADERS if wide else HEADERS
    rows = [row(r, wide) for r in results]
    others = sum(max(len(h), *(len(rw[i]) for rw in rows)) for i, h in enumerate(headers) if i != 1)
    room = max(MIN_NAME, width - others - 2 * (len(headers) - 1))
    names = [rw[1] for rw in rows]
    while True:
        for rw, name in zip(rows, names):
            rw[1] = shorten(name, room)
        lines = tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)
        out = lines.splitlines()
        excess = max(len(line) for line in out) - width
        if excess <= 0 or room <= MIN_NAME:
            return out
        room = max(MIN_NAME, room - excess)


def detail(r: TestResult) -> list[str]:
    lines = []
    for lk in r.leaks:
        tag = f" (suppressed: {lk.suppressed_by})" if lk.suppressed else ""
        whose = " (in the test's own code)" if lk.origin == "test code" else ""
        rate = format_leak_rate(lk.growth_rate, lk.unit)
        lines.append(
            f"  {lk.id} {lk.type} at {safe(lk.source)}{whose}: {rate}, "
            f"{lk.details.pattern or ''} severity {lk.severity}"
            f"{tag}"
        )
        if lk.module:
            lines.append(f"      module: {safe(lk.module)}")
        for ev in lk.evidence[:4]:
            lines.append(f"      evidence: {safe(ev)}")
        stack = lk.stack_trace or ()
        if stack:
            lines.append(f"      stack: {safe(stack[0])}")
            for frame in stack[1:3]:
                lines.append(f"             {safe(frame)}")
        if lk.retainer_path:
            lines.append(f"      held by: {safe(lk.retainer_path, 300)}")
        if lk.recommendation:
            lines.append(f"      fix: {safe(lk.recommendation, 300)}")
    return lines


def leak_line(r: TestResult, lk: Leak) -> str:
    """One line per leak: what, where, how fast, in which test (its name: the table has the
    rest of its id). A suppressed leak says first which entry accepted it."""
    test = r.nodeid.rsplit("::", 1)[-1] + (f" [{r.label}]" if r.label else "")
    where = f"{lk.what} at {lk.source}"
    if lk.suppressed:
        return f"  by {lk.suppressed_by}: {where}, in {test}"
    return f"  {where}, {format_leak_rate(lk.growth_rate, lk.unit)}, in {test}"


def group_lines(groups: Sequence[LeakGroup], shown: int = 3) -> list[str]:
    """One entry per cause shared by several tests: what, where, how fast, what holds it, the
    first few tests."""
    lines = []
    for g in groups:
        low = format_leak_rate(g.rate_min, g.unit)
        high = format_leak_rate(g.rate_max, g.unit)
        rate = low if low == high else f"{low} to {high}"
        inside = f" (inside {g.allocated_in})" if g.allocated_in else ""
        lines.append(f"  {g.count} tests: {g.type} at {g.source}{inside}, {rate}")
        if g.holder:
            lines.append(f"      held by: {g.holder}")
        more = f" and {g.count - shown} more" if g.count > shown else ""
        lines.append(f"      in {', '.join(t.rsplit('::', 1)[-1] for t in g.tests[:shown])}{more}")
    return lines


#: Not-checked tests listed by name per reason; the rest are counted.
NOT_CHECKED_SHOWN = 5


def unjudged_lines(results: Sequence[TestResult]) -> list[str]:
    """The checked tests whose native memory was not judged (they stop tracemalloc, which
    leaks on the running Python): their Python objects and resources were."""
    named = [r for r in results if KEPT_NOTE in r.probe_notes]
    if not named:
        return []
    lines = [
        f"memleak: malloc and rss not judged in {len(named)} test"
        f"{'s' if len(named) != 1 else ''}: they stop tracemalloc,",
        "  which leaks on this Python (cpython#121390, fixed in 3.12.5):",
    ]
    lines += [f"      {safe(name_of(r))}" for r in named[:NOT_CHECKED_SHOWN]]
    if len(named) > NOT_CHECKED_SHOWN:
        lines.append(f"      ... and {len(named) - NOT_CHECKED_SHOWN} more (see the JSON report)")
    return lines


def not_checked_lines(entries: Sequence[NotChecked]) -> list[str]:
    """The tests that were asked for but not checked, grouped by reason."""
    if not entries:
        return []
    groups: dict[str, list[str]] = {}
    for e in entries:
        groups.setdefault(e.reason, []).append(e.nodeid)
    lines = [f"memleak: {len(entries)} not checked:"]
    for reason, ids in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        lines.append(f"  {safe(reason, 300)} ({len(ids)}):")
        lines += [f"      {safe(n)}" for n in ids[:NOT_CHECKED_SHOWN]]
        if len(ids) > NOT_CHECKED_SHOWN:
            lines.append(f"      ... and {len(ids) - NOT_CHECKED_SHOWN} more (see the JSON report)")
    return lines


#: One of the session's files: what it is, where it went, or why it was not written.
Written = tuple[str, Optional[str], Optional[str]]


def written_line(written: Written) -> str | None:
    what, path, error = written
    done = {"run": "saved to", "CI summary": "appended to"}.get(what, "written to")
    if path:
        return f"memleak: {what} {done} {path}"
    if error:
        return f"memleak: {what} NOT {done.split()[0]}: {error}"
    return None


#: Up to this many results the table lists every test; beyond, only those that are not plainly
#: ok (a run of thousands of checked tests printed a row for each), unless every column was
#: asked for (-v, table=wide).
TABLE_ALL = 50


def _listed(results: Sequence[TestResult], wide: bool) -> tuple[list[TestResult], int]:
    """The results the table lists, and how many ok ones it leaves out."""
    if wide or len(results) <= TABLE_ALL:
        return list(results), 0
    listed = [r for r in results if r.verdict != "ok" or r.partial or r.leaks]
    return listed, len(results) - len(listed)


def summary(
    tr: Any,
    results: Sequence[TestResult],
    not_checked: Sequence[NotChecked] = (),
    written: Sequence[Written] = (),
    comparison: Comparison | None = None,
    baseline: str = "",
    *,
    width: int | None = None,
    wide: bool = False,
    details: bool = False,
    groups: Sequence[LeakGroup] = (),
    suppressions_used: int = 0,
) -> None:
    """The memleak section of the terminal summary: the table, a line per leak (the detail is
    in the test's failure section; ``details`` prints it here, for ``pytest-memleak show``),
    leaks shared by several tests as one entry, the totals and the not-checked tests, where
    the files went, and the baseline comparison. Lines fit ``width`` (default: unbounded)."""
    fit = width or 10**9
    out = _Fitted(tr, fit)
    tr.write_sep("=", "memleak summary")
    listed, unlisted = _listed(results, wide)
    if listed:
        for line in table_lines(listed, fit, wide):
            # every column was asked for: the wide table takes the room it needs
            tr.write_line(line) if wide else out.line(line)
    if unlisted:
        out.line(f"({unlisted} ok tests not listed: -v lists every test)")
    grouped = {key for g in groups for key in g.tests if g.count > 1}
    # a test's leak of a group's type is that group's (the group's entry stands for it)
    in_groups = {(key, g.type) for g in groups for key in g.tests}
    active = [(r, lk) for r in results for lk in r.active_leaks]
    active = [(r, lk) for r, lk in active if (r.key, lk.type) not in in_groups]
    accepted = [(r, lk) for r in results for lk in r.leaks if lk.suppressed]
    if active and not details:
        out.line("")
        out.line("memleak: leaks (each one's detail is in its test's failure above):")
        for r, lk in active:
            out.line(leak_line(r, lk))
    if accepted and not details:
        out.line("")
        out.line("memleak: suppressed leaks (accepted by memleak_suppress or a known cache):")
        for r, lk in accepted:
            out.line(leak_line(r, lk))
    if groups:
        out.line("")
        out.line(
            f"memleak: {len(groups)} leak{'s' if len(groups) != 1 else ''} shared by "
            f"several tests ({len(grouped)} tests), one entry per cause:"
        )
        for line in group_lines(groups):
            out.line(line)
    if details:
        for r in results:
            if r.verdict != "leak" and not r.leaks:
                continue
            tr.write_line("")
            tr.write_line(
                f"LEAK {safe(name_of(r))}: {r.severity} severity"
                if r.verdict == "leak"
                else f"{safe(name_of(r))}: {r.verdict}"
            )
            for finding in r.findings:
                if finding.failing:
                    tr.write_line(f"  - {safe(finding.reason, 400)}")
            for line in detail(r):
                tr.write_line(line)
    counts: dict[str, int] = {}
    for r in results:
        counts[r.verdict] = counts.get(r.verdict, 0) + 1
    total = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    out.line("")
    for line in unjudged_lines(results):
        out.line(line)
    for line in not_checked_lines(not_checked):
        out.line(line)
    extra = f"; {len(not_checked)} not checked" if not_checked else ""
    if suppressions_used:
        extra += f"; {suppressions_used} suppression{'s' if suppressions_used != 1 else ''} used"
    out.line(f"memleak: {len(results)} checked: {total or 'none'}{extra}")
    # where the files went: whole paths, never shortened (people copy them)
    if written:
        _write(tr, written_line(written[0]))
    if comparison is not None:
        tr.write_sep("-", f"memleak comparison against {baseline}")
        for line in comparison_lines(comparison):  # a table of its own: not cut
            tr.write_line(line)
    for w in written[1:]:
        _write(tr, written_line(w))


def _write(tr: Any, line: str | None) -> None:
    if line is not None:
        tr.write_line(line)


class _Fitted:
    """Writes lines to the terminal reporter, each shortened in the middle to the width."""

    def __init__(self, tr: Any, width: int) -> None:
        self.tr, self.width = tr, width

    def line(self, text: str | None) -> None:
        if text is not None:
            self.tr.write_line(shorten(text, self.width) if len(text) > self.width else text)


# --------------------------------------------------------------------------------- comparison

#: Columns of the baseline comparison table.
COMPARISON_HEADERS = ["test", "status", "old rate", "new rate", "Δ", "verdict"]


def _rate_text(rate: float | None) -> str:
    return "-" if rate is None else f"{format_size(rate)}/iter"


def _side(ref: RunRef) -> str:
    return f"{ref.name or '?'}" + (f" (created {ref.created})" if ref.created else "")


def _delta_text(r: ComparisonRow) -> str:
    if r.delta is None:
        return "-"
    text = ("+" if r.delta > 0 else "") + format_size(r.delta) + "/iter"
    if r.delta_pct is None:
        return text + " (from 0)"
    return text + (f" ({r.delta_pct:+.0f}%)" if r.delta else "")


def _verdicts(r: ComparisonRow) -> str:
    def show(v: str | None) -> str:
        return "-" if v is None else v.upper() if v == "leak" else v

    if r.old_verdict is not None and r.new_verdict is not None and r.old_verdict != r.new_verdict:
        return f"{show(r.old_verdict)} -> {show(r.new_verdict)}"
    return show(r.new_verdict if r.new_verdict is not None else r.old_verdict)


def comparison_summary_line(comparison: Comparison) -> str:
    """``memleak compare: N tests: <counts per status>; rule <rule>: passed|FAILED (n tests)``."""
    counts = ", ".join(f"{n} {s}" for s, n in comparison.counts.items()) or "nothing"
    line = f"memleak compare: {len(comparison.rows)} tests: {counts}"
    if comparison.rule:
        bad = len(comparison.failures)
        verdict = f"FAILED ({bad} test{'s' if bad != 1 else ''})" if bad else "passed"
        line += f"; rule {comparison.rule}: {verdict}"
    return line


def comparison_lines(comparison: Comparison) -> list[str]:
    """The baseline comparison: which runs, the table (one row per test), one block per
    failing test and per rename hint of a removed test, then the summary line."""
    lines: list[str] = []
    if comparison.old.name or comparison.new.name:
        lines.append(f"baseline: {_side(comparison.old)}")
        lines.append(f"current:  {_side(comparison.new)}")
    table = [
        [
            safe(r.name, 70),
            r.status,
            _rate_text(r.old_rate),
            _rate_text(r.new_rate),
            _delta_text(r),
            _verdicts(r),
        ]
        for r in comparison.rows
    ]
    lines += tabulate(table, headers=COMPARISON_HEADERS, tablefmt="simple").splitlines()
    for r in comparison.rows:
        if r.failures:
            lines.append("")
            lines.append(f"REGRESSED {safe(r.name)}:")
            lines += [f"  - {safe(f, 400)}" for f in r.failures]
    hints = [r for r in comparison.rows if r.hint and r.status == "removed"]
    if hints:
        lines.append("")
        lines += [f"{safe(r.name)}: removed; {safe(r.hint, 300)}" for r in hints]
    lines.append("")
    lines.append(comparison_summary_line(comparison))
    return lines
