"""The ``pytest-memleak`` command: show, compare, validate and render saved JSON reports.

::

    pytest-memleak show REPORT [--format text|markdown]
    pytest-memleak compare OLD NEW [--fail RULE] [--json]
    pytest-memleak html REPORT -o FILE [--compare OLD] [--fail RULE]
    pytest-memleak validate REPORT
    pytest-memleak list
    pytest-memleak monitor (--pid PID | -- CMD ARGS...) [--serve HOST:PORT] ...

REPORT, OLD and NEW are report files, or saved runs of the history folder (``--storage``,
default ``.memleak/history``): ``latest``, a run's file name, or a unique prefix of it such as
``20261128-0912``.

Exit status: 0 on success; 1 when ``compare``'s rule fails or ``validate`` finds the document
invalid; 2 on a usage error or an input that cannot be read (missing, corrupt, another tool's
or another schema version's file, unknown saved run, bad rule), reported as one line
``pytest-memleak: error: ...`` on stderr. ``show`` exits 0 even when tests leaked: it only
displays a report; gate CI on the pytest run itself or on ``compare --fail``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
from typing import Any, TextIO

from .baseline import HISTORY_DIR, RULE_EXPECTED, Rule, Storage, compare_runs, parse_rule
from .errors import ConfigError, ReportError
from .model import SCHEMA, RunReport, to_json
from .render import json_report, terminal
from .units import safe
from .version import __version__

PROG = "pytest-memleak"
MAX_ERRORS_SHOWN = 50


class StreamWriter:
    """The part of pytest's TerminalReporter that ``render.terminal.summary`` uses."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout

    def write_sep(self, sep: str, title: str = "", **_: Any) -> None:
        width = shutil.get_terminal_size((80, 24)).columns
        if not title:
            self.write_line(sep * (width // len(sep)))
            return
        text = f" {title} "
        n = max((width - len(text)) // (2 * len(sep)), 1)
        self.write_line(f"{sep * n}{text}{sep * n}")

    def write_line(self, line: str = "", **_: Any) -> None:
        self.stream.write(f"{line}\n")


def _error(message: str) -> int:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    return 2


def _resolve(ref: str, storage: str) -> str:
    return Storage(storage).resolve(ref)


def _read(ref: str, storage: str) -> tuple[str, RunReport]:
    path = _resolve(ref, storage)
    return path, json_report.read_report(path)


def _rule(text: str | None) -> Rule:
    return parse_rule(text, "--fail") if text is not None else Rule()


# --------------------------------------------------------------------------------------------
# Commands


def cmd_show(args: argparse.Namespace) -> int:
    path, report = _read(args.report, args.storage)
    if args.format == "markdown":
        from .render import markdown

        sys.stdout.write(markdown.summary(report) + "\n")
        return 0
    out = StreamWriter(sys.stdout)
    tests = report.tests
    note = ", partial: the run was interrupted" if report.partial else ""
    out.write_line(f"report: {path} (created {report.created or '?'}, {len(tests)} tests{note})")
    terminal.summary(
        out,
        tests,
        width=shutil.get_terminal_size().columns,
        details=True,
        groups=report.groups or (),
        suppressions_used=report.summary.suppressions_used,
    )
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    rule = _rule(args.fail)
    old_path, old = _read(args.old, args.storage)
    new_path, new = _read(args.new, args.storage)
    comparison = compare_runs(
        old, new.tests, rule, old_name=old_path, new_name=new_path, new_created=new.created
    )
    if args.json:
        sys.stdout.write(json.dumps(to_json(comparison), indent=1) + "\n")
    else:
        for line in terminal.comparison_lines(comparison):
            sys.stdout.write(line + "\n")
    return 1 if comparison.failed else 0


def cmd_html(args: argparse.Namespace) -> int:
    rule = _rule(args.fail)
    path, report = _read(args.report, args.storage)
    if args.compare is not None:
        old_path, old = _read(args.compare, args.storage)
        comparison = compare_runs(
            old, report.tests, rule, old_name=old_path, new_name=path, new_created=report.created
        )
        report = dataclasses.replace(report, comparison=comparison)
    try:
        from .render import html
    except ImportError as exc:
        return _error(f"the HTML renderer is not available: {exc}")
    text = html.render(report)
    try:
        html.write(args.output, text)
    except OSError as exc:
        raise ReportError(args.output, f"cannot be written: {exc.strerror or exc}") from None
    sys.stdout.write(f"HTML report written to {args.output}\n")
    return 0


def _load_json(path: str) -> Any:
    return json_report.load_json(path)


def cmd_validate(args: argparse.Namespace) -> int:
    path = _resolve(args.report, args.storage)
    doc = _load_json(path)
    try:
        errors = json_report.validate(doc)
    except OSError as exc:
        return _error(f"cannot read the JSON Schema {json_report.SCHEMA_FILE}: {exc}")
    except RecursionError:
        return _error(f"{path}: is nested too deeply to be a report")
    if not errors:
        count = len(doc["tests"])
        sys.stdout.write(f"{path}: valid ({SCHEMA}, {count} test{'s' if count != 1 else ''})\n")
        return 0
    sys.stdout.write(
        f"{path}: invalid, {len(errors)} error{'s' if len(errors) != 1 else ''} against {SCHEMA}:\n"
    )
    for err in errors[:MAX_ERRORS_SHOWN]:
        sys.stdout.write(f"  {safe(err, 400)}\n")
    if len(errors) > MAX_ERRORS_SHOWN:
        sys.stdout.write(f"  ... and {len(errors) - MAX_ERRORS_SHOWN} more\n")
    return 1


def cmd_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    runs = Storage(args.storage).list()
    if not runs:
        sys.stdout.write(f"no saved runs in {args.storage}\n")
        return 0
    rows = []
    for path in runs:
        try:
            report = json_report.read_report(path)
            rows.append(
                [
                    os.path.basename(path),
                    report.created or "?",
                    report.summary.checked,
                    report.summary.leak,
                    "yes" if report.partial else "",
                ]
            )
        except ReportError as exc:
            rows.append([os.path.basename(path), f"unreadable: {exc.reason}", "", "", ""])
    table = tabulate(
        rows, headers=["run", "created", "tests", "leaked", "partial"], tablefmt="simple"
    )
    sys.stdout.write(
        f"{len(runs)} saved run{'s' if len(runs) != 1 else ''} in "
        f"{args.storage} (oldest first):\n{table}\n"
    )
    return 0


# --------------------------------------------------------------------------------------------
# Parser


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--storage",
        metavar="DIR",
        default=HISTORY_DIR,
        help=f"history folder of saved runs (default {HISTORY_DIR})",
    )
    ref_help = "a report file, or a saved run: 'latest', its file name or a unique prefix of it"
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Show, compare, validate and render pytest-memleak JSON reports; watch a "
        "running process (monitor).",
        epilog="Exit status: 0 ok; 1 compare rule failed / validate found the report invalid; "
        "2 usage error or unreadable input.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser(
        "show",
        parents=[common],
        help="print a report's summary table again",
        description="Print the terminal summary of a report. Exits 0 even when tests leaked.",
    )
    p.add_argument("report", metavar="REPORT", help=ref_help)
    p.add_argument(
        "--format",
        choices=("text", "markdown"),
        default="text",
        help="text (the terminal summary, with each leak's detail) or markdown (the short "
        "summary pytest writes to $GITHUB_STEP_SUMMARY, for any CI's job page)",
    )
    p.set_defaults(func=cmd_show)

    p = sub.add_parser(
        "compare",
        parents=[common],
        help="compare two runs test by test",
        description="Compare two reports test by test; exit 1 when --fail's "
        "rule breaks for any test.",
    )
    p.add_argument("old", metavar="OLD", help="the baseline: " + ref_help)
    p.add_argument("new", metavar="NEW", help="the run to judge: " + ref_help)
    p.add_argument(
        "--fail", metavar="RULE", help="fail on regressions: " + RULE_EXPECTED.replace("%", "%%")
    )
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("html", parents=[common], help="render a report as an HTML page")
    p.add_argument("report", metavar="REPORT", help=ref_help)
    p.add_argument("-o", "--output", metavar="FILE", required=True, help="HTML file to write")
    p.add_argument("--compare", metavar="OLD", help="add a baseline comparison against OLD")
    p.add_argument("--fail", metavar="RULE", help="rule for the comparison's status column")
    p.set_defaults(func=cmd_html)

    p = sub.add_parser(
        "validate",
        parents=[common],
        help="check a report against the schema",
        description=f"Validate a report against the JSON Schema of {SCHEMA}; "
        "exit 1 when it is invalid.",
    )
    p.add_argument("report", metavar="REPORT", help=ref_help)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("list", parents=[common], help="list the saved runs")
    p.set_defaults(func=cmd_list)

    from .monitor.command import add_parser as add_monitor

    add_monitor(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (see the module docstring)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (argparse printed them)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return int(args.func(args))
    except ReportError as exc:
        return _error(f"{exc.path}: {exc.reason}")
    except ConfigError as exc:
        return _error(f"invalid value for {exc.key}: {exc.value!r}; expected {exc.expected}")
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `pytest-memleak show r.json | head`
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
