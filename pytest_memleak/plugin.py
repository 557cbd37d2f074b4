"""pytest hooks: options, the marker, the repeat wrapper, verdicts on reports, the summary.

Thin by design: settings come from :mod:`.settings`, the loop from :mod:`.runner`, verdicts from
:mod:`.detectors`, output from :mod:`.render`. All state lives on one :class:`MemleakPlugin`
registered per session; per-test data travels on the call report as ``report.memleak`` (plain
builtins), which pytest-xdist carries from workers to the controller.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import sys
import time
from collections.abc import Awaitable, Generator
from typing import TYPE_CHECKING, Any, Union

import pytest

from .atomic import check_writable
from .errors import ConfigError, ReportError
from .settings import (
    MARKER_KEYS,
    OPTIONS,
    Layer,
    Settings,
    command_line_layer,
    ini_layer,
    marker_layers,
    resolve,
)

if TYPE_CHECKING:
    from . import outcome
    from .baseline import Storage
    from .fixture import MemcheckFixture
    from .model import Comparison, NotChecked, RunReport, TestResult
    from .render.json_report import EncodedTests

# The loop, the detectors and numpy are imported on the first checked test only: a session
# that checks nothing pays for none of them.

MARKER = "memcheck"
CHECKPOINT_S = 2.0  # at most one partial rewrite of the report per this many seconds
#: ... and per this many times as long as the last rewrite took: a report that grows with a
#: long run (5 KB a clean test: 300 MB at 64,000 tests) is rewritten less often, so that the
#: partial rewrites cost at most about a tenth of the run.
CHECKPOINT_SHARE = 10.0
_SCALAR_TYPES: Any = Union[str, bool, int, float]
settings_key = pytest.StashKey[Settings]()
results_key = pytest.StashKey["list[TestResult]"]()
#: The plugin was asked to check this item (marker or memleak_all).
selected_key = pytest.StashKey[bool]()
#: Why a selected item is not checked, known at collection (its kind, a fixture it uses).
unchecked_key = pytest.StashKey[tuple[str, str]]()
#: Why this run of a selected item was not checked (a call after the first failed ...).
run_note_key = pytest.StashKey[tuple[str, str]]()
#: The test measures with the memcheck fixture: that is its check, the body is not repeated.
uses_fixture_key = pytest.StashKey[bool]()
#: The call was judged (and failed, if it leaked) by the plugin's own loop.
judged_key = pytest.StashKey[bool]()
#: The message this run of the test failed with, and its one-line form.
failure_key = pytest.StashKey[tuple[str, str]]()
#: True while the plugin's loop runs the item's body.
looping_key = pytest.StashKey[bool]()
#: Where warnings went when the item's set-up began (see ``hygiene.warnings_recorder``).
recorder_key = pytest.StashKey[object]()
plugin_key = pytest.StashKey["MemleakPlugin"]()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspec

    pluginmanager.add_hookspecs(hookspec)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("memleak", "memory-leak checks (pytest-memleak)")
    for option in OPTIONS:
        if option.flag:
            group.addoption(
                option.cli_flag,
                action="store_const",
                const="true",
                default=None,
                dest=option.dest,
                help=_argparse_help(option.help),
            )
        else:
            group.addoption(
                option.cli_flag,
                action="store",
                default=None,
                dest=option.dest,
                metavar=option.metavar,
                help=_argparse_help(option.help),
            )
        if option.ini_list:
            parser.addini(option.ini_key, option.help, type="linelist", default=None)
            continue
        try:
            # pytest 9's native [tool.pytest] table keeps TOML types: accept booleans and
            # numbers as well as strings (our parsers take all of them).
            parser.addini(option.ini_key, option.help, type=_SCALAR_TYPES, default=None)
        except (AssertionError, TypeError, ValueError):  # pytest < 9: strings only
            parser.addini(option.ini_key, option.help, type="string", default=None)


def _argparse_help(text: str) -> str:
    """Help text as argparse wants it: it %-formats help, so a literal ``%`` is doubled."""
    return text.replace("%", "%%")


def _session_layers(config: pytest.Config) -> list[tuple[str, Layer]]:
    """The session's raw command-line and ini layers, read once."""
    return [
        ("cli", command_line_layer(lambda dest: getattr(config.option, dest, None))),
        ("ini", ini_layer(config.getini)),
    ]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**settings): run this test repeatedly and fail it when memory or resources "
        f"grow (settings: {', '.join(MARKER_KEYS)})",
    )
    layers = _session_layers(config)
    try:
        settings = resolve(list(layers))
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    is_worker = hasattr(config, "workerinput")
    for path, names in (
        (settings.report, "--memleak-report / memleak_report"),
        (settings.html, "--memleak-html / memleak_html"),
    ):
        if path and not is_worker:
            try:
                check_writable(path)
            except ReportError as exc:
                raise pytest.UsageError(f"{exc} ({names})") from None
    if (
        settings.report
        and settings.html
        and os.path.abspath(settings.report) == os.path.abspath(settings.html)
    ):
        raise pytest.UsageError(
            f"memleak: --memleak-report and --memleak-html name the same file "
            f"({settings.report!r}); give the HTML report a path of its own, such as "
            "memleak.html"
        )
    plugin = MemleakPlugin(config, settings, is_worker)
    plugin.layers = layers
    if settings.compare:
        try:
            plugin.load_baseline()
        except ReportError as exc:
            raise pytest.UsageError(f"{exc} (--memleak-compare / memleak_compare)") from None
    config.stash[plugin_key] = plugin
    config.pluginmanager.register(plugin, "memleak-manager")
    plugin.hooks = CheckHooks(plugin)
    config.pluginmanager.register(plugin.hooks, CHECK_HOOKS)
    if settings.serve and not is_worker:  # --memleak-serve: the live dashboard of the run
        from .monitor.live_run import LiveRun

        config.pluginmanager.register(LiveRun(config, settings), "memleak-live")


#: The name the per-test hooks are registered under (see :class:`CheckHooks`).
CHECK_HOOKS = "memleak-tests"


class CheckHooks:
    """The per-test hooks. Registered with the plugin (so that they keep its place among the
    other plugins' hooks) and unregistered after collection when the run checks nothing: an
    unmarked suite then runs without them (they cost ~40 us a test there: 2,000 trivial tests
    +4.2 % with them, +1.0-1.8 % without; see bench_idle). The work is the plugin's."""

    def __init__(self, plugin: MemleakPlugin) -> None:
        self.plugin = plugin

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        return (yield from self.plugin.runtest_setup(item))

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> Generator[None, Any, Any]:
        return (yield from self.plugin.pyfunc_call(pyfuncitem))

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self.plugin.runtest_call(item))

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        return (yield from self.plugin.runtest_makereport(item, call))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.plugin.runtest_logreport(report)


class MemleakPlugin:
    def __init__(self, config: pytest.Config, settings: Settings, is_worker: bool) -> None:
        self.config = config
        self.settings = settings
        self.is_worker = is_worker
        self.results: list[TestResult] = []
        self._seen: set[str] = set()  # node ids with results
        # results made in this process, by the id of their JSON list on the report
        self._made: dict[int, tuple[list[Any], list[TestResult]]] = {}
        self._encoded: EncodedTests | None = None  # each result's JSON text, encoded once
        # where the session's files went, or why not (the summary's last lines)
        self.report_path: str | None = None
        self.report_error: str | None = None
        self.html_path: str | None = None
        self.html_error: str | None = None
        self.saved_path: str | None = None
        self.save_error: str | None = None
        self.step_summary_path: str | None = None
        self.step_summary_error: str | None = None
        self.interrupted = False
        self.crashed: list[str] = []
        self.not_checked: dict[str, tuple[str, str]] = {}  # nodeid -> (kind, reason)
        self.layers: list[tuple[str, Layer]] = []
        self.baseline: outcome.Baseline | None = None
        self.comparison: Comparison | None = None
        self.final: RunReport | None = None  # the report as written at the session's end
        self._last_write = float("-inf")
        self._next_write = float("-inf")  # no partial rewrite before (see _checkpoint)
        self._unmarked: Settings | None = None  # the settings of tests without marker values
        self._announced = False  # a report saying this run is under way was written
        self._started = False  # the first checked test has started
        self._first_result = False  # the first result is written at once
        self.hooks: CheckHooks | None = None  # registered while tests may be checked

    def need_hooks(self) -> None:
        """Register the per-test hooks again (a test asked for the memcheck fixture by name,
        after collection found nothing to check)."""
        manager = self.config.pluginmanager
        if self.hooks is not None and not manager.is_registered(self.hooks):
            manager.register(self.hooks, CHECK_HOOKS)

    def _drop_hooks(self, items: list[pytest.Item]) -> None:
        """Unregister the per-test hooks when nothing in this run can be checked: no test
        selected, none asking for the memcheck fixture, and no xdist workers' reports to
        read (this process is not an xdist controller)."""
        if self.hooks is None or getattr(self.config.option, "dist", "no") != "no":
            return
        if any("memcheck" in getattr(item, "fixturenames", ()) for item in items):
            return
        self.config.pluginmanager.unregister(self.hooks)

    def _storage(self) -> Storage:
        from .baseline import Storage

        # Relative to where pytest was started, like the report path (and --junitxml).
        here = self.config.invocation_params.dir
        folder = here / (self.settings.storage or ".memleak/history")
        return Storage(str(folder), cwd=str(self.config.rootpath))

    def load_baseline(self) -> None:
        """Read the run to compare against (before this run could be saved over "latest")."""
        ref = self.settings.compare or "latest"
        path = self._storage().resolve(ref)
        from . import outcome
        from .render import json_report

        report = json_report.read_report(path)
        self.baseline = outcome.Baseline.of(path, report, self.settings.compare_fail)

    # -- collection: decide and validate per test ------------------------------------------
    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        if self.settings.disable or not _runs_bodies(self.config):
            self._drop_hooks(items)
            return
        selected = False
        for item in items:
            marks = list(item.iter_markers(MARKER))
            if not marks and not self.settings.all:
                continue
            item.stash[selected_key] = True
            selected = True
            try:
                marker = marker_layers(((m.args, m.kwargs) for m in marks), item.nodeid)
                if marker:
                    settings = resolve([("marker", marker), *self.layers])
                else:  # the run's own: one object for all such tests (a long run keeps them)
                    if self._unmarked is None:
                        self._unmarked = resolve([("marker", marker), *self.layers])
                    settings = self._unmarked
            except ConfigError as exc:
                text = str(exc)
                if item.nodeid not in text:
                    text = text.replace("memleak: ", f"memleak: {item.nodeid}: ", 1)
                raise pytest.UsageError(text) from None
            if "memcheck" in getattr(item, "fixturenames", ()):
                # Measured by its own memcheck fixture calls, which read the marker.
                item.stash[uses_fixture_key] = True
                continue
            from .iteration import unrepeatable  # (imported once a test is checked)

            why = unrepeatable(item)
            if why is None and settings.mode == "soak" and not isinstance(item, pytest.Function):
                why = ("fixture", "soak mode runs test functions only")
            if why is not None:
                item.stash[unchecked_key] = why
                continue
            item.stash[settings_key] = _within_timeout(item, settings)
            item.stash[results_key] = []
        if not selected:
            self._drop_hooks(items)
        if selected and not self.is_worker and not self._announced:
            # Tests will be checked: a report of this run (empty, partial) replaces the previous
            # run's now, so a run interrupted before its first checked test ends (Ctrl-C in an
            # unmarked test) leaves no stale "all clean" report behind.
            self._announced = True
            self._checkpoint(force=True)

    def runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        if not item.stash.get(selected_key, False):
            return (yield)
        from .hygiene import warnings_recorder
        from .iteration import recording_tmp_dirs

        item.stash[recorder_key] = warnings_recorder()  # before its fixtures are set up
        # Each run of the test starts afresh (pytest-rerunfailures and flaky run it again).
        item.stash[results_key] = []
        if failure_key in item.stash:
            del item.stash[failure_key]
        if run_note_key in item.stash:
            del item.stash[run_note_key]
        if judged_key in item.stash:
            del item.stash[judged_key]
        if not self.is_worker and not self._started:
            # The first checked test: a report that says which test this run is in, so a run
            # killed now (a timeout, SIGKILL) leaves a report that names it.
            self._announced = self._started = True
            self._checkpoint(running=item.nodeid, force=True)
        with recording_tmp_dirs(item):
            return (yield)

    # -- running: loop inside the call --------------------------------------------------------
    def pyfunc_call(self, pyfuncitem: pytest.Function) -> Generator[None, Any, Any]:
        settings = pyfuncitem.stash.get(settings_key, None)
        if settings is None:
            return (yield)
        original = pyfuncitem.obj
        origin = "marker" if pyfuncitem.get_closest_marker(MARKER) else "all"
        if settings.mode == "soak":
            return (yield from self._soak(pyfuncitem, settings, origin))
        from . import analysis, hygiene
        from .iteration import SharedFixtureCalls, function_call
        from .runner import drive, drive_async, line_the_callers

        loop = analysis.make_loop(settings, pyfuncitem.nodeid)
        loop.watch_item(pyfuncitem, pyfuncitem.stash.get(recorder_key, hygiene.UNKNOWN))

        def record() -> None:
            _record(pyfuncitem, loop, origin)

        if inspect.iscoroutinefunction(original):
            # Shared fixtures: the event loop the body runs in is one of them.
            @functools.wraps(original)
            async def repeat_async(**kwargs: Any) -> Any:
                nonlocal loop
                pyfuncitem.stash[looping_key] = True
                shared_fixtures = SharedFixtureCalls(pyfuncitem)

                def call() -> Awaitable[Any]:
                    shared_fixtures.before_call()
                    return original(**kwargs)  # type: ignore[no-any-return]

                try:
                    value = await drive_async(loop, call, repeat_failures_pass=True)
                finally:
                    pyfuncitem.stash[looping_key] = False
                    record()
                    del loop  # see repeat()
                self.fail_if_leaking(pyfuncitem)
                return value

            pyfuncitem.obj = repeat_async
        else:

            @functools.wraps(original)
            def repeat(**kwargs: Any) -> Any:
                nonlocal loop
                # A body that async plugins wrapped in a sync runner (pytest-asyncio) runs
                # in an event loop that is one of its function-scoped fixtures: shared.
                fresh = settings.fixtures == "per-iteration" and not _is_async(original)
                call, restore, loop.prepare = function_call(pyfuncitem, original, kwargs, fresh)
                pyfuncitem.stash[looping_key] = True
                try:
                    value = drive(loop, call, repeat_failures_pass=True)
                finally:
                    pyfuncitem.stash[looping_key] = False
                    try:
                        restore()
                    finally:
                        record()
                        # A failure's traceback keeps this frame, and plugins that keep a
                        # failed call's exception on its item (pytest-rerunfailures, flaky)
                        # keep it for the session: it must not hold the loop (measurements,
                        # diagnosis) nor the fixture cycle (~150 KiB a failed test).
                        del call, restore, loop
                        line_the_callers()  # (once: removed when the report is made)
                self.fail_if_leaking(pyfuncitem)
                return value

            pyfuncitem.obj = repeat
        try:
            return (yield)
        finally:
            pyfuncitem.obj = original

    def runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        """TestCase methods and doctests: repeat the item's whole run (``item.runtest``)."""
        settings = item.stash.get(settings_key, None)
        if settings is None or _kind(item) == "function":
            return (yield)
        from . import analysis, hygiene
        from .iteration import UnittestRun, doctest_call, kind
        from .runner import drive, line_the_callers

        original = item.runtest
        origin = "marker" if item.get_closest_marker(MARKER) else "all"
        k = kind(item)
        call = UnittestRun(item, original) if k == "unittest" else doctest_call(item, original)

        def repeat() -> None:
            loop = analysis.make_loop(settings, item.nodeid)
            loop.watch_item(item, item.stash.get(recorder_key, hygiene.UNKNOWN))
            item.stash[looping_key] = True
            try:
                drive(loop, call, repeat_failures_pass=True)
            except BaseException as exc:
                # unittest reported the first run's failure to the item: pytest reports it.
                if not (isinstance(call, UnittestRun) and exc is call.first_failure):
                    raise
                return
            finally:
                item.stash[looping_key] = False
                _record(item, loop, origin)
                line_the_callers()  # (once: removed when the report is made)
            self.fail_if_leaking(item)

        item.runtest = repeat  # type: ignore[method-assign]
        try:
            return (yield)
        finally:
            del item.runtest

    def _soak(
        self, item: pytest.Function, settings: Settings, origin: str
    ) -> Generator[None, Any, Any]:
        """Run the test once while a background sampler watches this process."""
        from .render.progress import soak_progress
        from .runner import shared_probes
        from .soak import SOAK_FIELDS, Sampler, build_result, own_reader

        sampler = Sampler(
            own_reader(shared_probes()),
            SOAK_FIELDS,
            settings.interval,
            settings.retention,
            progress=soak_progress(self.config),
        )
        sampler.start()
        try:
            value = yield
        finally:
            sampler.stop()
            result = build_result(item.nodeid, "", origin, sampler, SOAK_FIELDS, settings)
            undecided = result.trend.undecided
            if undecided:
                item.stash[run_note_key] = ("not decided", f"not decided: {undecided}")
            else:
                item.stash[results_key].insert(0, result)
                _fire_events(item, result)
        self.fail_if_leaking(item)
        return value

    def runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        if call.when == "call" and item.stash.get(selected_key, False):
            from .runner import stop_lining_the_callers

            stop_lining_the_callers()
        report = yield
        if item.stash.get(looping_key, False):
            return report  # a subtest's report, made while the loop runs the body
        selected = item.stash.get(selected_key, False)
        if selected and call.when == "setup" and not report.passed:
            why = "skipped before the call" if report.skipped else "its set-up failed"
            report.memleak_not_checked = ["setup", why]  # type: ignore[attr-defined]
            return report
        if call.when != "call":
            return report
        results = item.stash.get(results_key, None)
        if not results:
            if selected:
                report.memleak_not_checked = list(_why_not_checked(item))  # type: ignore[attr-defined]
            return report
        # A fixture measurement only returns its result (assert_no_leak raises); the test's own
        # loop, a soak and a watched process fail the test.
        failing = [] if item.stash.get(judged_key, False) else self._failures(item)
        results = item.stash[results_key]
        from . import outcome
        from .model import to_object

        data = [to_object(r) for r in results]
        report.memleak = data  # type: ignore[attr-defined]
        if not self.is_worker:  # the controller's logreport takes the typed results as they are
            self._made[id(data)] = (data, list(results))
        ours = item.stash.get(failure_key, None)
        if ours is not None and call.excinfo is not None and report.failed:
            value = call.excinfo.value
            if isinstance(value, pytest.fail.Exception) and value.msg == ours[0]:
                # The detail once, in the failure section; one line in the short summary.
                report.longrepr = leak_failure(*ours, item)  # type: ignore[assignment]
        if failing and report.passed:
            report.outcome = "failed"
            report.longrepr = "\n\n".join(failing)
        elif failing:  # failed for another reason too: keep ours beside the original error
            for message in failing:
                report.sections.append(("memleak", message))
        # Key figures as user properties: junitxml writes the item's properties (they reach the
        # teardown report), so they show in CI systems that read JUnit XML.
        item.user_properties.extend(outcome.junit_properties(results))
        # The report carries them from here: the item (which the session keeps to its end)
        # does not hold them, nor the failure's text, any longer.
        item.stash[results_key] = []
        if failure_key in item.stash:
            del item.stash[failure_key]
        return report

    def _failures(self, item: pytest.Item) -> list[str]:
        """Failure messages of this run of the test; with a baseline, each result gets its
        comparison row."""
        from . import outcome

        results = item.stash.get(results_key, [])
        failing = outcome.leak_messages(results)
        if self.baseline is not None:
            results[:], regressed = outcome.regressions(results, self.baseline)
            failing += regressed
        return failing

    def fail_if_leaking(self, item: pytest.Item) -> None:
        """Fail the call itself (not only its report), so every plugin that looks at the call's
        outcome sees the failure: flaky and pytest-rerunfailures re-run it, junitxml records it."""
        item.stash[judged_key] = True
        failing = self._failures(item)
        if failing:
            text = "\n\n".join(failing)
            # (No local holds the results: the failure's traceback keeps this frame, and
            # flaky and pytest-rerunfailures keep that traceback for the session.)
            item.stash[failure_key] = (text, _short_reason(item, failing))
            pytest.fail(text, pytrace=False)

    def runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_worker:
            return
        data = getattr(report, "memleak", None)
        note = getattr(report, "memleak_not_checked", None)
        if isinstance(data, list):
            # One entry per test whatever re-runs it (rerunfailures, flaky): the last run wins.
            self._forget(report.nodeid)
            self.not_checked.pop(report.nodeid, None)
            made = self._made.pop(id(data), None)
            # Made in this process: already typed; from an xdist worker: read from its JSON
            # (only what the session keeps, unless it must be made again).
            typed = made[1] if made is not None and made[0] is data else None
            from .model import TestResult, from_json, slimmed, slimmed_from_json

            if report.skipped and hasattr(report, "wasxfail"):  # xfailed: the body raised
                from .model import to_object
                from .outcome import expected_failure

                whole = typed or [from_json(TestResult, d) for d in data]
                whole = [expected_failure(r) for r in whole]
                data = [to_object(r) for r in whole]
                kept = [slimmed(r) for r in whole]
            elif typed is not None:
                kept = [slimmed(r) for r in typed]
            else:
                kept = [slimmed_from_json(d) for d in data]
            for result, d in zip(kept, data):
                # The whole result goes to the spooled text; the session keeps what its
                # summary reads, so that its memory stays flat over a long run.
                self.encoded.add(result, d)
                self.results.append(result)
            # Consumed: pytest's terminal reporter keeps every report to the end of the run, and
            # this JSON form (~30 KB a leaking test) is in the spooled text already.
            del report.memleak
            self._seen.add(report.nodeid)
            self._checkpoint()
        elif isinstance(note, list) and len(note) == 2:
            self._forget(report.nodeid)
            self.not_checked[report.nodeid] = (str(note[0]), str(note[1]))

    @property
    def encoded(self) -> EncodedTests:
        if self._encoded is None:
            from .render.json_report import EncodedTests

            self._encoded = EncodedTests()
        return self._encoded

    def _forget(self, nodeid: str) -> None:
        """Drop the results of an earlier run of ``nodeid`` (cheap when there is none)."""
        if nodeid in self._seen:
            self._seen.discard(nodeid)
            self.results = [r for r in self.results if r.nodeid != nodeid]
            self.encoded.keep_only(self.results)

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport) -> None:
        """pytest-xdist: the worker running ``crashitem`` died. No results of ours came back for
        it; the report names it and is marked partial."""
        self.crashed.append(crashitem)

    def _checkpoint(self, running: str | None = None, force: bool = False) -> None:
        """Rewrite the report, marked partial, every few seconds while the session runs (and at
        once for the first result): a run that dies (os._exit, a killed worker, SIGKILL, a
        pytest-timeout kill) still leaves a valid report."""
        now = time.monotonic()
        if not self._first_result and self.results:
            self._first_result = force = True
        if not self.settings.report or (not force and now < self._next_write):
            return
        self._last_write = now
        from .render import json_report

        doc = self._report(partial=True, running=running)
        try:
            json_report.write_atomic(self.settings.report, doc, self.encoded)
        except OSError as exc:
            self.report_error = f"{self.settings.report}: {exc.strerror or exc}"
        took = time.monotonic() - now
        self._next_write = now + max(CHECKPOINT_S, CHECKPOINT_SHARE * took)

    # -- session end: JSON on the controller, then the terminal summary ----------------------
    def pytest_keyboard_interrupt(self) -> None:
        self.interrupted = True

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        runner = sys.modules.get(f"{__package__}.runner")
        if runner is not None:  # (a call that never reached its report)
            runner.stop_lining_the_callers()
        if self.is_worker or not (self.results or self.not_checked or self._written()):
            return
        partial = self.interrupted or exitstatus in (2, 3) or bool(self.crashed)
        from .render import json_report

        doc = self._report(partial=partial)
        if self.baseline is not None:
            from .baseline import compare_runs

            self.comparison = compare_runs(
                self.baseline.report,
                self.results,
                self.settings.compare_fail,
                old_name=self.baseline.path,
                new_name=self.settings.report or "",
                new_created=doc.created,
            )
            doc = dataclasses.replace(doc, comparison=self.comparison)
        self.final = doc
        self._step_summary(doc)
        saving = self.settings.save or self.settings.autosave
        # The file and the saved run are written test by test from the spooled texts.
        encoded = self.encoded
        if self.settings.report:
            try:
                json_report.write_atomic(self.settings.report, doc, encoded)
                self.report_path = self.settings.report
            except OSError as exc:
                self.report_error = f"{self.settings.report}: {exc.strerror or exc}"
        if self.settings.html:
            from .render import html

            try:
                html.write(self.settings.html, html.render(encoded.whole(doc)))
                self.html_path = self.settings.html
            except OSError as exc:
                self.html_error = f"{self.settings.html}: {exc.strerror or exc}"
        if saving:
            try:
                self.saved_path = self._storage().save(
                    doc, write=lambda out: json_report.write(out, doc, encoded)
                )
            except (ReportError, OSError) as exc:
                self.save_error = str(exc)
        encoded.close()

    def _step_summary(self, doc: RunReport) -> None:
        """GitHub Actions (or any CI that sets $GITHUB_STEP_SUMMARY): append a short Markdown
        summary to the job's page."""
        path = os.environ.get("GITHUB_STEP_SUMMARY")
        if not path:
            return
        from .render import markdown

        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(markdown.summary(doc) + "\n")
            self.step_summary_path = path
        except OSError as exc:
            self.step_summary_error = f"{path}: {exc.strerror or exc}"

    def _written(self) -> bool:
        return self._announced and self._last_write != float("-inf")

    def _not_checked_list(self) -> tuple[NotChecked, ...]:
        from .model import NotChecked

        return tuple(
            NotChecked(nodeid=nodeid, kind=kind, reason=reason)
            for nodeid, (kind, reason) in self.not_checked.items()
        )

    def _report(self, *, partial: bool, running: str | None = None) -> RunReport:
        from .groups import group_leaks
        from .model import build, to_object

        return build(
            tuple(self.results),
            to_object(self.settings.to_dict()),
            partial=partial,
            not_checked=self._not_checked_list(),
            running=running,
            crashed=tuple(self.crashed),
            comparison=self.comparison,
            groups=group_leaks(self.results) or None,
        )

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker or not (self.results or self.not_checked):
            return
        from .render import terminal

        final = self.final
        terminal.summary(
            terminalreporter,
            self.results,
            self._not_checked_list(),
            (
                ("JSON report", self.report_path, self.report_error),
                ("HTML report", self.html_path, self.html_error),
                ("run", self.saved_path, self.save_error),
                ("CI summary", self.step_summary_path, self.step_summary_error),
            ),
            self.comparison,
            self.baseline.path if self.baseline is not None else "",
            width=terminalreporter._tw.fullwidth,
            wide=self.settings.table == "wide" or self.config.get_verbosity() > 0,
            groups=(final.groups or ()) if final is not None else (),
            suppressions_used=final.summary.suppressions_used if final is not None else 0,
        )


def leak_failure(text: str, summary: str, item: pytest.Item) -> object:
    """A leak's failure report: the whole message in the failure section, one line in the short
    test summary (which pytest prints whole under CI: the detail would show twice). Built from
    pytest's own report parts, so that pytest-xdist carries it to the controller unchanged."""
    from _pytest._code.code import ReprExceptionInfo, ReprFileLocation, ReprTracebackNative

    path, lineno, _ = item.location
    return ReprExceptionInfo(
        reprtraceback=ReprTracebackNative([line + "\n" for line in text.splitlines()]),
        reprcrash=ReprFileLocation(path, (lineno or 0) + 1, summary),
    )


#: Options under which pytest runs no test body: nothing is checked, no report is written
#: (the last run's stays), no summary is printed.
_NO_BODIES = ("collectonly", "setuponly", "setupplan", "showfixtures", "show_fixtures_per_test")


def _runs_bodies(config: pytest.Config) -> bool:
    return not any(config.getoption(name, False) for name in _NO_BODIES)


def _is_async(fn: Any) -> bool:
    try:
        return inspect.iscoroutinefunction(inspect.unwrap(fn))
    except ValueError:  # a __wrapped__ cycle
        return False


def _kind(item: pytest.Item) -> str:
    from .iteration import kind

    return kind(item)


def _why_not_checked(item: pytest.Item) -> tuple[str, str]:
    note = item.stash.get(run_note_key, None) or item.stash.get(unchecked_key, None)
    if note is not None:
        return note
    if item.stash.get(uses_fixture_key, False):
        return ("not run", "uses the memcheck fixture but measured nothing with it")
    return ("not run", "the body did not run under the plugin (another plugin ran it)")


def _short_reason(item: pytest.Item, failing: list[str]) -> str:
    from . import outcome

    results: list[TestResult] = item.stash.get(results_key, [])
    return outcome.short_reason(results, failing)


def _record(item: pytest.Item, loop: Any, origin: str) -> None:
    """The loop's result onto the item, or why this run was not checked."""
    from . import analysis

    m = loop.m
    if m.outcome == "not_repeatable":
        item.stash[run_note_key] = ("not repeatable", f"not repeatable: {m.error}")
        return
    if m.undecided and not m.confirmed:
        # Not a pass: the budget ran out before the loop could tell (a confirmed growth would
        # have failed the test). Named as not checked, with why.
        item.stash[run_note_key] = ("not decided", f"not decided: {m.undecided}")
        return
    try:
        result = analysis.result_of(loop, item.nodeid, origin=origin)
    except Exception as exc:  # a bug of ours: the test is named as not checked, not failed
        text = f"{type(exc).__name__}: {exc}"[:300]
        item.stash[run_note_key] = (
            "internal error",
            f"pytest-memleak could not judge it ({text}; a bug: please report it)",
        )
        return
    item.stash[results_key].insert(0, result)
    _fire_events(item, result)


#: Share of pytest-timeout's limit the loop may use: the repeated calls must end (and the
#: report be written) well before pytest-timeout would end the test or the process.
TIMEOUT_SHARE = 0.5


def _within_timeout(item: pytest.Item, settings: Settings) -> Settings:
    """Cap the loop's time budget below pytest-timeout's limit for this item, if any."""
    limit = _pytest_timeout(item)
    if not limit or limit <= 0:
        return settings
    budget = limit * TIMEOUT_SHARE
    if settings.timeout is not None and settings.timeout <= budget:
        return settings
    import dataclasses

    sources = dict(settings.sources)
    sources["timeout"] = f"derived: {TIMEOUT_SHARE:g} x pytest-timeout's {limit:g} s"
    return dataclasses.replace(settings, timeout=budget, sources=sources)


def _pytest_timeout(item: pytest.Item) -> float | None:
    if not item.config.pluginmanager.hasplugin("timeout"):
        return None
    try:
        from pytest_timeout import (  # type: ignore[import-untyped,import-not-found,unused-ignore]
            _get_item_settings,
        )

        value = _get_item_settings(item).timeout
    except Exception:
        return None
    return float(value) if isinstance(value, (int, float)) else None


def _fire_events(item: pytest.Item, result: TestResult) -> None:
    """The public hooks, which take the plain dicts of the JSON report."""
    from .model import to_object

    hook = item.config.hook
    for finding in result.findings:
        growth = result.growth.get(finding.metric)
        hook.pytest_memleak_growth_detected(
            item=item,
            metric=finding.metric,
            growth={**(to_object(growth) if growth else {}), **to_object(finding)},
        )
    for leak in result.leaks:
        data = to_object(leak)
        hook.pytest_memleak_leak_detected(item=item, leak=data)
        if leak.type == "buffer_leak":
            hook.pytest_memleak_buffer_leak_detected(item=item, leak=data)


@pytest.fixture
def memcheck(request: pytest.FixtureRequest) -> MemcheckFixture:
    """Measure callables for leaks inside a test: ``memcheck.measure(fn)``,
    ``memcheck.assert_no_leak(fn)``, ``memcheck.snapshot()``."""
    plugin = request.config.stash.get(plugin_key, None)
    if plugin is not None:
        plugin.need_hooks()  # asked for by name (request.getfixturevalue), after collection
    layers = plugin.layers if plugin is not None else []
    item = request.node
    disabled = plugin is None or plugin.settings.disable
    # Validated at collection, unless the plugin is switched off (then nothing is measured).
    marks = [] if disabled else [(m.args, m.kwargs) for m in item.iter_markers(MARKER)]
    marker = marker_layers(marks, item.nodeid)
    # One list per run of the test (a rerun by pytest-rerunfailures starts a new one).
    sink: list[TestResult] = []
    item.stash[results_key] = sink

    def on_result(result: TestResult) -> None:
        _fire_events(item, result)

    from .fixture import MemcheckFixture

    return MemcheckFixture(item.nodeid, layers, marker, sink, on_result=on_result)
