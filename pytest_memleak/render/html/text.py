"""Report text made safe for HTML, and numbers made readable.

Every string taken from the report goes through :func:`esc` (``html.escape`` with
``quote=True`` after making it printable and encodable): test ids, parameters, messages and
paths may hold markup, quotes, control characters or lone surrogates.

The model is typed and validated, but a float field may still hold NaN or an infinity (the
JSON ``null`` of a non-finite number reads back as NaN): :func:`finite` turns those into
``None``, which the formatters show as "n/a". The free-form parts of the model (``JsonObject``
fields) are read with :func:`json_number`, :func:`json_list` and :func:`json_object`.
"""

from __future__ import annotations

import html
import math
import re

from ...model import Json, JsonObject, TestResult
from ...units import cut, format_leak_rate, format_size, printable
from ...vocabulary import UNITS

#: Longest test name shown in full; longer ones are cut, the full id goes in a title attribute.
NAME_LIMIT = 200
#: Longest test name in the tests table: longer ones lose their middle (the file and the
#: parameters' end stay in sight).
TABLE_NAME_LIMIT = 110

VERDICT_ORDER = {"leak": 0, "error": 1, "ok": 2, "skipped": 3}

COUNT_UNITS = {"py_blocks": "blocks", "fds": "fds", "threads": "threads", "children": "children"}

# ------------------------------------------------------------------------------------- text


def esc(
    value: object, limit: int | None = None, *, oneline: bool = False, middle: bool = False
) -> str:
    """Escape report text for HTML text and attribute values (quotes included); ``None`` is
    the empty string, anything else not a string is shown as ``str(value)``. Text longer than
    ``limit`` is cut at its end, or in its ``middle``."""
    if value is None:
        return ""
    return html.escape(cut(printable(value, oneline=oneline), limit, middle=middle), quote=True)


def badge(kind: str, word: str, text: str | None = None) -> str:
    """A coloured label: ``word`` picks the CSS class ``{kind}-{word}``, ``text`` the label."""
    word = word or "unknown"
    css = re.sub(r"[^a-z0-9_-]", "", word.lower())[:20] or "unknown"
    label = esc(text if text is not None else word, 40, oneline=True)
    return f'<span class="badge {kind}-{css}">{label}</span>'


def full_name(nodeid: str, label: str = "") -> str:
    return nodeid + (f" [{label}]" if label else "")


def name_html(
    nodeid: str, label: str = "", limit: int = NAME_LIMIT, *, middle: bool = False
) -> str:
    """A test's name, cut to ``limit`` characters (at its end, or in its ``middle``); a name
    cut short has the full id in its title attribute (the table filter searches the title,
    else the text)."""
    full = full_name(nodeid, label)
    shown = esc(full, limit, oneline=True, middle=middle)
    whole = esc(full, oneline=True)
    title = "" if shown == whole else f' title="{whole}"'
    return f'<span class="tname"{title}>{shown}</span>'


def scroll(table: str) -> str:
    """A wide table in its own horizontally scrolling box (the page never scrolls sideways)."""
    return f'<div class="scroll">{table}</div>' if table else ""


# ---------------------------------------------------------------------------------- numbers


def finite(value: float | None) -> float | None:
    """``value`` as a finite float, or ``None`` (for ``None``, NaN, infinities and integers
    too large for a float)."""
    if value is None:
        return None
    try:
        f = float(value)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


def size(value: float | None, signed: bool = False) -> str:
    """Bytes with binary units ("+1.5 KiB" when ``signed``), "n/a" when not a number."""
    v = finite(value)
    if v is None:
        return "n/a"
    return ("+" if signed and v >= 0 else "") + format_size(v)


def count(value: float | None, signed: bool = False) -> str:
    """A count: whole numbers without decimals, others with two; "n/a" when not a number."""
    v = finite(value)
    if v is None:
        return "n/a"
    if v.is_integer():
        return f"{int(v):+d}" if signed else str(int(v))
    return f"{v:+.2f}" if signed else f"{v:.2f}"


def rate(value: float | None, unit: str) -> str:
    """A growth rate in ``unit`` (:func:`~pytest_memleak.units.format_leak_rate`): bytes as
    sizes, counts with two decimals, per iteration, or per second when ``unit`` ends in
    "/s" (soak and watch); "n/a" when not a number."""
    v = finite(value)
    return "n/a" if v is None else format_leak_rate(v, unit)


def rate_unit(metric: str, unit: str = "") -> str:
    """The unit of a metric's rate for :func:`rate`: "bytes" for a memory metric, the thing
    counted for a count ("blocks", "fds"), ``unit`` or the metric's name otherwise."""
    if UNITS.get(metric, unit) == "bytes":
        return "bytes"
    return COUNT_UNITS.get(metric, unit if unit and unit != "count" else metric)


def sampled(t: TestResult) -> bool:
    """Whether a result is a soak or a watch: a series of samples in time, rates per
    second, rather than iterations of a repeated body."""
    return t.trend.mode in ("soak", "watch")


def per(t: TestResult) -> str:
    """What one point of a result's series is: "sample" (soak, watch) or "iteration"."""
    return "sample" if sampled(t) else "iteration"


# ------------------------------------------------------------------------ free-form JSON


def json_number(value: Json) -> float | None:
    """A finite number from a free-form part of the report, or ``None`` (bools, text, null)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return finite(value)


def json_list(value: Json) -> list[Json]:
    return value if isinstance(value, list) else []


def json_object(value: Json) -> JsonObject:
    return value if isinstance(value, dict) else {}


def json_text(value: Json, default: str = "") -> str:
    return value if isinstance(value, str) else default


def json_name(value: Json) -> str | None:
    """A name from a free-form row: text as it is, ``None`` for null, anything else as
    ``str(value)``."""
    if value is None or isinstance(value, str):
        return value
    return str(value)
