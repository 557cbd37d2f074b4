"""``pytest-memleak monitor``: a real process watched from a subprocess of the command, its exit
status, its lines, its events and its report (valid against the shipped schema)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_memleak.monitor.view import TerminalView, status_line
from pytest_memleak.render import json_report

#: Keeps 64 KiB (filled, so RSS sees it) every 10 ms for 4 s, then sleeps.
LEAKER = """
import time
keep = []
for _ in range(400):
    keep.append(b"x" * 65536)
    time.sleep(0.01)
time.sleep(60)
"""
#: Allocates and frees, holding nothing.
CLEAN = """
import sys, time
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    x = b"x" * 65536
    time.sleep(0.01)
sys.exit(int(sys.argv[2]))
"""
FAST = ("--interval", "50ms", "--warmup", "0.3s")


def monitor(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_memleak", "monitor", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def valid_report(path: Path) -> dict:
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert json_report.validate(doc) == [], json_report.validate(doc)[:3]
    json_report.read_report(str(path))  # and the model reads it back
    return doc


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr


def test_a_leaking_command_alerts_logs_events_and_fails_on_severity(tmp_path: Path) -> None:
    (tmp_path / "leaker.py").write_text(LEAKER)
    proc = monitor(
        tmp_path,
        *FAST,
        "--duration",
        "3s",
        "--fail-on",
        "low",
        "--events",
        "ev.jsonl",
        "--html",
        "m.html",
        "--",
        sys.executable,
        "leaker.py",
    )
    no_traceback(proc)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("monitoring pid ")
    assert "\r" not in proc.stdout  # not a terminal: plain lines only
    assert any(line.startswith("monitor pid ") and " rss " in line for line in lines)
    assert any(line.startswith("ALERT ") and "rss grew" in line for line in lines), lines
    assert "monitor: JSON report written to .memleak/monitor.json" in lines
    assert lines[-1].startswith("monitor: severity ")
    assert lines[-1].endswith(" reached --fail-on low: exit 1")
    doc = valid_report(tmp_path / ".memleak" / "monitor.json")
    (test,) = doc["tests"]
    assert test["verdict"] == "leak"
    assert test["origin"] == "watch"
    assert test["trend"]["mode"] == "watch"
    assert {lk["type"] for lk in test["leaks"]} == {"unknown"}
    assert len(test["snapshots"]["rss"]) == len(test["snapshots"]["uss"]) > 20
    events = [json.loads(x) for x in (tmp_path / "ev.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start"
    assert kinds[-1] == "end"
    assert {"growth_detected", "leak_detected", "alert"} <= set(kinds)
    growth = next(e for e in events if e["event"] == "growth_detected")
    assert growth["metric"] == "rss"
    assert growth["growth"]["failing"] is True
    # the report is a report like a test run's: show and html read it
    shown = subprocess.run(
        [sys.executable, "-m", "pytest_memleak", "show", ".memleak/monitor.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "LEAK" in shown.stdout
    assert "<svg" in (tmp_path / "m.html").read_text(encoding="utf-8")


def test_a_clean_command_passes_its_exit_status_through(tmp_path: Path) -> None:
    (tmp_path / "clean.py").write_text(CLEAN)
    # a longer warm-up: a loaded machine may take a while to start Python, whose start-up
    # (RSS climbing to its working size) must not be judged
    proc = monitor(
        tmp_path,
        "--interval",
        "50ms",
        "--warmup",
        "0.8s",
        "--",
        sys.executable,
        "clean.py",
        "2",
        "3",
    )
    no_traceback(proc)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "exited with code 3" in proc.stdout
    doc = valid_report(tmp_path / ".memleak" / "monitor.json")
    assert doc["tests"][0]["verdict"] == "ok"
    assert doc["tests"][0]["leaks"] == []
    assert doc["partial"] is False


def test_max_rss_alerts_and_fails_on_high_and_tree_is_sampled(tmp_path: Path) -> None:
    (tmp_path / "clean.py").write_text(CLEAN)
    proc = monitor(
        tmp_path,
        *FAST,
        "--max-rss",
        "1KiB",
        "--tree",
        "--fail-on",
        "high",
        "--",
        sys.executable,
        "clean.py",
        "1.5",
        "0",
    )
    no_traceback(proc)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    alerts = [line for line in proc.stdout.splitlines() if line.startswith("ALERT ")]
    assert len(alerts) == 1, proc.stdout  # once, not at every sample
    assert "[high] rss " in alerts[0]
    assert alerts[0].endswith(" is above --max-rss 1.0 KiB")
    doc = valid_report(tmp_path / ".memleak" / "monitor.json")
    (test,) = doc["tests"]
    assert "above --max-rss" in test["probe_notes"]["alerts"]
    tree = [v for v in test["snapshots"]["tree_rss"] if v is not None]
    rss = [v for v in test["snapshots"]["rss"] if v is not None]
    assert len(tree) == len(rss) > 10
    # the process is part of its tree (read a moment later: its RSS may have moved a little)
    assert all(t >= r - 1024 * 1024 for t, r in zip(tree, rss))


def test_pid_mode_stops_on_sigterm_writes_the_report_and_leaves_the_process(
    tmp_path: Path,
) -> None:
    (tmp_path / "clean.py").write_text(CLEAN)
    target = subprocess.Popen([sys.executable, "clean.py", "30", "0"], cwd=tmp_path)
    try:
        mon = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pytest_memleak",
                "monitor",
                "--pid",
                str(target.pid),
                "--interval",
                "50ms",
                "--report",
                "r.json",
            ],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert mon.stdout is not None
        first = mon.stdout.readline()
        assert first.startswith(f"monitoring pid {target.pid} ")
        assert "until it exits" in first
        time.sleep(1.2)
        mon.send_signal(signal.SIGTERM)
        out, err = mon.communicate(timeout=30)
        assert mon.returncode == 0, out + err
        assert "stopped by SIGTERM" in out
        assert "Traceback" not in err
        assert target.poll() is None  # attached to, not ours to stop
    finally:
        target.kill()
        target.wait()
    doc = valid_report(tmp_path / "r.json")
    assert doc["tests"][0]["trend"]["process"]["pid"] == target.pid
    assert doc["tests"][0]["iterations"] >= 10


def test_ctrl_c_ends_the_command_and_writes_the_report(tmp_path: Path) -> None:
    (tmp_path / "clean.py").write_text(CLEAN)
    mon = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest_memleak",
            "monitor",
            *FAST,
            "--report",
            "r.json",
            "--",
            sys.executable,
            "clean.py",
            "30",
            "0",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert mon.stdout is not None
    mon.stdout.readline()
    time.sleep(1.2)
    mon.send_signal(signal.SIGINT)  # to the monitor only: it ends the command itself
    out, err = mon.communicate(timeout=30)
    assert mon.returncode == 0, out + err
    assert "stopped by SIGINT" in out
    assert "Traceback" not in err
    doc = valid_report(tmp_path / "r.json")
    assert doc["tests"][0]["iterations"] >= 10


def _busy_port() -> tuple[object, int]:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s, s.getsockname()[1]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--pid", "999999999"), "--pid 999999999: no such process"),
        (("--pid", "abc"), "invalid value for --pid: 'abc'; expected an integer >= 1"),
        (("--interval", "fast", "--", "true"), "invalid value for --interval: 'fast'"),
        (("--duration", "0", "--", "true"), "invalid value for --duration: '0'"),
        (("--fail-on", "huge", "--", "true"), "expected one of low, medium, high, critical"),
        (("--", "/no/such/command"), "command '/no/such/command' failed to start"),
        (("--serve", "0.0.0.0:0", "--", "true"), "needs --allow-remote"),
        (("--serve", "127.0.0.1:http", "--", "true"), "invalid value for --serve"),
        (("--serve", "BUSY", "--", "true"), "cannot listen there"),
        (("--report", "file.txt/r.json", "--", "true"), "invalid value for --report"),
        ((), "give the process to watch: --pid PID, or -- CMD ARGS"),
        (("--pid", "1", "--", "true"), "not both"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 12 else None,
)
def test_bad_input_is_one_clear_line_and_exit_2(
    tmp_path: Path, args: tuple[str, ...], expected: str
) -> None:
    (tmp_path / "file.txt").write_text("")
    sock, port = _busy_port()
    try:
        args = tuple(f"127.0.0.1:{port}" if a == "BUSY" else a for a in args)
        proc = monitor(tmp_path, *args, timeout=30)
    finally:
        sock.close()  # type: ignore[attr-defined]
    no_traceback(proc)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = proc.stderr.splitlines()
    assert len(errors) == 1, errors
    assert errors[0].startswith("pytest-memleak: error: ")
    assert expected in errors[0]
    assert not (tmp_path / ".memleak").exists()  # nothing was watched: no report


def test_a_process_that_exits_at_once_is_an_error_with_a_valid_report(tmp_path: Path) -> None:
    proc = monitor(
        tmp_path, "--interval", "50ms", "--", sys.executable, "-c", "import time; time.sleep(0.5)"
    )
    no_traceback(proc)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (error,) = proc.stderr.splitlines()
    assert "exited with code 0 before enough samples were taken" in error
    assert "the report was written to .memleak/monitor.json" in error
    doc = valid_report(tmp_path / ".memleak" / "monitor.json")
    assert doc["tests"][0]["verdict"] == "skipped"


def test_a_pid_that_has_already_exited_is_a_clear_error(tmp_path: Path) -> None:
    import psutil

    target = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while psutil.Process(target.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc = monitor(tmp_path, "--pid", str(target.pid), timeout=30)
    finally:
        target.wait()
    no_traceback(proc)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr == (
        f"pytest-memleak: error: --pid {target.pid}: the process has exited (a zombie)\n"
    )


def test_a_pid_that_exits_during_the_watch_ends_it(tmp_path: Path) -> None:
    target = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(2)"])
    try:
        proc = monitor(tmp_path, "--pid", str(target.pid), "--interval", "50ms")
    finally:
        target.wait()
    no_traceback(proc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"monitor: process {target.pid} exited; " in proc.stdout
    doc = valid_report(tmp_path / ".memleak" / "monitor.json")
    assert doc["tests"][0]["stop_reason"] == f"process {target.pid} exited"
    assert doc["tests"][0]["verdict"] == "ok"  # seconds at 50 ms: enough samples to judge


def test_terminal_view_redraws_one_line_on_a_tty_and_prints_alerts_above() -> None:
    out = io.StringIO()
    view = TerminalView(out, tty=True)
    row = {"t": 1.0, "rss": 10 * 1024 * 1024.0, "fds": 4.0, "threads": 2.0, "children": 0.0}
    view.update(status_line(row, None, 42), force=True)
    view.update(status_line({**row, "t": 2.0}, None, 42), force=True)
    view.print("ALERT something")
    view.close()
    text = out.getvalue()
    assert text.count("\r\x1b[K") == 2  # the line was redrawn, then cleared for the alert
    assert "\nALERT" not in text
    assert "\r\x1b[KALERT something\n" in text
    assert "monitor pid 42     2.0s  rss 10.0 MiB  fds 4  threads 2  children 0" in text
    plain = io.StringIO()
    view = TerminalView(plain, tty=False)
    view.update(status_line(row, None, 42), force=True)
    view.print("ALERT x")
    assert "\r" not in plain.getvalue()
    assert plain.getvalue().count("\n") == 2


def test_help_names_the_command_line_of_the_docs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_memleak", "monitor", "--help"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0
    for flag in (
        "--pid",
        "--interval",
        "--duration",
        "--report",
        "--html",
        "--serve",
        "--fail-on",
        "--allow-remote",
        "--events",
        "--warmup",
        "--tree",
    ):
        assert flag in proc.stdout
