"""``pytest --memleak-serve=HOST:PORT``: the monitor's dashboard and API showing a pytest run.

The server runs in a child process (``python -m pytest_memleak.monitor.live_run``), so that
nothing it allocates, no thread of it, and no request a browser makes lands in the process
whose memory the tests measure. It shows:

- the tests checked so far: the report the run checkpoints (``--memleak-report``, rewritten at
  most every 2 s while results come in, and at the end);
- the current test's series: the pytest process sampled from outside (RSS, fds, threads,
  children, as ``memcheck.watch`` reads a process) since the test started; the plugin side
  tells the child which test starts, one line on its stdin. Under pytest-xdist the tests run in
  the workers: the table follows them, the series is the controller's.

:class:`LiveRun` is the plugin side (registered by ``plugin.pytest_configure`` on the
controller); :func:`main` is the child.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from ..errors import ConfigError, ReportError
from ..model import Json, JsonObject, RunReport, TestResult, build, to_object
from ..settings import Settings, resolve
from ..soak import WATCH_FIELDS, describe_process, process_reader
from ..units import format_size
from .state import LiveSampler, Subscribers

#: Seconds the plugin waits for the child to listen.
START_TIMEOUT_S = 15.0
#: Seconds between two looks at the checkpointed report (its mtime; read only when changed).
POLL_S = 0.5


# ----------------------------------------------------------------------------- plugin side


class LiveRun:
    """Starts the dashboard's process, tells it which test runs, stops it at the end."""

    def __init__(self, config: Any, settings: Settings) -> None:
        import pytest

        if not settings.report:
            raise pytest.UsageError(
                "memleak: --memleak-serve shows the report the run checkpoints: it needs "
                "--memleak-report (not off)"
            )
        self.config = config
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pytest_memleak.monitor.live_run",
                "--report",
                os.path.abspath(settings.report),
                "--pid",
                str(os.getpid()),
                "--serve",
                str(settings.serve),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # Ctrl-C on the run is the plugin's to pass on
        )
        self.url, self.token = self._started()
        if not self.url:
            raise pytest.UsageError(f"memleak: --memleak-serve={settings.serve}: {self.token}")

    def _started(self) -> tuple[str, str]:
        """(url, token), or ("", the child's error)."""
        out = self.proc.stdout
        assert out is not None
        lines: queue.Queue[str] = queue.Queue()

        def read() -> None:
            for line in out:
                lines.put(line)
                if line.startswith(("http://", "error: ")):
                    break
            lines.put("")

        threading.Thread(target=read, daemon=True).start()
        token = ""
        end = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < end:
            try:
                line = lines.get(timeout=max(end - time.monotonic(), 0.0)).strip()
            except queue.Empty:
                break
            if not line:  # the child ended
                self.proc.wait()
                return "", "the dashboard's process ended at start-up"
            if line.startswith("error: "):
                self.proc.wait()
                return "", line[7:]
            if line.startswith("token "):
                token = line[6:]
            elif line.startswith("http://"):
                return line, token
        self.stop()
        return "", f"the dashboard did not start within {START_TIMEOUT_S:g} s"

    def _tell(self, line: str) -> None:
        stdin = self.proc.stdin
        if stdin is None or stdin.closed:
            return
        try:
            stdin.write(line + "\n")
            stdin.flush()
        except (BrokenPipeError, OSError):
            stdin.close()

    def pytest_sessionstart(self, session: Any) -> None:
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        text = f"memleak: live dashboard: {self.url} (token for POST /api/snapshot: {self.token})"
        if tr is not None:
            tr.write_line(text)

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self._tell("start " + json.dumps(nodeid))

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        self._tell("finish " + json.dumps(nodeid))

    def pytest_unconfigure(self, config: Any) -> None:
        self.stop()

    def stop(self) -> None:
        """The run is over (its report written): the page gets its last update, then ends."""
        if self.proc.poll() is None:
            self._tell("end")
            if self.proc.stdin is not None and not self.proc.stdin.closed:
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# ------------------------------------------------------------------------------ the child


class RunSource(Subscribers):
    """What the server shows of a pytest run (see the module's docstring)."""

    def __init__(self, path: str, sampler: LiveSampler, pid: int) -> None:
        super().__init__()
        self.path = path
        self.sampler = sampler
        self.process = describe_process(pid)
        self.settings = resolve([])
        self.running = True
        self.current: str | None = None
        self.since = 0.0  # sampler time when the current test started
        self.started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self._report: RunReport | None = None
        self._stamp: tuple[int, int] | None = None
        self._lock2 = threading.Lock()

    # -------------------------------------------------------------------- updates
    def test_started(self, nodeid: str | None) -> None:
        samples = self.sampler.samples
        with self._lock2:
            self.current = nodeid
            self.since = samples[-1]["t"] if samples else 0.0

    def poll(self) -> None:
        """Read the checkpointed report again when it changed."""
        try:
            st = os.stat(self.path)
        except OSError:
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        try:
            report = read_report(self.path)
        except ReportError:
            return  # not written yet, or another run's: keep what we have
        with self._lock2:
            self._stamp, self._report = stamp, report

    # ---------------------------------------------------------------- what it shows
    def report(self) -> RunReport:
        return self._report or build((), {}, partial=True)

    def focus(self) -> TestResult | None:
        from ..soak import build_result

        with self._lock2:
            current, since = self.current, self.since
        view = self.sampler.frozen()
        view.samples = [s for s in view.samples if s["t"] >= since]
        if not view.samples:
            return None
        name = current or ("the run has ended" if not self.running else "between tests")
        return build_result(
            name, "pytest process", "watch", view, WATCH_FIELDS, self.settings, self.process
        )

    def status(self) -> JsonObject:
        report = self.report()
        samples = self.sampler.samples
        return {
            "running": self.running,
            "current": self.current,
            "started": self.started,
            "process": to_object(self.process),
            "summary": to_object(report.summary),
            "samples": len(samples),
            "latest": dict(samples[-1].items()) if samples else {},
        }

    def snapshots(self, since: float | None) -> JsonObject:
        with self.sampler.lock:
            rows = list(self.sampler.samples)
        if since is not None:
            rows = [r for r in rows if r["t"] > since]
        return {"fields": list(WATCH_FIELDS), "samples": [dict(r.items()) for r in rows]}

    def trends(self) -> JsonObject:
        focus = self.focus()
        growth = focus.growth if focus is not None else {}
        return {"current": self.current, "growth": {m: to_object(g) for m, g in growth.items()}}

    def leaks(self) -> JsonObject:
        found: list[Any] = []
        for t in self.report().tests:
            found += [{"test": t.key, **to_object(lk)} for lk in t.active_leaks]
        return {"leaks": found}

    def take_snapshot(self) -> JsonObject | None:
        row = self.sampler.take_now()
        return dict(row.items()) if row is not None else None

    def summary(self) -> JsonObject:
        report = self.report()
        s = report.summary
        samples = self.sampler.samples
        rss = samples[-1].get("rss") if samples else None
        cards: list[Any] = [
            {"key": "state", "label": "run", "value": "running" if self.running else "ended"},
            {"key": "checked", "label": "checked", "value": str(s.checked)},
            {"key": "ok", "label": "ok", "value": str(s.ok)},
            {"key": "leak", "label": "leak", "value": str(s.leak), "hot": bool(s.leak)},
            {"key": "error", "label": "error", "value": str(s.error), "hot": bool(s.error)},
            {"key": "skipped", "label": "skipped", "value": str(s.skipped)},
            {"key": "leaks", "label": "leaks found", "value": str(s.leaks), "hot": bool(s.leaks)},
            {"key": "rss", "label": "pytest RSS", "value": format_size(rss) if rss else "-"},
        ]
        banner: JsonObject
        if s.leak:
            banner = {"cls": "bad", "text": f"{s.leak} of {s.checked} checked tests leak"}
        elif s.checked:
            banner = {"cls": "good", "text": f"no leak in {s.checked} checked tests so far"}
        else:
            banner = {"cls": "none", "text": "no test checked yet"}
        alerts: list[Json] = [
            {"severity": t.severity, "line": f"LEAK {t.key}: {t.message.splitlines()[0][8:]}"}
            for t in report.tests
            if t.verdict == "leak" and t.message
        ]
        now = f"running {self.current}" if self.current and self.running else "between tests"
        return {
            "title": "pytest-memleak · live run",
            "subtitle": f"pytest pid {self.process.pid} · {now if self.running else 'ended'}",
            "cards": cards,
            "banner": banner,
            "alerts": alerts,
            "samples": len(samples),
            "table": True,
        }


def read_report(path: str) -> RunReport:
    from ..render import json_report

    return json_report.read_report(path)


def _commands(source: RunSource, stop: threading.Event) -> None:
    """The plugin's lines on stdin: ``start "nodeid"``, ``finish "nodeid"``, ``end``."""
    for line in sys.stdin:
        word, _, rest = line.strip().partition(" ")
        if word == "start":
            source.test_started(json.loads(rest))
        elif word == "finish":
            source.test_started(None)
        elif word == "end":
            break
    stop.set()  # "end", or the run's process closed the pipe (it ended)


def main(argv: list[str] | None = None) -> int:
    from . import dashboard
    from .server import DashboardServer, check_host, parse_address
    from .target import Target, TargetError

    ap = argparse.ArgumentParser(prog="python -m pytest_memleak.monitor.live_run")
    ap.add_argument("--report", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--serve", required=True)
    ap.add_argument("--interval", type=float, default=0.1)
    a = ap.parse_args(argv)
    try:
        host, port = parse_address(a.serve, "--memleak-serve")
        check_host(host, False, "--memleak-serve")
        server = DashboardServer((host, port), None, None, None)  # type: ignore[arg-type]
    except ConfigError as exc:
        print(f"error: expected {exc.expected}", flush=True)
        return 2
    except OSError as exc:
        print(f"error: cannot listen on {a.serve}: {exc.strerror or exc}", flush=True)
        return 2
    try:
        Target.attach(a.pid)
    except TargetError as exc:
        server.server_close()
        print(f"error: {exc}", flush=True)
        return 2
    sampler = LiveSampler(process_reader(a.pid), WATCH_FIELDS, a.interval, 1000)
    source = RunSource(a.report, sampler, a.pid)
    server.source = source
    server.page = lambda: dashboard.page(source)
    server.update = lambda: dashboard.update(source)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run's Ctrl-C is the plugin's
    sampler.start()
    server.start()
    print(f"token {server.token}", flush=True)
    print(server.url, flush=True)
    threading.Thread(target=_commands, args=(source, stop), daemon=True).start()
    while not stop.wait(POLL_S):
        source.poll()
        if sampler.ended is not None:
            break
    sampler.stop()
    source.poll()
    source.running = False
    source.publish("end", {"reason": "the run has ended"})
    time.sleep(0.2)  # the streams send their last update and "end"
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
