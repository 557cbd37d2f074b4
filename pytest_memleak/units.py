"""Parse the values people write in settings (sizes, rates, durations, counts) and format sizes.

Every ``parse_*`` function takes ``(value, key)``: ``value`` is a string from an ini file or the
command line, or a number from a marker keyword argument; ``key`` names the setting. Each returns
the parsed value or raises :class:`~pytest_memleak.errors.ConfigError`, never anything else.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from pytest_memleak.errors import ConfigError

__all__ = [
    "DURATION_EXPECTED",
    "RATE_EXPECTED",
    "SIZE_EXPECTED",
    "Rate",
    "format_rate",
    "format_size",
    "parse_bool",
    "parse_choice",
    "parse_duration",
    "parse_float",
    "parse_int",
    "parse_rate",
    "parse_size",
    "safe",
]

SIZE_EXPECTED = "a size such as 512 KiB, 10MB or 1.5 GiB"
RATE_EXPECTED = "a rate such as 4 KiB/iter, 100 KB/s or 1 MiB/second"
DURATION_EXPECTED = "a duration such as 30s, 100ms, 2m or 1.5h"
BOOL_EXPECTED = "a boolean: true/false, yes/no, on/off or 1/0"

# ASCII digits only: float() would also take other scripts' digits, underscores, "nan" and "inf".
_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_QUANTITY_RE = re.compile(rf"({_NUMBER})\s*([A-Za-z]*)", re.ASCII)
_FLOAT_RE = re.compile(rf"[+-]?{_NUMBER}", re.ASCII)
_INT_RE = re.compile(r"[+-]?[0-9]+", re.ASCII)

# Lower-case unit -> bytes. Bare letters are binary, like ``ls -h``; "KB" etc. are decimal SI.
_SIZE_UNITS: dict[str, float] = {"": 1, "b": 1, "byte": 1, "bytes": 1}
_SIZE_UNITS.update({letter: 1024**power for power, letter in enumerate("kmgtp", start=1)})
_SIZE_UNITS.update({f"{letter}b": 1000**power for power, letter in enumerate("kmgtp", start=1)})
_SIZE_UNITS.update({f"{letter}ib": 1024**power for power, letter in enumerate("kmgtp", start=1)})

_PER_UNITS: dict[str, str] = {
    **dict.fromkeys(("it", "iter", "iters", "iteration", "iterations"), "iter"),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), "s"),
}

_DURATION_UNITS: dict[str, float] = {
    "": 1.0,
    **dict.fromkeys(("us", "usec", "usecs"), 1e-6),
    **dict.fromkeys(("ms", "msec", "msecs", "millisecond", "milliseconds"), 1e-3),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
    **dict.fromkeys(("d", "day", "days"), 86400.0),
}

_TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0"})

_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


@dataclass(frozen=True)
class Rate:
    """A growth rate: ``bytes`` per iteration (``per="iter"``) or per second (``per="s"``)."""

    bytes: float
    per: str

    def __str__(self) -> str:
        return format_rate(self.bytes, self.per)


def _is_number(value: object) -> bool:
    """Whether ``value`` is a real number and not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _finite_float(value: object) -> float | None:
    """``float(value)`` if that works and is finite, else None."""
    try:
        result = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return result if math.isfinite(result) else None


def _quantity(value: object, units: Mapping[str, float]) -> float | None:
    """A non-negative finite ``number * unit`` from ``value``, or None if it is not one."""
    if isinstance(value, str):
        match = _QUANTITY_RE.fullmatch(value.strip())
        if match is None:
            return None
        multiplier = units.get(match.group(2).lower())
        if multiplier is None:
            return None
        result: float | None = float(match.group(1)) * multiplier
    elif _is_number(value):
        result = _finite_float(value)
    else:
        return None
    if result is None or not math.isfinite(result) or result < 0:
        return None
    return result


def parse_size(value: object, key: str) -> int:
    """Parse a size in bytes: "512", "512 KiB", "10MB", "1.5 GiB", "64k" (K/M/G/T = 1024^n)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 0:
        return int(value)
    result = _quantity(value, _SIZE_UNITS)
    if result is None:
        raise ConfigError(key, value, SIZE_EXPECTED)
    return round(result)


def parse_rate(value: object, key: str) -> Rate:
    """Parse a rate: "4 KiB/iter", "100 KB/s", "1 MiB/second"; a bare size is per iteration."""
    size: object = value
    per: str | None = "iter"
    if isinstance(value, str) and "/" in value:
        size, _, per_text = value.rpartition("/")
        per_text = per_text.strip()
        per = _PER_UNITS.get(per_text.lower()) if per_text.isascii() else None
    amount = _quantity(size, _SIZE_UNITS)
    if amount is None or per is None:
        raise ConfigError(key, value, RATE_EXPECTED)
    return Rate(amount, per)


def parse_int(value: object, key: str, minimum: int = 0, maximum: int | None = None) -> int:
    """Parse an integer in ``[minimum, maximum]``; "1.5" and bools are rejected."""
    result: int | None = None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        result = int(value)
    elif isinstance(value, str) and _INT_RE.fullmatch(value.strip()):
        try:
            result = int(value.strip())
        except ValueError:  # more digits than int() accepts
            result = None
    if result is None or result < minimum or (maximum is not None and result > maximum):
        expected = (
            f"an integer >= {minimum}"
            if maximum is None
            else f"an integer from {minimum} to {maximum}"
        )
        raise ConfigError(key, value, expected)
    return result


def _float_expected(minimum: float | None, maximum: float | None) -> str:
    """Describe the accepted range of :func:`parse_float`."""
    if minimum is not None and maximum is not None:
        return f"a number between {minimum:g} and {maximum:g}"
    if minimum is not None:
        return f"a number >= {minimum:g}"
    if maximum is not None:
        return f"a number <= {maximum:g}"
    return "a number"


def parse_float(
    value: object,
    key: str,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    """Parse a finite number within ``[minimum, maximum]`` (either bound optional)."""
    result: float | None = None
    if _is_number(value):
        result = _finite_float(value)
    elif isinstance(value, str) and _FLOAT_RE.fullmatch(value.strip()):
        result = _finite_float(value.strip())
    if (
        result is None
        or (minimum is not None and result < minimum)
        or (maximum is not None and result > maximum)
    ):
        raise ConfigError(key, value, _float_expected(minimum, maximum))
    return result


def parse_bool(value: object, key: str) -> bool:
    """Parse true/false, yes/no, on/off, 1/0 (any case), or take a bool as it is."""
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise ConfigError(key, value, BOOL_EXPECTED)


def parse_choice(value: object, key: str, choices: Sequence[str]) -> str:
    """Match ``value`` against ``choices`` ignoring case; return the lower-case choice."""
    if isinstance(value, str) and value.isascii():
        wanted = value.strip().lower()
        for choice in choices:
            if choice.lower() == wanted:
                return choice.lower()
    raise ConfigError(key, value, "one of " + ", ".join(choice.lower() for choice in choices))


def parse_duration(value: object, key: str) -> float:
    """Parse a duration in seconds: "30s", "100ms", "2m", "1.5h"; a bare number is seconds."""
    result = _quantity(value, _DURATION_UNITS)
    if result is None:
        raise ConfigError(key, value, DURATION_EXPECTED)
    return result


def format_size(n: float) -> str:
    """Format bytes with binary units: 512 -> "512 B", 1536 -> "1.5 KiB", -2048 -> "-2.0 KiB"."""
    sign = "-" if n < 0 else ""
    try:
        magnitude = float(abs(n))
    except OverflowError:  # an int too large for a float
        magnitude = math.inf
    if not math.isfinite(magnitude):
        return f"{sign}{magnitude} B"
    if magnitude < 1024 and magnitude.is_integer():
        return f"{sign}{int(magnitude)} B"
    unit = 0
    while unit < len(_BINARY_UNITS) - 1 and round(magnitude, 1) >= 1024:
        magnitude /= 1024
        unit += 1
    return f"{sign}{magnitude:.1f} {_BINARY_UNITS[unit]}"


def format_rate(rate_bytes: float, per: str) -> str:
    """Format a rate: (1536, "iter") -> "1.5 KiB/iter"."""
    return f"{format_size(rate_bytes)}/{per}"


def format_leak_rate(rate: float | None, unit: str = "bytes") -> str:
    """A leak's growth rate in its own unit: bytes per iteration as a size ("1.5 KiB/iter"),
    counts with two decimals ("+2.00 fds/iter"); a unit already per second ("bytes/s",
    "fds/s", soak and watch) is shown per second; "?" when unknown."""
    if rate is None:
        return "?"
    base, per_s, _ = unit.partition("/s")
    per = "s" if per_s else "iter"
    if base == "bytes":
        return format_rate(rate, per)
    return f"{rate:+.2f} {base}/{per}"


_KEEP = frozenset("\n\t")


def printable(value: object, *, oneline: bool = False) -> str:
    """``value`` as text that is printable and encodable: control characters, bidi overrides,
    lone surrogates and the like become visible escapes (``\\x00``, ``\\u202e``,
    ``\\udcff``); newlines and tabs survive unless ``oneline``."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():
        return text
    if not oneline and text.replace("\n", "").replace("\t", "").isprintable():
        return text
    keep = () if oneline else _KEEP
    return "".join(ch if ch.isprintable() or ch in keep else repr(ch)[1:-1] for ch in text)


def cut(text: str, limit: int | None, *, middle: bool = False) -> str:
    """``text`` no longer than ``limit``: cut at its end, or in its ``middle`` (a test id's
    file and its end are what tell it apart), marked with "…"."""
    if limit is None or len(text) <= limit:
        return text
    if limit <= 1:
        return "…"[:limit]
    if middle:
        head = (limit - 1) // 2
        return text[:head] + "…" + text[len(text) - (limit - 1 - head) :]
    return text[: limit - 1] + "…"


def safe(text: str, limit: int = 200) -> str:
    """Printable, one-line, bounded: test ids may hold newlines, escapes or huge parameters."""
    return cut(printable(text, oneline=True), limit)
