"""Every setting, fed anything a user might write (strings, huge and tiny numbers, wrong TOML
types), is accepted within its documented range or refused with a ConfigError (which the plugin
turns into a usage error at start-up): never another exception, never a value that fails later
(issue 12: huge iterations overflowed in the loop, huge intervals crashed the sampler)."""

from __future__ import annotations

import json
import math
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_memleak.errors import ConfigError
from pytest_memleak.model import to_json
from pytest_memleak.render.json_report import SCHEMA_FILE
from pytest_memleak.runner import Loop
from pytest_memleak.settings import (
    MAX_DURATION_S,
    MAX_INTERVAL_S,
    MAX_ITERATIONS,
    MAX_RETENTION,
    MAX_TRACE_FRAMES,
    OPTIONS,
    resolve,
)

SCHEMA = json.loads(SCHEMA_FILE.read_text())
SETTINGS_SCHEMA = {"$defs": SCHEMA["$defs"], **SCHEMA["$defs"]["settings"]}

NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 4, 5, 10**5, 10**5 + 1, 2**63, -1, 1e-300, 1e300]),
)
TEXT = st.one_of(
    st.text(max_size=12),
    NUMBERS.map(str),
    st.sampled_from(["1h", "3601s", "0.5ms", "7d", "8d", "1e999", "nan", "inf", "-5", " 10 "]),
    st.builds(lambda n, u: f"{n}{u}", NUMBERS, st.sampled_from(["", "s", "ms", "KiB", "/iter"])),
)
# What a TOML table or a marker can hold besides strings and numbers.
OTHER = st.one_of(
    st.booleans(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
VALUES = st.one_of(TEXT, NUMBERS, OTHER)
LOOP_OPTIONS = {"iterations", "warmup", "max_iterations", "trace_frames"}


@settings(max_examples=400, deadline=None)
@given(
    option=st.sampled_from([o for o in OPTIONS if o.name not in ("compare", "storage")]),
    origin=st.sampled_from(["cli", "ini", "marker"]),
    value=VALUES,
)
def test_any_value_is_accepted_in_range_or_refused_clearly(option, origin, value):
    refused: ConfigError | None = None
    try:
        s = resolve([(origin, {option.name: value})])
    except ConfigError as exc:
        refused = exc
    if refused is not None:
        # The message names the setting as the user wrote it, and what it accepts.
        key = {"cli": option.cli_flag, "ini": option.ini_key, "marker": option.name}[origin]
        assert key in str(refused), (key, str(refused))
        assert "expected" in str(refused), str(refused)
        return
    bounds = {
        "iterations": (5, MAX_ITERATIONS),
        "warmup": (0, MAX_ITERATIONS),
        "max_iterations": (5, 2 * MAX_ITERATIONS),
        "trace_frames": (1, MAX_TRACE_FRAMES),
        "retention": (10, MAX_RETENTION),
        "interval": (0.001, MAX_INTERVAL_S),
        "timeout": (0.0, MAX_DURATION_S),
        "window": (0.0, MAX_DURATION_S),
    }
    got: Any = getattr(s, option.name)
    if option.name in bounds and got is not None:
        low, high = bounds[option.name]
        assert low <= got <= high, (option.name, value, got)
        assert math.isfinite(got)
    # What was accepted makes a valid report ...
    jsonschema.validate(to_json(s.to_dict()), SETTINGS_SCHEMA)
    # ... and a loop that can be built (its buffer is sized from the iteration settings).
    if option.name in LOOP_OPTIONS:
        Loop(s)


@pytest.mark.parametrize("value", [True, [5], {"n": 5}, 5.5, "5.5", "", "  "])
def test_wrong_types_for_a_count_are_refused(value):
    with pytest.raises(ConfigError, match="an integer from 5 to"):
        resolve([("marker", {"iterations": value})])
