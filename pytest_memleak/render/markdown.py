"""A short Markdown summary of a run, for CI job pages (GitHub's ``$GITHUB_STEP_SUMMARY``).

Totals, one table row per leaking test (what leaked, where, how fast), the causes shared by
several tests, and where the full reports are. No links: the HTML report is a CI artifact whose
address the job page knows better than we do.
"""

from __future__ import annotations

from ..model import Leak, RunReport, TestResult
from ..units import format_leak_rate, safe

#: Most leaking tests listed; the rest are counted (the JSON and HTML reports have them all).
MAX_ROWS = 30


def cell(text: str, limit: int = 120) -> str:
    """Text made safe for one Markdown table cell: one line, pipes escaped, code spans kept."""
    return safe(text, limit).replace("\\", "\\\\").replace("|", "\\|").replace("`", "'")


def _main_leak(t: TestResult) -> Leak | None:
    active = t.active_leaks
    return max(active, key=lambda lk: abs(lk.growth_rate or 0.0), default=None)


def _totals(report: RunReport) -> str:
    s = report.summary
    parts = [f"**{s.leak} leaking**" if s.leak else "no leaks", f"{s.ok} ok"]
    if s.error:
        parts.append(f"{s.error} error")
    if s.skipped:
        parts.append(f"{s.skipped} skipped")
    if s.not_checked:
        parts.append(f"{s.not_checked} not checked")
    if s.suppressions_used:
        parts.append(f"{s.suppressions_used} suppressions used")
    partial = " (partial: the run was interrupted)" if report.partial else ""
    return f"{s.checked} tests checked: " + ", ".join(parts) + partial


def _files(report: RunReport) -> list[str]:
    """The JSON and HTML report paths the run was configured with."""
    return [
        p for p in (report.config.get("report"), report.config.get("html")) if isinstance(p, str)
    ]


def summary(report: RunReport) -> str:
    """The Markdown text: a heading, the totals, the leaking tests, shared causes, files."""
    lines = ["## pytest-memleak", "", _totals(report), ""]
    leaking = [t for t in report.tests if t.verdict == "leak"]
    if leaking:
        lines += [
            "| test | leak | where | rate | severity |",
            "| --- | --- | --- | --- | --- |",
        ]
        for t in leaking[:MAX_ROWS]:
            lk = _main_leak(t)
            name = t.nodeid + (f" [{t.label}]" if t.label else "")
            what = lk.what if lk is not None else "-"
            where = lk.source if lk is not None else "-"
            rate = format_leak_rate(lk.growth_rate, lk.unit) if lk is not None else "-"
            lines.append(
                f"| `{cell(name)}` | {cell(what)} | `{cell(where)}` | {rate} | {t.severity} |"
            )
        if len(leaking) > MAX_ROWS:
            lines.append(f"\n... and {len(leaking) - MAX_ROWS} more leaking tests.")
        lines.append("")
    shared = [g for g in report.groups or () if g.count > 1]
    if shared:
        lines.append("**Shared causes** (one leak, many tests):")
        lines.append("")
        for g in shared:
            held = f", held by `{cell(g.holder, 200)}`" if g.holder else ""
            lines.append(f"- {g.count} tests: {g.type} at `{cell(g.source)}`{held}")
        lines.append("")
    files = _files(report)
    if files:
        lines.append("Full reports: " + ", ".join(f"`{cell(f, 200)}`" for f in files) + ".")
        lines.append("")
    return "\n".join(lines)
