"""Memory-leak regression testing for pytest.

Mark a test ``@pytest.mark.memcheck`` (or run with ``--memleak-all``): the plugin runs its body
repeatedly, watches memory and resources between iterations and fails it on sustained growth.
Outside pytest, :func:`check` runs the same analysis on a callable.
"""

from __future__ import annotations

from typing import Any

from .version import __version__

__all__ = ["Leak", "TestResult", "__version__", "check"]


def __getattr__(name: str) -> Any:
    # Lazy: the command-line tool and the plugin's start-up do not pay for numpy and the loop.
    if name == "check":
        from .analysis import check

        return check
    if name in ("Leak", "TestResult"):
        from . import model

        return getattr(model, name)
    raise AttributeError(f"module 'pytest_memleak' has no attribute {name!r}")
