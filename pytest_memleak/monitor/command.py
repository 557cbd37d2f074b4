"""``pytest-memleak monitor``: watch a running process, or a command it starts, live.

::

    pytest-memleak monitor (--pid PID | -- CMD ARGS...) [--interval 100ms] [--duration 8s]
        [--retention N] [--window DURATION] [--max-growth SIZE] [--max-rate RATE]
        [--max-rss SIZE] [--tree] [--report PATH] [--html PATH] [--events PATH]
        [--serve HOST:PORT [--allow-remote]] [--fail-on SEVERITY]

The run loop: check the options (one clear line and exit 2 on a bad one), listen (``--serve``),
attach or start the target, sample it with soak's Sampler, redraw the terminal view, judge the
samples every second (alerts, events), and stop at ``--duration``, when the process ends, or on
Ctrl-C / SIGTERM. Then the JSON report (and the HTML one, if asked) is written, as a pytest run
writes its own.

Exit status: 1 when ``--fail-on`` is given and the verdict or an alert reached that severity;
else the command's own status when it ended on its own with one; 2 for bad input (also when the
process ended before enough samples were taken: the report is still written); else 0.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from ..atomic import check_writable
from ..errors import ConfigError, ReportError
from ..settings import BY_NAME, resolve
from ..units import parse_choice, parse_duration, parse_int, parse_size
from ..vocabulary import FAIL_ON_SEVERITIES, severity_rank

if TYPE_CHECKING:  # the sampler, the detectors and numpy load when the command runs
    from .state import EventLog, Monitor
    from .target import Target
    from .view import TerminalView

PROG = "pytest-memleak"
DEFAULT_REPORT = ".memleak/monitor.json"
#: The start-up of a command left out of the judgement (seconds).
DEFAULT_WARMUP_CMD = 1.0
#: Seconds between two judgements of the samples (alerts, the terminal's pattern/severity).
CHECK_EVERY_S = 1.0


def add_parser(sub: Any) -> None:
    """Register ``monitor`` on the CLI's subcommands."""
    p = sub.add_parser(
        "monitor",
        help="watch a running process (--pid) or a command (-- CMD) live, with the same "
        "detectors as memcheck.watch",
        description="Sample a process's RSS, USS, fds, threads and children; judge the growth "
        "with memcheck.watch's detectors; show it live on the terminal (and in a browser with "
        "--serve); write the JSON report at the end. Exit status: 1 when --fail-on's severity "
        "was reached; else the command's own exit status; 2 on bad input.",
    )
    p.add_argument("--pid", metavar="PID", help="the process to watch")
    p.add_argument("--interval", metavar="DURATION", help="sampling interval (default 100ms)")
    p.add_argument(
        "--duration",
        metavar="DURATION",
        help="stop after this long (default: until Ctrl-C or the process exits)",
    )
    p.add_argument(
        "--retention",
        metavar="N",
        help="samples kept (default 1000; beyond it every other one is dropped)",
    )
    p.add_argument("--window", metavar="DURATION", help="judge only the last DURATION of samples")
    p.add_argument(
        "--warmup",
        metavar="DURATION",
        help="leave the first DURATION of samples out of the judgement and the charts "
        f"(default {DEFAULT_WARMUP_CMD:g}s for a command, which is starting up; 0 for --pid)",
    )
    p.add_argument(
        "--max-growth",
        metavar="SIZE",
        help="memory growth tolerated before it counts (default: the 1 MiB floor)",
    )
    p.add_argument("--max-rate", metavar="RATE", help="growth rate tolerated, e.g. '100 KB/s'")
    p.add_argument("--max-rss", metavar="SIZE", help="alert when RSS goes above SIZE")
    p.add_argument(
        "--tree", action="store_true", help="also sample the RSS of the whole process tree"
    )
    p.add_argument(
        "--report",
        metavar="PATH",
        default=DEFAULT_REPORT,
        help=f"JSON report written at the end ('off' for none; default {DEFAULT_REPORT})",
    )
    p.add_argument("--html", metavar="PATH", help="also write the HTML report here")
    p.add_argument(
        "--events", metavar="PATH", help="append the events (alerts, growth, leaks) as JSON lines"
    )
    p.add_argument(
        "--serve",
        metavar="HOST:PORT",
        help="serve the live dashboard and its API (port 0: any free port)",
    )
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow --serve on an address other than the loopback",
    )
    p.add_argument(
        "--fail-on",
        metavar="SEVERITY",
        help="exit 1 when a leak or an alert reaches SEVERITY (low, medium, high, critical)",
    )
    p.add_argument("command", nargs="*", metavar="-- CMD ARGS", help="a command to start and watch")
    p.set_defaults(func=run)


class UsageError(Exception):
    """The options do not say what to watch."""


def _error(message: str) -> int:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.stderr.flush()
    return 2


class Options:
    """The options, checked: ConfigError names the first bad one."""

    def __init__(self, args: argparse.Namespace) -> None:
        command = list(args.command or [])
        if command[:1] == ["--"]:
            command = command[1:]
        self.command = command
        self.pid = parse_int(args.pid, "--pid", minimum=1) if args.pid is not None else None
        if self.pid is not None and command:
            raise UsageError("give --pid PID or -- CMD ARGS..., not both")
        if self.pid is None and not command:
            raise UsageError(
                "give the process to watch: --pid PID, or -- CMD ARGS... to start a command"
            )
        layer: dict[str, object] = {}
        for name, value in (
            ("interval", args.interval),
            ("retention", args.retention),
            ("window", args.window),
            ("max_growth", args.max_growth),
            ("max_rate", args.max_rate),
        ):
            if value is not None:
                BY_NAME[name].parse(value, "--" + name.replace("_", "-"))
                layer[name] = value
        self.settings = resolve([("cli", layer)])
        self.duration: float | None = None
        if args.duration is not None:
            self.duration = parse_duration(args.duration, "--duration")
            if not self.duration > 0:
                raise ConfigError("--duration", args.duration, "a positive duration, such as 8s")
        self.warmup = DEFAULT_WARMUP_CMD if command else 0.0
        if args.warmup is not None:
            self.warmup = parse_duration(args.warmup, "--warmup")
        self.max_rss = parse_size(args.max_rss, "--max-rss") if args.max_rss else None
        self.fail_on = (
            parse_choice(args.fail_on, "--fail-on", FAIL_ON_SEVERITIES)
            if args.fail_on is not None
            else None
        )
        self.report = None if args.report.strip().lower() in ("off", "none", "") else args.report
        self.html = args.html
        for path, key in ((self.report, "--report"), (self.html, "--html")):
            if path:
                try:
                    check_writable(path)
                except ReportError as exc:
                    raise ConfigError(
                        key, path, f"a path that can be written ({exc.reason})"
                    ) from None
        if self.report and self.html and os.path.abspath(self.report) == os.path.abspath(self.html):
            raise ConfigError("--html", self.html, "a path other than --report's")
        self.events = args.events
        self.tree = bool(args.tree)
        self.serve: tuple[str, int] | None = None
        if args.serve is not None:
            from .server import check_host, parse_address

            self.serve = parse_address(args.serve)
            check_host(self.serve[0], bool(args.allow_remote))


def run(args: argparse.Namespace) -> int:
    from .state import EventLog
    from .target import Target, TargetError

    try:
        opts = Options(args)
    except UsageError as exc:
        return _error(f"monitor: {exc}")
    server = None
    if opts.serve is not None:
        from .server import DashboardServer

        try:
            server = DashboardServer(opts.serve, None, None, None)  # type: ignore[arg-type]
        except OSError as exc:
            host, port = opts.serve
            return _error(
                f"--serve {host}:{port}: cannot listen there: {exc.strerror or exc}; give a "
                "free port, or port 0 for any"
            )
    events = None
    if opts.events:
        try:
            events = EventLog(opts.events)
        except OSError as exc:
            _close(server)
            return _error(f"--events {opts.events}: cannot be written: {exc.strerror or exc}")
    try:
        target = Target.start(opts.command) if opts.command else Target.attach(opts.pid or 0)
    except TargetError as exc:
        _close(server)
        if events is not None:
            events.close()
        return _error(str(exc))
    try:
        return _watch(opts, target, server, events)
    except TargetError as exc:  # the process went away before its first sample
        return _error(str(exc))
    finally:
        target.stop()
        _close(server)
        if events is not None:
            events.close()


def _close(server: Any) -> None:
    if server is not None:
        server.stop()


def _watch(opts: Options, target: Target, server: Any, events: EventLog | None) -> int:
    from ..model import JsonObject, to_object
    from ..soak import WATCH_FIELDS, short_command
    from .state import LiveSampler, Monitor
    from .target import EXTRA_FIELDS, TREE_FIELD
    from .view import TerminalView

    settings = opts.settings
    extra = (*EXTRA_FIELDS, *((TREE_FIELD,) if opts.tree else ()))
    sampler = LiveSampler(
        target.reader(settings.interval, opts.tree),
        (*WATCH_FIELDS, *extra),
        settings.interval,
        settings.retention,
    )
    config: JsonObject = to_object(settings.to_dict())
    # flat values: the report model reads the configuration's scalars only
    config.update(
        {
            "monitor_pid": target.pid,
            "monitor_command": " ".join(opts.command) if opts.command else None,
            "monitor_duration_s": opts.duration,
            "monitor_warmup_s": opts.warmup,
            "monitor_tree": opts.tree,
            "monitor_fail_on": opts.fail_on,
            "monitor_max_rss": opts.max_rss,
        }
    )
    notes = {"uss": target.uss_note} if target.uss_note else {}
    monitor = Monitor(
        target.info,
        sampler,
        settings,
        extra_fields=extra,
        max_rss=opts.max_rss,
        warmup=opts.warmup,
        events=events,
        config=config,
        notes=notes,
    )
    out = sys.stdout
    view = TerminalView(out)
    stop = threading.Event()
    got_signal: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        got_signal.append(signum)
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        sampler.start()
        what = f"pid {target.pid} ({short_command(target.info.cmdline)})"
        until = f"for {opts.duration:g} s" if opts.duration else "until it exits"
        view.print(
            f"monitoring {what} every {settings.interval * 1000:g} ms {until} (Ctrl-C to stop)"
        )
        if events is not None:
            events.write("start", test=monitor.nodeid, pid=target.pid, cmdline=target.info.cmdline)
        if server is not None:
            from . import dashboard

            server.source = monitor
            server.page = lambda: dashboard.page(monitor)
            server.update = lambda: dashboard.update(monitor)
            server.start()
            view.print(f"dashboard token (for POST /api/snapshot): {server.token}")
            view.print(server.url)
        reason = _loop(opts, monitor, view, stop)
        if got_signal:
            reason = f"stopped by {signal.Signals(got_signal[0]).name}"
            target.stopped_by_us = True
        sampler.stop()
        if target.started:
            target.stop()
        for alert in monitor.check():
            view.print(alert.line())
        monitor.finish(sampler.ended or reason)
        if server is not None:
            time.sleep(0.1)  # the streams send their "end" event
        return _finish(opts, monitor, target, view, events, reason)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def _loop(opts: Options, monitor: Monitor, view: TerminalView, stop: threading.Event) -> str:
    from .view import status_line

    sampler = monitor.sampler
    t0 = time.monotonic()
    next_check = t0 + CHECK_EVERY_S
    tick = min(0.25, max(sampler.interval, 0.02))
    while True:
        if stop.wait(tick):
            return "stopped"
        now = time.monotonic()
        if sampler.ended is not None:
            return sampler.ended
        if opts.duration is not None and now - t0 >= opts.duration:
            return f"--duration {opts.duration:g} s reached"
        if now >= next_check:
            next_check = now + CHECK_EVERY_S
            for alert in monitor.check():
                view.print(alert.line())
        if sampler.samples:
            view.update(
                status_line(sampler.samples[-1], monitor.last_result(), monitor.process.pid)
            )


def _finish(
    opts: Options,
    monitor: Monitor,
    target: Target,
    view: TerminalView,
    events: EventLog | None,
    reason: str,
) -> int:
    from .view import status_line

    result = monitor.result(fresh=True)
    samples = monitor.sampler.samples
    if samples:
        view.update(status_line(samples[-1], result, target.pid), force=True)
    view.close()
    out = sys.stdout
    ended = monitor.sampler.ended
    out.write(f"monitor: {ended or reason}; {len(samples)} samples\n")
    if result.verdict == "leak":
        out.write(result.message.replace("memleak: ", "monitor: ", 1) + "\n")
    elif result.verdict == "ok":
        out.write(f"monitor: no leak: pid {target.pid} shows no sustained growth at the end\n")
    if monitor.alerts:
        n = len(monitor.alerts)
        out.write(f"monitor: {n} alert{'s' if n != 1 else ''} raised during the run:\n")
        for alert in monitor.alerts:
            out.write(f"  {alert.line()}\n")
    report = monitor.report()
    written = []
    failures = []
    if opts.report:
        from ..render import json_report

        try:
            json_report.write_atomic(opts.report, report)
            written.append(f"monitor: JSON report written to {opts.report}")
        except OSError as exc:
            failures.append(f"--report {opts.report}: cannot be written: {exc.strerror or exc}")
    if opts.html:
        from ..render import html

        try:
            html.write(opts.html, html.render(report))
            written.append(f"monitor: HTML report written to {opts.html}")
        except OSError as exc:
            failures.append(f"--html {opts.html}: cannot be written: {exc.strerror or exc}")
    for line in written:
        out.write(line + "\n")
    out.flush()
    worst = monitor.worst_severity()
    if events is not None:
        events.write(
            "end",
            test=monitor.nodeid,
            pid=target.pid,
            reason=ended or reason,
            verdict=result.verdict,
            severity=worst,
            samples=len(samples),
        )
    for failure in failures:
        _error(failure)
    own = target.exit_status()
    if opts.fail_on is not None and severity_rank(worst) >= severity_rank(opts.fail_on):
        out.write(f"monitor: severity {worst} reached --fail-on {opts.fail_on}: exit 1\n")
        out.flush()
        return 1
    if own:
        return own
    if ended is not None and result.verdict == "skipped":
        return _error(
            f"{ended} before enough samples were taken ({result.trend.undecided})"
            + (f"; the report was written to {opts.report}" if opts.report and not failures else "")
        )
    if result.verdict == "skipped":
        out.write(f"monitor: not decided: {result.trend.undecided}\n")
    return 2 if failures else 0
