"""The HTML report in a real browser: headless Chromium loads it, runs its scripts, draws it.

Skipped when no Chromium is installed, except on CI (``CI`` set), where it fails: CI must
install it (Debian: ``apt-get install -y chromium``).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from test_html import run_report

from pytest_memleak.model import RunReport, from_json
from pytest_memleak.render import html

TIMEOUT_S = 60
HOSTILE = "<script>alert(1)</script>"

SAMPLE = f"""
import pytest

SINK = []


@pytest.mark.memcheck
def test_leak():
    SINK.append(bytes(4096))


@pytest.mark.memcheck
def test_clean():
    x = [1, 2, 3]


@pytest.mark.memcheck
@pytest.mark.parametrize("v", [{HOSTILE!r}, 'say "hi" \\'there\\''])
def test_param(v):
    SINK.append(v * 500)
"""


def find_chromium() -> str | None:
    return (
        shutil.which("chromium")
        or shutil.which("chromium-browser")
        or shutil.which("google-chrome")
    )


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(
                "Chromium is not installed; CI must install it "
                "(apt-get install -y chromium) to test the HTML report in a browser"
            )
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A report from a real run: a leaking test, a clean one and hostile parameter ids."""
    directory = tmp_path_factory.mktemp("browser_report")
    doc = run_report(directory, SAMPLE)
    assert any(HOSTILE in t["nodeid"] for t in doc["tests"])
    assert {t["verdict"] for t in doc["tests"]} >= {"leak", "ok"}
    return doc  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def page(report: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("browser_page") / "report.html"
    html.write(path, html.render(from_json(RunReport, report)))
    return path


def run_chromium(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        *args,
    ]
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"Chromium did not finish within {TIMEOUT_S} s: {' '.join(cmd)}")
    assert proc.returncode == 0, f"Chromium failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    return proc


class DomScan(HTMLParser):
    """Attributes of <body>, the scripts, the chart SVGs and the <details> of the dumped DOM."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.body: dict[str, str | None] = {}
        self.scripts = 0
        self.charts = 0
        self.details: dict[str, dict[str, str | None]] = {}
        self.filter_hidden: bool | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.body = a
        elif tag == "script":
            self.scripts += 1
        elif tag == "svg" and "chart" in (a.get("class") or "").split():
            self.charts += 1
        elif tag == "details" and a.get("id"):
            self.details[a["id"] or ""] = a
        elif tag == "div" and a.get("class") == "filter":
            self.filter_hidden = "hidden" in a

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def dump_dom(chromium: str, tmp_path: Path, url: str) -> DomScan:
    proc = run_chromium(chromium, tmp_path / "profile", "--dump-dom", url)
    scan = DomScan()
    scan.feed(proc.stdout)
    scan.close()
    assert scan.body, f"no <body> in the dumped DOM:\n{proc.stdout[:2000]}\n{proc.stderr[-2000:]}"
    return scan


def test_page_loads_and_scripts_run(
    chromium: str, page: Path, report: dict[str, Any], tmp_path: Path
) -> None:
    scan = dump_dom(chromium, tmp_path, page.as_uri())
    assert scan.body.get("data-status") == "ok", scan.body
    assert "data-errors" not in scan.body, scan.body.get("data-errors")
    n_tests = len(report["tests"])
    assert int(scan.body.get("data-charts") or 0) >= n_tests
    assert scan.charts >= n_tests
    # Only the page's own two scripts exist: the hostile id stayed text.
    assert scan.scripts == 2
    assert any(HOSTILE in chunk for chunk in scan.text)
    assert scan.filter_hidden is False  # the script showed the filter bar


def test_anchor_opens_a_collapsed_test(chromium: str, page: Path, tmp_path: Path) -> None:
    text = page.read_text(encoding="utf-8")
    m = re.search(r'<details class="test v-ok" id="(t\d+)">', text)
    assert m is not None, "the clean test's section should start collapsed"
    scan = dump_dom(chromium, tmp_path, page.as_uri() + "#" + m.group(1))
    assert "open" in scan.details[m.group(1)]
    assert "data-errors" not in scan.body


def test_screenshot(chromium: str, page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    run_chromium(
        chromium,
        tmp_path / "profile",
        f"--screenshot={shot}",
        "--window-size=1280,2000",
        "--hide-scrollbars",
        page.as_uri(),
    )
    assert shot.is_file()
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 2000)
    assert len(data) > 10_000, f"screenshot only {len(data)} bytes: a blank page?"
