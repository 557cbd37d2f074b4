"""Leak sites: tracemalloc snapshots, one per diagnosis iteration, grouped by traceback.

A site whose retained size grows in most iterations is a leak site. Its source is the innermost
frame in the user's code (not the standard library, not installed packages, not this plugin);
numpy reports its data buffers in a tracemalloc domain of its own, which marks buffer sites.
"""

from __future__ import annotations

import dataclasses
import tracemalloc

from ..model import SiteRecord
from .frames import (
    frame_line,
    is_package_file,
    is_plugin_file,
    is_runner_file,
    is_user_file,
    location,
)

NUMPY_DOMAIN = 389047

#: A traceback as tracemalloc keeps it: (file name, line number) frames.
Frames = tuple[tuple[str, int], ...]


#: A growing allocation site: the report's record of it (with tracemalloc's frames kept aside).
Site = SiteRecord


Key = tuple[int, Frames]
_NONE = (0, 0)  # a traceback absent from a snapshot: no bytes, no blocks


def _raw_traces(snapshot: tracemalloc.Snapshot) -> list[tuple[int, int, Frames]]:
    """(domain, size, frames innermost-first) per trace: the snapshot's raw tuples when the
    interpreter has them (3.9-3.13 all do), which avoids a Traceback object per trace."""
    raw = getattr(snapshot.traces, "_traces", None)
    if isinstance(raw, list):
        return [(t[0], t[1], t[2]) for t in raw]
    return [
        (t.domain, t.size, tuple((f.filename, f.lineno) for f in reversed(t.traceback)))
        for t in snapshot.traces
    ]


_OURS = tracemalloc.__file__


def _group(snapshot: tracemalloc.Snapshot) -> dict[Key, tuple[int, int]]:
    """Size and count per (domain, traceback oldest-first), without our own bookkeeping."""
    groups: dict[tuple[int, Frames], list[int]] = {}
    for domain, size, inner_first in _raw_traces(snapshot):
        if inner_first:
            top = inner_first[0][0]
            if top == _OURS or is_plugin_file(top):
                continue  # our own bookkeeping (snapshots, lists of results)
        acc = groups.get((domain, inner_first))
        if acc is None:
            groups[(domain, inner_first)] = [size, 1]
        else:
            acc[0] += size
            acc[1] += 1
    return {(d, tuple(reversed(tb))): (v[0], v[1]) for (d, tb), v in groups.items()}


def source_of(traceback: tracemalloc.Traceback) -> str:
    """The source (innermost user frame) of an object's allocation traceback (no stack text)."""
    inner_first = [(f.filename, f.lineno) for f in reversed(traceback)]
    for f, n in inner_first:
        if is_user_file(f):
            return location(f, n)
    for f, n in inner_first:
        if not is_plugin_file(f):
            return location(f, n)
    return location(*inner_first[0]) if inner_first else "?"


def _package_frame(frames: Frames) -> str | None:
    """The innermost installed-package frame, if one comes before any user frame."""
    for f, n in reversed(frames):
        if is_user_file(f) or is_runner_file(f):
            return None
        if is_package_file(f) and not is_plugin_file(f):
            return location(f, n)
    return None


def _stack(frames: Frames) -> list[str]:
    """The stack text (innermost first) of a tracemalloc traceback (oldest first)."""
    stack = []
    for f, n in reversed(frames):
        if is_runner_file(f):
            break  # pytest and pluggy frames below the test say nothing about the leak
        if not is_plugin_file(f):
            stack.append(frame_line(f, n))
    return stack


def _source(frames: Frames) -> tuple[tuple[str, int], bool]:
    """(source frame, is_user) for a tracemalloc traceback (oldest first): the innermost user
    frame, else the innermost not ours. The frame itself, not its text: this runs for every
    growing traceback while tracemalloc traces, where each allocation costs."""
    for frame in reversed(frames):
        if is_user_file(frame[0]):
            return frame, True
    for frame in reversed(frames):
        if not is_plugin_file(frame[0]):
            return frame, False
    return frames[-1], False


def find_sites(snapshots: list[tracemalloc.Snapshot], limit: int = 5) -> list[Site]:
    """Sites whose size grew in at least 60% of the steps between snapshots, largest first.

    When no site passes that rule, sites in the user's code, allocated by a call of the loop,
    that never shrank and grew at least once are taken instead (marked ``resized``): a buffer
    that grows in place (``bytearray.extend``, ``list.append`` on a long list) is reallocated
    only every few calls, with headroom, and the block allocated before tracing began is seen
    only from its first reallocation on.
    """
    if len(snapshots) < 2:
        return []
    return find_sites_in([_group(s) for s in snapshots], limit)


#: One snapshot's traces grouped by (domain, traceback): size and count (see :func:`group`).
Grouped = dict[Key, tuple[int, int]]


def group(snapshot: tracemalloc.Snapshot) -> Grouped:
    """A snapshot grouped once, for :func:`find_sites_in` and :func:`traced_growth_in` (the
    snapshot itself can then be dropped)."""
    return _group(snapshot)


def find_sites_in(grouped: list[Grouped], limit: int = 5, stacks: bool = True) -> list[Site]:
    """:func:`find_sites` on snapshots already grouped; ``stacks=False``: without the stack
    text (which reads source lines), for a look at the sites only."""
    if len(grouped) < 2:
        return []
    return _find(grouped, limit, relaxed=False, stacks=stacks) or _find(
        grouped, limit, relaxed=True, stacks=stacks
    )


class _Acc:
    """One source's growing tracebacks added up (see :func:`_find`)."""

    __slots__ = ("blocks", "frames", "growing", "sizes", "top", "total", "user")

    def __init__(self, total: int, blocks: int, growing: int, sizes: list[int], frames: Frames):
        self.total, self.blocks, self.growing, self.sizes = total, blocks, growing, sizes
        self.top, self.frames = total, frames  # the largest traceback's growth and frames
        self.user = False


def _find(
    grouped: list[dict[Key, tuple[int, int]]], limit: int, relaxed: bool, stacks: bool = True
) -> list[Site]:
    steps = len(grouped) - 1
    first, last = grouped[0], grouped[-1]
    found: dict[tuple[tuple[str, int], bool], _Acc] = {}
    # Only a traceback larger in the last snapshot than in the first can be a site: one of the
    # last snapshot's (most of the thousands of tracebacks are not: looked up first).
    for key, (last_size, last_count) in last.items():
        start = first.get(key, _NONE)
        total = last_size - start[0]
        if total <= 0:
            continue
        domain, frames = key
        if not frames:
            continue
        if steps == 1:  # (most tracebacks, when the pass stops after one call)
            sizes, blocks, growing, shrinking = [start[0], last_size], last_count - start[1], 1, 0
            counts: tuple[int, ...] = (start[1], last_count)
        else:
            sizes = [g.get(key, _NONE)[0] for g in grouped]
            counts = tuple(g.get(key, _NONE)[1] for g in grouped)
            blocks = counts[-1] - counts[0]
            growing = sum(1 for a, b in zip(sizes, sizes[1:]) if b > a)
            shrinking = sum(1 for a, b in zip(sizes, sizes[1:]) if b < a)
        if relaxed:
            # The same block(s) resized larger: a constant number of blocks that never shrank.
            if shrinking or not growing or len({c for c in counts if c}) != 1:
                continue
        elif growing < 0.6 * steps and not (shrinking == 0 and growing >= 2 and _in_call(frames)):
            # Most steps grow, or (in a call of the loop) it never shrinks and grew at least
            # twice: a leak every third call.
            continue
        source, user = _source(frames)
        if relaxed and not (user and _in_call(frames)):
            # Only the body's own calls (run by this plugin's loop): one resize in pytest's or a
            # library's bookkeeping, or a block a background thread happens to hold, says nothing.
            continue
        where = (source, domain == NUMPY_DOMAIN)
        acc = found.get(where)
        if acc is None:
            found[where] = acc = _Acc(total, blocks, growing, sizes, frames)
            acc.user = user
            continue
        # The same line reached through different callers: add up. The stack shown is the
        # largest caller's (ties: the first in frame order), not the first met: tracemalloc's
        # traces come in address order, which varies by run.
        acc.total += total
        acc.blocks += blocks
        acc.growing = max(acc.growing, growing)
        acc.sizes = [a + b for a, b in zip(acc.sizes, sizes)]
        if total > acc.top or (total == acc.top and frames < acc.frames):
            acc.top, acc.frames = total, frames
    ranked = sorted(found.items(), key=lambda kv: (not kv[1].user, -kv[1].total, kv[0]))
    sites = [
        Site(
            source=location(*source),
            stack=(),  # written for the sites kept only (below): reading lines costs
            bytes_per_iter=acc.total / steps,
            blocks_per_iter=acc.blocks / steps,
            total_bytes=acc.total,
            growing_steps=acc.growing,
            steps=steps,
            numpy=numpy,
            user=acc.user,
            sizes=tuple(acc.sizes),
            frames=acc.frames,
            resized=relaxed,
            package=_package_frame(acc.frames),
        )
        for (source, numpy), acc in ranked[:limit]
    ]
    return sites if not stacks else with_stacks(sites)


def known_site(
    frames: Frames, bytes_per_iter: float, blocks_per_iter: float, known_from: str
) -> Site:
    """The site an earlier diagnosis traced, reached again without tracing through the calls
    ``frames`` (oldest first, as tracemalloc's): source, stack and package from them, the rate
    measured (see ``diagnose.causes``)."""
    source, user = _source(frames)
    return Site(
        source=location(*source),
        stack=tuple(_stack(frames)),
        bytes_per_iter=bytes_per_iter,
        blocks_per_iter=blocks_per_iter,
        total_bytes=0,
        growing_steps=0,
        steps=0,
        user=user,
        package=_package_frame(frames),
        frames=frames,
        known_from=known_from,
    )


def _in_call(frames: Frames) -> bool:
    """Allocated by a call of the loop (this plugin's frames below it), not by another thread
    (a background thread of the process: its transient objects can look like two steps)."""
    return any(is_plugin_file(f) for f, _ in frames)


def with_stacks(found: list[Site]) -> list[Site]:
    """Sites found with ``stacks=False``, with their stack text written."""
    return [dataclasses.replace(s, stack=tuple(_stack(s.frames))) for s in found]


def traced_growth(snapshots: list[tracemalloc.Snapshot]) -> float:
    """Bytes all traced allocations (ours excluded) grew between the first and last snapshot."""
    if len(snapshots) < 2:
        return 0.0
    return traced_growth_in([_group(snapshots[0]), _group(snapshots[-1])])


def traced_growth_in(grouped: list[Grouped]) -> float:
    """:func:`traced_growth` on snapshots already grouped."""
    if len(grouped) < 2:
        return 0.0
    first, last = grouped[0], grouped[-1]
    return float(sum(v[0] for v in last.values()) - sum(v[0] for v in first.values()))
