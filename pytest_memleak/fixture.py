"""The ``memcheck`` fixture: measure callables inside a test."""

from __future__ import annotations

import contextlib
from typing import Any, Callable

from . import analysis
from .model import TestResult
from .runner import drive, shared_probes
from .settings import Layer, Settings, marker_layer, resolve


class LeakError(AssertionError):
    """Raised by :meth:`MemcheckFixture.assert_no_leak` with the full failure message."""


class MemcheckFixture:
    def __init__(
        self,
        nodeid: str,
        layers: list[tuple[str, Layer]],
        marker: Layer,
        sink: list[TestResult],
        on_result: Callable[[TestResult], None] | None = None,
    ) -> None:
        self._nodeid = nodeid
        self._layers = layers  # the session's raw command-line and ini layers
        self._marker = marker  # the test's memcheck markers, validated
        self._sink = sink
        self._count = 0
        self._on_result = on_result
        self._disabled = resolve(list(layers)).disable

    def snapshot(self) -> dict[str, float | None]:
        """One snapshot of every cheap probe (rss, py_blocks, malloc, heap, external, fds, ...)."""
        return shared_probes().snapshot()

    def measure(
        self,
        fn: Callable[..., Any],
        *,
        label: str | None = None,
        setup: Callable[[], Any] | None = None,
        **overrides: Any,
    ) -> TestResult:
        """Call ``fn`` repeatedly (warm-up, measured rounds) and judge its growth.

        ``setup``, when given, runs before every call and its return value is passed to ``fn``.
        Keyword ``overrides`` take the marker's settings (iterations, max_rate, ...).
        """
        if label is not None and not isinstance(label, str):
            raise TypeError(
                f"memcheck.measure(label=...) takes a string (the name shown in the report); "
                f"got {label!r} ({type(label).__name__})"
            )
        self._count += 1
        name = label or getattr(fn, "__name__", None) or f"measure{self._count}"
        settings = self._settings(overrides, "memcheck.measure")
        call: Callable[[], Any] = (lambda: fn(setup())) if setup is not None else fn
        if self._disabled:  # --memleak-disable: one plain call, nothing measured or reported
            call()
            return TestResult(
                nodeid=self._nodeid,
                verdict="skipped",
                label=name,
                origin="fixture",
                stop_reason="disabled",
            )
        loop = analysis.make_loop(settings, self._nodeid + (f" [{name}]" if name else ""))
        try:
            drive(loop, call)
        finally:
            result = analysis.result_of(loop, self._nodeid, label=name, origin="fixture")
            self._sink.append(result)
            if self._on_result is not None:
                self._on_result(result)
        return result

    def watch(self, proc: Any, **overrides: Any) -> Any:
        """Sample another process (a ``subprocess.Popen``, a ``psutil.Process`` or a pid)
        while the ``with`` block drives load against it; judge its RSS, fds, threads and
        children on exit. The result (``.result``) is in the report and fails the test when
        the process leaks. Keyword overrides: ``interval``, ``retention``, ``max_growth``, ...
        """
        from .soak import Watch

        settings = self._settings(overrides, "memcheck.watch")
        if self._disabled:
            return contextlib.nullcontext()

        def sink(result: TestResult) -> None:
            self._sink.append(result)
            if self._on_result is not None:
                self._on_result(result)

        return Watch(proc, settings, self._nodeid, sink)

    def _settings(self, overrides: dict[str, Any], where: str) -> Settings:
        """Marker arguments and call overrides above the session's command line and ini."""
        layer = dict(self._marker)
        layer.pop("mode", None)
        layer.update(marker_layer((), overrides, f"{self._nodeid}: {where}"))
        return resolve([("marker", layer), *self._layers])

    def assert_no_leak(self, fn: Callable[[], Any], **kwargs: Any) -> TestResult:
        """Measure ``fn`` and raise :class:`LeakError` (an AssertionError) when it leaks."""
        result = self.measure(fn, **kwargs)
        if result.verdict == "leak":
            raise LeakError(result.message)
        return result
