"""The report as JSON text: compact, one test per line, each test's text encoded once (the
session rewrites its report every few seconds; re-encoding every test each time grew with the
square of the tests run). The report file and the saved runs are written from this text."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import tempfile
import uuid
from collections.abc import Iterable
from typing import BinaryIO

from .model import JsonObject, RunReport, TestResult, from_json, to_object

#: Stands for the tests list while the rest of the report is encoded (then replaced by the
#: tests' texts); random per process, so that no string of a report can be mistaken for it.
_TESTS = f"memleak-tests-{uuid.uuid4().hex}"


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _encoded(result: TestResult, data: JsonObject | None = None) -> bytes:
    return _dumps(to_object(result) if data is None else data).encode("ascii")


class EncodedTests:
    """Each test result's JSON text, encoded once and kept in a spool file, not in memory: a
    session rewrites its report every few seconds (re-encoding every test each time made the
    checkpoints grow with the square of the tests run), and a long run held ~12 KB of text a
    leaking test to its end. Keyed by the result object (results are frozen)."""

    def __init__(self) -> None:
        self._texts: dict[int, tuple[TestResult, int, int]] = {}  # (result, offset, length)
        self._spool: BinaryIO | None = None

    def add(self, result: TestResult, data: JsonObject | None = None) -> None:
        """Encode ``result`` now (``data``: its JSON form, when already made)."""
        raw = _encoded(result, data)
        spool = self._spool
        if spool is None:
            # (open for the session: closed by close(), removed by the system if we die)
            spool = self._spool = tempfile.TemporaryFile(prefix="memleak-tests-")  # noqa: SIM115
        offset = spool.seek(0, os.SEEK_END)
        spool.write(raw)
        self._texts[id(result)] = (result, offset, len(raw))

    def raw(self, result: TestResult) -> bytes:
        """``result``'s JSON text, as ASCII bytes."""
        held = self._texts.get(id(result))
        if held is None or held[0] is not result:
            self.add(result)
            held = self._texts[id(result)]
        assert self._spool is not None  # (add made it)
        self._spool.seek(held[1])
        return self._spool.read(held[2])

    def decoded(self, result: TestResult) -> TestResult:
        """``result`` whole, read back from its text (the session keeps results slimmed)."""
        return from_json(TestResult, json.loads(self.raw(result)))

    def whole(self, report: RunReport) -> RunReport:
        """``report`` with every test read back whole from its text (for the HTML page)."""
        return dataclasses.replace(report, tests=tuple(self.decoded(r) for r in report.tests))

    def keep_only(self, results: Iterable[TestResult]) -> None:
        """Forget the texts of results no longer in the run (a re-run test's earlier runs)."""
        alive = {id(r) for r in results}
        for key in [k for k in self._texts if k not in alive]:
            del self._texts[key]

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        """Remove the spool file (the texts are gone: encode again if needed)."""
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        self._texts.clear()


def encode(report: RunReport, tests: EncodedTests | None = None) -> str:
    """The report as JSON text: one test per line, each test's text encoded once when
    ``tests`` holds it."""
    out = io.BytesIO()
    write(out, report, tests)
    return out.getvalue().decode("ascii")


def write(out: BinaryIO, report: RunReport, tests: EncodedTests | None = None) -> None:
    """Write the report's JSON text to ``out``, test by test from ``tests`` (the whole text is
    never held in memory)."""
    head = to_object(dataclasses.replace(report, tests=()))
    head["tests"] = _TESTS
    before, after = _dumps(head).split(_dumps(_TESTS), 1)
    out.write(before.encode("ascii"))
    if report.tests:
        out.write(b"[\n")
        for i, result in enumerate(report.tests):
            if i:
                out.write(b",\n")
            out.write(tests.raw(result) if tests is not None else _encoded(result))
        out.write(b"\n]")
    else:
        out.write(b"[]")
    out.write(after.encode("ascii"))
