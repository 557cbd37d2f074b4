"""Memory-leak regression testing for pytest.

Mark a test ``@pytest.mark.memcheck`` (or run with ``--memleak-all``): the plugin runs its body
repeatedly, watches memory and resources between iterations and fails it on sustained growth.
Outside pytest, :func:`check` runs the same analysis on a callable.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .analysis import check
from .report import Leak, TestResult

__all__ = ["Leak", "TestResult", "__version__", "check"]
