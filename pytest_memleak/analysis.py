"""The pipeline for one body: loop -> verdict -> (diagnosis) -> TestResult.

Used by the plugin (whole tests), the ``memcheck`` fixture and :func:`pytest_memleak.check`.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from collections.abc import Generator, Sequence
from typing import Callable

from .detectors.verdict import Verdict, judge
from .model import JsonObject, Leak, TestResult, to_object
from .origin import code_origin
from .runner import Calls, Loop, drive
from .series import Measurement
from .settings import Settings
from .units import format_leak_rate


def make_loop(settings: Settings, name: str = "") -> Loop:
    """A loop whose measured rounds are followed by the diagnosis when a leak is suspected
    (``name``: the test's, which the diagnosis remembers a cause it traces under)."""
    loop = Loop(settings)
    verdicts = _Verdicts(name)
    loop.diagnose_hook = verdicts
    loop.known_cause_hook = verdicts.known_cause
    return loop


class _Verdicts:
    """One body's verdict, judged once per decision: before the diagnosis (does it run?),
    after its untraced pass (does the growth hold?), and for the result only when the
    measurement changed since the last judgement. Also the loop's diagnosis hook."""

    def __init__(self, name: str = "") -> None:
        self._last: tuple[tuple[object, ...], Verdict] | None = None
        self.name = name

    def judge(self, m: Measurement) -> Verdict:
        """The verdict of ``m``: the last one judged, when nothing it reads changed since."""
        state = _judged_state(m)
        if self._last is None or self._last[0] != state:
            self._last = (state, judge(m))
        return self._last[1]

    def known_cause(self, calls: Calls) -> Generator[None, None, bool]:
        """Before a confirmation round: is the growth a cause an earlier test's diagnosis
        traced? (Only once the diagnosis was imported: a process where nothing leaked yet
        remembers no cause.)"""
        if calls.measurement.settings.diagnose == "never":
            return False
        if f"{__package__}.diagnose" not in sys.modules:
            return False
        from . import diagnose

        return (yield from diagnose.known_cause(calls))

    def __call__(self, calls: Calls) -> Generator[None, None, None]:
        """Runs after the measured rounds: trace further calls when a leak is suspected."""
        m = calls.measurement
        s = m.settings
        if s.diagnose == "never":
            return
        verdict = self.judge(m)
        if verdict.verdict != "leak" and not (s.diagnose == "always" and m.outcome == "ok"):
            return
        from . import diagnose  # (imported when a body leaks: a clean run never needs it)

        yield from diagnose.run(calls, verdict, self.judge, self.name)


def _judged_state(m: Measurement) -> tuple[object, ...]:
    """What a judgement reads that may change once the measured rounds are over: the outcome
    (a call of the diagnosis that fails) and the diagnosis. The findings the verdict reads of a
    diagnosis (``series.DiagnosisFindings``) are set at the end of its untraced pass, after its
    calls, and the verdict quotes its count of calls: a diagnosis that made no call since the
    last judgement has not changed what it reads."""
    d = m.diagnosis
    return (m.outcome, m.error, d is None, d.iterations if d is not None else 0)


def _verdict(loop: Loop) -> Verdict:
    hook = loop.diagnose_hook
    return hook.judge(loop.m) if isinstance(hook, _Verdicts) else judge(loop.m)


#: The report's copy of the last settings object a result was made with: tests that share
#: one settings object (every test without marker values) share one record, which a long run
#: keeps for every result (2.4 KB a test otherwise).
_last_settings: tuple[Settings | None, JsonObject] = (None, {})


def _settings_record(settings: Settings) -> JsonObject:
    global _last_settings
    if _last_settings[0] is not settings:
        _last_settings = (settings, to_object(settings.to_dict()))
    return _last_settings[1]


def result_of(loop: Loop, nodeid: str, *, label: str = "", origin: str = "marker") -> TestResult:
    """Judge what the loop measured and build the result (with leaks from the diagnosis)."""
    m = loop.m
    v = _verdict(loop)
    leaks: tuple[Leak, ...] = ()
    if v.verdict == "leak" and m.diagnosis is not None:
        from .diagnose import leaks_for

        leaks = tuple(
            dataclasses.replace(
                lk,
                origin=code_origin(lk.source, nodeid, lk.details.allocated_in, lk.retainer_path),
            )
            for lk in leaks_for(m, v)
        )
    result = TestResult(
        nodeid=nodeid,
        label=label,
        origin=origin,
        verdict=v.verdict,
        severity=v.severity,
        iterations=m.iterations,
        warmup=m.warmup,
        partial=m.partial,
        stop_reason=m.stop_reason,
        error=m.error,
        error_iteration=m.error_iteration,
        duration_s=m.duration_s,
        rounds=tuple(m.rounds),
        screens={k: tuple(v) for k, v in m.screens.items()},
        snapshots={k: tuple(v) for k, v in m.series.items()},
        trend=v.trend,
        growth=dict(m.growth),
        findings=tuple(v.findings),
        noise=dict(v.noise),
        leaks=leaks,
        settings=_settings_record(m.settings),
        probe_notes=dict(m.probe_notes),
        diagnosis=m.diagnosis.record() if m.diagnosis is not None else None,
    )
    if v.verdict == "leak" and leaks and all(lk.suppressed for lk in leaks) and not v.limits:
        # Every leak found is known and accepted: the test passes; the report keeps them.
        # (An absolute limit broken -- max_rss, max_external_ratio -- still fails.)
        return dataclasses.replace(
            result,
            verdict="ok",
            severity="none",
            stop_reason="suppressed",
            findings=tuple(dataclasses.replace(f, failing=False) for f in result.findings),
        )
    if v.verdict == "leak":
        return dataclasses.replace(result, message=failure_message(result, v))
    return result


def _repeats(evidence: str, reasons: Sequence[str]) -> bool:
    """``metric: text`` evidence whose text starts a finding's reason."""
    metric, sep, text = evidence.partition(": ")
    return bool(sep) and " " not in metric and any(r.startswith(text) for r in reasons)


def failure_message(r: TestResult, v: Verdict) -> str:
    name = r.nodeid + (f" [{r.label}]" if r.label else "")
    lines = [
        f"memleak: {name} leaks ({r.iterations} measured iterations after {r.warmup} warm-up, "
        f"rounds at {', '.join(map(str, r.rounds))}"
        + ("; confirmed by a known cause" if r.stop_reason == "known cause" else "")
        + f"; severity {r.severity}, health {v.health})"
    ]
    lines += [f"  - {reason}" for reason in v.reasons]
    for lk in r.active_leaks:
        rate_text = format_leak_rate(lk.growth_rate, lk.unit)
        inside = lk.details.allocated_in
        whose = (
            " -- in the test's own code"
            if lk.origin == "test code"
            else f" -- allocated inside {inside}"
            if inside
            else ""
        )
        lines.append(
            f"  leak {lk.id}: {lk.type} at {lk.source} ({rate_text}, severity {lk.severity}){whose}"
        )
        if lk.retainer_path:
            lines.append(f"      held by: {lk.retainer_path}")
        if lk.module:
            lines.append(f"      module: {lk.module}")
        # evidence that only repeats a finding listed above ("malloc: malloc grew ...") is left out
        shown = [ev for ev in lk.evidence if not _repeats(ev, v.reasons)]
        for ev in shown[:3]:
            lines.append(f"      evidence: {ev}")
        for i, frame in enumerate((lk.stack_trace or ())[:3]):
            lines.append(f"      {'stack:' if i == 0 else '      '} {frame}")
        if lk.recommendation:
            lines.append(f"      fix: {lk.recommendation}")
    # Last, what accepts these leaks if they are known and wanted (Valgrind's
    # --gen-suppressions): the ini line to paste, and the marker's form.
    from .diagnose.suppress import paste_lines

    lines += paste_lines(r.active_leaks, name, library=r.origin == "library")
    return "\n".join(lines)


def check(fn: Callable[[], object], *, name: str | None = None, **overrides: object) -> TestResult:
    """Measure ``fn`` outside pytest: the same loop, verdict and diagnosis as the plugin.

    ``overrides`` are the marker's keyword arguments (``iterations``, ``warmup``, ``max_rate``,
    ...). Returns the :class:`TestResult`; its ``verdict`` is ``"leak"`` when ``fn`` leaks.
    """
    from .settings import marker_layer, resolve

    settings = resolve([("marker", marker_layer((), overrides, "check()"))])
    if inspect.iscoroutinefunction(fn):
        raise TypeError("check() takes a plain callable; wrap a coroutine with asyncio.run")
    loop = make_loop(settings)
    drive(loop, fn)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"check(name=...) takes a string; got {name!r} ({type(name).__name__})")
    label = name or getattr(fn, "__qualname__", None) or repr(fn)
    if not isinstance(label, str):
        label = repr(fn)
    return result_of(loop, label, origin="library")
