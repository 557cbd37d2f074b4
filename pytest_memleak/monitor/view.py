"""The monitor on the terminal: one line redrawn in place on a TTY, plain lines elsewhere
(a CI log gets one line per ``every`` seconds, never a carriage return), alert lines above."""

from __future__ import annotations

import math
import shutil
import time
from typing import TextIO

from ..model import TestResult
from ..units import format_size

#: Seconds between two plain lines when the output is not a terminal.
PLAIN_EVERY_S = 2.0
#: Seconds between two redraws of the line on a terminal.
TTY_EVERY_S = 0.25


def _size(row: dict[str, float], key: str) -> str | None:
    value = row.get(key)
    if value is None or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return format_size(value)


def status_line(row: dict[str, float], result: TestResult | None, pid: int) -> str:
    """Current values, RSS rate, pattern and severity, as one line."""
    parts = [f"monitor pid {pid}", f"{row.get('t', 0.0):6.1f}s"]
    rss = _size(row, "rss")
    if rss:
        growth = result.growth.get("rss") if result else None
        rate = f" ({format_size(growth.slope_per_s)}/s)" if growth else ""
        parts.append(f"rss {rss}{rate}")
    for key in ("uss", "tree_rss"):
        text = _size(row, key)
        if text:
            parts.append(f"{key.replace('_', ' ')} {text}")
    for key in ("fds", "threads", "children"):
        value = row.get(key)
        if isinstance(value, (int, float)) and not math.isnan(value):
            parts.append(f"{key} {value:.0f}")
    if result is not None:
        growth = result.growth.get("rss")
        if result.verdict == "skipped":
            parts.append("collecting")
        else:
            parts.append(f"pattern {growth.pattern if growth else '-'}")
            parts.append(f"severity {result.severity}")
    return "  ".join(parts)


class TerminalView:
    """Writes the status line and alert lines to ``stream``."""

    def __init__(self, stream: TextIO, tty: bool | None = None) -> None:
        self.stream = stream
        isatty = getattr(stream, "isatty", None)
        self.tty = bool(isatty and isatty()) if tty is None else tty
        self._shown = False  # a redrawable line is on screen
        self._last = -math.inf

    def _clear(self) -> None:
        if self.tty and self._shown:
            self.stream.write("\r\x1b[K")
            self._shown = False

    def update(self, line: str, force: bool = False) -> None:
        """Show the status line (at most every TTY_EVERY_S / PLAIN_EVERY_S seconds)."""
        now = time.monotonic()
        every = TTY_EVERY_S if self.tty else PLAIN_EVERY_S
        if not force and now - self._last < every:
            return
        self._last = now
        if self.tty:
            width = shutil.get_terminal_size((100, 24)).columns
            self._clear()
            self.stream.write(line[: max(width - 1, 20)])
            self._shown = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def print(self, line: str) -> None:
        """A line of its own (an alert, a message), above the status line."""
        self._clear()
        self.stream.write(line + "\n")
        self.stream.flush()
        self._last = -math.inf  # redraw the status line at once

    def close(self) -> None:
        if self.tty and self._shown:
            self.stream.write("\n")
            self._shown = False
        self.stream.flush()
