"""Live progress of a soak on the terminal, beside the end-of-run terminal report."""

from __future__ import annotations

import os
from typing import Callable

import pytest

from ..units import format_size


def soak_progress(config: pytest.Config) -> Callable[[dict[str, float]], None] | None:
    """A progress printer for the terminal that steps around pytest's capture (as live logging
    does), or None under ``-q``."""
    if config.get_verbosity() < 0:
        return None
    tr = config.pluginmanager.get_plugin("terminalreporter")
    capman = config.pluginmanager.get_plugin("capturemanager")
    if tr is None:
        return None

    def show(row: dict[str, float]) -> None:
        text = (
            f"memleak soak {row['t']:6.1f}s  rss {format_size(row['rss'])}  "
            f"malloc {format_size(row.get('malloc') or 0)}  fds {row.get('fds', 0):.0f}  "
            f"threads {row.get('threads', 0):.0f}  pid {os.getpid()}"
        )
        if capman is not None:
            with capman.global_and_fixture_disabled():
                tr.write_line(text)
        else:
            tr.write_line(text)

    return show
