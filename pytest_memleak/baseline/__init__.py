"""Run history and baseline comparison, in the spirit of pytest-benchmark's storage and
``--benchmark-compare-fail``.

* :mod:`.rules`: the ``--memleak-compare-fail`` mini-language, parsed once into a :class:`Rule`
  (the settings hold it);
* :mod:`.compare`: pure functions on the model, a run (or one test) against a baseline run;
* :mod:`.storage`: the history folder of saved runs.

No pytest dependency, and no renderer: the plugin and the ``pytest-memleak`` command share it and
print its :class:`~pytest_memleak.model.Comparison` with ``render.terminal.comparison_lines``.
"""

from __future__ import annotations

from .compare import (
    GROWTH_FLOOR,
    RATE_FLOOR,
    RELATIVE_FLOOR,
    STATUSES,
    compare_runs,
    compare_test,
)
from .rules import RULE_EXPECTED, Rule, Term, parse_rule
from .storage import HISTORY_DIR, Storage

__all__ = [
    "GROWTH_FLOOR",
    "HISTORY_DIR",
    "RATE_FLOOR",
    "RELATIVE_FLOOR",
    "RULE_EXPECTED",
    "STATUSES",
    "Rule",
    "Storage",
    "Term",
    "compare_runs",
    "compare_test",
    "parse_rule",
]
