"""``pytest --memleak-serve``: the monitor's server showing a pytest run while it goes on (the
tests checked so far, the current test), from a real run in a subprocess."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from pytest_memleak.render import json_report

TESTS = """
import time
import pytest

SINK = []

@pytest.mark.memcheck
def test_leak():
    SINK.append(bytes(4096))

def test_slow():
    time.sleep(4)
"""
DASHBOARD = re.compile(r"^memleak: live dashboard: (http://127\.0\.0\.1:\d+) \(token")


def pytest_run(cwd: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "memleak", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def wait_for(check: Any, what: str, timeout: float = 20) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def test_the_run_is_served_live_while_it_goes_on(tmp_path: Path) -> None:
    (tmp_path / "test_live.py").write_text(TESTS)
    run = pytest_run(
        tmp_path,
        "--memleak-serve=127.0.0.1:0",
        "--memleak-iterations=6",
        "--memleak-warmup=1",
        "--memleak-report=r.json",
    )
    assert run.stdout is not None
    try:
        url = ""
        for line in run.stdout:
            m = DASHBOARD.match(line)
            if m:
                url = m.group(1)
                break
        assert url, "the run did not print its dashboard's URL"
        # the slow test runs: the leaking one has been checked and checkpointed
        status = wait_for(
            lambda: (
                (s := get(url + "/api/status"))["summary"]["leak"] == 1
                and s["current"] == "test_live.py::test_slow"
                and s
            ),
            "the leaking test in the report and the slow test running",
        )
        assert status["running"] is True
        assert status["samples"] > 0
        leaks = get(url + "/api/leaks")["leaks"]
        assert [(lk["test"], lk["type"]) for lk in leaks] == [
            ("test_live.py::test_leak", "python_object")
        ]
        with urllib.request.urlopen(url + "/api/export", timeout=10) as resp:
            doc = json.loads(resp.read())
        assert json_report.validate(doc) == []
        assert doc["partial"] is True
        with urllib.request.urlopen(url + "/api/events", timeout=10) as resp:
            assert resp.readline() == b"event: update\n"
            update = json.loads(resp.readline().decode()[6:])
        assert "test_live.py::test_leak" in update["table"]
        assert "<svg" in update["live"]  # the running test's series, charted
        assert "test_live.py::test_slow" in update["live"]
        with urllib.request.urlopen(url + "/", timeout=10) as resp:
            assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
        out, _ = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 1, out  # the leaking test fails the run, as without the server
    assert "1 failed, 1 passed" in out
    assert "Traceback" not in out
    # the dashboard's process ended with the run
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/api/status", timeout=5)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--memleak-serve=0.0.0.0:0",), "invalid value for --memleak-serve: '0.0.0.0:0'"),
        (("--memleak-serve=127.0.0.1:0", "--memleak-report=off"), "it needs --memleak-report"),
        (("--memleak-serve=127.0.0.1:BUSY",), "cannot listen on 127.0.0.1:"),
    ],
    ids=["remote", "no-report", "port-in-use"],
)
def test_bad_serve_values_are_usage_errors(
    tmp_path: Path, args: tuple[str, ...], expected: str
) -> None:
    (tmp_path / "test_live.py").write_text(TESTS)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        run = pytest_run(tmp_path, *(a.replace("BUSY", str(port)) for a in args))
        out, _ = run.communicate(timeout=60)
    finally:
        busy.close()
    assert run.returncode == 4, out  # pytest's usage error
    assert expected in out
    assert "Traceback" not in out
