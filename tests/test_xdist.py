"""pytest-xdist: results travel from the workers on the call reports and the controller writes
one JSON report and one summary, with the same verdicts as a serial run."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("xdist")

FAST = ("--memleak-iterations=5", "--memleak-warmup=1")
#: Auto-loaded plugins the inner runs do not need (hypothesis alone costs ~1 s of start-up).
NO_OPTIONAL_PLUGINS = tuple(
    arg for name in ("hypothesispytest", "anyio", "asyncio") for arg in ("-p", f"no:{name}")
)

SUITE = """
import os
import pytest

SINK = []

@pytest.mark.memcheck
def test_leak_bytes():
    SINK.append(bytes(4096))

@pytest.mark.memcheck
def test_leak_fd():
    SINK.append(os.open(os.devnull, os.O_RDONLY))

@pytest.mark.memcheck
def test_clean_list():
    x = [1, 2, 3]

@pytest.mark.memcheck
def test_clean_temporary():
    x = bytes(4096)
    del x
"""

EXPECTED = {
    "test_suite.py::test_leak_bytes": "leak",
    "test_suite.py::test_leak_fd": "leak",
    "test_suite.py::test_clean_list": "ok",
    "test_suite.py::test_clean_temporary": "ok",
}


def _run(pytester: pytest.Pytester, report: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        *NO_OPTIONAL_PLUGINS,
        *FAST,
        f"--memleak-report={report}",
        *args,
        timeout=120,
    )


def _verdicts(pytester: pytest.Pytester, report: str) -> dict[str, str]:
    doc: dict[str, Any] = json.loads((pytester.path / report).read_text(encoding="utf-8"))
    verdicts: dict[str, str] = {}
    for t in doc["tests"]:
        assert t["nodeid"] not in verdicts, f"two entries for {t['nodeid']}"
        verdicts[t["nodeid"]] = t["verdict"]
    return verdicts


def test_xdist_matches_serial_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)

    parallel = _run(pytester, "xdist.json", "-n", "2")
    parallel.assert_outcomes(passed=2, failed=2)
    parallel.stdout.fnmatch_lines(["*2 workers*"])
    # One summary and one report, both from the controller.
    assert sum("memleak summary" in line for line in parallel.outlines) == 1
    parallel.stdout.fnmatch_lines(
        ["memleak: 4 checked: 2 leak, 2 ok", "memleak: JSON report written to xdist.json"]
    )
    assert sorted(p.name for p in pytester.path.rglob("*.json")) == ["xdist.json"]
    assert _verdicts(pytester, "xdist.json") == EXPECTED

    serial = _run(pytester, "serial.json")
    serial.assert_outcomes(passed=2, failed=2)
    assert _verdicts(pytester, "serial.json") == _verdicts(pytester, "xdist.json")


def test_worker_crash_keeps_the_other_results(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_suite=SUITE,
        test_crash="""
        import os
        import pytest

        @pytest.mark.memcheck
        def test_crash():
            os._exit(1)
        """,
    )
    result = _run(pytester, "report.json", "-n", "2")
    result.stdout.fnmatch_lines(
        ["*worker 'gw*' crashed while running 'test_crash.py::test_crash'*"]
    )
    result.assert_outcomes(passed=2, failed=3)
    result.stdout.fnmatch_lines(["memleak: JSON report written to report.json"])
    verdicts = _verdicts(pytester, "report.json")
    assert {k: v for k, v in verdicts.items() if k in EXPECTED} == EXPECTED
    doc = json.loads((pytester.path / "report.json").read_text())
    assert doc["partial"] is True
    assert doc["crashed"] == ["test_crash.py::test_crash"]
