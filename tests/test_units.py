"""Tests of pytest_memleak.units: parsing settings and formatting sizes."""

from __future__ import annotations

import math
from typing import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_memleak.errors import ConfigError
from pytest_memleak.units import (
    Rate,
    format_rate,
    format_size,
    parse_bool,
    parse_choice,
    parse_duration,
    parse_float,
    parse_int,
    parse_rate,
    parse_size,
)

KEY = "memleak_test_key"
KiB, MiB, GiB, TiB = 1024, 1024**2, 1024**3, 1024**4

# Spelling -> multiplier, written out independently of the implementation's table.
SIZE_UNITS = {
    "": 1,
    "B": 1,
    "K": KiB,
    "M": MiB,
    "G": GiB,
    "T": TiB,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
    "KiB": KiB,
    "MiB": MiB,
    "GiB": GiB,
    "TiB": TiB,
}

# Values that are wrong for every numeric parser, negative numbers allowed or not.
BAD_NUMBER = [
    "",
    "   ",
    None,
    True,
    False,
    "nan",
    "NaN",
    "inf",
    "-inf",
    "infinity",
    float("nan"),
    float("inf"),
    float("-inf"),
    "abc",
    "1e999",
    "\u0661\u0662",  # Arabic-Indic digits
    "\uff11\uff12",  # fullwidth digits
    "1_000",
    "0x10",
    [],
    b"10",
]
# ...and for those that take only non-negative numbers.
BAD_COMMON = [*BAD_NUMBER, "-5", -5, "-0.5"]

fast = settings(max_examples=200, deadline=None)

ANY_VALUE = st.one_of(
    st.text(),
    st.text(alphabet="0123456789.eE+- /_KkMmGgTtPpIiBbSsecondhrusitra\u212a\u0661\u00a0"),
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.binary(max_size=5),
)


def call(parser: Callable[..., object], value: object) -> object:
    """What ``parser(value, KEY)`` returns, or the ConfigError it raises; nothing else is caught."""
    try:
        return parser(value, KEY)
    except ConfigError as exc:
        return exc


def assert_config_error(excinfo: pytest.ExceptionInfo[ConfigError], value: object) -> None:
    """The error names the key and shows the value."""
    message = str(excinfo.value)
    assert KEY in message
    assert repr(value) in message
    assert excinfo.value.key == KEY
    assert excinfo.value.value is value or excinfo.value.value == value


# --- parse_size -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("512", 512),
        ("512B", 512),
        ("512 b", 512),
        ("512 KiB", 512 * KiB),
        ("10MB", 10_000_000),
        ("1.5 GiB", 1_610_612_736),
        ("64k", 65_536),
        ("64K", 65_536),
        ("2 mb", 2_000_000),
        ("2 MiB", 2 * MiB),
        ("2 mib", 2 * MiB),
        ("2M", 2 * MiB),
        ("1 kB", 1000),
        ("3 TB", 3 * 10**12),
        ("1 TiB", TiB),
        ("1t", TiB),
        ("7 g", 7 * GiB),
        ("  7 G  ", 7 * GiB),
        ("1 PiB", 1024**5),
        ("1 PB", 1000**5),
        ("100 bytes", 100),
        ("0", 0),
        ("0 KiB", 0),
        ("1.4", 1),
        ("1.6", 2),
        (".5 KiB", 512),
        ("0.25KiB", 256),
        ("1e3", 1000),
        ("1.5e3 KB", 1_500_000),
        ("1e-9 B", 0),
        (512, 512),
        (0, 0),
        (1.6, 2),
        (1536.0, 1536),
        (10**30, 10**30),
    ],
)
def test_parse_size_good(value: str | int | float, expected: int) -> None:
    result = parse_size(value, KEY)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize(
    "value",
    [
        *BAD_COMMON,
        "10 XB",
        "10 KBi",
        "1e999 KB",
        "5 KiB/iter",
        "1,5 KiB",
        "KiB",
        "1 \u212aiB",  # Kelvin sign, which lower-cases to "k"
        "1 K iB",
        "--1",
        "+5",
        -0.5,
        -(10**400),
    ],
)
def test_parse_size_bad(value: object) -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse_size(value, KEY)  # type: ignore[arg-type]
    assert_config_error(excinfo, value)
    assert "a size such as 512 KiB, 10MB or 1.5 GiB" in str(excinfo.value)


def test_parse_size_huge_finite() -> None:
    assert parse_size(1e300, KEY) == round(1e300)
    with pytest.raises(ConfigError):
        parse_size("1e300 PB", KEY)


def test_config_error_is_value_error() -> None:
    with pytest.raises(ValueError, match=r"^memleak: invalid value for memleak_x: '10 XB'; "):
        parse_size("10 XB", "memleak_x")


@fast
@given(ANY_VALUE)
def test_parse_size_total(value: object) -> None:
    result = call(parse_size, value)
    if isinstance(result, ConfigError):
        assert KEY in str(result)
    else:
        assert type(result) is int
        assert result >= 0


@fast
@given(
    st.floats(min_value=0, max_value=1e6, allow_nan=False),
    st.sampled_from(sorted(SIZE_UNITS)),
    st.sampled_from(["", " ", "  "]),
    st.booleans(),
)
def test_parse_size_number_times_unit(number: float, unit: str, space: str, upper: bool) -> None:
    spelled = unit.upper() if upper else unit.lower()
    assert parse_size(f"{number!r}{space}{spelled}", KEY) == round(number * SIZE_UNITS[unit])


@fast
@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(sorted(SIZE_UNITS)))
def test_parse_size_integer_times_unit_exact(number: int, unit: str) -> None:
    assert parse_size(f"{number} {unit}", KEY) == number * SIZE_UNITS[unit]


# --- format_size / format_rate ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0 B"),
        (1, "1 B"),
        (512, "512 B"),
        (512.0, "512 B"),
        (512.5, "512.5 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (1023.99, "1.0 KiB"),
        (MiB - 1, "1.0 MiB"),
        (10 * MiB, "10.0 MiB"),
        (3 * GiB, "3.0 GiB"),
        (TiB, "1.0 TiB"),
        (1024**5, "1.0 PiB"),
        (1024**6, "1024.0 PiB"),
        (-512, "-512 B"),
        (-2048, "-2.0 KiB"),
        (-1.5 * MiB, "-1.5 MiB"),
        (-0.0, "0 B"),
    ],
)
def test_format_size(value: float, expected: str) -> None:
    assert format_size(value) == expected


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), 10**400])
def test_format_size_odd_numbers_do_not_raise(value: float) -> None:
    assert format_size(value).endswith(" B")


@fast
@given(st.integers(min_value=0, max_value=2**60))
def test_format_size_round_trips(n: int) -> None:
    parsed = parse_size(format_size(n), KEY)
    assert abs(parsed - n) <= 0.05 * n


@fast
@given(st.integers(min_value=1, max_value=2**60))
def test_format_size_negative_keeps_sign(n: int) -> None:
    assert format_size(-n) == "-" + format_size(n)


def test_format_rate() -> None:
    assert format_rate(1536, "iter") == "1.5 KiB/iter"
    assert format_rate(-1024.0, "s") == "-1.0 KiB/s"
    assert format_rate(100, "s") == "100 B/s"


# --- parse_rate -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("4 KiB/iter", Rate(4096.0, "iter")),
        ("4KiB/iteration", Rate(4096.0, "iter")),
        ("4 KiB / iterations", Rate(4096.0, "iter")),
        ("4 KiB/it", Rate(4096.0, "iter")),
        ("100 KB/s", Rate(100_000.0, "s")),
        ("1MB/sec", Rate(1_000_000.0, "s")),
        ("1 MiB/second", Rate(float(MiB), "s")),
        ("1 MiB/SECONDS", Rate(float(MiB), "s")),
        ("2k/s", Rate(2048.0, "s")),
        ("0.5 B/iter", Rate(0.5, "iter")),
        ("4 KiB", Rate(4096.0, "iter")),
        ("4096", Rate(4096.0, "iter")),
        ("0/s", Rate(0.0, "s")),
        (4096, Rate(4096.0, "iter")),
        (1.5, Rate(1.5, "iter")),
    ],
)
def test_parse_rate_good(value: str | int | float, expected: Rate) -> None:
    result = parse_rate(value, KEY)
    assert result == expected
    assert type(result.bytes) is float


@pytest.mark.parametrize(
    "value",
    [
        *BAD_COMMON,
        "abc/iter",
        "10 XB/s",
        "4 KiB/hour",
        "4 KiB/",
        "/iter",
        "/",
        "-1 KiB/s",
        "nan/s",
        "inf/iter",
        "1e999 KB/s",
        "4 KiB/iter/s",
        "4 KiB/\u0455",  # Cyrillic dze, looks like "s"
    ],
)
def test_parse_rate_bad(value: object) -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse_rate(value, KEY)  # type: ignore[arg-type]
    assert_config_error(excinfo, value)
    assert "a rate such as" in str(excinfo.value)


def test_rate_str() -> None:
    assert str(Rate(4096.0, "iter")) == "4.0 KiB/iter"
    assert str(Rate(100_000.0, "s")) == "97.7 KiB/s"
    assert str(Rate(512.0, "iter")) == "512 B/iter"


def test_rate_is_frozen() -> None:
    rate = Rate(1.0, "iter")
    with pytest.raises(AttributeError):
        rate.bytes = 2.0  # type: ignore[misc]


@fast
@given(ANY_VALUE)
def test_parse_rate_total(value: object) -> None:
    result = call(parse_rate, value)
    if isinstance(result, ConfigError):
        assert KEY in str(result)
    else:
        assert isinstance(result, Rate)
        assert math.isfinite(result.bytes)
        assert result.bytes >= 0
        assert result.per in ("iter", "s")


@fast
@given(
    st.floats(min_value=0, max_value=1e6, allow_nan=False),
    st.sampled_from(sorted(SIZE_UNITS)),
    st.sampled_from([("/iter", "iter"), ("/s", "s"), (" / second", "s"), ("", "iter")]),
)
def test_parse_rate_number_times_unit(number: float, unit: str, per: tuple[str, str]) -> None:
    suffix, expected_per = per
    result = parse_rate(f"{number!r} {unit}{suffix}", KEY)
    assert result == Rate(number * SIZE_UNITS[unit], expected_per)


@fast
@given(st.integers(min_value=0, max_value=2**60), st.sampled_from(["iter", "s"]))
def test_rate_str_round_trips(n: int, per: str) -> None:
    result = parse_rate(str(Rate(float(n), per)), KEY)
    assert result.per == per
    assert abs(result.bytes - n) <= 0.05 * n


# --- parse_int --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "minimum", "expected"),
    [
        ("10", 0, 10),
        (10, 0, 10),
        (" 7 ", 0, 7),
        ("+3", 0, 3),
        ("010", 0, 10),
        ("0", 0, 0),
        (0, 0, 0),
        ("1", 1, 1),
        ("-3", -5, -3),
        (10**30, 0, 10**30),
    ],
)
def test_parse_int_good(value: str | int, minimum: int, expected: int) -> None:
    result = parse_int(value, KEY, minimum=minimum)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize("value", [*BAD_COMMON, "1.5", 1.5, 10.0, "1e3", "10 KiB", "1 0"])
def test_parse_int_bad(value: object) -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse_int(value, KEY)  # type: ignore[arg-type]
    assert_config_error(excinfo, value)
    assert "an integer >= 0" in str(excinfo.value)


@pytest.mark.parametrize("value", ["0", 0, "-1"])
def test_parse_int_below_minimum(value: str | int) -> None:
    with pytest.raises(ConfigError, match="an integer >= 1") as excinfo:
        parse_int(value, KEY, minimum=1)
    assert_config_error(excinfo, value)


@fast
@given(ANY_VALUE)
def test_parse_int_total(value: object) -> None:
    result = call(parse_int, value)
    if isinstance(result, ConfigError):
        assert KEY in str(result)
    else:
        assert type(result) is int
        assert result >= 0


def test_parse_int_very_long() -> None:
    # Python >= 3.11 caps int() at 4300 digits; either outcome is fine, but only a ConfigError.
    result = call(parse_int, "9" * 5000)
    assert isinstance(result, ConfigError) or result == 10**5000 - 1


@fast
@given(st.integers(min_value=0, max_value=10**40))
def test_parse_int_round_trips(n: int) -> None:
    assert parse_int(str(n), KEY) == n


# --- parse_float ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.5", 0.5),
        (" 0.5 ", 0.5),
        ("-2.5", -2.5),
        ("+2", 2.0),
        ("1e-3", 0.001),
        (".25", 0.25),
        (1, 1.0),
        (2.0, 2.0),
    ],
)
def test_parse_float_good(value: str | float, expected: float) -> None:
    result = parse_float(value, KEY)
    assert result == expected
    assert type(result) is float


@pytest.mark.parametrize("value", [*BAD_NUMBER, "1,5", "1.5x", "- 1", 10**400])
def test_parse_float_bad(value: object) -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse_float(value, KEY)  # type: ignore[arg-type]
    assert_config_error(excinfo, value)


@pytest.mark.parametrize(
    ("value", "minimum", "maximum", "expected"),
    [
        ("1.5", 0, 1, "a number between 0 and 1"),
        ("-0.1", 0, 1, "a number between 0 and 1"),
        ("-1", 0.0, None, "a number >= 0"),
        ("2", None, 1, "a number <= 1"),
        ("0.4", 0.5, None, "a number >= 0.5"),
    ],
)
def test_parse_float_bounds(
    value: str, minimum: float | None, maximum: float | None, expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected) as excinfo:
        parse_float(value, KEY, minimum=minimum, maximum=maximum)
    assert_config_error(excinfo, value)


def test_parse_float_bounds_inclusive() -> None:
    assert parse_float("0", KEY, minimum=0, maximum=1) == 0.0
    assert parse_float("1", KEY, minimum=0, maximum=1) == 1.0


@fast
@given(ANY_VALUE)
def test_parse_float_total(value: object) -> None:
    result = call(parse_float, value)
    if isinstance(result, ConfigError):
        assert KEY in str(result)
    else:
        assert type(result) is float
        assert math.isfinite(result)


# --- parse_bool -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("True", True),
        ("YES", True),
        ("on", True),
        ("1", True),
        (" false ", False),
        ("No", False),
        ("OFF", False),
        ("0", False),
        (True, True),
        (False, False),
        (1, True),
        (0, False),
    ],
)
def test_parse_bool_good(value: str | bool, expected: bool) -> None:
    assert parse_bool(value, KEY) is expected


@pytest.mark.parametrize("value", ["maybe", "", "tru", "2", 2, -1, None, 1.0, "y e s"])
def test_parse_bool_bad(value: object) -> None:
    with pytest.raises(ConfigError, match="true/false") as excinfo:
        parse_bool(value, KEY)  # type: ignore[arg-type]
    assert_config_error(excinfo, value)


@fast
@given(ANY_VALUE)
def test_parse_bool_total(value: object) -> None:
    result = call(parse_bool, value)
    if isinstance(result, ConfigError):
        assert KEY in str(result)
    else:
        assert type(result) is bool


# --- parse_choice -----------------------------------------------------------------------------

CHOICES = ("text", "json", "Auto")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("text", "text"), ("TEXT", "text"), (" Json ", "json"), ("auto", "auto"), ("AUTO", "auto")],
)
def test_parse_choice_good(value: str, expected: str) -> None:
    assert parse_choice(value, KEY, CHOICES) == expected


@pytest.mark.parametrize("value", ["xml", "", "tex", None, 1, True, "\u212a"])
def test_parse_choice_bad(value: object) -> None:
    with pytest.raises(ConfigError, match="one of text, json, auto") as excinfo:
        parse_choice(value, KEY, CHOICES)  # type: ignore[arg-type]
    assert_config_error(excinfo, value)


# --- parse_duration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30s", 30.0),
        ("30 sec", 30.0),
        ("1 second", 1.0),
        ("100ms", 0.1),
        ("100 MS", 0.1),
        ("250us", 0.00025),
        ("2m", 120.0),
        ("2 min", 120.0),
        ("1.5h", 5400.0),
        ("3 hours", 10800.0),
        ("1d", 86400.0),
        ("10", 10.0),
        ("0", 0.0),
        (".5", 0.5),
        (10, 10.0),
        (0.5, 0.5),
    ],
)
def test_parse_duration_good(value: str | float, expected: float) -> None:
    result = parse_duration(value, KEY)
    assert result == pytest.approx(expected)
    assert type(result) is float


@pytest.mark.parametrize("value", [*BAD_COMMON, "5 weeks", "ms", "5 m s", "1e999 ms", "-1s"])
def test_parse_duration_bad(value: object) -> None:
    with pytest.raises(ConfigError, match="a duration such as") as excinfo:
        parse_duration(value, KEY)  # type: ignore[arg-type]
    assert_config_error(excinfo, value)


@fast
@given(ANY_VALUE)
def test_parse_duration_total(value: object) -> None:
    result = call(parse_duration, value)
    if isinstance(result, ConfigError):
        assert KEY in str(result)
    else:
        assert type(result) is float
        assert math.isfinite(result)
        assert result >= 0


@fast
@given(
    st.floats(min_value=0, max_value=1e6, allow_nan=False),
    st.sampled_from([("", 1), ("s", 1), ("ms", 1e-3), ("m", 60), ("h", 3600)]),
)
def test_parse_duration_number_times_unit(number: float, unit: tuple[str, float]) -> None:
    suffix, multiplier = unit
    assert parse_duration(f"{number!r}{suffix}", KEY) == number * multiplier


def test_format_leak_rate_in_the_leaks_own_unit() -> None:
    from pytest_memleak.units import format_leak_rate

    assert format_leak_rate(1536, "bytes") == "1.5 KiB/iter"
    assert format_leak_rate(2, "fds") == "+2.00 fds/iter"
    assert format_leak_rate(1536, "bytes/s") == "1.5 KiB/s"
    assert format_leak_rate(0.5, "threads/s") == "+0.50 threads/s"
    assert format_leak_rate(None, "bytes") == "?"
