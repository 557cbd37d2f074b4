"""The SVG chart engine: pure functions from numbers to inline SVG markup.

A series is a sequence of ``float | None`` indexed by iteration (or sample); ``None`` is a
missing point, where a line breaks. Long series are thinned to :data:`MAX_POINTS` points. The
only text drawn is made here (axis labels, legends) or passed through :func:`~.text.esc`.
"""

from __future__ import annotations

import math
import re
from typing import Callable, NamedTuple, Optional, Sequence

from ...units import printable
from .text import count, esc, rate, size

__all__ = [
    "BAND_NOTE",
    "MAX_POINTS",
    "Bar",
    "count_chart",
    "memory_chart",
    "native_bars",
    "sparkline",
    "ticks",
]

#: Most points drawn per series; longer series are thinned evenly (first and last kept).
MAX_POINTS = 400
#: Most hover columns (a tooltip with the values) per chart: about one per 5 px.
MAX_HOVER = 120
#: Most points of a sparkline (110 px wide).
MAX_SPARK = 55

COLORS = {"rss": "#0a66d6", "heap": "#1a7f37", "external": "#d9480f"}

#: The memory chart's legend, in HTML above the chart (it wraps on a narrow screen).
LEGEND = (
    '<div class="legend"><span class="k rss">RSS</span><span class="k heap">heap</span>'
    '<span class="k external">external</span><span class="k gap">gap RSS - heap</span></div>'
)
#: How to read the shaded band of a memory chart.
BAND_NOTE = (
    "A widening shaded band means RSS grows apart from the Python heap (memory outside it: "
    "native buffers, arenas, mmaps)."
)

Series = Sequence[Optional[float]]


def _n(value: float) -> str:
    """A coordinate to a tenth of a pixel, without a trailing ".0" (the page holds thousands)."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _nice_step(span: float, target: int = 5) -> float:
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 2.5, 5, 10):
        if raw <= mult * mag:
            return float(mult * mag)
    return float(10 * mag)


def ticks(lo: float, hi: float, *, integer: bool = False, target: int = 5) -> list[float]:
    """Round axis values covering ``lo`` to ``hi``, about ``target`` steps apart."""
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


def _thin(n: int, most: int = MAX_POINTS) -> list[int]:
    """Indexes to draw: all of them, or ``most`` spread evenly with both ends kept."""
    if n <= most:
        return list(range(n))
    return sorted({round(k * (n - 1) / (most - 1)) for k in range(most)})


def _at(values: Series, i: int) -> float | None:
    return values[i] if i < len(values) else None


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
        """Grid lines (one path), the zero line, tick marks (one path) and the labels."""
        right = self.width - self.right
        grid, zero, ylabs = [], "", []
        for tv in self.yticks:
            y = self.y(tv)
            line = f"M{self.left} {_n(y)}H{right}"
            if tv == 0:
                zero = line
            else:
                grid.append(line)
            ylabs.append(f'<text x="{self.left - 6}" y="{_n(y + 3.5)}">{esc(ylabel(tv))}</text>')
        out = [f'<path class="grid" d="{"".join(grid)}"/>'] if grid else []
        if zero:
            out.append(f'<path class="zero" d="{zero}"/>')
        out.append(f'<g class="ylab">{"".join(ylabs)}</g>')
        xt = ticks(0, max(self.n - 1, 1), integer=True, target=min(xtarget, max(self.n - 1, 1)))
        base = self.height - self.bottom
        marks, xlabs = [], []
        for xv in xt:
            if xv > self.n - 1 and self.n > 1:
                continue
            x = self.x(xv)
            marks.append(f"M{_n(x)} {base}v4")
            xlabs.append(f'<text x="{_n(x)}" y="{base + 15}">{int(xv)}</text>')
        out.append(f'<path class="tick" d="{"".join(marks)}"/>')
        out.append(f'<g class="xlab">{"".join(xlabs)}</g>')
        out.append(
            f'<rect class="frame" x="{self.left}" y="{self.top}" '
            f'width="{_n(self.plot_w)}" height="{_n(self.plot_h)}"/>'
        )
        out.append(
            f'<text class="axtitle" x="{_n(self.left + self.plot_w / 2)}" '
            f'y="{self.height - 4}">{esc(xlabel)}</text>'
        )
        return out


def _path(frame: _Frame, values: Series, idx: Sequence[int], step: bool = False) -> str:
    """An SVG path through the points, broken where a value is missing."""
    parts: list[str] = []
    pen_down = False
    for i in idx:
        v = _at(values, i)
        if v is None:
            pen_down = False
            continue
        x, y = frame.x(i), frame.y(v)
        if not pen_down:
            parts.append(f"M{_n(x)},{_n(y)}")
        elif step:
            parts.append(f"H{_n(x)}V{_n(y)}")
        else:
            parts.append(f"L{_n(x)},{_n(y)}")
        pen_down = True
    return "".join(parts)


def _band(frame: _Frame, upper: Series, lower: Series, idx: Sequence[int]) -> list[str]:
    """Closed paths filling the area between two series, one per run of points with both."""
    runs: list[list[tuple[int, float, float]]] = [[]]
    for i in idx:
        hi, lo = _at(upper, i), _at(lower, i)
        if hi is not None and lo is not None:
            runs[-1].append((i, hi, lo))
        elif runs[-1]:
            runs.append([])
    paths = []
    for run in runs:
        if len(run) < 2:
            continue
        fwd = [f"{_n(frame.x(i))},{_n(frame.y(hi))}" for i, hi, _ in run]
        back = [f"{_n(frame.x(i))},{_n(frame.y(lo))}" for i, _, lo in reversed(run)]
        paths.append("M" + "L".join(fwd + back) + "Z")
    return paths


def _round_marks(frame: _Frame, rounds: Sequence[int]) -> list[str]:
    """A dashed line where each round after the first starts."""
    out = []
    for k, end in enumerate(rounds[:-1], start=2):
        if 0 < end < frame.n - 1:
            x = frame.x(end)
            out.append(
                f'<line class="round" x1="{_n(x)}" x2="{_n(x)}" y1="{frame.top}" '
                f'y2="{frame.height - frame.bottom}"/>'
            )
            out.append(
                f'<text class="roundlab" x="{_n(x + 3)}" y="{frame.top + 10}">round {k}</text>'
            )
    return out


def _bytes_label(factor: float, unit: str, signed: bool) -> Callable[[float], str]:
    def label(v: float) -> str:
        if v == 0:
            return "0"
        scaled = round(v / factor, 6)
        return f"{scaled:+g} {unit}" if signed else f"{scaled:g} {unit}"

    return label


def _first(values: Series) -> float | None:
    return next((v for v in values if v is not None), None)


def memory_chart(
    rss: Series,
    heap: Series,
    external: Series,
    rounds: Sequence[int] = (),
    width: int = 760,
    height: int = 272,
    xlabel: str = "iteration",
    explain: bool = True,
) -> str:
    """RSS, heap and external memory by iteration (``xlabel``: by sample for a soak or a
    watch), as change since the first snapshot, with the gap between RSS and heap shaded: a
    widening band is memory growing outside the heap. ``rounds`` are the iteration indexes
    where the measured rounds end. The legend is HTML above the chart; the caption gives the
    starting values, and with ``explain`` how to read the band. "" when no value."""
    series = {"rss": rss, "heap": heap, "external": external}
    n = max(len(rss), len(heap), len(external))
    if not any(v is not None for v in (*rss, *heap, *external)):
        return ""
    deltas: dict[str, list[float | None]] = {}
    bases: dict[str, float | None] = {}
    for name, values in series.items():
        base = _first(values)
        bases[name] = base
        deltas[name] = [None if v is None or base is None else v - base for v in values]
    present = [v for s in deltas.values() for v in s if v is not None]
    lo, hi = min(0.0, *present), max(0.0, *present)
    flat = hi - lo < 1.0
    if flat:
        lo, hi = -1024.0, 1024.0
    factor, unit = _byte_unit(max(abs(lo), abs(hi)))
    yt = [v * factor for v in ticks(lo / factor, hi / factor, integer=unit == "B")]
    f = _Frame(width, height, n, yt, top=12)
    idx = _thin(n)
    out = [
        f'<svg class="chart memory" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="RSS, heap and external memory change by {esc(xlabel)}">'
    ]
    out += f.axes(_bytes_label(factor, unit, signed=True), xlabel)
    for p in _band(f, deltas["rss"], deltas["heap"], idx):
        out.append(f'<path class="band" d="{p}" fill="{COLORS["external"]}"/>')
    out += _round_marks(f, rounds)
    for name, dash in (("external", True), ("heap", False), ("rss", False)):
        d = _path(f, deltas[name], idx)
        if d:
            extra = ' stroke-dasharray="5 3"' if dash else ""
            out.append(f'<path class="line {name}" d="{d}" stroke="{COLORS[name]}"{extra}/>')
    for name in ("heap", "rss"):
        for i in idx[-1:]:
            v = _at(deltas[name], i)
            if v is not None:
                out.append(
                    f'<circle cx="{_n(f.x(i))}" cy="{_n(f.y(v))}" r="3" fill="{COLORS[name]}"/>'
                )
    if flat:
        out.append(
            f'<text class="flat" x="{_n(f.left + f.plot_w / 2)}" y="{_n(f.y(0) - 10)}">'
            "no change in memory</text>"
        )
    rows: list[tuple[str, Series, float | None]] = [
        (m, deltas[m], bases[m]) for m in ("rss", "heap", "external")
    ]
    out += _hover(f, _thin(n, MAX_HOVER), rows, xlabel)
    out.append("</svg>")
    caption = (
        "Change since the first snapshot. Start: "
        + ", ".join(f"{name} {size(base)}" for name, base in bases.items() if base is not None)
        + "."
    )
    if explain:
        caption += " " + BAND_NOTE
    return (
        f'<figure class="chartbox">{LEGEND}{"".join(out)}'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def _hover(
    f: _Frame, idx: list[int], rows: list[tuple[str, Series, float | None]], xlabel: str
) -> list[str]:
    """Invisible columns with a native tooltip (``<title>``) giving the values at each point."""
    out = ['<g class="hits">']
    for k, i in enumerate(idx):
        x0 = f.left if k == 0 else (f.x(idx[k - 1]) + f.x(i)) / 2
        x1 = f.left + f.plot_w if k == len(idx) - 1 else (f.x(i) + f.x(idx[k + 1])) / 2
        lines = [f"{xlabel} {i}"]
        for name, deltas, base in rows:
            d = _at(deltas, i)
            if d is not None and base is not None:
                lines.append(f"{name}: {size(base + d)} ({size(d, signed=True)})")
        out.append(
            f'<rect x="{_n(x0)}" y="{f.top}" width="{_n(max(x1 - x0, 0.5))}" '
            f'height="{_n(f.plot_h)}"><title>{esc(chr(10).join(lines))}</title></rect>'
        )
    out.append("</g>")
    return out


def count_chart(
    metric: str,
    values: Series,
    rounds: Sequence[int] = (),
    width: int = 250,
    height: int = 130,
    xlabel: str = "iteration",
) -> str:
    """A small step chart of a count (fds, threads, children); "" when no value."""
    present = [v for v in values if v is not None]
    if not present:
        return ""
    yt = ticks(min(present), max(present), integer=True, target=3)
    f = _Frame(width, height, len(values), yt, left=38, right=8, top=24, bottom=30)
    idx = _thin(len(values))
    first, last = present[0], present[-1]
    title = f"{metric}: {count(first)} → {count(last)} ({count(last - first, signed=True)})"
    out = [
        f'<svg class="chart small" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{esc(title)}">'
    ]
    out += f.axes(lambda v: f"{v:g}", xlabel, xtarget=4)
    out += _round_marks(f, rounds)
    out.append(f'<path class="line count" d="{_path(f, values, idx, step=True)}"/>')
    out.append(f'<text class="smalltitle" x="{f.left}" y="14">{esc(title)}</text>')
    out.append("</svg>")
    return "".join(out)


def sparkline(values: Series, width: int = 110, height: int = 24) -> str:
    """A tiny line of a series for a table cell; "" with fewer than two values."""
    present = [v for v in values if v is not None]
    if len(present) < 2:
        return ""
    lo, hi = min(present), max(present)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    f = _Frame(width, height, len(values), [lo, hi], left=1, right=1, top=2, bottom=2)
    d = _path(f, values, _thin(len(values), MAX_SPARK))
    return (
        f'<svg class="spark" viewBox="0 0 {width} {height}" aria-hidden="true">'
        f'<path d="{d}"/></svg>'
    )


class Bar(NamedTuple):
    """One module's native memory per iteration (``name`` None: the report had null)."""

    name: str | None
    category: str
    per_iter: float
    allocations: float | None
    frees: float | None


def native_bars(bars: Sequence[Bar], width: int = 640) -> str:
    """Horizontal bars: native memory per iteration by module (the first 12), with its
    category; "" when there is none."""
    items = list(bars[:12])
    if not items:
        return ""
    top = max(abs(b.per_iter) for b in items) or 1.0
    row_h, label_w, value_w = 24, 170, 230
    bar_w = width - label_w - value_w - 10
    height = row_h * len(items) + 6
    out = [
        f'<svg class="bars" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="native memory by module">'
    ]
    for k, b in enumerate(items):
        y = 3 + k * row_h
        w = max(2.0, bar_w * abs(b.per_iter) / top)
        css = re.sub(r"[^a-z]", "", b.category.lower())[:16] or "other"
        tip = (
            f"{printable(b.name)} ({b.category}): {rate(b.per_iter, 'bytes')}, "
            f"{count(b.allocations)} allocations, {count(b.frees)} frees"
        )
        out.append(f"<g><title>{esc(tip)}</title>")
        out.append(
            f'<text class="barlab" x="{label_w - 8}" y="{y + 15}">'
            f"{esc(b.name, 24, oneline=True)}</text>"
        )
        out.append(
            f'<rect class="bar cat-{css}" x="{label_w}" y="{y + 3}" width="{_n(w)}" '
            f'height="{row_h - 8}" rx="3"/>'
        )
        out.append(
            f'<text class="barval" x="{label_w + bar_w + 10}" y="{y + 15}">'
            f"{esc(rate(b.per_iter, 'bytes'))} · "
            f"{esc(b.category, 20, oneline=True)}</text>"
        )
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)
