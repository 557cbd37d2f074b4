"""Write and read the JSON report: atomically, validated, with clear errors."""

from __future__ import annotations

import dataclasses
import functools
import json
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..atomic import write_bytes_atomic
from ..errors import ReportError
from ..model import SCHEMA, JsonObject, RunReport, TestResult, from_json, to_object

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema.json"
#: Stands for the tests list while the rest of the report is encoded (then replaced by the
#: tests' texts); random per process, so that no string of a report can be mistaken for it.
_TESTS = f"memleak-tests-{uuid.uuid4().hex}"


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


class EncodedTests:
    """Each test result's JSON text, encoded once: a session rewrites its report every few
    seconds, and re-encoding every test each time made the checkpoints grow with the square
    of the tests run. Keyed by the result object (results are frozen)."""

    def __init__(self) -> None:
        self._texts: dict[int, tuple[TestResult, str]] = {}

    def add(self, result: TestResult, data: JsonObject | None = None) -> None:
        """Encode ``result`` now (``data``: its JSON form, when already made)."""
        self._texts[id(result)] = (result, _dumps(to_object(result) if data is None else data))

    def text(self, result: TestResult) -> str:
        held = self._texts.get(id(result))
        if held is None or held[0] is not result:
            self.add(result)
            held = self._texts[id(result)]
        return held[1]

    def keep_only(self, results: Iterable[TestResult]) -> None:
        """Forget the texts of results no longer in the run (a re-run test's earlier runs)."""
        alive = {id(r) for r in results}
        for key in [k for k in self._texts if k not in alive]:
            del self._texts[key]


def encode(report: RunReport, tests: EncodedTests | None = None) -> str:
    """The report as JSON text: one test per line, each test's text encoded once when
    ``tests`` holds it."""
    tests = tests or EncodedTests()
    head = to_object(dataclasses.replace(report, tests=()))
    head["tests"] = _TESTS
    lines = [tests.text(r) for r in report.tests]
    body = "[\n" + ",\n".join(lines) + "\n]" if lines else "[]"
    return _dumps(head).replace(_dumps(_TESTS), body, 1)


def write_atomic(path: str, report: RunReport, tests: EncodedTests | None = None) -> None:
    """Write the report as JSON, atomically."""
    write_text_atomic(path, encode(report, tests))


def write_text_atomic(path: str, text: str) -> None:
    """Write a report already encoded by :func:`encode`, atomically."""
    write_bytes_atomic(path, text.encode("ascii"))


def load_json(path: str) -> Any:
    """The JSON document in ``path``, whatever it holds; ReportError when it is not JSON."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ReportError(path, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(path, f"cannot be read: {exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ReportError(path, f"is not valid JSON (truncated or corrupt?): {exc}") from None
    except RecursionError:
        raise ReportError(path, "is nested too deeply to be a report") from None


def load_schema() -> dict[str, Any]:
    with open(SCHEMA_FILE, encoding="utf-8") as f:
        return json.load(f)  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(load_schema())


def read_report(path: str) -> RunReport:
    """Load a report written by pytest-memleak, validated against the shipped schema and
    converted to the model once; ReportError names the file and the problem."""
    doc = load_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("schema"), str):
        raise ReportError(path, 'is not a pytest-memleak report (no "schema" key)')
    schema = doc["schema"]
    if not schema.startswith("pytest-memleak/"):
        raise ReportError(path, f"is a report of another tool (schema {schema!r})")
    if schema != SCHEMA:
        raise ReportError(path, f"has schema {schema!r}; this version reads {SCHEMA!r}")
    if not isinstance(doc.get("tests"), list):
        raise ReportError(path, 'has no "tests" list')
    try:
        errors = validate(doc)
    except RecursionError:
        raise ReportError(path, "is nested too deeply to be a report") from None
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ReportError(path, f"does not match the report schema: {errors[0]}{more}")
    try:
        return from_json(RunReport, doc)
    except (TypeError, ValueError) as exc:  # the schema allows what the model cannot hold
        raise ReportError(path, f"does not match the report model: {exc}") from None


def validate(doc: dict[str, Any]) -> list[str]:
    """Errors against the shipped JSON Schema (empty when valid), the first bad field first."""
    validator = _validator()
    return [
        f"{'/'.join(str(p) for p in err.absolute_path) or '<root>'}: {err.message}"
        for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    ]
