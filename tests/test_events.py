"""Hooks for other plugins, and key figures as JUnit XML properties."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

CONFTEST = """
import json

def _log(**data):
    with open("events.jsonl", "a") as f:
        f.write(json.dumps(data) + "\\n")

def pytest_memleak_leak_detected(item, leak):
    _log(event="leak", test=item.nodeid, type=leak["type"])

def pytest_memleak_growth_detected(item, metric, growth):
    _log(event="growth", test=item.nodeid, metric=metric, pattern=growth["pattern"])

def pytest_memleak_buffer_leak_detected(item, leak):
    _log(event="buffer", test=item.nodeid, source=leak["source"])
"""

TESTS = """
import array
import pytest

SINK = []

@pytest.mark.memcheck
def test_buffer():
    SINK.append(array.array("d", [0.0]) * 512)

@pytest.mark.memcheck
def test_clean():
    x = [1, 2, 3]
"""

FAST = ("--memleak-iterations=6", "--memleak-warmup=1")


def _events(pytester: pytest.Pytester) -> list[dict]:
    path = pytester.path / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("xdist", [False, True], ids=["serial", "xdist"])
def test_hooks_fire_for_leaks_growth_and_buffers(pytester, run_memleak, xdist):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_ev=TESTS)
    args = [*FAST, "-n", "2"] if xdist else list(FAST)
    run = run_memleak(*args, plugins=("xdist",) if xdist else ())
    run.result.assert_outcomes(passed=1, failed=1)
    events = _events(pytester)
    leaking = [e for e in events if e["test"].endswith("test_buffer")]
    kinds = {e["event"] for e in leaking}
    assert kinds == {"leak", "growth", "buffer"}
    assert {e["type"] for e in leaking if e["event"] == "leak"} == {"buffer_leak"}
    assert all(e["source"].startswith("test_ev.py:") for e in leaking if e["event"] == "buffer")
    assert not [e for e in events if e["test"].endswith("test_clean")]


def test_junit_xml_carries_memleak_properties(pytester, run_memleak):
    pytester.makepyfile(test_ev=TESTS)
    run = run_memleak(*FAST, "--junitxml=junit.xml")
    run.result.assert_outcomes(passed=1, failed=1)
    root = ET.parse(pytester.path / "junit.xml").getroot()
    props = {}
    for case in root.iter("testcase"):
        props[case.get("name")] = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["test_buffer"]["memleak.verdict"] == "leak"
    assert props["test_buffer"]["memleak.leaks"] == "1"
    assert props["test_clean"]["memleak.verdict"] == "ok"
    assert int(props["test_clean"]["memleak.iterations"]) >= 5
