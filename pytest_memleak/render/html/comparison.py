"""The "Baseline comparison" section, built from the model's :class:`Comparison`."""

from __future__ import annotations

from ...model import Comparison, ComparisonRow, RunRef
from ...units import printable
from .text import NAME_LIMIT, badge, esc, finite, name_html, rate, scroll

__all__ = ["STATUS_ORDER", "comparison_section"]

#: Row statuses from the most to the least urgent: the order of the rows and of the chips.
STATUS_ORDER = (
    "regressed",
    "worse",
    "new",
    "error",
    "renamed",
    "removed",
    "fixed",
    "improved",
    "skipped",
    "same",
)
_RANK = {s: k for k, s in enumerate(STATUS_ORDER)}


def _rank(status: str) -> int:
    return _RANK.get(status, len(_RANK))


def _delta(r: ComparisonRow) -> str:
    delta, pct = finite(r.delta), finite(r.delta_pct)
    if delta is None:
        return "" if pct is None else f"{pct:+.0f}%"
    text = ("+" if delta >= 0 else "") + rate(delta, "bytes")
    if pct is None:
        return text + " (from 0)"
    return text + (f" ({pct:+.0f}%)" if delta else "")


def _verdicts(r: ComparisonRow) -> str:
    def show(v: str | None) -> str:
        return "-" if v is None else ("LEAK" if v == "leak" else printable(v, oneline=True))

    old, new = r.old_verdict, r.new_verdict
    if old is not None and new is not None and old != new:
        return f"{show(old)} → {show(new)}"
    return show(new if new is not None else old) if (old, new) != (None, None) else ""


def _side(side: RunRef) -> str:
    if not side.name and not side.created:
        return ""
    text = f"<code>{esc(side.name or '?', 500, oneline=True)}</code>"
    return text + (f" (created {esc(side.created, 40, oneline=True)})" if side.created else "")


def _rate(value: float | None) -> str:
    return "-" if finite(value) is None else rate(value, "bytes")


def _row(r: ComparisonRow) -> str:
    renamed = (
        f'<div class="mod">was <code>{esc(r.old_nodeid, NAME_LIMIT, oneline=True)}</code></div>'
        if r.old_nodeid
        else ""
    )
    return (
        f'<tr class="cmp-{esc(r.status, 20, oneline=True)}"><td>{badge("cmp", r.status)}</td>'
        f'<td class="name">{name_html(r.nodeid, r.label)}{renamed}</td>'
        f'<td class="num">{esc(_rate(r.old_rate), 60)}</td>'
        f'<td class="num">{esc(_rate(r.new_rate), 60)}</td>'
        f'<td class="num">{esc(_delta(r))}</td>'
        f"<td>{esc(_verdicts(r), 60)}</td>"
        f"<td>{esc(r.reason, 1000)}</td></tr>"
    )


def comparison_section(comparison: Comparison) -> str:
    """Which side is the baseline, the rule's outcome, a chip per status, and a row per test
    (rates in bytes per iteration), the most urgent statuses first."""
    rows = sorted(comparison.rows, key=lambda r: _rank(r.status))
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    chips = " ".join(
        f"{badge('cmp', s)} {n}" for s, n in sorted(counts.items(), key=lambda kv: _rank(kv[0]))
    )
    head = []
    old_side, new_side = _side(comparison.old), _side(comparison.new)
    if old_side:
        head.append(f"Baseline {old_side}")
    elif comparison.baseline:
        head.append(f"Baseline <code>{esc(comparison.baseline, 500, oneline=True)}</code>")
    if new_side:
        head.append(f"current {new_side}")
    if comparison.rule:
        failing = sum(1 for r in rows if r.failed)
        verdict = (
            f'<b class="cmpfail">FAILED ({failing} test{"s" if failing != 1 else ""})</b>'
            if comparison.failed
            else '<b class="cmppass">passed</b>'
        )
        head.append(f"rule <code>{esc(comparison.rule, 300, oneline=True)}</code>: {verdict}")
    table = (
        scroll(
            '<table class="grid cmp"><thead><tr><th>status</th><th>test</th>'
            '<th class="num">baseline rate</th><th class="num">new rate</th>'
            '<th class="num">Δ rate</th><th>verdict</th><th>reason</th></tr></thead>'
            f"<tbody>{''.join(_row(r) for r in rows)}</tbody></table>"
        )
        if rows
        else '<p class="muted">No tests to compare.</p>'
    )
    head_html = f'<p class="cmphead">{" · ".join(head)}</p>' if head else ""
    return (
        f'<section id="comparison"><h2>Baseline comparison</h2>{head_html}'
        f'<div class="chips">{chips}</div>{table}</section>'
    )
