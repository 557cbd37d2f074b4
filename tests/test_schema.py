"""The JSON report contract: pytest_memleak/schema.json, validate() and read_report().

The schema is the documented contract of the report, so besides checking real reports against
it these tests keep it in step with the model (every field of TestResult, Leak, Growth and
Settings is typed, the enums match the code) and check that it is documented.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from jsonschema import Draft202012Validator

from pytest_memleak import baseline, model, vocabulary
from pytest_memleak import stats as trend
from pytest_memleak.errors import ReportError
from pytest_memleak.model import to_json, to_object
from pytest_memleak.render import json_report
from pytest_memleak.settings import OPTIONS, SEVERITY_ORDER, Settings, resolve

SCHEMA = json_report.load_schema()
DEFS = SCHEMA["$defs"]


def sample_leak(**changes: Any) -> dict[str, Any]:
    leak = to_object(
        model.Leak(
            id="L1",
            type="python_object",
            source="app/cache.py:42",
            severity="medium",
            estimated_size=40960.0,
            growth_rate=4096.0,
            evidence=("dict +1.00/iter", "held by app.cache.CACHE"),
            recommendation="Bound the cache.",
            stack_trace=("app/cache.py:42 in remember", "tests/test_app.py:7 in test_get"),
            fingerprint="python_object:app/cache.py:remember",
            module="app.cache",
            retainer_path="app.cache.CACHE -> dict",
            objects={"dict": 1.0},
            confidence=0.9,
        )
    )
    leak.update(changes)
    return leak


def sample_report() -> model.RunReport:
    """A report built from the model, without running pytest: one leaking entry with a leak."""
    growth = trend.analyse([float(i * 4096) for i in range(11)], metric="malloc", unit="bytes")
    leaking = model.TestResult(
        nodeid="tests/test_app.py::test_get[json]",
        verdict="leak",
        severity="medium",
        iterations=10,
        warmup=6,
        rounds=(10,),
        snapshots={"malloc": tuple(float(i * 4096) for i in range(11)), "fds": (None,) * 11},
        growth={"malloc": growth},
        leaks=(model.from_json(model.Leak, sample_leak()),),
        settings=to_object(resolve([]).to_dict()),
    )
    clean = model.TestResult(nodeid="tests/test_app.py::test_ok", verdict="ok", iterations=10)
    return model.build((leaking, clean), to_object(resolve([]).to_dict()))


def sample_doc() -> dict[str, Any]:
    return to_object(sample_report())


# --------------------------------------------------------------------------- the schema file


def test_schema_is_valid_draft_2020_12():
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["properties"]["schema"]["const"] == model.SCHEMA


def _properties(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (path, subschema) under a "properties" keyword."""
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            yield f"{path}/{name}", sub
        for key, value in node.items():
            yield from _properties(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _properties(value, f"{path}/{i}")


def test_every_property_is_described():
    missing = [p for p, sub in _properties(SCHEMA) if not str(sub.get("description", "")).strip()]
    assert missing == []
    assert all(d.get("description") for d in DEFS.values())


def test_every_object_allows_additional_properties():
    """Forward compatibility: readers of schema 1 must accept keys added later."""

    def objects(node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, dict):
            if "properties" in node:
                yield node
            for value in node.values():
                yield from objects(value)
        elif isinstance(node, list):
            for value in node:
                yield from objects(value)

    closed = [
        o.get("description") for o in objects(SCHEMA) if o.get("additionalProperties") is False
    ]
    assert closed == []


@pytest.mark.parametrize(
    ("where", "required"),
    [
        ("", {"schema", "created", "partial", "environment", "config", "summary", "tests"}),
        ("/properties/environment", {"python", "platform", "plugin", "pytest"}),
        ("/properties/summary", {"checked", "ok", "leak", "error", "skipped", "leaks"}),
        (
            "/$defs/test",
            {"nodeid", "verdict", "iterations", "warmup", "snapshots", "trend", "growth", "leaks"},
        ),
        (
            "/$defs/leak",
            {
                "id",
                "type",
                "source",
                "severity",
                "estimated_size",
                "growth_rate",
                "evidence",
                "recommendation",
                "stack_trace",
            },
        ),
    ],
)
def test_required_keys(where, required):
    node = SCHEMA
    for part in where.split("/")[1:]:
        node = node[part]
    assert set(node["required"]) == required


def test_enums_match_the_code():
    assert DEFS["test"]["properties"]["verdict"]["enum"] == list(vocabulary.VERDICTS)
    assert DEFS["leak"]["properties"]["type"]["enum"] == list(vocabulary.LEAK_TYPES)
    assert DEFS["pattern"]["enum"] == list(trend.PATTERNS)
    assert DEFS["severity"]["enum"] == list(trend.SEVERITIES)
    assert DEFS["settings"]["properties"]["fail_on"]["enum"] == list(SEVERITY_ORDER)
    # One vocabulary for every stage: the modules above re-export it.
    assert trend.SEVERITIES is vocabulary.SEVERITIES
    assert DEFS["leak"]["properties"]["origin"]["enum"] == list(vocabulary.ORIGINS)


@pytest.mark.parametrize(
    ("model", "definition"),
    [
        (model.TestResult, "test"),
        (model.Leak, "leak"),
        (model.Growth, "growth"),
        (model.Finding, "finding"),
        (model.ComparisonRow, "comparison_row"),
        (Settings, "settings"),
    ],
)
def test_every_model_field_is_typed(model, definition):
    """A field added to the model needs its entry (type and description) in the schema."""
    fields = {f.name for f in dataclasses.fields(model)} - {"__test__"}
    assert fields - set(DEFS[definition]["properties"]) == set()


def test_comparison_definitions_match_the_code():
    comparison = baseline.compare_runs(sample_report(), (), old_name="old.json")
    row = to_object(comparison.rows[0])
    assert set(row) <= set(DEFS["comparison_row"]["properties"])
    statuses = DEFS["comparison_row"]["properties"]["status"]["enum"]
    assert statuses == list(baseline.STATUSES)
    assert set(to_object(comparison)) <= set(SCHEMA["properties"]["comparison"]["properties"])


def test_every_option_is_in_the_settings_definition():
    assert {o.name for o in OPTIONS} <= set(DEFS["settings"]["properties"])


def test_environment_keys_are_typed():
    environment = to_object(model.environment())
    assert set(environment) <= set(SCHEMA["properties"]["environment"]["properties"])


# --------------------------------------------------------------------------- validate()


def test_model_built_report_validates():
    assert json_report.validate(sample_doc()) == []


def test_minimal_leak_validates():
    required = DEFS["leak"]["required"]
    leak = {k: v for k, v in sample_leak(stack_trace=None).items() if k in required}
    doc = sample_doc()
    doc["tests"][0]["leaks"] = [leak]
    assert json_report.validate(doc) == []


def test_compared_report_validates():
    """A report with a baseline comparison: the top-level "comparison" and each test's
    "baseline" row."""
    old = sample_report()
    rule = baseline.parse_rule("rate:10%,new-leaks")
    comparison = baseline.compare_runs(
        old, old.tests, rule, old_name="old.json", new_name="new.json"
    )
    tests = tuple(
        dataclasses.replace(t, baseline=baseline.compare_test(t, t, rule)) for t in old.tests
    )
    new = to_object(dataclasses.replace(old, tests=tests, comparison=comparison))
    assert json_report.validate(new) == []
    new["tests"][0]["baseline"]["status"] = "better"
    assert any("tests/0/baseline/status" in e for e in json_report.validate(new))


def test_unknown_keys_are_allowed_everywhere():
    doc = sample_doc()
    doc["future"] = {"x": 1}
    doc["environment"]["gpu"] = "none"
    doc["summary"]["flaky"] = 0
    doc["tests"][0]["future"] = [1, 2]
    doc["tests"][0]["leaks"][0]["future"] = None
    doc["tests"][0]["growth"]["malloc"]["future"] = "x"
    assert json_report.validate(doc) == []


def test_real_run_validates(pytester, run_memleak):
    """A run with a leaking, a clean, an erroring, a skipping and an xfailing test, and a
    fixture measurement, written by the plugin, validates."""
    pytester.makepyfile(
        """
        import pytest

        SINK = []

        @pytest.mark.memcheck
        def test_leak():
            SINK.append(bytes(4096))

        @pytest.mark.memcheck
        def test_clean():
            x = [1, 2, 3]

        @pytest.mark.memcheck
        def test_error():
            raise ValueError("boom")

        @pytest.mark.memcheck
        def test_skip():
            pytest.skip("not here")

        @pytest.mark.memcheck
        @pytest.mark.xfail(reason="known")
        def test_xfail():
            assert False

        def test_fixture(memcheck):
            memcheck.measure(lambda: [1, 2, 3], label="build", iterations=6, warmup=1)
        """
    )
    run = run_memleak("--memleak-iterations=6", "--memleak-warmup=1")
    run.result.assert_outcomes(passed=2, failed=2, skipped=1, xfailed=1)
    doc = run.report
    assert json_report.validate(doc) == []
    verdicts = {
        t["nodeid"].split("::")[1] + (f"[{t['label']}]" if t["label"] else ""): t["verdict"]
        for t in doc["tests"]
    }
    assert verdicts == {
        "test_leak": "leak",
        "test_clean": "ok",
        "test_error": "error",
        "test_skip": "skipped",
        "test_xfail": "skipped",  # pytest's xfailed
        "test_fixture[build]": "ok",
    }
    leaks = sum(not lk["suppressed"] for t in doc["tests"] for lk in t["leaks"])
    assert doc["summary"] == {
        "checked": 6,
        "ok": 2,
        "leak": 1,
        "error": 1,
        "skipped": 2,
        "leaks": leaks,
        "not_checked": 0,
        "suppressions_used": 0,
    }
    assert doc["partial"] is False
    error = run.test("test_error")
    assert error["error"] == "ValueError: boom"
    assert error["error_iteration"] == 1
    assert run.test("test_fixture")["origin"] == "fixture"
    assert to_json(json_report.read_report(str(run.report_path))) == doc


def test_sampled_entries_validate(pytester, run_memleak):
    """Soak mode (the test's own process sampled) and memcheck.watch() (another process)."""
    pytester.makepyfile(
        """
        import subprocess
        import sys
        import time

        import pytest

        @pytest.mark.memcheck(mode="soak", interval="10ms")
        def test_soaked():
            time.sleep(0.1)

        def test_watched(memcheck):
            proc = subprocess.Popen([sys.executable, "-S", "-c", "import time; time.sleep(10)"])
            try:
                time.sleep(0.1)
                with memcheck.watch(proc, interval="10ms"):
                    time.sleep(0.1)
            finally:
                proc.kill()
                proc.wait()
        """
    )
    run = run_memleak()
    doc = run.report
    assert json_report.validate(doc) == []
    soaked, watched = run.test("test_soaked"), run.test("test_watched")
    assert (soaked["origin"], soaked["trend"]["mode"]) == ("marker", "soak")
    assert (watched["origin"], watched["trend"]["mode"]) == ("watch", "watch")
    assert watched["trend"]["process"]["pid"] > 0


def _break(path: str, value: Any = None, delete: bool = False) -> Callable[[dict], None]:
    def apply(doc: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key: Any = int(last) if isinstance(node, list) else last
        if delete:
            del node[key]
        else:
            node[key] = value

    return apply


BROKEN = [
    # (id, change, path in the error, words in the error)
    ("missing-nodeid", _break("tests/0/nodeid", delete=True), "tests/0", "'nodeid' is a required"),
    ("bad-verdict", _break("tests/0/verdict", "leaky"), "tests/0/verdict", "'leaky' is not one of"),
    (
        "bad-leak-type",
        _break("tests/0/leaks/0/type", "memory"),
        "tests/0/leaks/0/type",
        "'memory' is not one of",
    ),
    ("missing-schema", _break("schema", delete=True), "<root>", "'schema' is a required"),
    ("other-schema", _break("schema", "pytest-memleak/2"), "schema", "was expected"),
    ("partial-not-bool", _break("partial", "no"), "partial", "is not of type 'boolean'"),
    (
        "environment-python-missing",
        _break("environment/python", delete=True),
        "environment",
        "'python' is a required",
    ),
    ("summary-count-text", _break("summary/leak", "1"), "summary/leak", "is not of type 'integer'"),
    (
        "negative-iterations",
        _break("tests/0/iterations", -1),
        "tests/0/iterations",
        "less than the minimum",
    ),
    (
        "snapshot-text",
        _break("tests/0/snapshots/malloc/0", "1 KiB"),
        "tests/0/snapshots/malloc/0",
        "is not of type",
    ),
    (
        "bad-pattern",
        _break("tests/0/growth/malloc/pattern", "wobbly"),
        "tests/0/growth/malloc/pattern",
        "'wobbly' is not one of",
    ),
    (
        "confidence-above-1",
        _break("tests/0/growth/malloc/confidence", 1.5),
        "tests/0/growth/malloc/confidence",
        "greater than the maximum",
    ),
    (
        "bad-severity",
        _break("tests/0/leaks/0/severity", "fatal"),
        "tests/0/leaks/0/severity",
        "'fatal' is not one of",
    ),
    (
        "stack-trace-text",
        _break("tests/0/leaks/0/stack_trace", "a.py:1"),
        "tests/0/leaks/0/stack_trace",
        "is not of type",
    ),
    (
        "evidence-missing",
        _break("tests/0/leaks/0/evidence", delete=True),
        "tests/0/leaks/0",
        "'evidence' is a required",
    ),
    ("tests-not-list", _break("tests", {}), "tests", "is not of type 'array'"),
]


@pytest.mark.parametrize(
    ("change", "path", "words"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN]
)
def test_broken_document_gives_errors(change, path, words):
    doc = copy.deepcopy(sample_doc())
    change(doc)
    errors = json_report.validate(doc)
    assert errors, "expected validation errors"
    assert any(e.startswith(f"{path}: ") and words in e for e in errors), errors


def test_several_errors_are_all_reported():
    doc = sample_doc()
    del doc["tests"][0]["nodeid"]
    doc["tests"][1]["verdict"] = "leaky"
    doc["tests"][0]["leaks"][0]["type"] = "memory"
    errors = json_report.validate(doc)
    assert len(errors) == 3, errors


# --------------------------------------------------------------------------- read_report()


@pytest.fixture
def valid_text() -> str:
    return json.dumps(sample_doc(), indent=1)


def test_read_report_round_trip(tmp_path):
    path = tmp_path / "report.json"
    report = sample_report()
    json_report.write_atomic(str(path), report)
    assert json_report.read_report(str(path)) == report
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary file left


READ_ERRORS = [
    # (id, file content (str, or bytes for raw), words in the error)
    ("corrupt", "{not json at all", "is not valid JSON"),
    ("truncated", None, "is not valid JSON"),
    ("empty", "", "is not valid JSON"),
    ("list", "[1, 2]", "is not a pytest-memleak report"),
    ("no-schema-key", '{"tests": []}', "is not a pytest-memleak report"),
    ("schema-not-text", '{"schema": 1, "tests": []}', "is not a pytest-memleak report"),
    ("foreign-schema", '{"schema": "pytest-json-report/1", "tests": []}', "another tool"),
    ("other-version", '{"schema": "pytest-memleak/2", "tests": []}', "'pytest-memleak/2'"),
    ("no-tests", '{"schema": "pytest-memleak/1"}', 'no "tests" list'),
    ("not-utf8", b"\xff\xfe{\x00", "cannot be read"),
]


@pytest.mark.parametrize(
    ("content", "words"), [r[1:] for r in READ_ERRORS], ids=[r[0] for r in READ_ERRORS]
)
def test_read_report_errors_name_the_file(tmp_path, valid_text, content, words):
    path = tmp_path / "bad report.json"
    if content is None:
        content = valid_text[: len(valid_text) // 2]
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ReportError) as info:
        json_report.read_report(str(path))
    assert info.value.path == str(path)
    assert str(path) in str(info.value)
    assert words in str(info.value)
    assert info.value.__cause__ is None  # raised "from None": no chained traceback


def test_read_report_missing_file(tmp_path):
    path = tmp_path / "missing.json"
    with pytest.raises(ReportError, match="no such file") as info:
        json_report.read_report(str(path))
    assert str(path) in str(info.value)


def test_read_report_directory(tmp_path):
    with pytest.raises(ReportError, match="cannot be read") as info:
        json_report.read_report(str(tmp_path))
    assert str(tmp_path) in str(info.value)


# --------------------------------------------------------------------------- report content

#: A conftest for the generated project: a screening stand-in that keeps 1000 objects alive
#: (as real screening does the first time: caches) and never decides, so the loop measures
#: round after round from new baselines until max_iterations.
STITCH_CONFTEST = """
import pytest_memleak.runner as runner

KEEP = []

def screen(metric, values, times, history=None):
    if metric == "py_blocks":
        KEEP.append([object() for _ in range(1000)])
        return "ambiguous"
    return "clean"

runner.screen = screen
"""


def test_snapshots_are_continuous_across_rounds(pytester, run_memleak):
    pytester.makeconftest(STITCH_CONFTEST)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.memcheck
        def test_clean():
            x = [1, 2, 3]
        """
    )
    run = run_memleak("--memleak-iterations=5", "--memleak-max-iterations=20", "--memleak-warmup=1")
    clean = run.test("test_clean")
    assert clean["rounds"] == [5, 10, 15, 20]
    blocks = clean["snapshots"]["py_blocks"]
    assert len(blocks) == 21  # the baseline and one per measured iteration
    steps = [b - a for a, b in zip(blocks, blocks[1:])]
    assert max(abs(s) for s in steps) < 500, steps


def test_report_file_is_plain_json(pytester, run_memleak):
    """No NaN / Infinity (not JSON), ASCII only, one document."""
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.memcheck
        @pytest.mark.parametrize("name", ["caf\\u00e9", "new\\nline"])
        def test_clean(name):
            x = [name]
        """
    )
    run = run_memleak("--memleak-iterations=5", "--memleak-warmup=1")
    text = Path(run.report_path).read_text(encoding="utf-8")
    assert text.isascii()

    def reject(constant: str) -> None:
        raise AssertionError(f"non-standard JSON constant {constant}")

    doc = json.loads(text, parse_constant=reject)
    assert json_report.validate(doc) == []
    assert len(doc["tests"]) == 2


def test_a_report_written_with_every_setting_changed_validates(pytester, run_memleak):
    # iterations above 15 once made max_iterations "derived: 2 x iterations", which the
    # schema's pattern rejected (issue 12): every setting set to something other than its
    # default, on the command line and on a marker, still writes a valid report.
    pytester.makepyfile(
        test_all="""
        import time
        import pytest

        HOLD = []

        def test_plain():
            HOLD.append(bytearray(1024))

        @pytest.mark.memcheck(mode="soak", interval="5ms", window="10s", retention=20)
        def test_soak():
            for _ in range(20):
                HOLD.append(bytearray(1024))
                time.sleep(0.002)

        def test_fixture(memcheck):
            memcheck.measure(lambda: None, label="noop", iterations=16, max_iterations=40)
        """
    )
    pytester.path.joinpath("base.json").write_text(json.dumps(sample_doc()))
    args = [
        "--memleak-all",
        "--memleak-html=report.html",
        "--memleak-profile=lenient",
        "--memleak-iterations=16",
        "--memleak-warmup=2",
        "--memleak-max-rate=1 KiB/iter",
        "--memleak-max-growth=1MiB",
        "--memleak-max-rss=8GiB",
        "--memleak-max-external=1GiB",
        "--memleak-max-external-ratio=50",
        "--memleak-fail-on=medium",
        "--memleak-diagnose=always",
        "--memleak-trace-frames=5",
        "--memleak-timeout=120s",
        "--memleak-fixtures=shared",
        "--memleak-interval=50ms",
        "--memleak-retention=100",
        "--memleak-window=1h",
        "--memleak-save",
        "--memleak-storage=history",
        "--memleak-compare=base.json",
        "--memleak-compare-fail=rate:50%",
        "--memleak-suppress=*/nowhere/*",
    ]
    run = run_memleak(*args)
    assert run.report is not None, run.output
    assert json_report.validate(run.report) == [], run.output
    sources = run.report["config"]["sources"]
    assert sources["max_iterations"].startswith("derived")
    assert to_json(json_report.read_report(str(run.report_path))) == run.report
