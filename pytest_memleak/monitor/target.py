"""The watched process: attach to a running pid, or start a command; read it; end it.

Reading goes through soak's :func:`~pytest_memleak.soak.process_reader` (RSS, fds, threads,
children, through psutil), plus USS where it is cheap (``/proc/PID/smaps_rollup``, one read)
and, when asked, the RSS of the whole process tree. Nothing is injected into the process: a
Python target is read from outside like any other.
"""

from __future__ import annotations

import math
import os
import subprocess
import time
from collections.abc import Sequence
from typing import Callable

from ..model import ProcessInfo
from ..soak import describe_process, process_reader

#: The sampled metrics beyond soak's WATCH_FIELDS: shown and charted, not judged.
EXTRA_FIELDS = ("uss",)
TREE_FIELD = "tree_rss"
#: USS is read only when one read costs less than this share of the sampling interval.
USS_BUDGET = 0.05
#: How long the command gets to end after SIGTERM before it is killed.
TERM_GRACE_S = 5.0


class TargetError(Exception):
    """The process cannot be watched: one line naming the option, the value and why."""


def _uss_reader(pid: int) -> Callable[[], float]:
    path = f"/proc/{pid}/smaps_rollup"

    def read() -> float:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return math.nan
        total = 0
        for line in data.splitlines():
            if line.startswith((b"Private_Clean:", b"Private_Dirty:")):
                total += int(line.split()[1]) * 1024
        return float(total)

    return read


def _tree_reader(pid: int) -> Callable[[], float]:
    import psutil

    root = psutil.Process(pid)

    def read() -> float:
        total = 0.0
        for proc in [root, *root.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
            except psutil.AccessDenied:
                return math.nan
        return total

    return read


class Target:
    """The process the monitor samples, and the command it started (if any)."""

    def __init__(self, pid: int, popen: subprocess.Popen[bytes] | None = None) -> None:
        self.pid = pid
        self.popen = popen
        self.info: ProcessInfo = describe_process(popen if popen is not None else pid)
        self.stopped_by_us = False
        self.uss_note = ""

    @classmethod
    def attach(cls, pid: int) -> Target:
        import psutil

        if pid == os.getpid():
            raise TargetError(f"--pid {pid}: that is this monitor itself; give another pid")
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                raise TargetError(f"--pid {pid}: the process has exited (a zombie)")
            with proc.oneshot():  # what the sampler reads: refused for another user's process
                proc.memory_info()
                proc.num_fds()
        except psutil.NoSuchProcess:
            raise TargetError(
                f"--pid {pid}: no such process; expected the pid of a running process"
            ) from None
        except psutil.AccessDenied:
            raise TargetError(
                f"--pid {pid}: access denied reading the process; run the monitor as its user"
            ) from None
        return cls(pid)

    @classmethod
    def start(cls, command: Sequence[str]) -> Target:
        try:
            popen = subprocess.Popen(list(command))
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise TargetError(
                f"command {' '.join(command)[:200]!r} failed to start: {reason}"
            ) from None
        return cls(popen.pid, popen)

    def reader(self, interval: float, tree: bool) -> Callable[[], dict[str, float]]:
        """Read RSS, fds, threads, children; USS when a read is cheap; the tree's RSS."""
        import psutil

        try:
            return self._reader(interval, tree)
        except psutil.NoSuchProcess:
            raise TargetError(f"process {self.pid} exited before it could be sampled") from None

    def _reader(self, interval: float, tree: bool) -> Callable[[], dict[str, float]]:
        base = process_reader(self.popen if self.popen is not None else self.pid)
        probe = _uss_reader(self.pid)
        costs = []
        for _ in range(3):  # the cheapest of three reads: a busy machine may stall one
            t0 = time.perf_counter()
            first = probe()
            costs.append(time.perf_counter() - t0)
        cost = min(costs)
        uss: Callable[[], float] | None = probe
        if math.isnan(first):
            uss, self.uss_note = None, "USS not sampled: /proc/PID/smaps_rollup is not readable"
        elif cost > USS_BUDGET * interval:
            uss = None
            self.uss_note = (
                f"USS not sampled: one read took {cost * 1000:.1f} ms, over "
                f"{USS_BUDGET:.0%} of the interval"
            )
        tree_read = _tree_reader(self.pid) if tree else None
        import psutil

        attached = psutil.Process(self.pid) if self.popen is None else None

        def read() -> dict[str, float]:
            if attached is not None:
                try:  # an attached process that exited may linger as a zombie, unread
                    zombie = attached.status() == psutil.STATUS_ZOMBIE
                except psutil.NoSuchProcess:
                    zombie = True
                if zombie:
                    raise ProcessLookupError(f"process {self.pid} exited")
            row = base()
            row["uss"] = uss() if uss is not None else math.nan
            if tree_read is not None:
                row[TREE_FIELD] = tree_read()
            return row

        return read

    @property
    def started(self) -> bool:
        """Whether the monitor started this process (``-- CMD``)."""
        return self.popen is not None

    def stop(self) -> None:
        """End the command the monitor started (SIGTERM, then SIGKILL after a grace)."""
        popen = self.popen
        if popen is None or popen.poll() is not None:
            return
        self.stopped_by_us = True
        popen.terminate()
        try:
            popen.wait(timeout=TERM_GRACE_S)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(timeout=TERM_GRACE_S)

    def exit_status(self) -> int | None:
        """The command's own exit status as a shell gives it (128 + N for a signal); None when
        it did not end on its own (still running, ended by us, or only attached to)."""
        popen = self.popen
        if popen is None or self.stopped_by_us:
            return None
        code = popen.poll()
        if code is None:
            return None
        return 128 - code if code < 0 else code

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        import psutil

        try:
            return psutil.Process(self.pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False
