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

import importlib
from typing import TYPE_CHECKING, Any

from .rules import RULE_EXPECTED, Rule, Term, parse_rule

if TYPE_CHECKING:
    from .compare import (
        GROWTH_FLOOR,
        RATE_FLOOR,
        RELATIVE_FLOOR,
        STATUSES,
        compare_runs,
        compare_test,
    )
    from .storage import HISTORY_DIR, Storage

#: Loaded on first use: the settings import the rules at start-up, and a session that compares
#: nothing does not pay for the model and the comparison.
_LAZY = {
    **dict.fromkeys(
        (
            "GROWTH_FLOOR",
            "RATE_FLOOR",
            "RELATIVE_FLOOR",
            "STATUSES",
            "compare_runs",
            "compare_test",
        ),
        ".compare",
    ),
    **dict.fromkeys(("HISTORY_DIR", "Storage"), ".storage"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
