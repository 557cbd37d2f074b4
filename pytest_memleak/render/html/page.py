"""The page: its header (summary cards, banner, environment and configuration), the sections
in order (leak groups, tests, baseline comparison, one section per test), the inline
stylesheet and scripts, and the Content-Security-Policy."""

from __future__ import annotations

import dataclasses
import os
import shlex
from collections.abc import Iterable

from ...atomic import write_bytes_atomic
from ...model import RunReport, TestResult
from ...units import printable
from ...vocabulary import severity_rank
from .assets import CSS, JS_ERRORS, JS_MAIN, SCRIPT_SRC
from .charts import BAND_NOTE
from .comparison import comparison_section
from .leaks import groups_section
from .sections import SECTIONS_PER_CHUNK, result_section, results_table
from .text import VERDICT_ORDER, esc, json_object, json_text, scroll

__all__ = ["render", "write"]

_CARDS = (
    ("checked", "checked"),
    ("ok", "ok"),
    ("leak", "leak"),
    ("error", "error"),
    ("skipped", "skipped"),
    ("leaks", "leaks found"),
)


#: Above the tests' sections: what the charts show, and that clean tests' sections open on demand.
_HOW = (
    "One section per test, in the table's order: those that leak or err are open; open any "
    "other to draw its charts. Charts show memory change since the first snapshot, by "
    f"iteration (by sample for a soak or a watch). {BAND_NOTE}"
)


def _counts(report: RunReport) -> dict[str, int]:
    """The numbers on the cards: counted from the tests, or the summary's when the report
    holds no test (a trimmed report)."""
    if not report.tests:
        s = report.summary
        return {
            "checked": s.checked,
            "ok": s.ok,
            "leak": s.leak,
            "error": s.error,
            "skipped": s.skipped,
            "leaks": s.leaks,
        }
    counts = {"checked": len(report.tests), "ok": 0, "leak": 0, "error": 0, "skipped": 0}
    for t in report.tests:
        counts[t.verdict] += 1
    counts["leaks"] = sum(len(t.active_leaks) for t in report.tests)
    return counts


def _kv_table(rows: Iterable[tuple[str, str]], cls: str = "kv") -> str:
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return scroll(f'<table class="{cls}">{body}</table>') if body else ""


def _banner(counts: dict[str, int]) -> str:
    if counts["leak"]:
        return (
            f'<div class="banner bad">{counts["leak"]} of {counts["checked"]} '
            f"checked test{'s' if counts['checked'] != 1 else ''} leak"
            f"{'' if counts['leak'] != 1 else 's'} · {counts['leaks']} leak"
            f"{'s' if counts['leaks'] != 1 else ''} found</div>"
        )
    if counts["error"]:
        return (
            f'<div class="banner warn">No leak found, but {counts["error"]} '
            f"test{'s' if counts['error'] != 1 else ''} could not be measured</div>"
        )
    if counts["checked"]:
        return '<div class="banner good">No leaks: every checked test is stable</div>'
    return '<div class="banner none">No tests were checked</div>'


def _header(report: RunReport, counts: dict[str, int]) -> str:
    env = report.environment
    cards = []
    for key, label in _CARDS:
        hot = " hot" if key in ("leak", "error", "leaks") and counts[key] else ""
        cards.append(
            f'<div class="card c-{key}{hot}"><div class="num">{counts[key]}</div>'
            f'<div class="lab">{label}</div></div>'
        )
    meta = []
    if report.created:
        meta.append(f"created {esc(report.created, 40, oneline=True)}")
    if report.schema:
        meta.append(f"schema {esc(report.schema, 40, oneline=True)}")
    partial = (
        (
            '<div class="banner warn">Partial report: the session was interrupted; '
            "some tests are missing or incomplete.</div>"
        )
        if report.partial
        else ""
    )
    env_line = " · ".join(
        esc(p, 120, oneline=True)
        for p in (
            " ".join(v for v in (env.implementation, env.python) if v),
            env.platform,
            f"pytest {env.pytest}" if env.pytest else "",
            f"pytest-memleak {env.plugin}" if env.plugin else "",
        )
        if p
    )
    return (
        f'<header class="top"><div class="wrap"><h1>pytest-memleak report</h1>'
        f'<div class="meta">{" · ".join(meta)}</div>{_banner(counts)}{partial}'
        f'<div class="cards">{"".join(cards)}</div>'
        f'<div class="env">{env_line}</div>{_env_details(report)}</div></header>'
    )


def _env_details(report: RunReport) -> str:
    """Every environment field, and every setting with where it came from; the settings not
    at their default are named in the summary line."""
    env_rows = []
    for f in dataclasses.fields(report.environment):
        value: object = getattr(report.environment, f.name)
        if isinstance(value, tuple):  # argv
            text = " ".join(shlex.quote(printable(a, oneline=True)) for a in value)
        else:
            text = printable(value)
        env_rows.append((esc(f.name, 60, oneline=True), f"<code>{esc(text, 4000)}</code>"))
    config = report.config
    sources = json_object(config.get("sources"))
    cfg_rows = []
    changed = []
    for key, value in config.items():
        if key == "sources":
            continue
        src = json_text(sources.get(key))
        shown = (
            "none"
            if value is None
            else (", ".join(printable(v) for v in value) if isinstance(value, list) else value)
        )
        cell = f"<code>{esc(shown, 1000)}</code>"
        if src and src != "default":
            cell += f' <span class="src">from {esc(src, 40, oneline=True)}</span>'
            changed.append(f"{esc(key, 60, oneline=True)}={esc(shown, 80, oneline=True)}")
        cfg_rows.append((esc(key, 60, oneline=True), cell))
    summary = "Environment and configuration"
    if changed:
        summary += f" (set: {', '.join(changed)})"
    elif cfg_rows:
        summary += " (all defaults)"
    return (
        f'<details class="envdetails"><summary>{summary}</summary><div class="cols">'
        f"<div><h3>Environment</h3>{_kv_table(env_rows)}</div>"
        f"<div><h3>Configuration</h3>{_kv_table(cfg_rows)}</div></div></details>"
    )


def render(report: RunReport) -> str:
    """The HTML page for a report (with its baseline comparison, when it has one)."""
    counts = _counts(report)
    ordered = sorted(
        enumerate(report.tests),
        key=lambda it: (VERDICT_ORDER[it[1].verdict], -severity_rank(it[1].severity), it[0]),
    )
    parts = [_header(report, counts), "<main>"]
    if report.groups:
        by_key: dict[str, tuple[int, TestResult]] = {}
        for i, t in enumerate(report.tests):
            by_key.setdefault(t.key, (i, t))
        parts.append(groups_section(report.groups, by_key))
    parts.append(
        f'<section id="tests"><h2>Tests ({len(report.tests)})</h2>'
        f"{results_table(ordered)}</section>"
    )
    if report.comparison is not None:
        parts.append(comparison_section(report.comparison))
    if ordered:
        sections = [result_section(i, t) for i, t in ordered]
        parts.append(f'<div id="details"><p class="muted how">{esc(_HOW)}</p>')
        parts += [
            f'<div class="chunk sections">{"".join(sections[k : k + SECTIONS_PER_CHUNK])}</div>'
            for k in range(0, len(sections), SECTIONS_PER_CHUNK)
        ]
        parts.append("</div>")
    parts.append(
        "</main><footer>pytest-memleak · self-contained report: no network, "
        "charts are inline SVG</footer>"
    )
    csp = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
        f"form-action 'none'; script-src {SCRIPT_SRC}"
    )
    title = "pytest-memleak report"
    if counts["leak"]:
        title = f"{counts['leak']} leaking · {title}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>\n{CSS}</style>"
        f"<script>{JS_ERRORS}</script></head>\n"
        f"<body>{''.join(parts)}\n<script>{JS_MAIN}</script></body></html>\n"
    )


def write(path: str | os.PathLike[str], html_text: str) -> None:
    """Write the page atomically: a temporary file beside ``path``, then ``os.replace``."""
    write_bytes_atomic(path, html_text.encode("utf-8", "backslashreplace"))
