"""Terminal summary: one table row per checked test, then a detail block per leak."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

from tabulate import tabulate

from ..model import Comparison, ComparisonRow, Finding, NotChecked, RunRef, TestResult
from ..units import format_leak_rate, format_size, safe

HEADERS = [
    "test",
    "iter",
    "RSS Δ",
    "heap Δ",
    "external Δ",
    "rate",
    "pattern",
    "severity",
    "health",
    "verdict",
]


def _delta(series: Sequence[float | None] | None) -> str:
    if not series or series[0] is None or series[-1] is None:
        return "n/a"
    d = series[-1] - series[0]
    return ("+" if d >= 0 else "") + format_size(d)


def _main_finding(r: TestResult) -> Finding | None:
    pool = [f for f in r.findings if f.failing] or r.findings
    return max(pool, key=lambda f: abs(f.bytes_per_iter or 0.0) or f.total, default=None)


def _sampled(r: TestResult) -> bool:
    return r.trend.mode in ("soak", "watch")


def row(r: TestResult) -> list[str]:
    f = _main_finding(r)
    if f is None:
        rate, pattern = "-", "stable"
    elif _sampled(r):
        unit = "bytes/s" if f.metric in ("rss", "malloc") else f"{f.metric}/s"
        rate, pattern = format_leak_rate(f.rate_per_s, unit), f.pattern
    elif f.bytes_per_iter is not None:
        rate, pattern = format_leak_rate(f.bytes_per_iter), f.pattern
    else:
        rate, pattern = format_leak_rate(f.rate_per_iter, f.metric), f.pattern
    name = r.nodeid + (f" [{r.label}]" if r.label else "")
    verdict = r.verdict.upper() if r.verdict == "leak" else r.verdict
    if r.partial and r.verdict not in ("error", "skipped"):
        verdict += " (partial)"
    iters = str(r.iterations)
    if _sampled(r):
        iters += " samples"
    return [
        safe(name, 70),
        iters,
        _delta(r.snapshots.get("rss")),
        _delta(r.snapshots.get("heap")),
        _delta(r.snapshots.get("external")),
        rate,
        pattern,
        r.severity,
        r.trend.health,
        verdict,
    ]


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


#: Not-checked tests listed by name per reason; the rest are counted.
NOT_CHECKED_SHOWN = 5


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
    done = "saved to" if what == "run" else "written to"
    if path:
        return f"memleak: {what} {done} {path}"
    if error:
        return f"memleak: {what} NOT {done.split()[0]}: {error}"
    return None


def summary(
    tr: Any,
    results: Sequence[TestResult],
    not_checked: Sequence[NotChecked] = (),
    written: Sequence[Written] = (),
    comparison: Comparison | None = None,
    baseline: str = "",
) -> None:
    """The memleak section of the terminal summary: the table, each leak, the totals and the
    not-checked tests, where the files went, and the baseline comparison."""
    tr.write_sep("=", "memleak summary")
    rows = [row(r) for r in results]
    if rows:
        for line in tabulate(rows, headers=HEADERS, tablefmt="simple").splitlines():
            tr.write_line(line)
    for r in results:
        if r.verdict != "leak" and not r.leaks:
            continue
        name = r.nodeid + (f" [{r.label}]" if r.label else "")
        tr.write_line("")
        tr.write_line(
            f"LEAK {safe(name)}: {r.severity} severity"
            if r.verdict == "leak"
            else f"{safe(name)}: {r.verdict}"
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
    tr.write_line("")
    for line in not_checked_lines(not_checked):
        tr.write_line(line)
    skipped = f"; {len(not_checked)} not checked" if not_checked else ""
    tr.write_line(f"memleak: {len(results)} checked: {total or 'none'}{skipped}")
    if written:
        _write_line(tr, written_line(written[0]))
    if comparison is not None:
        tr.write_sep("-", f"memleak comparison against {baseline}")
        for line in comparison_lines(comparison):
            tr.write_line(line)
    for w in written[1:]:
        _write_line(tr, written_line(w))


def _write_line(tr: Any, line: str | None) -> None:
    if line is not None:
        tr.write_line(line)


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
