"""Forward pytest-memleak's findings to a log file (a stand-in for your monitoring).

pytest-memleak calls these hooks in the process that ran the test; every argument is the plain
data of the JSON report. Run: ``pytest examples/hooks`` and read ``.memleak/events.jsonl``.
"""

from __future__ import annotations

import json
from pathlib import Path

EVENTS = Path(".memleak") / "events.jsonl"  # beside the default report, outside the sources


def _emit(kind: str, nodeid: str, **data: object) -> None:
    EVENTS.parent.mkdir(exist_ok=True)
    with EVENTS.open("a", encoding="utf-8") as f:
        f.write(json.dumps({"event": kind, "test": nodeid, **data}) + "\n")


def pytest_memleak_leak_detected(item, leak):
    _emit("leak", item.nodeid, type=leak["type"], source=leak["source"],
          rate=leak["growth_rate"], suppressed=leak["suppressed"])


def pytest_memleak_growth_detected(item, metric, growth):
    _emit("growth", item.nodeid, metric=metric, pattern=growth["pattern"],
          slope_per_iter=growth["slope_per_iter"])


def pytest_memleak_buffer_leak_detected(item, leak):
    _emit("buffer", item.nodeid, source=leak["source"], evidence=leak["evidence"][:1])
