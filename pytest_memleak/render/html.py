"""A self-contained HTML report: one file, inline CSS, charts as inline SVG drawn here.

``render(doc)`` turns a report dictionary (schema pytest-memleak/1) into a page that needs no
network and no JavaScript to be read: the charts are SVG generated in Python. A little inline
JavaScript adds a table filter and records, on ``<body>``, that the page loaded
(``data-status``), how many charts it holds (``data-charts``) and any script error
(``data-errors``), for automated checks. A Content-Security-Policy allows only those scripts
(by hash) and forbids every network load.

Every string taken from the report is passed through :func:`esc` (``html.escape`` with
``quote=True`` after making it printable and encodable): test ids, parameters, messages and
paths may hold markup, quotes, control characters or lone surrogates. The script reads nothing
from the report and never uses ``innerHTML``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
import os
import re
import shlex
from typing import Any, Callable, Iterable, Sequence

from ..model import RunReport, to_object
from ..units import format_size
from ..vocabulary import COUNT_METRICS, SEVERITIES, severity_rank

__all__ = ["esc", "render", "write"]

#: Longest test name shown in full; longer ones are cut, the full id goes in a title attribute.
NAME_LIMIT = 200
#: Most points drawn per series; longer series are thinned evenly (first and last kept).
MAX_POINTS = 400

VERDICT_ORDER = {"leak": 0, "error": 1, "ok": 2, "skipped": 3}
SEVERITY_RANK: dict[str, int] = {s: severity_rank(s) for s in SEVERITIES}
#: Memory series in the order the charts show them (derived heap and external included).
CHART_MEMORY_METRICS = ("rss", "heap", "external", "malloc", "py_blocks")
METRIC_ORDER = (*CHART_MEMORY_METRICS, *COUNT_METRICS)
COUNT_UNITS = {"py_blocks": "blocks", "fds": "fds", "threads": "threads", "children": "children"}
COLORS = {"rss": "#0a66d6", "heap": "#1a7f37", "external": "#d9480f"}
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

_PRINTABLE_KEEP = frozenset("\n\t")


# --------------------------------------------------------------------------------------------
# text and numbers


def _printable(value: Any, *, oneline: bool = False) -> str:
    """``value`` as text that is printable and encodable: control characters, bidi overrides,
    lone surrogates and the like become visible escapes (``\\x00``, ``\\u202e``, ``\\udcff``);
    newlines and tabs survive unless ``oneline``."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():
        return text
    if not oneline and text.replace("\n", "").replace("\t", "").isprintable():
        return text
    keep = () if oneline else _PRINTABLE_KEEP
    return "".join(ch if ch.isprintable() or ch in keep else repr(ch)[1:-1] for ch in text)


def _cut(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def esc(value: Any, limit: int | None = None, *, oneline: bool = False) -> str:
    """Escape report text for HTML text and attribute values (quotes included)."""
    if value is None:
        return ""
    return html.escape(_cut(_printable(value, oneline=oneline), limit), quote=True)


def _num(value: Any) -> float | None:
    """A finite number, or None for anything else (bools, strings, NaN, None)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        f = float(value)
    except (OverflowError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _size(value: Any, signed: bool = False) -> str:
    v = _num(value)
    if v is None:
        return "n/a"
    return ("+" if signed and v >= 0 else "") + format_size(v)


def _count(value: Any, signed: bool = False) -> str:
    v = _num(value)
    if v is None:
        return "n/a"
    text = f"{v:+.2f}" if signed else f"{v:.2f}"
    if v.is_integer():
        text = f"{int(v):+d}" if signed else str(int(v))
    return text


def _rate(value: Any, unit: Any) -> str:
    """A growth rate per iteration: bytes formatted as sizes, counts with their unit."""
    v = _num(value)
    if v is None:
        return "n/a"
    unit = _str(unit, "bytes")
    if unit == "bytes":
        return f"{_size(v, signed=True)}/iter"
    return f"{v:+.2f} {unit}/iter"


def _series(snaps: dict[str, Any], name: str) -> list[float | None]:
    return [_num(v) for v in _list(snaps.get(name))]


def _first_last(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    present = [v for v in values if v is not None]
    return (present[0], present[-1]) if present else (None, None)


def _delta(values: Sequence[float | None]) -> float | None:
    first, last = _first_last(values)
    return None if first is None or last is None else last - first


def _badge(kind: str, value: Any, text: str | None = None) -> str:
    word = _str(value, "unknown") or "unknown"
    css = re.sub(r"[^a-z0-9_-]", "", word.lower())[:20] or "unknown"
    label = esc(text if text is not None else word, 40, oneline=True)
    return f'<span class="badge {kind}-{css}">{label}</span>'


# --------------------------------------------------------------------------------------------
# test records


def _tests(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in _list(doc.get("tests")) if isinstance(t, dict)]


def _verdict(t: dict[str, Any]) -> str:
    v = _str(t.get("verdict"), "error")
    return v if v in VERDICT_ORDER else "error"


def _severity(value: Any) -> str:
    s = _str(value, "none")
    return s if s in SEVERITY_RANK else "none"


def _full_name(t: dict[str, Any]) -> str:
    name = _str(t.get("nodeid")) or str(t.get("nodeid", "?"))
    label = t.get("label")
    return name + (f" [{label}]" if label else "")


def _name_html(t: dict[str, Any], limit: int = NAME_LIMIT) -> str:
    """The test's name, cut to ``limit`` characters; the full id is in the title attribute."""
    full = _full_name(t)
    return (
        f'<span class="tname" title="{esc(full, oneline=True)}">'
        f"{esc(full, limit, oneline=True)}</span>"
    )


def _sort_key(item: tuple[int, dict[str, Any]]) -> tuple[int, int, int]:
    i, t = item
    return (VERDICT_ORDER[_verdict(t)], -SEVERITY_RANK[_severity(t.get("severity"))], i)


def _active_leaks(t: dict[str, Any]) -> list[dict[str, Any]]:
    return [lk for lk in _list(t.get("leaks")) if isinstance(lk, dict) and not lk.get("suppressed")]


def _main_finding(t: dict[str, Any]) -> dict[str, Any] | None:
    findings = [f for f in _list(t.get("findings")) if isinstance(f, dict)]
    pool = [f for f in findings if f.get("failing")] or findings
    if not pool:
        return None

    def weight(f: dict[str, Any]) -> float:
        return abs(_num(f.get("bytes_per_iter")) or 0.0) or abs(_num(f.get("total")) or 0.0)

    return max(pool, key=weight)


def _finding_rate(f: dict[str, Any] | None) -> tuple[str, str]:
    if f is None:
        return "-", "stable"
    pattern = _str(f.get("pattern"), "?")
    if _num(f.get("bytes_per_iter")) is not None:
        return _rate(f.get("bytes_per_iter"), "bytes"), pattern
    metric = _str(f.get("metric"), "?")
    return _rate(f.get("rate_per_iter"), COUNT_UNITS.get(metric, metric)), pattern


def _summary(doc: dict[str, Any], tests: list[dict[str, Any]]) -> dict[str, int]:
    counts = {"checked": len(tests), "ok": 0, "leak": 0, "error": 0, "skipped": 0, "leaks": 0}
    for t in tests:
        counts[_verdict(t)] += 1
        counts["leaks"] += len(_active_leaks(t))
    given = _dict(doc.get("summary"))
    for key in counts:
        value = given.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and not tests:
            counts[key] = value  # a summary without tests (trimmed report): trust it
    return counts


# --------------------------------------------------------------------------------------------
# SVG charts


def _nice_step(span: float, target: int = 5) -> float:
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 2.5, 5, 10):
        if raw <= mult * mag:
            return float(mult * mag)
    return float(10 * mag)


def _ticks(lo: float, hi: float, *, integer: bool = False, target: int = 5) -> list[float]:
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = max(abs(hi) * 0.05, 1.0)
        lo, hi = lo - pad, hi + pad
        if integer:
            lo, hi = math.floor(lo), math.ceil(hi)
    step = _nice_step(hi - lo, target)
    if integer:
        step = max(1.0, math.ceil(step))
    start = math.floor(lo / step) * step
    stop = math.ceil(hi / step) * step
    n = round((stop - start) / step)
    return [round(start + k * step, 10) for k in range(min(n, 50) + 1)]


def _byte_unit(magnitude: float) -> tuple[float, str]:
    factor, unit = 1.0, "B"
    for name in ("KiB", "MiB", "GiB", "TiB"):
        if magnitude < 1024 * factor:
            break
        factor *= 1024
        unit = name
    return factor, unit


def _thin(n: int) -> list[int]:
    """Indexes to draw: all of them, or MAX_POINTS spread evenly with both ends kept."""
    if n <= MAX_POINTS:
        return list(range(n))
    return sorted({round(k * (n - 1) / (MAX_POINTS - 1)) for k in range(MAX_POINTS)})


class _Frame:
    """Pixel geometry of one plot: x is the iteration index, y the value."""

    def __init__(
        self,
        width: int,
        height: int,
        n: int,
        yticks: list[float],
        left: int = 70,
        right: int = 14,
        top: int = 30,
        bottom: int = 34,
    ) -> None:
        self.width, self.height = width, height
        self.left, self.right, self.top, self.bottom = left, right, top, bottom
        self.n = max(n, 1)
        self.ylo, self.yhi = yticks[0], yticks[-1]
        self.yticks = yticks

    @property
    def plot_w(self) -> float:
        return self.width - self.left - self.right

    @property
    def plot_h(self) -> float:
        return self.height - self.top - self.bottom

    def x(self, i: float) -> float:
        if self.n <= 1:
            return self.left + self.plot_w / 2
        return self.left + self.plot_w * i / (self.n - 1)

    def y(self, v: float) -> float:
        span = self.yhi - self.ylo or 1.0
        return self.top + self.plot_h * (1 - (v - self.ylo) / span)

    def axes(
        self, ylabel: Callable[[float], str], xlabel: str = "iteration", xtarget: int = 10
    ) -> list[str]:
        out = []
        for tv in self.yticks:
            y = self.y(tv)
            cls = "zero" if tv == 0 else "grid"
            out.append(
                f'<line class="{cls}" x1="{self.left}" x2="{self.width - self.right}" '
                f'y1="{y:.1f}" y2="{y:.1f}"/>'
            )
            out.append(
                f'<text class="ylab" x="{self.left - 6}" y="{y + 3.5:.1f}">{esc(ylabel(tv))}</text>'
            )
        xt = _ticks(0, max(self.n - 1, 1), integer=True, target=min(xtarget, max(self.n - 1, 1)))
        for xv in xt:
            if xv > self.n - 1 and self.n > 1:
                continue
            x = self.x(xv)
            base = self.height - self.bottom
            out.append(
                f'<line class="tick" x1="{x:.1f}" x2="{x:.1f}" y1="{base}" y2="{base + 4}"/>'
            )
            out.append(f'<text class="xlab" x="{x:.1f}" y="{base + 15}">{int(xv)}</text>')
        out.append(
            f'<rect class="frame" x="{self.left}" y="{self.top}" '
            f'width="{self.plot_w:.1f}" height="{self.plot_h:.1f}"/>'
        )
        out.append(
            f'<text class="axtitle" x="{self.left + self.plot_w / 2:.1f}" '
            f'y="{self.height - 4}">{esc(xlabel)}</text>'
        )
        return out


def _path(
    frame: _Frame, values: Sequence[float | None], idx: Sequence[int], step: bool = False
) -> str:
    """An SVG path through the points, broken where a value is missing."""
    parts: list[str] = []
    pen_down = False
    prev_y = 0.0
    for i in idx:
        v = values[i] if i < len(values) else None
        if v is None:
            pen_down = False
            continue
        x, y = frame.x(i), frame.y(v)
        if not pen_down:
            parts.append(f"M{x:.1f},{y:.1f}")
        elif step:
            parts.append(f"H{x:.1f}V{y:.1f}")
        else:
            parts.append(f"L{x:.1f},{y:.1f}")
        pen_down = True
        prev_y = y
    del prev_y
    return "".join(parts)


def _band(
    frame: _Frame, upper: Sequence[float | None], lower: Sequence[float | None], idx: Sequence[int]
) -> list[str]:
    """Closed paths filling the area between two series, one per run of points with both."""
    runs: list[list[int]] = [[]]
    for i in idx:
        ok = i < len(upper) and i < len(lower) and upper[i] is not None and lower[i] is not None
        if ok:
            runs[-1].append(i)
        elif runs[-1]:
            runs.append([])
    paths = []
    for run in runs:
        if len(run) < 2:
            continue
        fwd = [f"{frame.x(i):.1f},{frame.y(upper[i]):.1f}" for i in run]  # type: ignore[arg-type]
        back = [f"{frame.x(i):.1f},{frame.y(lower[i]):.1f}" for i in reversed(run)]  # type: ignore[arg-type]
        paths.append("M" + "L".join(fwd + back) + "Z")
    return paths


def _round_marks(frame: _Frame, rounds: list[Any]) -> list[str]:
    out = []
    ends = [int(r) for r in rounds if isinstance(r, int) and not isinstance(r, bool)]
    for k, end in enumerate(ends[:-1], start=2):
        if 0 < end < frame.n - 1:
            x = frame.x(end)
            out.append(
                f'<line class="round" x1="{x:.1f}" x2="{x:.1f}" y1="{frame.top}" '
                f'y2="{frame.height - frame.bottom}"/>'
            )
            out.append(
                f'<text class="roundlab" x="{x + 3:.1f}" y="{frame.top + 10}">round {k}</text>'
            )
    return out


def _legend(items: list[tuple[str, str, str]], x0: float, y: float) -> list[str]:
    """Legend entries (css class, colour, text) in a row starting at x0."""
    out, x = [], x0
    for cls, color, text in items:
        if cls == "band":
            out.append(
                f'<rect x="{x:.1f}" y="{y - 8}" width="18" height="10" fill="{color}" '
                'fill-opacity="0.22"/>'
            )
        else:
            dash = ' stroke-dasharray="5 3"' if cls == "dashed" else ""
            wide = (
                ' stroke-width="5" stroke-opacity="0.5"'
                if cls == "wide"
                else (' stroke-width="2.5"')
            )
            out.append(
                f'<line x1="{x:.1f}" x2="{x + 18:.1f}" y1="{y - 3}" y2="{y - 3}" '
                f'stroke="{color}"{wide}{dash}/>'
            )
        out.append(f'<text class="leg" x="{x + 23:.1f}" y="{y}">{esc(text)}</text>')
        x += 36 + 7 * len(text)
    return out


def _bytes_label(factor: float, unit: str, signed: bool) -> Callable[[float], str]:
    def label(v: float) -> str:
        if v == 0:
            return "0"
        scaled = round(v / factor, 6)
        return f"{scaled:+g} {unit}" if signed else f"{scaled:g} {unit}"

    return label


def memory_chart(t: dict[str, Any], width: int = 760, height: int = 290) -> str:
    """RSS, heap and external memory by iteration, as change since the first snapshot, with the
    gap between RSS and heap shaded: a widening band is memory growing outside the heap."""
    snaps = _dict(t.get("snapshots"))
    rss, heap, ext = (_series(snaps, m) for m in ("rss", "heap", "external"))
    n = max(len(rss), len(heap), len(ext))
    if not any(v is not None for v in (*rss, *heap, *ext)):
        return ""
    deltas: dict[str, list[float | None]] = {}
    bases: dict[str, float | None] = {}
    for name, values in (("rss", rss), ("heap", heap), ("external", ext)):
        base = _first_last(values)[0]
        bases[name] = base
        deltas[name] = [None if v is None or base is None else v - base for v in values]
    present = [v for s in deltas.values() for v in s if v is not None]
    lo, hi = min(0.0, *present), max(0.0, *present)
    flat = hi - lo < 1.0
    if flat:
        lo, hi = -1024.0, 1024.0
    factor, unit = _byte_unit(max(abs(lo), abs(hi)))
    yt = [v * factor for v in _ticks(lo / factor, hi / factor, integer=unit == "B")]
    f = _Frame(width, height, n, yt)
    idx = _thin(n)
    out = [
        f'<svg class="chart memory" viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" '
        f'aria-label="RSS, heap and external memory change by iteration">'
    ]
    out += f.axes(_bytes_label(factor, unit, signed=True))
    for p in _band(f, deltas["rss"], deltas["heap"], idx):
        out.append(f'<path class="band" d="{p}" fill="{COLORS["external"]}"/>')
    out += _round_marks(f, _list(t.get("rounds")))
    for name, dash in (("external", True), ("heap", False), ("rss", False)):
        d = _path(f, deltas[name], idx)
        if d:
            extra = ' stroke-dasharray="5 3"' if dash else ""
            out.append(f'<path class="line {name}" d="{d}" stroke="{COLORS[name]}"{extra}/>')
    for name in ("heap", "rss"):
        for i in idx[-1:]:
            v = deltas[name][i] if i < len(deltas[name]) else None
            if v is not None:
                out.append(
                    f'<circle cx="{f.x(i):.1f}" cy="{f.y(v):.1f}" r="3" fill="{COLORS[name]}"/>'
                )
    if flat:
        out.append(
            f'<text class="flat" x="{f.left + f.plot_w / 2:.1f}" y="{f.y(0) - 10:.1f}">'
            "no change in memory</text>"
        )
    out += _hover(f, idx, [(m, deltas[m], bases[m]) for m in ("rss", "heap", "external")])
    out += _legend(
        [
            ("line", COLORS["rss"], "RSS"),
            ("wide", COLORS["heap"], "heap"),
            ("dashed", COLORS["external"], "external"),
            ("band", COLORS["external"], "gap RSS - heap"),
        ],
        f.left,
        16,
    )
    out.append("</svg>")
    caption = (
        "Change since the first snapshot. Start: "
        + ", ".join(
            f"{name} {_size(bases[name])}"
            for name in ("rss", "heap", "external")
            if bases[name] is not None
        )
        + ". A widening shaded band means RSS grows apart from "
        "the Python heap (memory outside it: native buffers, arenas, mmaps)."
    )
    return (
        f'<figure class="chartbox">{"".join(out)}<figcaption>{esc(caption)}</figcaption></figure>'
    )


def _hover(
    f: _Frame, idx: list[int], rows: list[tuple[str, list[float | None], float | None]]
) -> list[str]:
    """Invisible columns with a native tooltip (``<title>``) giving the values at each point."""
    out = ['<g class="hits">']
    for k, i in enumerate(idx):
        x0 = f.left if k == 0 else (f.x(idx[k - 1]) + f.x(i)) / 2
        x1 = f.left + f.plot_w if k == len(idx) - 1 else (f.x(i) + f.x(idx[k + 1])) / 2
        lines = [f"iteration {i}"]
        for name, deltas, base in rows:
            d = deltas[i] if i < len(deltas) else None
            if d is not None and base is not None:
                lines.append(f"{name}: {_size(base + d)} ({_size(d, signed=True)})")
        out.append(
            f'<rect x="{x0:.1f}" y="{f.top}" width="{max(x1 - x0, 0.5):.1f}" '
            f'height="{f.plot_h:.1f}"><title>{esc(chr(10).join(lines))}</title></rect>'
        )
    out.append("</g>")
    return out


def count_chart(
    metric: str, values: list[float | None], rounds: list[Any], width: int = 250, height: int = 130
) -> str:
    """A small step chart of a count (fds, threads, children)."""
    present = [v for v in values if v is not None]
    if not present:
        return ""
    yt = _ticks(min(present), max(present), integer=True, target=3)
    f = _Frame(width, height, len(values), yt, left=38, right=8, top=24, bottom=30)
    idx = _thin(len(values))
    first, last = present[0], present[-1]
    title = f"{metric}: {_count(first)} → {_count(last)} ({_count(last - first, signed=True)})"
    out = [
        f'<svg class="chart small" viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="{esc(title)}">'
    ]
    out += f.axes(lambda v: f"{v:g}", xtarget=4)
    out += _round_marks(f, rounds)
    out.append(f'<path class="line count" d="{_path(f, values, idx, step=True)}"/>')
    out.append(f'<text class="smalltitle" x="{f.left}" y="14">{esc(title)}</text>')
    out.append("</svg>")
    return "".join(out)


def sparkline(values: list[float | None], width: int = 110, height: int = 24) -> str:
    present = [v for v in values if v is not None]
    if len(present) < 2:
        return ""
    lo, hi = min(present), max(present)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    f = _Frame(width, height, len(values), [lo, hi], left=1, right=1, top=2, bottom=2)
    d = _path(f, values, _thin(len(values)))
    return (
        f'<svg class="spark" viewBox="0 0 {width} {height}" aria-hidden="true" '
        f'xmlns="http://www.w3.org/2000/svg"><path d="{d}"/></svg>'
    )


def native_bars(rows: list[dict[str, Any]], width: int = 640) -> str:
    """Horizontal bars: native memory per iteration by module, with its category."""
    pairs = [(r, _num(r.get("per_iter"))) for r in rows if isinstance(r, dict)]
    items = [(r, v) for r, v in pairs if v is not None][:12]
    if not items:
        return ""
    top = max(abs(v) for _, v in items) or 1.0
    row_h, label_w, value_w = 24, 170, 230
    bar_w = width - label_w - value_w - 10
    height = row_h * len(items) + 6
    out = [
        f'<svg class="bars" viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="native memory by module">'
    ]
    for k, (r, v) in enumerate(items):
        y = 3 + k * row_h
        w = max(2.0, bar_w * abs(v) / top)
        cat = _str(r.get("category"), "other")
        css = re.sub(r"[^a-z]", "", cat.lower())[:16] or "other"
        tip = (
            f"{_printable(r.get('module', '?'))} ({cat}): {_size(v, signed=True)}/iter, "
            f"{_count(r.get('allocations'))} allocations, {_count(r.get('frees'))} frees"
        )
        out.append(f"<g><title>{esc(tip)}</title>")
        out.append(
            f'<text class="barlab" x="{label_w - 8}" y="{y + 15}">'
            f"{esc(r.get('module', '?'), 24, oneline=True)}</text>"
        )
        out.append(
            f'<rect class="bar cat-{css}" x="{label_w}" y="{y + 3}" width="{w:.1f}" '
            f'height="{row_h - 8}" rx="3"/>'
        )
        out.append(
            f'<text class="barval" x="{label_w + bar_w + 10}" y="{y + 15}">'
            f"{esc(_size(v, signed=True))}/iter · {esc(cat, 20, oneline=True)}</text>"
        )
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


# --------------------------------------------------------------------------------------------
# page parts


def _kv_table(rows: Iterable[tuple[str, str]], cls: str = "kv") -> str:
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="{cls}">{body}</table>' if body else ""


def _header(doc: dict[str, Any], counts: dict[str, int]) -> str:
    env = _dict(doc.get("environment"))
    cards = []
    for key, label in (
        ("checked", "checked"),
        ("ok", "ok"),
        ("leak", "leak"),
        ("error", "error"),
        ("skipped", "skipped"),
        ("leaks", "leaks found"),
    ):
        hot = " hot" if key in ("leak", "error", "leaks") and counts[key] else ""
        cards.append(
            f'<div class="card c-{key}{hot}"><div class="num">{counts[key]}</div>'
            f'<div class="lab">{label}</div></div>'
        )
    if counts["leak"]:
        banner = (
            f'<div class="banner bad">{counts["leak"]} of {counts["checked"]} '
            f"checked test{'s' if counts['checked'] != 1 else ''} leak"
            f"{'' if counts['leak'] != 1 else 's'} · {counts['leaks']} leak"
            f"{'s' if counts['leaks'] != 1 else ''} found</div>"
        )
    elif counts["error"]:
        banner = (
            f'<div class="banner warn">No leak found, but {counts["error"]} '
            f"test{'s' if counts['error'] != 1 else ''} could not be measured</div>"
        )
    elif counts["checked"]:
        banner = '<div class="banner good">No leaks: every checked test is stable</div>'
    else:
        banner = '<div class="banner none">No tests were checked</div>'
    meta = []
    if doc.get("created"):
        meta.append(f"created {esc(doc.get('created'), 40, oneline=True)}")
    if doc.get("schema"):
        meta.append(f"schema {esc(doc.get('schema'), 40, oneline=True)}")
    partial = (
        (
            '<div class="banner warn">Partial report: the session was interrupted; '
            "some tests are missing or incomplete.</div>"
        )
        if doc.get("partial")
        else ""
    )
    env_line = " · ".join(
        esc(p, 120, oneline=True)
        for p in (
            " ".join(_str(env.get(k)) for k in ("implementation", "python") if env.get(k)),
            _str(env.get("platform")),
            f"pytest {_str(env.get('pytest'))}" if env.get("pytest") else "",
            f"pytest-memleak {_str(env.get('plugin'))}" if env.get("plugin") else "",
        )
        if p
    )
    return (
        f'<header class="top"><div class="wrap"><h1>pytest-memleak report</h1>'
        f'<div class="meta">{" · ".join(meta)}</div>{banner}{partial}'
        f'<div class="cards">{"".join(cards)}</div>'
        f'<div class="env">{env_line}</div>{_env_details(doc)}</div></header>'
    )


def _env_details(doc: dict[str, Any]) -> str:
    env = _dict(doc.get("environment"))
    config = _dict(doc.get("config"))
    sources = _dict(config.get("sources"))
    env_rows = []
    for key, value in env.items():
        if key == "argv" and isinstance(value, list):
            text = " ".join(shlex.quote(_printable(a, oneline=True)) for a in value)
        else:
            text = _printable(value) if not isinstance(value, (dict, list)) else repr(value)
        env_rows.append((esc(key, 60, oneline=True), f"<code>{esc(text, 4000)}</code>"))
    cfg_rows = []
    changed = []
    for key, value in config.items():
        if key == "sources":
            continue
        src = _str(sources.get(key), "")
        shown = (
            "none"
            if value is None
            else (", ".join(_printable(v) for v in value) if isinstance(value, list) else value)
        )
        cell = f"<code>{esc(shown, 1000)}</code>"
        if src and src != "default":
            cell += f' <span class="src">from {esc(src, 40, oneline=True)}</span>'
            changed.append(f"{esc(key, 60, oneline=True)}={esc(shown, 80, oneline=True)}")
        cfg_rows.append((esc(key, 60, oneline=True), cell))
    if not env_rows and not cfg_rows:
        return ""
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


def _tests_table(ordered: list[tuple[int, dict[str, Any]]]) -> str:
    if not ordered:
        return '<p class="muted">The report holds no tests.</p>'
    rows = []
    for i, t in ordered:
        snaps = _dict(t.get("snapshots"))
        verdict = _verdict(t)
        f = _main_finding(t)
        rate, pattern = _finding_rate(f)
        metric = _str(f.get("metric"), "rss") if f else "rss"
        spark = sparkline(_series(snaps, metric if metric in snaps else "rss"))
        health = _str(_dict(t.get("trend")).get("health"), "unknown")
        deltas = [
            _size(_delta(_series(snaps, m)), signed=True) for m in ("rss", "heap", "external")
        ]
        v_text = verdict.upper() if verdict == "leak" else verdict
        if t.get("partial") and verdict not in ("error", "skipped"):
            v_text += " (partial)"
        n_leaks = len(_active_leaks(t))
        rows.append(
            f'<tr class="v-{verdict}" data-verdict="{verdict}">'
            f"<td>{_badge('v', verdict, v_text)}</td>"
            f'<td class="name"><a href="#t{i}">{_name_html(t)}</a></td>'
            f"<td>{_badge('sev', _severity(t.get('severity')))}</td>"
            f"<td>{_badge('h', health)}</td>"
            f'<td class="num">{_count(t.get("iterations"))}</td>'
            + "".join(f'<td class="num">{esc(d)}</td>' for d in deltas)
            + f'<td class="num">{esc(rate)}</td><td>{_badge("p", pattern)}</td>'
            f'<td class="num">{n_leaks or ""}</td><td class="sparkcell" '
            f'title="{esc(metric)} by iteration">{spark}</td></tr>'
        )
    head = (
        "<tr><th>verdict</th><th>test</th><th>severity</th><th>health</th>"
        '<th class="num">iter</th><th class="num">RSS Δ</th><th class="num">heap Δ</th>'
        '<th class="num">external Δ</th><th class="num">rate</th><th>pattern</th>'
        '<th class="num">leaks</th><th>trend</th></tr>'
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
    return (
        f'{filt}<table class="tests" id="tests-table"><thead>{head}</thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _growth_table(t: dict[str, Any]) -> str:
    growth = _dict(t.get("growth"))
    if not growth:
        return ""
    sev: dict[str, dict[str, Any]] = {}
    for f in _list(t.get("findings")):
        if isinstance(f, dict) and isinstance(f.get("metric"), str):
            sev[f["metric"]] = f
    screens = _dict(t.get("screens"))
    names = [m for m in METRIC_ORDER if m in growth] + sorted(
        (m for m in growth if m not in METRIC_ORDER), key=str
    )
    rows, stable = [], []
    for m in names:
        g = _dict(growth.get(m))
        if _str(g.get("pattern")) == "stable" and m not in sev:
            stable.append(m)
            continue
        unit = _str(g.get("unit"), "bytes")
        is_bytes = unit == "bytes"
        slope = (
            _rate(g.get("slope_per_iter"), "bytes")
            if is_bytes
            else _rate(g.get("slope_per_iter"), COUNT_UNITS.get(m, unit))
        )
        total = (
            _size(g.get("total_growth"), signed=True)
            if is_bytes
            else _count(g.get("total_growth"), signed=True)
        )
        conf = _num(g.get("confidence"))
        finding = sev.get(m)
        pattern = _str(g.get("pattern"), "?")
        flagged = finding is not None and finding.get("failing")
        scr = ", ".join(_printable(s) for s in _list(screens.get(m)))
        rows.append(
            f'<tr class="{"flag" if flagged else ""}"><td><code>{esc(m, 40, oneline=True)}'
            f"</code></td><td>{_badge('p', pattern)}</td>"
            f'<td class="num">{esc(slope)}</td><td class="num">{esc(total)}</td>'
            f'<td class="num">{"n/a" if conf is None else f"{conf:.2f}"}</td>'
            f"<td>{_badge('sev', _severity(finding.get('severity'))) if finding else ''}</td>"
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
        '<table class="grid growth"><thead><tr><th>metric</th><th>pattern</th>'
        '<th class="num">slope</th><th class="num">total</th><th class="num">confidence'
        "</th><th>severity</th><th>rounds screened</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>{note}"
    )


def _findings(t: dict[str, Any]) -> str:
    items = []
    for f in _list(t.get("findings")):
        if not isinstance(f, dict):
            continue
        mark = "fail" if f.get("failing") else "info"
        items.append(
            f'<li class="{mark}">{_badge("sev", _severity(f.get("severity")))} '
            f"{esc(f.get('reason') or f.get('metric'), 2000)}</li>"
        )
    return f'<ul class="findings">{"".join(items)}</ul>' if items else ""


def _leak_table(t: dict[str, Any]) -> str:
    leaks = [lk for lk in _list(t.get("leaks")) if isinstance(lk, dict)]
    if not leaks:
        return ""
    rows = []
    for lk in leaks:
        sup = bool(lk.get("suppressed"))
        size = _num(lk.get("estimated_size"))
        unit = _str(lk.get("unit"), "bytes")
        est = (
            "n/a"
            if size is None
            else (_size(size) if unit == "bytes" else f"{_count(size)} {unit}")
        )
        conf = _num(lk.get("confidence"))
        sup_note = (
            (
                f'<div class="supp">suppressed by <code>{esc(lk.get("suppressed_by"), 200)}'
                "</code></div>"
            )
            if sup
            else ""
        )
        rows.append(
            f'<tr class="leakrow{" suppressed" if sup else ""}">'
            f'<td class="lid">{esc(lk.get("id"), 12, oneline=True)}</td>'
            f"<td>{_badge('lt', _str(lk.get('type'), 'unknown'))}</td>"
            f'<td><code class="src">{esc(lk.get("source"), 300, oneline=True)}</code>'
            + (
                f'<div class="mod">module <code>{esc(lk.get("module"), 100, oneline=True)}'
                f"</code></div>"
                if lk.get("module")
                else ""
            )
            + f"{sup_note}</td>"
            f'<td class="num">{esc(_rate(lk.get("growth_rate"), unit))}</td>'
            f'<td class="num">{esc(est)}</td>'
            f"<td>{_badge('sev', _severity(lk.get('severity')))}</td>"
            f'<td class="num">{"" if conf is None else f"{conf:.2f}"}</td></tr>'
            f'<tr class="leakdetail{" suppressed" if sup else ""}"><td></td>'
            f'<td colspan="6">{_leak_detail(lk)}</td></tr>'
        )
    return (
        '<table class="grid leaks"><thead><tr><th>id</th><th>type</th><th>source</th>'
        '<th class="num">rate</th><th class="num">est. size</th><th>severity</th>'
        f'<th class="num">conf.</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def _leak_detail(lk: dict[str, Any]) -> str:
    parts = []
    if lk.get("recommendation"):
        parts.append(f'<div class="fix"><b>Fix:</b> {esc(lk.get("recommendation"), 3000)}</div>')
    if lk.get("retainer_path"):
        parts.append(
            f'<div class="held"><b>Held by:</b> <code>'
            f"{esc(lk.get('retainer_path'), 2000)}</code></div>"
        )
    evidence = [e for e in _list(lk.get("evidence")) if e is not None]
    if evidence:
        parts.append(
            '<ul class="evidence">'
            + "".join(f"<li>{esc(e, 2000)}</li>" for e in evidence[:30])
            + "</ul>"
        )
    native = _list(_dict(lk.get("details")).get("native"))
    bars = native_bars(native)
    if bars:
        parts.append(f'<div class="native"><b>Native attribution</b>{bars}</div>')
    stack = [s for s in _list(lk.get("stack_trace")) if s is not None]
    if stack:
        frames = "\n".join(_printable(s) for s in stack)
        parts.append(
            f'<details class="stack"><summary>Stack trace ({len(stack)} frame'
            f"{'s' if len(stack) != 1 else ''})</summary>"
            f"<pre>{esc(frames, 20000)}</pre></details>"
        )
    if lk.get("fingerprint"):
        parts.append(
            f'<div class="fp">fingerprint <code>'
            f"{esc(lk.get('fingerprint'), 64, oneline=True)}</code></div>"
        )
    return "".join(parts)


def _buffer_leaks(t: dict[str, Any]) -> str:
    bufs = [
        lk
        for lk in _list(t.get("leaks"))
        if isinstance(lk, dict) and lk.get("type") == "buffer_leak"
    ]
    if not bufs:
        return ""
    items = "".join(
        f"<li><b>{esc(lk.get('id'), 12, oneline=True)}</b> "
        f"<code>{esc(lk.get('source'), 300, oneline=True)}</code>: "
        f"{esc(_rate(lk.get('growth_rate'), lk.get('unit')))}, "
        f"{esc(_size(lk.get('estimated_size')))} kept over the run"
        f"{' (suppressed)' if lk.get('suppressed') else ''}</li>"
        for lk in bufs
    )
    return (
        f'<h4>Buffer leaks</h4><p class="muted">Buffers (bytes, arrays, memoryviews, '
        f'numpy data) kept alive on every call.</p><ul class="buffers">{items}</ul>'
    )


def _native_section(t: dict[str, Any]) -> str:
    """Per-test native attribution from the diagnosis, when no leak row already shows it."""
    if any(
        _list(_dict(lk.get("details")).get("native"))
        for lk in _list(t.get("leaks"))
        if isinstance(lk, dict)
    ):
        return ""
    leaks = [lk for lk in _list(t.get("leaks")) if isinstance(lk, dict)]
    native_leak = any(lk.get("type") == "native_module" or lk.get("module") for lk in leaks)
    native_growth = not leaks and any(
        isinstance(f, dict) and f.get("failing") and f.get("metric") in ("malloc", "rss")
        for f in _list(t.get("findings"))
    )
    if not (native_leak or native_growth):
        return ""  # the diagnosis' module list is only noise next to a Python-level leak
    diag = _dict(t.get("diagnosis"))
    modules = [
        m
        for m in _list(diag.get("modules"))
        if isinstance(m, dict) and (_num(m.get("per_iter")) or 0) > 0
    ]
    lines = [ln for ln in _list(_dict(diag.get("lines")).get("malloc")) if isinstance(ln, dict)]
    if not modules and not lines:
        return ""
    out = ["<h4>Native attribution</h4>"]
    bars = native_bars(modules)
    if bars:
        out.append(bars)
    if lines:
        rows = "".join(
            f"<tr><td><code>{esc(ln.get('source'), 300, oneline=True)}</code></td>"
            f'<td class="num">{esc(_size(ln.get("per_iter"), signed=True))}/iter</td>'
            f'<td class="num">{esc(_count(ln.get("allocations")))}</td>'
            f'<td class="num">{esc(_count(ln.get("frees")))}</td></tr>'
            for ln in lines[:10]
        )
        out.append(
            '<table class="grid"><thead><tr><th>malloc growth by line</th>'
            '<th class="num">per iteration</th><th class="num">raising</th>'
            f'<th class="num">lowering</th></tr></thead><tbody>{rows}</tbody></table>'
        )
    return "".join(out)


def _resources(t: dict[str, Any]) -> str:
    res = _dict(_dict(t.get("diagnosis")).get("resources"))
    groups = []
    for key, label in (
        ("files", "open files"),
        ("sockets", "sockets"),
        ("threads", "threads"),
        ("children", "child processes"),
    ):
        items = [x for x in _list(res.get(key)) if x is not None]
        count = _num(res.get(key[:-1] + "_count" if key != "children" else "child_count"))
        if not items and not count:
            continue
        shown = "".join(f"<li><code>{esc(x, 500, oneline=True)}</code></li>" for x in items[:20])
        more = f"<li>… {len(items) - 20} more</li>" if len(items) > 20 else ""
        n = _count(count) if count is not None else str(len(items))
        groups.append(f'<div class="resgroup"><b>{n} new {label}</b><ul>{shown}{more}</ul></div>')
    if not groups:
        return ""
    return (
        '<h4>Resources left open</h4><p class="muted">New during the traced iterations.'
        f'</p><div class="resources">{"".join(groups)}</div>'
    )


def _health(t: dict[str, Any]) -> str:
    trend = _dict(t.get("trend"))
    health = _str(trend.get("health"), "unknown")
    ratio = _num(trend.get("external_ratio"))
    bits = [f'<div class="hrow">Health {_badge("h", health)}</div>']
    if ratio is not None:
        bits.append(f"<div>external / heap ratio <b>{ratio:.2f}</b></div>")
    ds, de = _num(trend.get("divergence_start")), _num(trend.get("divergence_end"))
    slope = _num(trend.get("divergence_slope_per_iter"))
    if ds is not None and de is not None:
        bits.append(f"<div>RSS - heap {esc(_size(ds))} → {esc(_size(de))}</div>")
    if slope is not None:
        bits.append(f"<div>divergence {esc(_rate(slope, 'bytes'))}</div>")
    for key, label in (("rss_slope_per_iter", "RSS"), ("heap_slope_per_iter", "heap")):
        v = _num(trend.get(key))
        if v is not None:
            bits.append(f"<div>{label} slope {esc(_rate(v, 'bytes'))}</div>")
    return f'<div class="health">{"".join(bits)}</div>'


def _test_section(i: int, t: dict[str, Any]) -> str:
    verdict = _verdict(t)
    snaps = _dict(t.get("snapshots"))
    rounds = _list(t.get("rounds"))
    facts = []
    iters, warm = _num(t.get("iterations")), _num(t.get("warmup"))
    if iters is not None:
        facts.append(
            f"{_count(iters)} measured iterations"
            + (f" after {_count(warm)} warm-up" if warm else "")
        )
    if rounds:
        facts.append("rounds at " + ", ".join(esc(r, 12, oneline=True) for r in rounds[:20]))
    dur = _num(t.get("duration_s"))
    if dur is not None:
        facts.append(f"{dur:.2f} s")
    if t.get("stop_reason"):
        facts.append(f"stopped: {esc(t.get('stop_reason'), 100, oneline=True)}")
    if t.get("origin") and t.get("origin") != "marker":
        facts.append(f"origin {esc(t.get('origin'), 30, oneline=True)}")
    if t.get("partial"):
        facts.append('<b class="warn">partial</b>')
    body = [f'<div class="facts">{" · ".join(facts)}</div>']
    if t.get("error"):
        where = t.get("error_iteration")
        at = f" (iteration {esc(where, 12)})" if where is not None else ""
        body.append(
            f'<div class="error"><b>Error{at}:</b><pre>{esc(t.get("error"), 20000)}</pre></div>'
        )
    chart = memory_chart(t)
    smalls = []
    for m in COUNT_METRICS:
        values = _series(snaps, m)
        present = [v for v in values if v is not None]
        if present and min(present) != max(present):
            smalls.append(count_chart(m, values, rounds))
    if chart:
        body.append(
            f'<div class="chartrow">{chart}<div class="side">{_health(t)}'
            f"{''.join(smalls)}</div></div>"
        )
    elif verdict != "skipped":
        body.append('<p class="muted">No measurements were recorded.</p>')
    notes = _dict(t.get("probe_notes"))
    if notes:
        body.append(
            '<ul class="notes">'
            + "".join(
                f"<li><code>{esc(k, 40, oneline=True)}</code>: {esc(v, 500)}</li>"
                for k, v in notes.items()
            )
            + "</ul>"
        )
    findings = _findings(t)
    if findings:
        body.append(f"<h4>Findings</h4>{findings}")
    leaks = _leak_table(t)
    if leaks:
        n = len([x for x in _list(t.get("leaks")) if isinstance(x, dict)])
        body.append(f"<h4>Leaks ({n})</h4>{leaks}")
    body.append(_buffer_leaks(t))
    body.append(_native_section(t))
    body.append(_resources(t))
    growth = _growth_table(t)
    if growth:
        body.append(f"<h4>Growth pattern by metric</h4>{growth}")
    diag_notes = [n for n in _list(_dict(t.get("diagnosis")).get("notes")) if n is not None]
    if t.get("message"):
        body.append(
            f'<details class="msg"><summary>Full message</summary>'
            f"<pre>{esc(t.get('message'), 50000)}</pre></details>"
        )
    if diag_notes:
        body.append(
            '<div class="muted small">'
            + " · ".join(esc(n, 300) for n in diag_notes[:10])
            + "</div>"
        )
    open_attr = " open" if verdict in ("leak", "error") else ""
    sev = _severity(t.get("severity"))
    summary = (
        f"<summary>{_badge('v', verdict, verdict.upper() if verdict == 'leak' else None)}"
        f" {_name_html(t)}" + (f" {_badge('sev', sev)}" if sev != "none" else "") + "</summary>"
    )
    return (
        f'<details class="test v-{verdict}" id="t{i}"{open_attr}>{summary}'
        f'<div class="tbody">{"".join(body)}</div></details>'
    )


def _cmp_delta(r: dict[str, Any]) -> str:
    delta, pct = _num(r.get("delta")), _num(r.get("delta_pct"))
    if delta is None:
        if pct is None:
            return ""
        return f"{pct:+.0f}%"
    text = f"{_size(delta, signed=True)}/iter"
    if pct is None:
        return text + " (from 0)"
    return text + (f" ({pct:+.0f}%)" if delta else "")


def _cmp_verdicts(r: dict[str, Any]) -> str:
    def show(v: Any) -> str:
        return "-" if v is None else ("LEAK" if v == "leak" else _printable(v, oneline=True))

    old, new = r.get("old_verdict"), r.get("new_verdict")
    if old is not None and new is not None and old != new:
        return f"{show(old)} → {show(new)}"
    return show(new if new is not None else old) if (old, new) != (None, None) else ""


def _cmp_side(side: Any) -> str:
    side = _dict(side)
    name, created = side.get("name"), side.get("created")
    if not name and not created:
        return ""
    text = f"<code>{esc(name or '?', 500, oneline=True)}</code>"
    return text + (f" (created {esc(created, 40, oneline=True)})" if created else "")


def _comparison(comparison: dict[str, Any]) -> str:
    """The "Baseline comparison" section: the input is ``Comparison.to_dict()``."""
    rows = [r for r in _list(comparison.get("rows")) if isinstance(r, dict)]
    order = {s: k for k, s in enumerate(STATUS_ORDER)}
    rows.sort(key=lambda r: order.get(_str(r.get("status")), len(order)))
    counts: dict[str, int] = {}
    for r in rows:
        s = _str(r.get("status"), "unknown")
        counts[s] = counts.get(s, 0) + 1
    chips = " ".join(
        f"{_badge('cmp', s)} {n}"
        for s, n in sorted(counts.items(), key=lambda kv: order.get(kv[0], len(order)))
    )
    head = []
    old_side, new_side = _cmp_side(comparison.get("old")), _cmp_side(comparison.get("new"))
    base = comparison.get("baseline")
    if old_side:
        head.append(f"Baseline {old_side}")
    elif isinstance(base, str) and base:
        head.append(f"Baseline <code>{esc(base, 500, oneline=True)}</code>")
    if new_side:
        head.append(f"current {new_side}")
    rule = comparison.get("rule")
    if isinstance(rule, str) and rule:
        failing = sum(1 for r in rows if _list(r.get("failures")))
        verdict = (
            f'<b class="cmpfail">FAILED ({failing} test{"s" if failing != 1 else ""})</b>'
            if comparison.get("failed")
            else '<b class="cmppass">passed</b>'
        )
        head.append(f"rule <code>{esc(rule, 300, oneline=True)}</code>: {verdict}")
    body = []
    for r in rows:
        status = _str(r.get("status"), "unknown")
        name = {"nodeid": r.get("nodeid"), "label": r.get("label")}
        old_name = r.get("old_nodeid")
        renamed = (
            f'<div class="mod">was <code>{esc(old_name, NAME_LIMIT, oneline=True)}</code></div>'
            if old_name
            else ""
        )
        unit = _str(r.get("unit"), "bytes")
        rates = []
        for key in ("old_rate", "new_rate"):
            v = _num(r.get(key))
            if v is None:
                rates.append("-")
            elif unit == "bytes":
                rates.append(f"{_size(v)}/iter")
            else:
                rates.append(f"{v:.2f} {_printable(unit, oneline=True)}/iter")
        body.append(
            f'<tr class="cmp-{esc(status, 20, oneline=True)}"><td>{_badge("cmp", status)}</td>'
            f'<td class="name">{_name_html(name)}{renamed}</td>'
            f'<td class="num">{esc(rates[0], 60)}</td><td class="num">{esc(rates[1], 60)}</td>'
            f'<td class="num">{esc(_cmp_delta(r))}</td>'
            f"<td>{esc(_cmp_verdicts(r), 60)}</td>"
            f"<td>{esc(r.get('reason'), 1000)}</td></tr>"
        )
    table = (
        (
            '<table class="grid cmp"><thead><tr><th>status</th><th>test</th>'
            '<th class="num">baseline rate</th><th class="num">new rate</th>'
            '<th class="num">Δ rate</th><th>verdict</th><th>reason</th></tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>"
        )
        if body
        else '<p class="muted">No tests to compare.</p>'
    )
    head_html = f'<p class="cmphead">{" · ".join(head)}</p>' if head else ""
    return (
        f'<section id="comparison"><h2>Baseline comparison</h2>{head_html}'
        f'<div class="chips">{chips}</div>{table}</section>'
    )


# --------------------------------------------------------------------------------------------
# assembly

CSS = """
:root{--fg:#1f2328;--muted:#656d76;--bg:#f6f8fa;--card:#fff;--line:#d0d7de;--soft:#eaeef2;
--red:#cf222e;--red-bg:#ffebe9;--green:#1a7f37;--green-bg:#dafbe1;--amber:#9a6700;
--amber-bg:#fff8c5;--orange:#bc4c00;--orange-bg:#fff1e5;--grey-bg:#eaeef2;--blue:#0a66d6}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:var(--bg)}
code,pre{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:.3em 0;background:var(--soft);
padding:8px 10px;border-radius:6px}
.wrap,main{max-width:1320px;margin:0 auto;padding:0 20px}
header.top{background:#24292f;color:#fff;padding:18px 0 14px;margin-bottom:18px}
header h1{margin:0;font-size:22px;font-weight:600}
header .meta,header .env{color:#c9d1d9;font-size:12.5px}
header .env{margin-top:10px}
.banner{margin:12px 0 4px;padding:9px 14px;border-radius:6px;font-weight:600;font-size:15px}
.banner.bad{background:var(--red);color:#fff}.banner.good{background:var(--green);color:#fff}
.banner.warn{background:#d4a72c;color:#1f2328}.banner.none{background:#57606a;color:#fff}
.cards{display:flex;gap:10px;flex-wrap:wrap;margin-top:10px}
.card{background:#32383f;border-radius:8px;padding:8px 16px;min-width:92px;text-align:center}
.card .num{font-size:24px;font-weight:700}.card .lab{font-size:12px;color:#c9d1d9}
.card.c-ok .num{color:#4ac26b}.card.c-skipped .num{color:#adbac7}
.card.hot.c-leak,.card.hot.c-leaks{background:var(--red)}.card.hot.c-leak .lab,
.card.hot.c-leaks .lab{color:#ffe}.card.hot.c-error{background:#d4a72c;color:#1f2328}
.card.hot.c-error .lab{color:#1f2328}
.envdetails{margin-top:8px;font-size:13px}.envdetails summary{cursor:pointer;color:#c9d1d9}
.envdetails .cols{display:grid;grid-template-columns:1fr 1fr;gap:16px;background:#fff;
color:var(--fg);border-radius:6px;padding:10px 14px;margin-top:6px}
.envdetails h3{margin:.2em 0 .4em;font-size:14px}
table.kv th{text-align:left;padding:2px 12px 2px 0;color:var(--muted);font-weight:500;
vertical-align:top;white-space:nowrap}table.kv td{overflow-wrap:anywhere}
.src{color:var(--muted);font-size:12px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;
padding:12px 16px 16px;margin-bottom:18px}
h2{font-size:18px;margin:.2em 0 .6em}h4{margin:1.1em 0 .4em;font-size:14px}
table{border-collapse:collapse}
table.tests,table.grid{width:100%;font-size:13px}
table.tests th,table.grid th{text-align:left;font-weight:600;color:var(--muted);
border-bottom:2px solid var(--line);padding:6px 8px;white-space:nowrap}
table.tests td,table.grid td{border-bottom:1px solid var(--soft);padding:5px 8px;
vertical-align:top}
table.tests td{vertical-align:middle}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.tests tr.v-leak{background:#fff5f5}table.tests tr.v-error{background:#fffbe6}
table.tests tr.v-skipped td{color:var(--muted)}
td.name{max-width:520px;overflow-wrap:anywhere}td.name a{color:var(--fg);text-decoration:none}
td.name a:hover{text-decoration:underline}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:11.5px;font-weight:600;
background:var(--grey-bg);color:#424a53;white-space:nowrap;vertical-align:1px}
.badge.v-leak{background:var(--red);color:#fff}.badge.v-ok{background:var(--green-bg);
color:var(--green)}.badge.v-error{background:#d4a72c;color:#1f2328}
.badge.v-skipped{background:var(--grey-bg);color:var(--muted)}
.sev-critical{background:#82071e;color:#fff}.sev-high{background:var(--red-bg);color:var(--red)}
.sev-medium{background:var(--orange-bg);color:var(--orange)}
.sev-low{background:var(--amber-bg);color:var(--amber)}.sev-none{background:none;
color:var(--muted)}
.h-healthy{background:var(--green-bg);color:var(--green)}.h-warning{background:var(--amber-bg);
color:var(--amber)}.h-critical{background:var(--red-bg);color:var(--red)}
.p-stable{background:none;color:var(--muted)}.p-linear,.p-exponential,.p-leak{
background:var(--red-bg);color:var(--red)}.p-step{background:var(--orange-bg);
color:var(--orange)}.p-plateau,.p-spike{background:var(--amber-bg);color:var(--amber)}
.lt-buffer_leak{background:#fbefff;color:#8250df}.lt-native_module{background:#ddf4ff;
color:#0969da}.lt-file_handle,.lt-socket,.lt-thread,.lt-subprocess{background:var(--orange-bg);
color:var(--orange)}
.cmp-regressed{background:var(--red-bg);color:var(--red)}.cmp-new{background:#fbefff;
color:#8250df}.cmp-improved{background:var(--green-bg);color:var(--green)}
.cmp-removed,.cmp-same,.cmp-skipped{color:var(--muted)}.cmp-worse{background:var(--orange-bg);
color:var(--orange)}.cmp-fixed{background:var(--green-bg);color:var(--green)}
.cmp-error{background:#d4a72c;color:#1f2328}.cmphead{color:var(--muted)}
.cmpfail{color:var(--red)}.cmppass{color:var(--green)}.cmp-renamed{background:#ddf4ff;color:#0969da}
tr[class^="cmp-"]{background:none;color:inherit}tr.cmp-regressed{background:#fff5f5}
.chips{margin:.2em 0 .6em}
svg.spark{width:110px;height:24px;display:block}svg.spark path{fill:none;stroke:#57606a;
stroke-width:1.5}tr.v-leak svg.spark path{stroke:var(--red)}
.filter{display:flex;gap:14px;align-items:center;margin-bottom:8px;font-size:13px}
.filter input[type=search]{padding:4px 8px;border:1px solid var(--line);border-radius:6px;
width:260px}
details.test{background:var(--card);border:1px solid var(--line);border-radius:8px;
margin-bottom:14px;border-left:6px solid var(--line)}
details.test.v-leak{border-left-color:var(--red)}details.test.v-ok{border-left-color:#4ac26b}
details.test.v-error{border-left-color:#d4a72c}
details.test>summary{cursor:pointer;padding:10px 14px;font-size:15px;font-weight:600;
overflow-wrap:anywhere}
details.test .tbody{padding:0 16px 14px}
.tname{overflow-wrap:anywhere}
.facts{color:var(--muted);font-size:13px;margin-bottom:8px}.warn{color:var(--orange)}
.error pre{background:#fff8c5}
.chartrow{display:flex;gap:16px;flex-wrap:wrap;align-items:flex-start}
figure.chartbox{margin:0;flex:1 1 620px;max-width:800px}
figcaption{color:var(--muted);font-size:12px;margin-top:2px}
svg.chart{display:block;width:100%;height:auto;background:#fff}
svg.chart.small{width:250px;max-width:100%;margin-top:8px}
svg text{font:11px system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;fill:#57606a}
svg .ylab{text-anchor:end}svg .xlab,svg .axtitle{text-anchor:middle}
svg .leg{fill:#1f2328;font-size:12px}
svg .flat{text-anchor:middle;font-size:13px;paint-order:stroke;stroke:#fff;stroke-width:4px}
svg .smalltitle{fill:#1f2328;font-weight:600}
svg .grid{stroke:#eaeef2}svg .zero{stroke:#8c959f;stroke-width:1}svg .tick{stroke:#8c959f}
svg .frame{fill:none;stroke:#d0d7de}
svg .line{fill:none;stroke-width:2.2;stroke-linejoin:round}
svg .line.count{stroke:#8250df}svg .line.heap{stroke-width:5;stroke-opacity:.5}
svg .band{fill-opacity:.22;stroke:none}
svg .round{stroke:#8c959f;stroke-dasharray:2 3}svg .roundlab{font-size:10px}
svg .hits rect{fill:transparent}svg .hits rect:hover{fill:rgba(9,105,218,.07)}
svg .barlab{text-anchor:end;fill:#1f2328;font-family:ui-monospace,Menlo,monospace}
svg .bar{fill:#0969da}svg .bar.cat-numeric{fill:#8250df}svg .bar.cat-compression{fill:#bc4c00}
svg .bar.cat-xml{fill:#1a7f37}svg .bar.cat-ffi{fill:#cf222e}svg .bar.cat-crypto{fill:#9a6700}
svg .bar.cat-database{fill:#116329}svg .bar.cat-network{fill:#0550ae}
svg .bar.cat-other{fill:#8c959f}
svg.bars{width:100%;max-width:640px;height:auto;display:block;margin:4px 0}
.side{flex:0 0 260px}
.health{border:1px solid var(--line);border-radius:8px;padding:8px 12px;font-size:13px;
line-height:1.6}.health .hrow{font-weight:600}.health .badge{font-size:12px}
.findings{margin:.2em 0;padding-left:0;list-style:none}.findings li{margin:3px 0}
.findings li.info{color:var(--muted)}
table.leaks tr.leakrow td{border-bottom:none;padding-top:8px}
table.leaks tr.leakrow{background:#fafbfc}
table.leaks tr.suppressed{opacity:.55}
.lid{font-weight:700}code.src{overflow-wrap:anywhere}
.mod,.supp,.fp{font-size:12px;color:var(--muted)}
.leakdetail td{font-size:13px;padding-bottom:12px}
.fix{margin:2px 0}.held{margin:2px 0;overflow-wrap:anywhere}
.evidence{margin:4px 0;padding-left:18px;color:#424a53}
.chip{display:inline-block;background:var(--soft);border-radius:10px;padding:0 8px;
margin:1px 2px;font-size:12px}
details.stack summary,details.growthbox summary,details.msg summary{cursor:pointer;
color:var(--blue);font-size:13px;margin:4px 0}
details.growthbox,details.msg{margin-top:12px}
.resources{display:flex;flex-wrap:wrap;gap:18px}.resgroup ul{margin:.2em 0;padding-left:18px}
.muted{color:var(--muted)}.small{font-size:12px;margin-top:8px}
.notes{color:var(--orange);font-size:13px}
tr.flag td{background:#fff5f5}
footer{color:var(--muted);font-size:12px;text-align:center;padding:10px 0 30px}
"""

#: Runs first, in <head>: records script errors on <body> (or keeps them until it exists).
JS_ERRORS = """window.__memleakErrors=[];
window.onerror=function(msg,src,line,col){var t=String(msg)+" (line "+line+":"+col+")";
var b=document.body;if(b){b.dataset.errors=(b.dataset.errors?b.dataset.errors+"\\n":"")+t;}
else{window.__memleakErrors.push(t);}return false;};"""

#: Runs last: the table filter, open a test's section when its anchor is followed, and the
#: load markers for automated checks. Reads only the DOM; writes only properties and dataset.
JS_MAIN = """(function(){var b=document.body;
if(window.__memleakErrors.length){b.dataset.errors=window.__memleakErrors.join("\\n");}
var bar=document.querySelector(".filter");var q=document.getElementById("q");
function apply(){var text=q?q.value.toLowerCase():"";var on={};
document.querySelectorAll(".filter input[data-v]").forEach(function(c){on[c.dataset.v]=c.checked;});
document.querySelectorAll("#tests-table tbody tr").forEach(function(r){
var name=(r.querySelector(".tname")||r).getAttribute("title")||"";
r.hidden=!(on[r.dataset.verdict]!==false&&name.toLowerCase().indexOf(text)>=0);});}
if(bar){bar.hidden=false;bar.addEventListener("input",apply);bar.addEventListener("change",apply);}
function openHash(){var id=location.hash.slice(1);if(!id)return;
var el=document.getElementById(id);if(el&&el.tagName==="DETAILS"){el.open=true;}}
window.addEventListener("hashchange",openHash);openHash();
b.dataset.charts=String(document.querySelectorAll("svg.chart").length);
b.dataset.status="ok";})();"""


def _csp_hash(script: str) -> str:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def render(report: RunReport) -> str:
    """The HTML page for a report (with its baseline comparison, when it has one)."""
    doc = to_object(report)
    comparison = doc.get("comparison")
    tests = _tests(doc)
    counts = _summary(doc, tests)
    ordered = sorted(enumerate(tests), key=_sort_key)
    parts = [
        _header(doc, counts),
        "<main>",
        f'<section id="tests"><h2>Tests ({len(tests)})</h2>{_tests_table(ordered)}</section>',
    ]
    if comparison is not None:
        parts.append(_comparison(_dict(comparison)))
    if ordered:
        parts.append('<div id="details">')
        parts += [_test_section(i, t) for i, t in ordered]
        parts.append("</div>")
    parts.append(
        "</main><footer>pytest-memleak · self-contained report: no network, "
        "charts are inline SVG</footer>"
    )
    csp = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
        f"form-action 'none'; script-src {_csp_hash(JS_ERRORS)} {_csp_hash(JS_MAIN)}"
    )
    title = "pytest-memleak report"
    if counts["leak"]:
        title = f"{counts['leak']} leaking · {title}"
    page = (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style>"
        f"<script>{JS_ERRORS}</script></head>\n"
        f"<body>{''.join(parts)}\n<script>{JS_MAIN}</script></body></html>\n"
    )
    return page


def write(path: str | os.PathLike[str], html_text: str) -> None:
    """Write the page atomically: a temporary file beside ``path``, then ``os.replace``."""
    from .json_report import write_bytes_atomic

    write_bytes_atomic(path, html_text.encode("utf-8", "backslashreplace"))
