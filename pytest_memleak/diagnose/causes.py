"""Known causes: a leak an earlier traced diagnosis of this process located, recognised again
without tracing.

Do not pay twice for one cause. Hundreds of tests can leak through one library cache (click's
``CliRunner``: about 1,000 of its 2,459 tests). Tracing each of them costs its traced calls, and
on CPython before 3.12.5 every ``tracemalloc.stop()`` also leaks the tracebacks it interned
(cpython#121390: ~33 KB a diagnosis), which fragments glibc's heap and makes every later malloc
reading slower.

A cause is remembered from a traced diagnosis of the Python heap's growth alone (no native or
resource growth confirmed) whose largest site was allocated inside an installed package called
from the user's code, and whose holder was found: the specific types that survived each call,
the holder's path, and the calls from the user's frame down to the allocating line
(tracemalloc's frames). A later diagnosis recognises it when the same types survived, a sample
of them is found under the same path walking down from the holders found before (no heap scan),
and one call of the body, watched by a trace function that looks only at calls into the
allocating function, reaches the allocating line through the same calls. Its site is then
written from that call's frames: its source is this test's own line, its rate this test's
measured growth, and it names the test whose trace found it (``Site.known_from``). Anything
else is traced as before.
"""

from __future__ import annotations

import dis
import sys
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import Callable, Optional

from ..detectors import objects
from ..detectors.frames import is_user_file
from ..detectors.sites import Frames, Site

#: Causes remembered at most (a bound on this process's memory over a long run).
MAX_CAUSES = 256
#: Sites a recognised cause gives at most (one per user's line that reached it): as many as
#: the leak entries a traced diagnosis makes of its sites.
MAX_SITES = 3
#: Time the holder check may spend walking down from the holders found before.
HOLDER_BUDGET_S = 0.05
#: Metrics whose confirmed growth rules a known cause out: native memory and resources are
#: located by the passes that read them, never by a Python allocation site alone.
NOT_HEAP = frozenset({"malloc", "malloc_main", "rss", "fds", "threads", "children"})

#: A ``sys.settrace`` function: called per event, returns the local tracer (or None).
Tracer = Callable[[FrameType, str, object], Optional["Tracer"]]


@dataclass(frozen=True)
class Cause:
    """What a traced diagnosis found, as a later one recognises it."""

    types: frozenset[str]  # the specific types that survived each call
    sample: str  # the type whose holder was found
    holder: str  # its retainer path, entries unnamed (see :func:`holder_of`)
    chain: Frames  # the frames inside the user's frame, oldest first; the allocating one last
    depth: int  # frames in the traced traceback (the stack shown is as deep)
    nodeid: str  # the test whose diagnosis traced it


#: What a watched call reached: the cause, the frames of the first reach (oldest first), and
#: how many of the objects made there survived.
Reached = tuple[Cause, Frames, int]

_causes: dict[frozenset[str], list[Cause]] = {}
_count = 0


def remembered() -> bool:
    """Has this process remembered any cause?"""
    return _count > 0


def holder_of(path: str) -> str:
    """A retainer path without what names the entry (a list's index, a dict's key): the same
    holder for every test that leaks into it."""
    steps = path.split(" -> ")
    for i, step in enumerate(steps):
        end = step.rfind("] (")
        if step.startswith("[") and end > 0:
            steps[i] = "[...]" + step[end + 1 :]
    return " -> ".join(steps)


def chain_of(frames: Frames) -> Frames:
    """The frames inside the innermost user frame (oldest first): the calls from the user's
    line down to the allocating one; empty when no user frame is in ``frames``."""
    for i in range(len(frames) - 1, -1, -1):
        if is_user_file(frames[i][0]):
            return frames[i + 1 :]
    return ()


def remember(
    site: Site, types: frozenset[str], retainers: Sequence[tuple[str, str]], nodeid: str
) -> None:
    """Note the cause a traced diagnosis found: its largest ``site``, the specific ``types``
    that survived, the (type, path) ``retainers`` found. Only a site allocated inside an
    installed package called from the user's code, with a holder, is one."""
    global _count
    if site.known_from or not site.user or site.package is None or site.numpy or site.resized:
        return
    chain = chain_of(site.frames)
    if not chain or not types or not retainers or not nodeid or _count >= MAX_CAUSES:
        return
    sample, holder = retainers[0][0], holder_of(retainers[0][1])
    known = _causes.setdefault(types, [])
    if any(c.holder == holder and c.chain == chain for c in known):
        return
    known.append(Cause(types, sample, holder, chain, len(site.frames), nodeid))
    _count += 1


def candidates(types: frozenset[str], confirmed: set[str]) -> list[Cause]:
    """Causes a diagnosis with these surviving ``types`` and ``confirmed`` metrics may be."""
    if not types or confirmed & NOT_HEAP:
        return []
    return list(_causes.get(types, ()))


def held_as(cause: Cause, samples: Sequence[object]) -> tuple[str, str] | None:
    """(path, status) when the holder check finds ``samples`` under the cause's path."""
    found = objects.find_known_holder(samples, HOLDER_BUDGET_S)
    return found if found is not None and holder_of(found[0]) == cause.holder else None


def _line_starts(code: CodeType) -> frozenset[int]:
    return frozenset(line for _, line in dis.findlinestarts(code) if line)


class _Line:
    """A user's line whose calls reached a cause's allocating line in the watched call: the
    first reach's frames, and weak references to the objects of the cause's sample type each
    reaching frame held when it returned (how many of them survive the call)."""

    __slots__ = ("cause", "frames", "made", "untracked")

    def __init__(self, cause: Cause, frames: Frames) -> None:
        self.cause, self.frames = cause, frames
        self.made: list[weakref.ref[object]] = []
        self.untracked = 0  # reaches that held no object of the sample type to follow

    def survivors(self) -> int:
        return sum(1 for ref in self.made if ref() is not None)


class Watch:
    """A trace function for one call of the body that looks only at calls into the functions
    holding the ``causes``' allocating lines. A call that comes through a cause's calls from a
    user's line and reaches its line is followed to its return, where the objects of the
    cause's sample type it holds (its locals, its return value) are noted, weakly: those that
    survive the call say which of the user's lines leaked (see :attr:`found`). Never installed
    over a trace function already set (a debugger, coverage): nothing is found then, and the
    diagnosis traces as before."""

    def __init__(self, causes: Sequence[Cause]) -> None:
        self._by_file: dict[str, list[Cause]] = {}
        for cause in causes:
            self._by_file.setdefault(cause.chain[-1][0], []).append(cause)
        self._lines: dict[tuple[str, int], _Line] = {}
        self._starts: dict[CodeType, frozenset[int]] = {}
        self._tracer: Tracer = self._call  # (one bound method: sys.gettrace() gives it back)
        self._set = False

    @property
    def found(self) -> list[Reached]:
        """Once the call is over and its garbage collected: per user's line whose objects
        survived, the cause, the frames of its first reach (oldest first, as tracemalloc's)
        and how many survived, most first (a test that leaks through one cache from two of its
        lines has two sites, as traced). A reach whose objects could not be followed leaves
        only a single line known; several such lines, or none that leaked, give nothing: the
        diagnosis then traces, and tracemalloc says which line grew most."""
        lines = list(self._lines.values())
        if any(line.untracked for line in lines):
            return [(lines[0].cause, lines[0].frames, 1)] if len(lines) == 1 else []
        counted = [(line, line.survivors()) for line in lines]
        counted = sorted((entry for entry in counted if entry[1]), key=lambda entry: -entry[1])
        return [(line.cause, line.frames, n) for line, n in counted]

    def install(self) -> None:
        if sys.gettrace() is None:
            sys.settrace(self._tracer)
            self._set = True

    def uninstall(self) -> None:
        if self._set:
            if sys.gettrace() is self._tracer:  # (a body that set its own keeps it)
                sys.settrace(None)
            self._set = False

    def _call(self, frame: FrameType, event: str, arg: object) -> Tracer | None:
        code = frame.f_code
        causes = self._by_file.get(code.co_filename)
        if causes is None:
            return None
        starts = self._starts.get(code)
        if starts is None:
            starts = self._starts[code] = _line_starts(code)
        for cause in causes:
            line = cause.chain[-1][1]
            if line not in starts:
                continue
            frames = _path(frame, cause)
            if frames is not None:
                return self._follow(cause, line, frames)
        return None

    def _follow(self, cause: Cause, line: int, frames: Frames) -> Tracer:
        user = frames[-len(cause.chain) - 1]
        reached = False

        def follow(f: FrameType, event: str, arg: object) -> Tracer | None:
            nonlocal reached
            if event == "line" and f.f_lineno == line:
                reached = True
            elif event == "return" and reached:
                entry = self._lines.get(user)
                if entry is None:
                    entry = self._lines[user] = _Line(cause, frames)
                self._note(entry, cause.sample, [arg, *f.f_locals.values()])
                return None
            return follow

        return follow

    @staticmethod
    def _note(entry: _Line, sample: str, values: list[object]) -> None:
        seen: set[int] = set()
        for value in values:
            if id(value) in seen or objects.type_name(type(value)) != sample:
                continue
            seen.add(id(value))
            try:
                entry.made.append(weakref.ref(value))
            except TypeError:
                entry.untracked += 1
                return
        if not seen:
            entry.untracked += 1


def _path(frame: FrameType, cause: Cause) -> Frames | None:
    """The frames from the allocating one (``frame``, just called) outwards, as deep as the
    cause's traced traceback, when its callers are the cause's and a user's frame calls them;
    None otherwise."""
    inner_first = [cause.chain[-1]]
    f = frame.f_back
    for filename, lineno in cause.chain[-2::-1]:
        if f is None or f.f_code.co_filename != filename or f.f_lineno != lineno:
            return None
        inner_first.append((filename, lineno))
        f = f.f_back
    if f is None or not is_user_file(f.f_code.co_filename):
        return None
    while f is not None and len(inner_first) < cause.depth:
        inner_first.append((f.f_code.co_filename, f.f_lineno))
        f = f.f_back
    return tuple(reversed(inner_first))
