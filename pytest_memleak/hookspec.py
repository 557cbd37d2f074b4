"""Hooks pytest-memleak calls, for other plugins and conftest files.

Implement any of them in a ``conftest.py`` to forward findings to logs or monitoring::

    def pytest_memleak_leak_detected(item, leak):
        print("leak", item.nodeid, leak["type"], leak["source"])

Each fires in the process that ran the test (an xdist worker, under xdist), after the test's
verdict is known and before its report is made. ``leak`` and ``growth`` are the plain dicts of
the JSON report.
"""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookspec
def pytest_memleak_leak_detected(item: pytest.Item, leak: dict[str, Any]) -> None:
    """A leak (any type, suppressed ones included: see ``leak["suppressed"]``) was found."""


@pytest.hookspec
def pytest_memleak_growth_detected(item: pytest.Item, metric: str, growth: dict[str, Any]) -> None:
    """A metric showed confirmed sustained growth (pattern, slope, confidence in ``growth``)."""


@pytest.hookspec
def pytest_memleak_buffer_leak_detected(item: pytest.Item, leak: dict[str, Any]) -> None:
    """A leak of type ``buffer_leak`` was found (fires in addition to the leak hook)."""
