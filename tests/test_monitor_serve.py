"""``pytest-memleak monitor --serve``: a leaking and a clean small server watched under bounded
load on 127.0.0.1, the API read while the monitor runs, two Server-Sent Events, the token, and
the export checked against the shipped schema."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from pytest_memleak.render import json_report

SERVER = """
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

LEAK = sys.argv[1] == "leak"
KEPT = []


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        blob = b"x" * 65536
        if LEAK:
            KEPT.append(blob)
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\\n")

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Handler)
print("server port", server.server_address[1], flush=True)
server.serve_forever()
"""
REQUESTS = 200  # bounded load, on the loopback only


class Monitor:
    """``pytest-memleak monitor --serve 127.0.0.1:0 ... -- python server.py KIND`` with its
    output read line by line on a thread."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest_memleak", "monitor", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, prefix: str, timeout: float = 20) -> str:
        end = time.monotonic() + timeout
        for line in self.seen:
            if line.startswith(prefix):
                return line
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(line)
            if line.startswith(prefix):
                return line
        pytest.fail(f"no line starting {prefix!r} within {timeout} s: {self.seen}")

    def finish(self, timeout: float = 30) -> tuple[int, str, str]:
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        time.sleep(0.1)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        assert self.proc.stderr is not None
        assert self.proc.stdout is not None
        err = self.proc.stderr.read()
        self.proc.stderr.close()
        self.proc.stdout.close()
        return code, "\n".join(self.seen), err


def get(url: str, **headers: str) -> tuple[int, Any]:
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:  # closes the response it holds
            return exc.code, json.loads(exc.read())


def post(url: str, **headers: str) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=b"", method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:  # closes the response it holds
            return exc.code, json.loads(exc.read())


def read_events(url: str, wanted: int, out: list[tuple[str, Any]]) -> None:
    """Read ``wanted`` "update" events from the stream (and whatever came between them)."""
    with urllib.request.urlopen(url + "/api/events", timeout=20) as resp:
        assert resp.headers["Content-Type"] == "text/event-stream"
        kind, data = "", ""
        while sum(1 for k, _ in out if k == "update") < wanted:
            line = resp.readline().decode("utf-8")
            if not line:
                return
            line = line.rstrip("\n")
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
            elif line == "" and kind:
                out.append((kind, json.loads(data)))
                kind, data = "", ""


def wait_until(check: Any, timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def drive(port: int, n: int) -> None:
    for _ in range(n):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
            assert resp.read() == b"ok\n"
        time.sleep(0.01)


@pytest.mark.parametrize("kind", ["leak", "clean"])
def test_serve_shows_a_leaking_server_and_a_clean_one_live(tmp_path: Path, kind: str) -> None:
    (tmp_path / "server.py").write_text(SERVER)
    mon = Monitor(
        tmp_path,
        "--serve",
        "127.0.0.1:0",
        "--duration",
        "9s",
        "--interval",
        "50ms",
        "--warmup",
        "1.2s",
        "--fail-on",
        "high",
        "--report",
        "r.json",
        "--",
        sys.executable,
        "server.py",
        kind,
    )
    try:
        token = mon.wait_for("dashboard token (for POST /api/snapshot): ").rsplit(" ", 1)[1]
        url = mon.wait_for("http://127.0.0.1:")
        assert url.rsplit(":", 1)[1] != "0"  # the real port
        port = int(mon.wait_for("server port ").rsplit(" ", 1)[1])
        events: list[tuple[str, Any]] = []
        reader = threading.Thread(target=read_events, args=(url, 2, events), daemon=True)
        reader.start()
        drive(port, 20)  # the server warms up, in the monitor's --warmup
        wait_until(lambda: get(url + "/api/status")[1]["elapsed_s"] > 1.3)
        drive(port, REQUESTS)

        if kind == "leak":  # judged once a second: under load the verdict may be a beat late
            wait_until(lambda: get(url + "/api/leaks")[1]["verdict"] == "leak", timeout=3)
        code, status = get(url + "/api/status")
        assert code == 200
        assert status["running"] is True
        assert status["target"]["cmdline"].endswith(f"server.py {kind}")
        assert status["samples"] >= 20
        assert status["latest"]["rss"] > 0
        code, leaks = get(url + "/api/leaks")
        assert code == 200
        if kind == "leak":
            assert leaks["verdict"] == "leak", status
            assert [lk["type"] for lk in leaks["leaks"]] == ["unknown"]
            assert leaks["leaks"][0]["details"]["metric"] == "rss"
            assert status["health"] in ("warning", "critical")
        else:
            assert leaks["leaks"] == [], leaks
            assert leaks["verdict"] == "ok", status
            assert status["health"] == "healthy"

        code, trends = get(url + "/api/trends")
        assert code == 200
        assert "rss" in trends["growth"]
        code, snaps = get(url + "/api/snapshots?since=2.5")
        assert code == 200
        assert snaps["samples"]
        assert all(s["t"] > 2.5 for s in snaps["samples"])
        assert get(url + "/api/snapshots?since=soon")[0] == 400

        # Taking a sample changes state: the token is needed.
        code, body = post(url + "/api/snapshot")
        assert code == 401
        assert "token" in body["error"]
        assert post(url + "/api/snapshot", Authorization="Bearer wrong")[0] == 403
        code, body = post(url + "/api/snapshot", Authorization=f"Bearer {token}")
        assert code == 201
        assert body["sample"]["rss"] > 0

        with urllib.request.urlopen(url + "/api/export", timeout=10) as resp:
            doc = json.loads(resp.read())
        assert json_report.validate(doc) == []
        assert doc["partial"] is True  # still running
        assert doc["tests"][0]["verdict"] == ("leak" if kind == "leak" else "ok")

        reader.join(timeout=10)
        updates = [d for k, d in events if k == "update"]
        assert len(updates) == 2, events
        assert updates[1]["samples"] > updates[0]["samples"]
        assert "<svg" in updates[1]["live"]
        assert {c["key"] for c in updates[1]["cards"]} >= {"rss", "severity", "health"}
    finally:
        code, out, err = mon.finish()
    assert "Traceback" not in err, err
    assert code == (1 if kind == "leak" else 0), out + err
    assert "monitor: JSON report written to r.json" in out
    report = json_report.read_report(str(tmp_path / "r.json"))
    assert report.partial is False
    (result,) = report.tests
    if kind == "leak":
        # The load stopped before the end: memory may have levelled off by then (the final
        # judgement may call it a plateau), but the alert raised under load is in the report.
        assert "rss grew" in result.probe_notes["alerts"]
        assert "ALERT " in out
    else:
        assert result.verdict == "ok"
        assert "alerts" not in result.probe_notes
        assert "ALERT " not in out


def test_the_api_refuses_other_hosts_methods_and_pages(tmp_path: Path) -> None:
    mon = Monitor(
        tmp_path,
        "--serve",
        ":0",
        "--duration",
        "3s",
        "--interval",
        "50ms",
        "--report",
        "off",
        "--",
        sys.executable,
        "-c",
        "import time; time.sleep(30)",
    )
    try:
        url = mon.wait_for("http://127.0.0.1:")
        # a page of another site, through a DNS name pointing at 127.0.0.1
        assert get(url + "/api/status", Host="attacker.example:80")[0] == 403
        assert get(url + "/api/nothing")[0] == 404
        assert get(url + "/api/snapshot")[0] == 405
        req = urllib.request.Request(url + "/api/status", method="DELETE")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=10)
        info.value.close()
        assert info.value.code == 405
        with urllib.request.urlopen(url + "/", timeout=10) as resp:
            csp = resp.headers["Content-Security-Policy"]
            page = resp.read().decode()
        assert "default-src 'none'" in csp
        assert "connect-src 'self'" in csp
        assert "http://" not in page.replace(url, "")
        assert "https://" not in page
    finally:
        code, out, err = mon.finish()
    assert code == 0, out + err
    assert not (tmp_path / ".memleak").exists()  # --report off
