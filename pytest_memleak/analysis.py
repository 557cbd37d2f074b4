"""The pipeline for one body: loop -> verdict -> (diagnosis) -> TestResult.

Used by the plugin (whole tests), the ``memcheck`` fixture and :func:`pytest_memleak.check`.
"""

from __future__ import annotations

import inspect
from collections.abc import Generator
from typing import Any, Callable

from .detectors import diagnose
from .detectors.verdict import Verdict, judge
from .report import TestResult, code_origin
from .runner import Loop, drive
from .settings import Settings
from .units import format_size


def make_loop(settings: Settings) -> Loop:
    loop = Loop(settings)
    loop.diagnose_hook = _diagnosis_steps
    return loop


def _diagnosis_steps(loop: Loop) -> Generator[None, None, None]:
    """Runs after the measured rounds: trace further iterations when a leak is suspected."""
    s = loop.settings
    if s.diagnose == "never":
        return
    verdict = judge(loop.m)
    if verdict.verdict != "leak" and not (s.diagnose == "always" and loop.m.outcome == "ok"):
        return
    yield from diagnose.run(loop, verdict)


def finish(loop: Loop, nodeid: str, *, label: str = "", origin: str = "marker") -> TestResult:
    """Judge what the loop measured and build the result (with leaks from the diagnosis)."""
    m = loop.m
    v = judge(m)
    leaks = diagnose.leaks_for(m, v)
    for lk in leaks:
        lk.origin = code_origin(lk.source, nodeid, lk.details.get("allocated_in"), lk.retainer_path)
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
        rounds=list(m.rounds),
        screens=dict(m.screens),
        snapshots=m.series,
        trend=v.trend,
        growth={k: g.to_dict() for k, g in m.growth.items()},
        findings=[f.to_dict() for f in v.findings],
        noise=v.noise,
        leaks=[lk.to_dict() for lk in leaks],
        settings=m.settings.to_dict(),
        probe_notes=m.probe_notes,
        diagnosis=m.diagnosis.to_dict() if m.diagnosis is not None else None,
    )
    if v.verdict == "leak" and leaks and all(lk.suppressed for lk in leaks) and not v.limits:
        # Every leak found is known and accepted: the test passes; the report keeps them.
        # (An absolute limit broken -- max_rss, max_external_ratio -- still fails.)
        v.verdict = result.verdict = "ok"
        result.severity = "none"
        result.stop_reason = "suppressed"
        for f in result.findings:
            f["failing"] = False
    result.message = failure_message(result, v) if v.verdict == "leak" else ""
    return result


def failure_message(r: TestResult, v: Verdict) -> str:
    name = r.nodeid + (f" [{r.label}]" if r.label else "")
    lines = [
        f"memleak: {name} leaks ({r.iterations} measured iterations after {r.warmup} warm-up, "
        f"rounds at {', '.join(map(str, r.rounds))}; severity {r.severity}, health {v.health})"
    ]
    lines += [f"  - {reason}" for reason in v.reasons]
    for lk in r.leaks:
        if lk.get("suppressed"):
            continue
        rate = lk.get("growth_rate")
        unit = lk.get("unit", "bytes")
        rate_text = (
            f"{format_size(rate)}/iter"
            if unit == "bytes" and rate is not None
            else f"{rate:+.2f} {unit}/iter"
            if rate is not None
            else "?"
        )
        inside = (lk.get("details") or {}).get("allocated_in")
        whose = (
            " -- in the test's own code"
            if lk.get("origin") == "test code"
            else f" -- allocated inside {inside}"
            if inside
            else ""
        )
        lines.append(
            f"  leak {lk['id']}: {lk['type']} at {lk['source']} ({rate_text}, "
            f"severity {lk['severity']}){whose}"
        )
        if lk.get("retainer_path"):
            lines.append(f"      held by: {lk['retainer_path']}")
        for ev in lk.get("evidence", [])[:3]:
            lines.append(f"      evidence: {ev}")
        if lk.get("recommendation"):
            lines.append(f"      fix: {lk['recommendation']}")
    return "\n".join(lines)


def check(fn: Callable[[], Any], *, name: str | None = None, **overrides: Any) -> TestResult:
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
    return finish(loop, label, origin="library")
