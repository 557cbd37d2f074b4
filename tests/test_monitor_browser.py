"""The monitor's dashboard in a real browser: headless Chromium (driven through the DevTools
pipe) opens it while a leaking command is watched, sees the chart change between two
screenshots as the Server-Sent Events arrive, and finds no console error, no script error and
no request to anything but the monitor's own server.

Skipped when no Chromium is installed, except on CI (``CI`` set), where it fails, as the HTML
report's browser test does.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cdp import Browser, require_chromium

LEAKER = """
import time
keep = []
for _ in range(1500):
    keep.append(b"x" * 65536)
    time.sleep(0.01)
"""


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_chromium("the dashboard")


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", data[16:24])
    return w, h


CHART_D = (
    "(function(){var p=document.querySelector('svg.chart.memory path.line.rss');"
    "return p?p.getAttribute('d'):null;})()"
)


def test_the_dashboard_updates_live_without_errors(chromium: str, tmp_path: Path) -> None:
    (tmp_path / "leaker.py").write_text(LEAKER)
    mon = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest_memleak",
            "monitor",
            "--serve",
            "127.0.0.1:0",
            "--interval",
            "50ms",
            "--warmup",
            "0.2s",
            "--duration",
            "25s",
            "--report",
            "off",
            "--",
            sys.executable,
            "leaker.py",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    browser = None
    try:
        assert mon.stdout is not None
        url = ""
        for _ in range(5):
            line = mon.stdout.readline().strip()
            if line.startswith("http://127.0.0.1:"):
                url = line
                break
        assert url, "the monitor did not print its URL"
        browser = Browser(chromium, tmp_path / "profile")
        browser.open(url + "/")
        browser.wait_for(
            lambda: (browser.evaluate("+document.body.dataset.updates||0") or 0) >= 1,
            15,
            "the first update",
        )
        first_d = browser.evaluate(CHART_D)
        first_samples = browser.evaluate("+document.body.dataset.samples")
        shot1 = browser.screenshot(tmp_path / "shot1.png")
        browser.wait_for(
            lambda: (browser.evaluate("+document.body.dataset.updates||0") or 0) >= 2,
            15,
            "a second update",
        )
        time.sleep(0.3)  # let the browser paint it
        second_d = browser.evaluate(CHART_D)
        shot2 = browser.screenshot(tmp_path / "shot2.png")

        assert first_d, "the memory chart is drawn"
        assert second_d
        assert second_d != first_d, "the chart changed with the update"
        assert browser.evaluate("+document.body.dataset.samples") > first_samples
        assert png_size(shot1) == png_size(shot2)
        assert png_size(shot1)[0] == 1280
        assert shot1 != shot2
        assert len(shot2) > 20_000, "a blank page?"
        assert browser.evaluate("document.body.dataset.status") == "ok"
        assert browser.evaluate("document.body.dataset.errors || ''") == ""
        assert browser.problems() == []
        # nothing is loaded but the page and its event stream, from the monitor's server
        requests = browser.requests()
        assert url + "/" in requests
        assert url + "/api/events" in requests
        assert [r for r in requests if not r.startswith(url + "/")] == []
        # the page names the process and shows the leak list once the growth is confirmed
        banner = "document.getElementById('banner').className"
        browser.wait_for(lambda: browser.evaluate(banner) == "banner bad", 15, "the leak banner")
        assert browser.evaluate("document.querySelectorAll('#live tr.leakrow').length") == 1
        assert browser.evaluate("document.querySelectorAll('#alerts li.a-critical').length") >= 1
    finally:
        if browser is not None:
            browser.close()
        mon.terminate()
        _, err = mon.communicate(timeout=30)
    assert "Traceback" not in err, err
