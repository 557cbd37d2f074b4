"""Shared fixtures for the plugin's own tests.

``pytester`` is enabled by ``-p pytester`` in pyproject's addopts. Tests that run pytest on
generated test files use :func:`run_memleak`, which runs pytest in a subprocess (the plugin
freezes the garbage collector and reads process-wide probes, so an in-process run would
measure the outer test session) and loads the JSON report it wrote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import pytest

#: Fast loop settings for runs where the exact counts do not matter. 6 measured iterations, not
#: fewer: a round of 3 or 4 has too few points for the trend screen to call it "suspect"
#: (p < 0.01), so growth is never confirmed (see test_config.py); 5 is the edge, 6 has margin.
FAST_ARGS = ("--memleak-iterations=6", "--memleak-warmup=1")

#: A module of marked tests: a deterministic 4 KiB-per-call leak and a clean body.
LEAK_AND_CLEAN = """
import pytest

SINK = []

@pytest.mark.memcheck
def test_leak():
    SINK.append(bytes(4096))

@pytest.mark.memcheck
def test_clean():
    x = [1, 2, 3]
"""


@dataclass
class MemleakRun:
    """Outcome of :func:`run_memleak`: the pytester result and the parsed report (or None)."""

    result: pytest.RunResult
    report: dict[str, Any] | None
    report_path: Path | None

    @property
    def output(self) -> str:
        """stdout and stderr of the run, joined."""
        return "\n".join(self.result.outlines + self.result.errlines)

    def test(self, name: str) -> dict[str, Any]:
        """The report entry of the test whose node id ends with ``name`` (``::name`` or full id);
        fails when there is not exactly one."""
        assert self.report is not None, f"no report was written\n{self.output}"
        found = [
            t
            for t in self.report["tests"]
            if t["nodeid"] == name or t["nodeid"].endswith("::" + name)
        ]
        ids = [t["nodeid"] for t in self.report["tests"]]
        assert len(found) == 1, f"{name!r}: {len(found)} entries among {ids}"
        return found[0]


@pytest.fixture
def run_memleak(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., MemleakRun]:
    """Run pytest in a subprocess in ``pytester.path`` and load its JSON report.

    ``run_memleak(*args, report="report.json", read=None, plugins=(), autoload=False)``:

    - passes ``args``, then ``-p no:cacheprovider`` and ``--memleak-report=<report>``;
      ``report=None`` passes no report option (the ini file or the default decide) and
      ``read`` then names the file to load, relative to ``pytester.path``;
    - loads only this plugin (``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 -p memleak``: the other
      installed plugins triple the start-up time), plus ``-p <name>`` for each of ``plugins``
      (e.g. ``("asyncio", "xdist")``); ``autoload=True`` loads every installed plugin instead.

    Returns a :class:`MemleakRun`; ``.report`` is None when the run wrote no report (a report
    file left by an earlier run is removed first).
    """

    def run(
        *args: str,
        report: str | None = "report.json",
        read: str | None = None,
        plugins: Sequence[str] = (),
        autoload: bool = False,
    ) -> MemleakRun:
        argv = [*args, "-p", "no:cacheprovider"]
        if autoload:
            monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
        else:
            monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
            for name in ("memleak", *plugins):
                argv += ["-p", name]
        if report is not None:
            argv.append(f"--memleak-report={report}")
        name = read if read is not None else report
        path = pytester.path / name if name is not None else None
        if path is not None and path.is_file():
            path.unlink()  # a report left by an earlier run in this test is not this run's
        result = pytester.runpytest_subprocess(*argv)
        doc = None
        if path is not None and path.is_file():
            doc = json.loads(path.read_text(encoding="utf-8"))
        return MemleakRun(result=result, report=doc, report_path=path)

    return run


@pytest.fixture
def fast_args() -> tuple[str, ...]:
    """Command-line options for a quick loop (6 measured iterations, 1 warm-up)."""
    return FAST_ARGS


@pytest.fixture
def leak_and_clean(pytester: pytest.Pytester) -> Path:
    """Write ``test_leak_and_clean.py``: marked ``test_leak`` (4 KiB per call) and
    ``test_clean``. Returns its path."""
    return pytester.makepyfile(test_leak_and_clean=LEAK_AND_CLEAN)
