"""Write and read the JSON report: atomically, validated, with clear errors."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from ..atomic import write_bytes_atomic
from ..encoding import EncodedTests, encode, write
from ..errors import ReportError
from ..model import SCHEMA, RunReport, from_json

__all__ = [
    "EncodedTests",
    "encode",
    "read_report",
    "write",
    "write_atomic",
]

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema.json"


def write_atomic(path: str, report: RunReport, tests: EncodedTests | None = None) -> None:
    """Write the report as JSON, atomically, test by test from ``tests``."""
    write_bytes_atomic(path, lambda out: write(out, report, tests))


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
