"""Reading reports and baselines from disk: validated once against the shipped schema; a bad
file is a clear error naming it and the first bad field, never a traceback (issue 12)."""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_schema import sample_doc, sample_report

from pytest_memleak.baseline import compare_runs, parse_rule
from pytest_memleak.errors import ReportError
from pytest_memleak.model import RunReport
from pytest_memleak.render import html, json_report

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _write(tmp: Path, doc: Any, name: str = "r.json") -> str:
    path = tmp / name
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return str(path)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into ``doc``."""
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        doc = doc[key]
    doc[path[-1]] = value


def _use(report: RunReport) -> None:
    """What the plugin and the CLI do with a report they read: compare it, render it."""
    comparison = compare_runs(
        report, sample_report().tests, parse_rule("rate:10%,new-leaks", "rule")
    )
    html.render(dataclasses.replace(report, comparison=comparison))


def _read_or_error(path: str) -> tuple[RunReport | None, str | None]:
    try:
        return json_report.read_report(path), None
    except ReportError as exc:
        return None, str(exc)


def _read_then_use(path: str) -> None:
    """Read the file: a ReportError naming it, or a report the plugin and the CLI can use."""
    doc, error = _read_or_error(path)
    if doc is None:
        assert path in str(error)
        return
    _use(doc)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=JSON)
def test_any_json_value_is_read_or_refused_clearly(tmp_path, value):
    _read_then_use(_write(tmp_path, value))


BASE = sample_doc()
PATHS = _paths(BASE)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(where=st.sampled_from(PATHS), value=JSON)
def test_a_report_with_one_field_of_the_wrong_type_is_read_or_refused_clearly(
    tmp_path, where, value
):
    doc = copy.deepcopy(BASE)
    _set(doc, where, value)
    _read_then_use(_write(tmp_path, doc))


def test_wrong_inner_types_name_the_file_and_the_field(tmp_path):
    doc = {"schema": "pytest-memleak/1", "tests": [{"nodeid": "t.py::test_x", "findings": ["x"]}]}
    path = _write(tmp_path, doc)
    with pytest.raises(ReportError, match="does not match the report schema: ") as info:
        json_report.read_report(path)
    assert path in str(info.value)


def test_deep_nesting_is_refused(tmp_path):
    path = _write(tmp_path, "[" * 100_000 + "]" * 100_000)
    with pytest.raises(ReportError, match="nested too deeply"):
        json_report.read_report(path)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_memleak", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("command", ["show", "compare", "html", "validate"])
def test_cli_commands_refuse_a_bad_file_without_a_traceback(tmp_path, command):
    (tmp_path / "ok.json").write_text(json.dumps(sample_doc()))
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    bad = {"schema": "pytest-memleak/1", "tests": [{"nodeid": "t.py::test_x", "findings": ["x"]}]}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    for broken in ("deep.json", "bad.json"):
        args = {
            "show": ["show", broken],
            "compare": ["compare", broken, "ok.json"],
            "html": ["html", broken, "-o", "out.html"],
            "validate": ["validate", broken],
        }[command]
        proc = _cli(*args, cwd=tmp_path)
        assert proc.returncode in (1, 2), (proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr, proc.stderr
        assert broken in proc.stderr + proc.stdout
        assert "ok.json" not in proc.stderr, proc.stderr  # the bad file is named, not the other


def test_a_bad_baseline_is_a_usage_error_not_an_internal_error(pytester):
    bad = {"schema": "pytest-memleak/1", "tests": [{"nodeid": "t.py::test_x", "findings": ["x"]}]}
    (pytester.path / "base.json").write_text(json.dumps(bad))
    pytester.makepyfile("import pytest\n\n@pytest.mark.memcheck\ndef test_x():\n    pass\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--memleak-compare=base.json", "--memleak-iterations=5"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    err = result.stderr.str()
    assert "base.json: does not match the report schema" in err
    assert "INTERNALERROR" not in result.stdout.str() + err


# --------------------------------------------------------------------------- the writer


def test_the_written_text_is_the_report_and_each_test_is_encoded_once(tmp_path, monkeypatch):
    """The checkpoints rewrite the report every few seconds: each test's JSON text is made
    once (not at every rewrite), and the file reads back as the report, whatever its strings
    hold (a nodeid that looks like the writer's own placeholder included)."""
    from pytest_memleak import model

    base = sample_report()
    odd = dataclasses.replace(base.tests[0], nodeid='t.py::test["memleak-tests-", \\u2603]')
    report = dataclasses.replace(base, tests=(base.tests[0], odd))
    encoded = json_report.EncodedTests()
    from pytest_memleak import encoding

    calls = []
    real = encoding.to_object
    monkeypatch.setattr(encoding, "to_object", lambda v: calls.append(type(v)) or real(v))
    for _ in range(3):
        path = str(tmp_path / "r.json")
        json_report.write_atomic(path, report, encoded)
        assert json.loads(Path(path).read_text()) == model.to_json(report)
        assert json_report.read_report(path).tests[1].nodeid == odd.nodeid
    assert calls.count(model.TestResult) == 2  # each test once, over three writes
    assert calls.count(model.RunReport) == 3  # the rest of the report at every write
    empty = dataclasses.replace(report, tests=())
    assert json.loads(json_report.encode(empty)) == model.to_json(empty)


def test_a_rerun_test_keeps_only_its_last_encoded_run():
    base = sample_report()
    first = base.tests[0]
    second = dataclasses.replace(first, verdict="ok")
    encoded = json_report.EncodedTests()
    encoded.add(first)
    encoded.add(second)
    encoded.keep_only([second])
    assert len(encoded._texts) == 1
    assert json.loads(encoded.raw(second))["verdict"] == "ok"


def test_a_result_read_slimmed_from_json_is_the_slimmed_result():
    """An xdist controller reads each test's JSON into the slimmed result the session keeps,
    without reading the rest (0.6-1 ms a test read whole): the same result either way."""
    from pytest_memleak import model

    series = {
        "rss": (1e6, 2e6, 3e6),
        "heap": (None, 5.0, 7.0),
        "external": (),
        "malloc": (1.0, 2.0),
    }
    for base in sample_report().tests:
        for result in (base, dataclasses.replace(base, snapshots=series)):
            data = model.to_object(result)
            kept = model.slimmed_from_json(data)
            assert kept == model.slimmed(result)
            assert kept == model.slimmed(model.from_json(model.TestResult, data))
    assert kept.snapshots == {"rss": (1e6, 3e6), "heap": (None, 7.0)}
