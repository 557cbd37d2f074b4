"""pytest-memray's ``limit_leaks`` applied to every test, for bench_peers.py.

Loaded with ``-p memray_limit_leaks`` (this folder on PYTHONPATH) in a venv with pytest-memray.
Every collected test gets ``@pytest.mark.limit_leaks(LIMIT)``; its body is called WARMUP times
untracked, then ITERATIONS times inside one memray-tracked call (so 40 calls in all with the
defaults, as the plugin gets with --memleak-warmup 10 --memleak-iterations 30). memray then fails
the test when more than LIMIT allocated during the tracked calls is still alive at its end.

Environment: MEMRAY_LIMIT (default "1 KB"), ZOO_WARMUP (10), ZOO_ITERATIONS (30), and
PEERS_REPORT: where to write {nodeid: "leak" | "ok" | "error" | "skipped"} as JSON.
"""
import json
import os

import pytest

LIMIT = os.environ.get("MEMRAY_LIMIT", "1 KB")
WARMUP = int(os.environ.get("ZOO_WARMUP", "10"))
ITERATIONS = int(os.environ.get("ZOO_ITERATIONS", "30"))
REPORT = os.environ.get("PEERS_REPORT")
_results = {}


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.limit_leaks(LIMIT))


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    # Outermost wrapper: runs before pytest-memray's wrapper reads pyfuncitem.obj, so memray
    # tracks the repeating function as one call.
    original = pyfuncitem.obj
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    for _ in range(WARMUP):
        original(**kwargs)

    def repeated(*args, **kw):
        result = None
        for _ in range(ITERATIONS):
            result = original(*args, **kw)
        return result

    pyfuncitem.obj = repeated
    try:
        yield
    finally:
        pyfuncitem.obj = original


def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":
        if report.outcome == "passed":
            verdict = "ok"
        elif report.outcome == "skipped":
            verdict = "skipped"
        else:
            text = str(report.longrepr) + " ".join(body for _, body in report.sections)
            verdict = "leak" if "allowed to leak" in text else "error"
        if report.when == "call" or report.nodeid not in _results:
            _results[report.nodeid] = verdict


def pytest_sessionfinish(session, exitstatus):
    if REPORT:
        with open(REPORT, "w") as f:
            json.dump(_results, f, indent=1)
