"""The report as JSON text: compact, one test per line, each test's text encoded once (the
session rewrites its report every few seconds; re-encoding every test each time grew with the
square of the tests run). The report file and the saved runs are written from this text."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterable

from .model import JsonObject, RunReport, TestResult, to_object

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
