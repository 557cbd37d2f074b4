"""What the diagnosis located for a test: the leaks (with their evidence, stack and native
attribution), buffer leaks, the diagnosis' native attribution and the resources left open; and
for the run, the leak groups (one cause shared by several tests)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ...model import JsonObject, Leak, LeakGroup, TestResult
from ...units import printable
from .charts import Bar, native_bars
from .text import (
    TABLE_NAME_LIMIT,
    badge,
    count,
    esc,
    finite,
    json_list,
    json_name,
    json_number,
    json_text,
    name_html,
    rate,
    scroll,
    size,
)

__all__ = [
    "buffer_leaks",
    "estimate",
    "groups_section",
    "leak_table",
    "native_section",
    "resources_section",
]


def _bars(rows: Sequence[JsonObject]) -> list[Bar]:
    """The rows of a native attribution (free-form) that have a number per iteration."""
    bars = []
    for r in rows:
        per_iter = json_number(r.get("per_iter"))
        if per_iter is not None:
            bars.append(
                Bar(
                    name=json_name(r.get("module", "?")),
                    category=json_text(r.get("category"), "other"),
                    per_iter=per_iter,
                    allocations=json_number(r.get("allocations")),
                    frees=json_number(r.get("frees")),
                )
            )
    return bars


def estimate(lk: Leak) -> str:
    """A leak's estimated size: a size in bytes (also for a rate in bytes per second: what grew
    over the run), or a count of what it holds ("3 fds"); "n/a" when unknown."""
    value = finite(lk.estimated_size)
    base = lk.unit.partition("/")[0]
    if value is None:
        return "n/a"
    if base == "bytes":
        return size(value)
    return f"{count(value)} {printable(base, oneline=True)}"


def leak_table(t: TestResult) -> str:
    if not t.leaks:
        return ""
    rows = []
    for lk in t.leaks:
        sup = lk.suppressed
        est = estimate(lk)
        conf = finite(lk.confidence)
        sup_note = (
            f'<div class="supp">suppressed by <code>{esc(lk.suppressed_by, 200)}</code></div>'
            if sup
            else ""
        )
        module = (
            f'<div class="mod">module <code>{esc(lk.module, 100, oneline=True)}</code></div>'
            if lk.module
            else ""
        )
        rows.append(
            f'<tr class="leakrow{" suppressed" if sup else ""}">'
            f'<td class="lid">{esc(lk.id, 12, oneline=True)}</td>'
            f"<td>{badge('lt', lk.type)}</td>"
            f'<td><code class="src">{esc(lk.source, 300, oneline=True)}</code>'
            f"{module}{sup_note}</td>"
            f'<td class="num">{esc(rate(lk.growth_rate, lk.unit))}</td>'
            f'<td class="num">{esc(est)}</td>'
            f"<td>{badge('sev', lk.severity)}</td>"
            f'<td class="num">{"" if conf is None else f"{conf:.2f}"}</td></tr>'
            f'<tr class="leakdetail{" suppressed" if sup else ""}"><td></td>'
            f'<td colspan="6">{_leak_detail(lk)}</td></tr>'
        )
    return scroll(
        '<table class="grid leaks"><thead><tr><th>id</th><th>type</th><th>source</th>'
        '<th class="num">rate</th><th class="num">est. size</th><th>severity</th>'
        f'<th class="num">conf.</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def _leak_detail(lk: Leak) -> str:
    parts = []
    if lk.recommendation:
        parts.append(f'<div class="fix"><b>Fix:</b> {esc(lk.recommendation, 3000)}</div>')
    if lk.retainer_path:
        parts.append(
            f'<div class="held"><b>Held by:</b> <code>{esc(lk.retainer_path, 2000)}</code></div>'
        )
    if lk.evidence:
        parts.append(
            '<ul class="evidence">'
            + "".join(f"<li>{esc(e, 2000)}</li>" for e in lk.evidence[:30])
            + "</ul>"
        )
    bars = native_bars(_bars(lk.details.native or ()))
    if bars:
        parts.append(f'<div class="native"><b>Native attribution</b>{bars}</div>')
    stack = lk.stack_trace or ()
    if stack:
        frames = "\n".join(printable(s) for s in stack)
        parts.append(
            f'<details class="stack"><summary>Stack trace ({len(stack)} frame'
            f"{'s' if len(stack) != 1 else ''})</summary>"
            f"<pre>{esc(frames, 20000)}</pre></details>"
        )
    if lk.fingerprint:
        parts.append(
            f'<div class="fp">fingerprint <code>{esc(lk.fingerprint, 64, oneline=True)}'
            "</code></div>"
        )
    return "".join(parts)


def buffer_leaks(t: TestResult) -> str:
    items = "".join(
        f"<li><b>{esc(lk.id, 12, oneline=True)}</b> "
        f"<code>{esc(lk.source, 300, oneline=True)}</code>: "
        f"{esc(rate(lk.growth_rate, lk.unit))}, "
        f"{esc(estimate(lk))} kept over the run"
        f"{' (suppressed)' if lk.suppressed else ''}</li>"
        for lk in t.leaks
        if lk.type == "buffer_leak"
    )
    if not items:
        return ""
    return (
        f'<h4>Buffer leaks</h4><p class="muted">Buffers (bytes, arrays, memoryviews, '
        f'numpy data) kept alive on every call.</p><ul class="buffers">{items}</ul>'
    )


def native_section(t: TestResult) -> str:
    """Per-test native attribution from the diagnosis, when no leak row already shows it."""
    if any(lk.details.native for lk in t.leaks):
        return ""
    native_leak = any(lk.type == "native_module" or lk.module for lk in t.leaks)
    native_growth = not t.leaks and any(
        f.failing and f.metric in ("malloc", "rss") for f in t.findings
    )
    if not (native_leak or native_growth) or t.diagnosis is None:
        return ""  # the diagnosis' module list is only noise next to a Python-level leak
    modules = [m for m in t.diagnosis.modules if (json_number(m.get("per_iter")) or 0) > 0]
    lines = t.diagnosis.lines.get("malloc", ())
    if not modules and not lines:
        return ""
    out = ["<h4>Native attribution</h4>"]
    bars = native_bars(_bars(modules))
    if bars:
        out.append(bars)
    if lines:
        rows = "".join(
            f"<tr><td><code>{esc(ln.get('source'), 300, oneline=True)}</code></td>"
            f'<td class="num">{esc(rate(json_number(ln.get("per_iter")), "bytes"))}</td>'
            f'<td class="num">{esc(count(json_number(ln.get("allocations"))))}</td>'
            f'<td class="num">{esc(count(json_number(ln.get("frees"))))}</td></tr>'
            for ln in lines[:10]
        )
        out.append(
            scroll(
                '<table class="grid"><thead><tr><th>malloc growth by line</th>'
                '<th class="num">per iteration</th><th class="num">raising</th>'
                f'<th class="num">lowering</th></tr></thead><tbody>{rows}</tbody></table>'
            )
        )
    return "".join(out)


def resources_section(t: TestResult) -> str:
    res = t.diagnosis.resources if t.diagnosis is not None else {}
    groups = []
    for key, count_key, label in (
        ("files", "file_count", "open files"),
        ("sockets", "socket_count", "sockets"),
        ("threads", "thread_count", "threads"),
        ("children", "child_count", "child processes"),
    ):
        items = [x for x in json_list(res.get(key)) if x is not None]
        n_new = json_number(res.get(count_key))
        if not items and not n_new:
            continue
        shown = "".join(f"<li><code>{esc(x, 500, oneline=True)}</code></li>" for x in items[:20])
        more = f"<li>… {len(items) - 20} more</li>" if len(items) > 20 else ""
        n = count(n_new) if n_new is not None else str(len(items))
        groups.append(f'<div class="resgroup"><b>{n} new {label}</b><ul>{shown}{more}</ul></div>')
    if not groups:
        return ""
    return (
        '<h4>Resources left open</h4><p class="muted">New during the traced iterations.'
        f'</p><div class="resources">{"".join(groups)}</div>'
    )


#: Test ids listed per leak group; the others are counted.
GROUP_TESTS_SHOWN = 3


def groups_section(
    groups: Sequence[LeakGroup], tests_by_key: Mapping[str, tuple[int, TestResult]]
) -> str:
    """The "Leak groups" section: one row per cause shared by several tests (its test count,
    type, source, holder, rate, and the first few tests, linked to their sections;
    ``tests_by_key`` gives a test's section index and result by its key)."""
    if not groups:
        return ""
    rows = []
    for g in groups:
        tests = []
        for key in g.tests[:GROUP_TESTS_SHOWN]:
            found = tests_by_key.get(key)
            if found is None:
                tests.append(name_html(key, "", TABLE_NAME_LIMIT, middle=True))
            else:
                i, t = found
                name = name_html(t.nodeid, t.label, TABLE_NAME_LIMIT, middle=True)
                tests.append(f'<a href="#t{i}">{name}</a>')
        more = len(g.tests) - GROUP_TESTS_SHOWN
        if more > 0:
            tests.append(f"… {more} more")
        lo, hi = finite(g.rate_min), finite(g.rate_max)
        if lo is None or hi is None or lo == hi:
            rates = rate(hi if lo is None else lo, g.unit)
        else:
            rates = f"{rate(lo, g.unit)} to {rate(hi, g.unit)}"
        held = f"<code>{esc(g.holder, 500)}</code>" if g.holder else "-"
        where = f"<code>{esc(g.source, 300, oneline=True)}</code>"
        if g.allocated_in:
            where += (
                f'<div class="mod">in <code>{esc(g.allocated_in, 300, oneline=True)}</code></div>'
            )
        rows.append(
            f'<tr><td class="num">{esc(count(g.count))}</td><td>{badge("lt", g.type)}</td>'
            f'<td class="src">{where}</td>'
            f'<td class="held">{held}</td>'
            f'<td class="num">{esc(rates)}</td><td class="gtests">{"<br>".join(tests)}</td></tr>'
        )
    return (
        f'<section id="groups"><h2>Leak groups ({len(groups)})</h2>'
        '<p class="muted">Leaks of several tests with one signature: one cause, fixed once.</p>'
        + scroll(
            '<table class="grid groups"><thead><tr><th class="num">tests</th><th>type</th>'
            '<th>source</th><th>held by</th><th class="num">rate</th><th>tests</th></tr>'
            f"</thead><tbody>{''.join(rows)}</tbody></table>"
        )
        + "</section>"
    )
