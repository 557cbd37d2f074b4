"""Keep pytest's own per-item bookkeeping from growing across iterations.

Inside one test item, pytest records every warning and every log record. Repeating a body that
logs or warns would make those lists grow and look like a leak in the test. While the loop runs:

* warnings are recorded by us; those of the first call are re-emitted once into pytest's
  recorder when the loop ends (later calls' warnings are dropped), so ``-W error`` and the
  warnings summary behave as for a single call and a warning per call is no leak of ours;
  unless a fixture of the test records them itself (``recwarn``, a fixture around
  ``warnings.catch_warnings(record=True)``): its recorder, made again for each call, keeps
  them, as in a plain run;
* pytest's log-capture handlers (the report sections and ``caplog``) are rewound before every
  iteration, so they hold the records of the last iteration only;
* the test item's ``user_properties`` (``record_property``) and markers (``add_marker``) are cut
  back to what they held before the loop, so they hold the last call's additions only;
* so is pytest's in-memory capture of ``sys.stdout`` and ``sys.stderr`` (``--capture=sys``,
  ``tee-sys``): a body that prints would otherwise grow its buffer at every call (a 200-character
  ``print`` read as a 224 B/call leak). Under the default ``--capture=fd`` the output goes to a
  temporary file and nothing grows in memory.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Any

#: CPython before 3.12.5 leaks every traceback tracemalloc interned whenever it stops or clears
#: its traces (cpython#121390: the tracebacks table frees no key): a body that starts and stops
#: tracemalloc grows malloc at each call (64 B a call for one traced list comprehension on
#: 3.11.7 and 3.9.18, 4 B on 3.13.0), whatever the code under test does.
TRACEMALLOC_STOP_LEAKS = sys.implementation.name == "cpython" and sys.version_info < (3, 12, 5)

#: pytest's in-memory capture streams (``_pytest.capture``): text over a ``BytesIO``.
_CAPTURE_TYPES = ("CaptureIO", "TeeCaptureIO")


def _cut(stream: Any, pos: int) -> None:
    """Truncate ``stream`` back to ``pos`` and write on from there (a closed one is left)."""
    try:
        stream.seek(pos)
        stream.truncate(pos)
    except (OSError, ValueError):
        pass


def warnings_recorder() -> object:
    """Where ``warnings`` sends a warning now: a ``catch_warnings(record=True)`` (pytest's own
    for the item, ``recwarn``'s) replaces it with its list's ``append``."""
    return getattr(warnings, "_showwarnmsg_impl", None)


#: No recorder was noted at set-up (the warnings are then always recorded by the loop).
UNKNOWN = object()


class Hygiene:
    def __init__(self) -> None:
        self._recorder_at_setup: object = UNKNOWN
        self._catcher: Any = None
        self._log: list[warnings.WarningMessage] = []
        self._seen: set[tuple[str, type, str, int]] = set()
        self._handlers: list[tuple[Any, int, int]] = []
        self._streams: list[tuple[Any, int]] = []  # pytest's capture streams, their start
        self._run_streams: tuple[Any, ...] = ()  # the session's own (see :meth:`watch`)
        self._item: Any = None
        self._item_sizes = (0, 0)  # len(user_properties), len(own_markers) before the loop
        self._keywords: dict[str, Any] | None = None  # the item's own keywords (add_marker)
        self._keyword_names: frozenset[str] = frozenset()
        self._kept: list[warnings.WarningMessage] = []
        self._calls = 0
        self._dropped = 0
        self._in_call = False
        self._tracemalloc: tuple[Any, Any, Any, Any] | None = None  # (module, stop, clear, ours)
        #: Calls of ``tracemalloc.stop``/``clear_traces`` made by the body (see
        #: :data:`TRACEMALLOC_STOP_LEAKS`; counted where they leak only).
        self.tracemalloc_stops = 0

    def _count_tracemalloc_stops(self) -> None:
        """Count the body's ``tracemalloc.stop()`` and ``clear_traces()`` calls while the loop
        runs (the module's functions are wrapped, and put back at its end)."""
        import tracemalloc

        stop, clear = tracemalloc.stop, tracemalloc.clear_traces

        def counted_stop() -> None:
            self.tracemalloc_stops += self._in_call
            stop()

        def counted_clear() -> None:
            self.tracemalloc_stops += self._in_call
            clear()

        tracemalloc.stop, tracemalloc.clear_traces = counted_stop, counted_clear
        self._tracemalloc = (tracemalloc, stop, clear, counted_stop)

    def _restore_tracemalloc(self) -> None:
        saved, self._tracemalloc = self._tracemalloc, None
        if saved is None:
            return
        module, stop, clear, ours = saved
        if module.stop is ours:  # (not if the body replaced it in turn)
            module.stop, module.clear_traces = stop, clear

    def __enter__(self) -> Hygiene:
        before = self._recorder_at_setup
        if before is UNKNOWN or warnings_recorder() is before:
            self._catcher = warnings.catch_warnings(record=True)
            self._log = self._catcher.__enter__()
        # else a fixture records the warnings (``recwarn``): it must see the body's, and it is
        # made again for each call, so what it keeps does not grow.
        for handler in logging.getLogger().handlers:
            records = getattr(handler, "records", None)
            stream = getattr(handler, "stream", None)
            if type(handler).__name__ == "LogCaptureHandler" and isinstance(records, list):
                pos = stream.tell() if stream is not None and hasattr(stream, "tell") else -1
                self._handlers.append((handler, len(records), pos))
        if TRACEMALLOC_STOP_LEAKS:
            self._count_tracemalloc_stops()
        return self

    def watch(self, item: Any, recorder_at_setup: object = UNKNOWN) -> None:
        """The item whose ``user_properties``, ``own_markers`` and own keywords a call can
        append to (``record_property``, ``request.node.add_marker``): each call's additions
        are taken back before the next, as a single call would leave them.
        ``recorder_at_setup``: :func:`warnings_recorder` before the item's fixtures were set
        up (another one now: a fixture records the warnings)."""
        self._recorder_at_setup = recorder_at_setup
        props, markers = getattr(item, "user_properties", None), getattr(item, "own_markers", None)
        if not isinstance(props, list) or not isinstance(markers, list):
            return
        self._item = item
        self._item_sizes = (len(props), len(markers))
        # The session's capture streams: while a capsys fixture captures they are not
        # sys.stdout, and its teardown writes what the test left unread into them.
        config = getattr(item, "config", None)
        manager = config.pluginmanager.getplugin("capturemanager") if config else None
        capturing = getattr(manager, "_global_capturing", None)  # pytest-private
        self._run_streams = tuple(
            getattr(getattr(capturing, name, None), "tmpfile", None) for name in ("out", "err")
        )
        keywords = getattr(getattr(item, "keywords", None), "_markers", None)  # pytest-private
        if isinstance(keywords, dict):
            self._keywords = keywords
            self._keyword_names = frozenset(keywords)

    def _rewind_item(self) -> None:
        item = self._item
        if item is None:
            return
        props, markers = self._item_sizes
        del item.user_properties[props:]
        del item.own_markers[markers:]
        keywords = self._keywords
        if keywords is not None and len(keywords) != len(self._keyword_names):
            for name in [k for k in keywords if k not in self._keyword_names]:
                del keywords[name]

    def _capture_streams(self) -> None:
        """Note pytest's in-memory capture streams in use now (the run's, or a ``capsys``
        fixture's, which is made again for each call), with their current end."""
        streams = self._streams
        # A capsys stream of a past call is closed by its teardown: not kept (nor rewound).
        if any(s.closed for s, _ in streams):
            streams[:] = [(s, end) for s, end in streams if not s.closed]
        candidates: tuple[Any, ...] = (sys.stdout, sys.stderr)
        if not self._calls:  # the session's own streams, once: they last the whole session
            candidates += self._run_streams
        for stream in candidates:
            if type(stream).__name__ not in _CAPTURE_TYPES:
                continue
            if any(seen is stream for seen, _ in streams):
                continue
            try:
                stream.flush()
                self._streams.append((stream, stream.buffer.tell()))
            except (AttributeError, OSError, ValueError):
                pass

    def before_iteration(self) -> None:
        self._in_call = True
        self._rewind_item()
        self._capture_streams()
        for stream, end in self._streams:
            try:
                stream.flush()
            except (OSError, ValueError):
                continue
            _cut(stream.buffer, end)
        for handler, count, pos in self._handlers:
            del handler.records[count:]
            if pos >= 0:
                _cut(handler.stream, pos)

    def after_iteration(self) -> None:
        self._in_call = False
        self._calls += 1
        log = self._log
        if not log:
            return
        if self._calls > 1:  # only the first call's warnings are kept (and re-emitted once)
            self._dropped += len(log)
            log.clear()
            return
        for msg in log:
            key = (str(msg.message), msg.category, msg.filename, msg.lineno)
            if key not in self._seen:
                self._seen.add(key)
                self._kept.append(msg)
        log.clear()

    def __exit__(self, *exc: object) -> None:
        self.after_iteration()
        self._restore_tracemalloc()
        catcher, self._catcher = self._catcher, None
        if catcher is not None:
            catcher.__exit__(None, None, None)
        for msg in self._kept:
            try:
                warnings.warn_explicit(
                    msg.message, msg.category, msg.filename, msg.lineno, source=msg.source
                )
            except Warning:
                if exc[0] is None:  # -W error: raise as a single call would have
                    raise
