"""The tests table and each test's section, built from the model's :class:`TestResult`: its
facts, charts, health, findings and growth by metric (what the diagnosis located is in
:mod:`.leaks`).

A soak or a watch (:func:`~.text.sampled`) is a series of samples in time: its rates are per
second, its points are samples, and its facts name the sampling (and the watched process).

The section of a test that leaks or errs is drawn in the page, open. Any other test's section
is lazy: a collapsed ``<details>`` whose body is a ``<template>``, which the browser parses but
neither styles nor lays out; the page's script puts it in place when the section is opened (or
its anchor followed). The tests table comes in chunks of rows, and the sections in chunks, that
the browser lays out only near the screen. A thousand clean tests so cost the browser little
more than parsing their markup, and every test stays one click away from the table.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...model import Finding, TestResult
from ...units import printable
from ...vocabulary import COUNT_METRICS
from .charts import count_chart, memory_chart, sparkline
from .leaks import buffer_leaks, leak_table, native_section, resources_section
from .text import (
    TABLE_NAME_LIMIT,
    VERDICT_ORDER,
    badge,
    count,
    esc,
    finite,
    name_html,
    per,
    rate,
    rate_unit,
    sampled,
    scroll,
    size,
)

#: Memory series in the order the charts show them (derived heap and external included).
CHART_MEMORY_METRICS = ("rss", "heap", "external", "malloc", "py_blocks")
METRIC_ORDER = (*CHART_MEMORY_METRICS, *COUNT_METRICS)

__all__ = ["SECTIONS_PER_CHUNK", "eager", "result_section", "results_table", "series"]


# ------------------------------------------------------------------------------- readings


def series(t: TestResult, metric: str) -> list[float | None]:
    """A metric's snapshots, ``None`` where a value is missing or not finite."""
    return [finite(v) for v in t.snapshots.get(metric, ())]


def _delta(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return present[-1] - present[0] if present else None


def _main_finding(t: TestResult) -> Finding | None:
    """The failing finding that weighs most (the heaviest of all when none fails)."""
    pool = [f for f in t.findings if f.failing] or list(t.findings)
    if not pool:
        return None

    def weight(f: Finding) -> float:
        return abs(finite(f.bytes_per_iter) or 0.0) or abs(finite(f.total) or 0.0)

    return max(pool, key=weight)


def _finding_rate(t: TestResult, f: Finding | None) -> tuple[str, str]:
    """The finding's rate as a person reads it: per second for a soak or a watch, else per
    iteration (in bytes when the finding has them, py_blocks estimated)."""
    if f is None:
        return "-", "stable"
    if sampled(t):
        return rate(f.rate_per_s, rate_unit(f.metric) + "/s"), f.pattern
    if finite(f.bytes_per_iter) is not None:
        return rate(f.bytes_per_iter, "bytes"), f.pattern
    return rate(f.rate_per_iter, rate_unit(f.metric)), f.pattern


def _table_name(t: TestResult) -> str:
    return name_html(t.nodeid, t.label, TABLE_NAME_LIMIT, middle=True)


def _health_badge(t: TestResult) -> str:
    """The health badge; "-" for a soak or a watch, which has none (no heap to compare)."""
    if sampled(t) and t.trend.health == "unknown":
        return '<span class="muted">-</span>'
    return badge("h", t.trend.health)


def _points(t: TestResult) -> str:
    """How many points the series has: iterations, or samples for a soak or a watch."""
    n = count(t.iterations)
    return f"{n} samples" if sampled(t) and n != "n/a" else n


# ----------------------------------------------------------------------------- tests table


def results_table(ordered: Sequence[tuple[int, TestResult]]) -> str:
    """One row per test (the verdict, growth and a sparkline), linking to its section."""
    if not ordered:
        return '<p class="muted">The report holds no tests.</p>'
    rows = []
    for i, t in ordered:
        f = _main_finding(t)
        rate_text, pattern = _finding_rate(t, f)
        metric = f.metric if f else "rss"
        spark = sparkline(series(t, metric if metric in t.snapshots else "rss"))
        deltas = [size(_delta(series(t, m)), signed=True) for m in ("rss", "heap", "external")]
        v_text = t.verdict.upper() if t.verdict == "leak" else t.verdict
        if t.partial and t.verdict not in ("error", "skipped"):
            v_text += " (partial)"
        n_leaks = len(t.active_leaks)
        rows.append(
            f'<tr class="v-{t.verdict}" data-verdict="{t.verdict}">'
            f"<td>{badge('v', t.verdict, v_text)}</td>"
            f'<td class="name"><a href="#t{i}">{_table_name(t)}</a></td>'
            f"<td>{badge('sev', t.severity)}</td>"
            f"<td>{_health_badge(t)}</td>"
            f'<td class="num">{_points(t)}</td>'
            + "".join(f'<td class="num">{esc(d)}</td>' for d in deltas)
            + f'<td class="num">{esc(rate_text)}</td><td>{badge("p", pattern)}</td>'
            f'<td class="num">{n_leaks or ""}</td><td class="sparkcell" '
            f'title="{esc(metric)} by {per(t)}">{spark}</td></tr>'
        )
    filt = (
        '<div class="filter" hidden><label>Filter <input type="search" id="q" '
        'placeholder="test name"></label>'
        + "".join(
            f'<label class="chk"><input type="checkbox" data-v="{v}" checked> {v}</label>'
            for v in VERDICT_ORDER
        )
        + "</div>"
    )
    chunks = "".join(
        f'<div class="chunk">{_table(rows[k : k + ROWS_PER_CHUNK], k == 0)}</div>'
        for k in range(0, len(rows), ROWS_PER_CHUNK)
    )
    return f'{filt}<div class="scroll"><div class="rows" id="tests-table">{chunks}</div></div>'


#: Test sections per chunk of the page (rendered only near the screen, like the table's rows).
SECTIONS_PER_CHUNK = 50

#: Rows of the tests table per chunk: a table of its own that the browser lays out only when it
#: comes near the screen (``content-visibility: auto``); the column widths are fixed, so the
#: chunks line up as one table.
ROWS_PER_CHUNK = 100

#: The tests table's columns: (CSS class of the column, header cell).
_COLUMNS = (
    ("c-verdict", "<th>verdict</th>"),
    ("c-name", "<th>test</th>"),
    ("c-sev", "<th>severity</th>"),
    ("c-health", "<th>health</th>"),
    ("c-n", '<th class="num">iterations</th>'),
    ("c-delta", '<th class="num">RSS Δ</th>'),
    ("c-delta", '<th class="num">heap Δ</th>'),
    ("c-delta", '<th class="num">external Δ</th>'),
    ("c-rate", '<th class="num">rate</th>'),
    ("c-pattern", "<th>pattern</th>"),
    ("c-leaks", '<th class="num">leaks</th>'),
    ("c-trend", "<th>trend</th>"),
)
_COLGROUP = "<colgroup>" + "".join(f'<col class="{c}">' for c, _ in _COLUMNS) + "</colgroup>"
_HEAD = "<thead><tr>" + "".join(h for _, h in _COLUMNS) + "</tr></thead>"


def _table(rows: Sequence[str], first: bool) -> str:
    """One chunk of the tests table (the first has the header row)."""
    return (
        f'<table class="tests">{_COLGROUP}{_HEAD if first else ""}'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


# ---------------------------------------------------------------------------- test section


def _growth_table(t: TestResult) -> str:
    if not t.growth:
        return ""
    by_metric = {f.metric: f for f in t.findings}
    names = [m for m in METRIC_ORDER if m in t.growth] + sorted(
        m for m in t.growth if m not in METRIC_ORDER
    )
    rows, stable = [], []
    for m in names:
        g = t.growth[m]
        finding = by_metric.get(m)
        if g.pattern == "stable" and finding is None:
            stable.append(m)
            continue
        unit = rate_unit(m, g.unit)
        # a soak's or a watch's slope is per second; the loop's per iteration
        slope = rate(g.slope_per_s, unit + "/s") if sampled(t) else rate(g.slope_per_iter, unit)
        if unit == "bytes":
            total = size(g.total_growth, signed=True)
        else:
            total = count(g.total_growth, signed=True)
        conf = finite(g.confidence)
        flagged = finding is not None and finding.failing
        scr = ", ".join(printable(s) for s in t.screens.get(m, ()))
        rows.append(
            f'<tr class="{"flag" if flagged else ""}"><td><code>{esc(m, 40, oneline=True)}'
            f"</code></td><td>{badge('p', g.pattern)}</td>"
            f'<td class="num">{esc(slope)}</td><td class="num">{esc(total)}</td>'
            f'<td class="num">{"n/a" if conf is None else f"{conf:.2f}"}</td>'
            f"<td>{badge('sev', finding.severity) if finding else ''}</td>"
            f"<td>{esc(scr, 200)}</td></tr>"
        )
    note = (
        (
            '<p class="muted small">Stable: '
            + ", ".join(f"<code>{esc(m, 40, oneline=True)}</code>" for m in stable)
            + "</p>"
        )
        if stable
        else ""
    )
    if not rows:
        return note
    return (
        scroll(
            '<table class="grid growth"><thead><tr><th>metric</th><th>pattern</th>'
            '<th class="num">slope</th><th class="num">total</th><th class="num">confidence'
            "</th><th>severity</th><th>rounds screened</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )
        + note
    )


def _findings(t: TestResult) -> str:
    items = [
        f'<li class="{"fail" if f.failing else "info"}">{badge("sev", f.severity)} '
        f"{esc(f.reason or f.metric, 2000)}</li>"
        for f in t.findings
    ]
    return f'<ul class="findings">{"".join(items)}</ul>' if items else ""


def _health(t: TestResult) -> str:
    trend = t.trend
    bits = [f'<div class="hrow">Health {badge("h", trend.health)}</div>']
    ratio = finite(trend.external_ratio)
    if ratio is not None:
        bits.append(f"<div>external / heap ratio <b>{ratio:.2f}</b></div>")
    ds, de = finite(trend.divergence_start), finite(trend.divergence_end)
    if ds is not None and de is not None:
        bits.append(f"<div>RSS - heap {esc(size(ds))} → {esc(size(de))}</div>")
    slope = finite(trend.divergence_slope_per_iter)
    if slope is not None:
        bits.append(f"<div>divergence {esc(rate(slope, 'bytes'))}</div>")
    for value, label in ((trend.rss_slope_per_iter, "RSS"), (trend.heap_slope_per_iter, "heap")):
        if finite(value) is not None:
            bits.append(f"<div>{label} slope {esc(rate(value, 'bytes'))}</div>")
    if len(bits) == 1 and trend.health == "unknown":
        return ""  # a soak or a watch: no heap to compare RSS with
    return f'<div class="health">{"".join(bits)}</div>'


def _sampling(t: TestResult) -> list[str]:
    """The facts of a soak or a watch: samples, interval, the judged window, the process."""
    trend = t.trend
    facts = []
    n = finite(trend.samples if trend.samples is not None else t.iterations)
    if n is not None:
        text = f"{count(n)} samples"
        interval = finite(trend.interval_s)
        if interval is not None:
            text += f" every {_seconds(interval)}"
            achieved = finite(trend.interval_achieved_s)
            if achieved is not None and abs(achieved - interval) > 0.1 * interval:
                text += f" (achieved {_seconds(achieved)})"
        facts.append(text)
    judged = finite(trend.judged_samples)
    if judged is not None and n is not None and judged != n:
        facts.append(f"{count(judged)} judged")
    cpu = finite(trend.sampler_cpu_s)
    if cpu is not None:
        facts.append(f"sampler CPU {_seconds(cpu)}")
    if trend.process is not None:
        facts.append(
            f"watched process {esc(trend.process.pid, 12, oneline=True)}: "
            f"<code>{esc(trend.process.cmdline, 300, oneline=True)}</code>"
        )
    if trend.undecided:
        facts.append(f'<b class="warn">not decided: {esc(trend.undecided, 300)}</b>')
    return facts


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _facts(t: TestResult) -> str:
    facts = []
    if sampled(t):
        facts += _sampling(t)
    elif finite(t.iterations) is not None:
        warm = finite(t.warmup)
        facts.append(
            f"{count(t.iterations)} measured iterations"
            + (f" after {count(warm)} warm-up" if warm else "")
        )
    if t.rounds and not sampled(t):
        facts.append("rounds at " + ", ".join(esc(r, 12, oneline=True) for r in t.rounds[:20]))
    dur = finite(t.duration_s)
    if dur is not None:
        facts.append(f"{dur:.2f} s")
    if t.stop_reason:
        facts.append(f"stopped: {esc(t.stop_reason, 100, oneline=True)}")
    if t.origin and t.origin != "marker":
        facts.append(f"origin {esc(t.origin, 30, oneline=True)}")
    if t.partial:
        facts.append('<b class="warn">partial</b>')
    return f'<div class="facts">{" · ".join(facts)}</div>'


def eager(t: TestResult) -> bool:
    """Whether a test's section is drawn in the page, open: it leaks or errs."""
    return t.verdict in ("leak", "error")


def result_section(i: int, t: TestResult) -> str:
    """A test's collapsible section: its facts, charts, findings, leaks, native attribution,
    resources left open, growth by metric and full message. Open when it leaks or errs; any
    other test's body is a ``<template>`` the page's script puts in place when it is opened."""
    body = [_facts(t)]
    if t.error:
        at = f" (iteration {esc(t.error_iteration, 12)})" if t.error_iteration is not None else ""
        body.append(f'<div class="error"><b>Error{at}:</b><pre>{esc(t.error, 20000)}</pre></div>')
    x = per(t)
    rounds = () if sampled(t) else t.rounds
    chart = memory_chart(
        series(t, "rss"),
        series(t, "heap"),
        series(t, "external"),
        rounds,
        xlabel=x,
        explain=eager(t),
    )
    smalls = []
    for m in COUNT_METRICS:
        values = series(t, m)
        present = [v for v in values if v is not None]
        if present and min(present) != max(present):
            smalls.append(count_chart(m, values, rounds, xlabel=x))
    if chart:
        body.append(
            f'<div class="chartrow">{chart}<div class="side">{_health(t)}'
            f"{''.join(smalls)}</div></div>"
        )
    elif t.verdict != "skipped":
        body.append('<p class="muted">No measurements were recorded.</p>')
    if t.probe_notes:
        body.append(
            '<ul class="notes">'
            + "".join(
                f"<li><code>{esc(k, 40, oneline=True)}</code>: {esc(v, 500)}</li>"
                for k, v in t.probe_notes.items()
            )
            + "</ul>"
        )
    findings = _findings(t)
    if findings:
        body.append(f"<h4>Findings</h4>{findings}")
    leaks = leak_table(t)
    if leaks:
        body.append(f"<h4>Leaks ({len(t.leaks)})</h4>{leaks}")
    body.append(buffer_leaks(t))
    body.append(native_section(t))
    body.append(resources_section(t))
    growth = _growth_table(t)
    if growth:
        body.append(f"<h4>Growth pattern by metric</h4>{growth}")
    if t.message:
        body.append(
            f'<details class="msg"><summary>Full message</summary>'
            f"<pre>{esc(t.message, 50000)}</pre></details>"
        )
    diag_notes = t.diagnosis.notes if t.diagnosis is not None else ()
    if diag_notes:
        body.append(
            '<div class="muted small">'
            + " · ".join(esc(n, 300) for n in diag_notes[:10])
            + "</div>"
        )
    summary = (
        f"<summary>{badge('v', t.verdict, t.verdict.upper() if t.verdict == 'leak' else None)}"
        f" {name_html(t.nodeid, t.label)}"
        + (f" {badge('sev', t.severity)}" if t.severity != "none" else "")
        + "</summary>"
    )
    content = f'<div class="tbody">{"".join(body)}</div>'
    if eager(t):
        return f'<details class="test v-{t.verdict}" id="t{i}" open>{summary}{content}</details>'
    return (
        f'<details class="test v-{t.verdict}" id="t{i}">{summary}'
        f"<template>{content}</template></details>"
    )
