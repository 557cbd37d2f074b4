"""The report model: plain dataclasses that serialise to the JSON contract (pytest-memleak/1).

Everything here is made of ``str``, ``int``, ``float``, ``bool``, ``None``, ``list`` and ``dict``
so that a :class:`TestResult` can ride on a pytest report across pytest-xdist's wire and be
written as JSON unchanged. ``from_dict`` ignores unknown keys, so newer reports still load.
"""

from __future__ import annotations

import dataclasses
import math
import platform
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from .vocabulary import LEAK_TYPES as LEAK_TYPES
from .vocabulary import VERDICTS as VERDICTS

SCHEMA = "pytest-memleak/1"


def clean(value: Any) -> Any:
    """JSON-safe copy: NaN/inf become None, tuples lists, numpy scalars Python numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "item"):  # numpy scalar
        return clean(value.item())
    return str(value)


@dataclass
class Leak:
    id: str
    type: str
    source: str
    severity: str
    estimated_size: float | None
    growth_rate: float | None  # bytes (or objects/resources, see unit) per iteration
    evidence: list[str] = field(default_factory=list)
    recommendation: str = ""
    stack_trace: list[str] | None = None
    unit: str = "bytes"
    growth_rate_per_s: float | None = None
    confidence: float = 0.0
    fingerprint: str = ""
    module: str | None = None
    retainer_path: str | None = None
    objects: dict[str, float] = field(default_factory=dict)  # type name -> count per iteration
    details: dict[str, Any] = field(default_factory=dict)
    suppressed: bool = False
    suppressed_by: str | None = None
    #: Whose code allocates it: "test code" (the test module, a conftest, a doctest),
    #: "code under test", or "unknown" (no allocating line found).
    origin: str = "unknown"

    def to_dict(self) -> dict[str, Any]:
        return clean(dataclasses.asdict(self))  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Leak:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class TestResult:
    __test__ = False  # not a pytest test class

    nodeid: str
    verdict: str
    iterations: int = 0
    warmup: int = 0
    label: str = ""  # "" for the whole test, a name for a fixture measurement
    origin: str = "marker"  # marker | all | fixture | library
    severity: str = "none"
    message: str = ""
    partial: bool = False
    stop_reason: str = ""
    error: str | None = None
    error_iteration: int | None = None
    duration_s: float = 0.0
    rounds: list[int] = field(default_factory=list)
    screens: dict[str, list[str]] = field(default_factory=dict)
    snapshots: dict[str, list[float | None]] = field(default_factory=dict)
    trend: dict[str, Any] = field(default_factory=dict)
    growth: dict[str, Any] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)
    noise: dict[str, Any] = field(default_factory=dict)
    leaks: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    probe_notes: dict[str, str] = field(default_factory=dict)
    diagnosis: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return clean(dataclasses.asdict(self))  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TestResult:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @property
    def key(self) -> str:
        return f"{self.nodeid}::{self.label}" if self.label else self.nodeid


def code_origin(
    source: str, nodeid: str, allocated_in: str | None = None, holder: str | None = None
) -> str:
    """ "test code" when the leak is the test's own doing: the objects are held by a global of
    the test's code, or allocated by a line of it (its module, a conftest.py, a test_*.py /
    *_test.py file, a doctest) and not inside an installed package it calls
    (``allocated_in``); else "code under test"."""
    if holder and _is_test_module(holder.split(" ", 1)[0].rpartition(".")[0], nodeid):
        return "test code"
    if not source or source == "unknown":
        return "unknown"
    if allocated_in:
        return "code under test"
    path = source.rsplit(":", 1)[0].replace("\\", "/") if ":" in source else source
    name = path.rsplit("/", 1)[-1]
    test_file = nodeid.split("::", 1)[0].replace("\\", "/")
    own = bool(test_file) and (
        path == test_file or path.endswith("/" + test_file) or test_file.endswith("/" + path)
    )
    if own or path.startswith("<doctest") or _is_test_name(name):
        return "test code"
    return "code under test"


def _is_test_name(name: str) -> bool:
    return (
        name == "conftest.py"
        or (name.startswith("test_") and name.endswith(".py"))
        or name.endswith("_test.py")
    )


def _is_test_module(module: str, nodeid: str) -> bool:
    """A dotted module name (``tests.test_bus``) that is the test's module or test code."""
    if not module:
        return False
    last = module.rsplit(".", 1)[-1]
    test_file = nodeid.split("::", 1)[0].replace("\\", "/")
    stem = test_file.rsplit("/", 1)[-1].removesuffix(".py")
    return last == stem or _is_test_name(last + ".py")


def environment() -> dict[str, Any]:
    import pytest

    from . import __version__

    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "plugin": __version__,
        "pytest": pytest.__version__,
        "argv": [str(a) for a in sys.argv],
    }


def summarise(tests: list[dict[str, Any]]) -> dict[str, Any]:
    counts: dict[str, int] = dict.fromkeys(VERDICTS, 0)
    leaks = 0
    for t in tests:
        counts[t.get("verdict", "error")] = counts.get(t.get("verdict", "error"), 0) + 1
        leaks += sum(1 for lk in t.get("leaks", []) if not lk.get("suppressed"))
    return {"checked": len(tests), **counts, "leaks": leaks}


def build(
    tests: list[dict[str, Any]],
    config: dict[str, Any],
    *,
    partial: bool = False,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "partial": partial,
        "environment": environment(),
        "config": config,
        "summary": summarise(tests),
        "tests": tests,
    }
    if extra:
        doc.update(extra)
    doc["summary"]["not_checked"] = len(doc.get("not_checked") or [])
    return clean(doc)  # type: ignore[no-any-return]
