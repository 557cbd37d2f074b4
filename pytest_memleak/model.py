"""The typed report model: frozen dataclasses every stage passes on.

The loop, soak and watch produce a :class:`TestResult`; the plugin collects them into a
:class:`RunReport`; the renderers, the baseline and the CLI read the model. Dicts exist only at
the edges: :func:`to_json` (the xdist wire and the JSON writer) and :func:`from_json` (the wire
and the one report reader, after schema validation). Field names and order are the JSON
contract ``pytest-memleak/1`` (``schema.json``).

This module imports nothing of ours but the vocabulary. Its annotations are evaluated at run
time (no ``from __future__ import annotations``) so that :func:`from_json` can read them on
Python 3.9: hence ``Optional`` rather than ``X | None``.
"""

import dataclasses
import functools
import math
import platform
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, TypeVar, Union, get_args, get_origin, get_type_hints

from .vocabulary import VERDICTS, LeakType, Pattern, Severity
from .vocabulary import VerdictName as Verdict

SCHEMA = "pytest-memleak/1"

#: A JSON value, for the few parts of the report that are free-form (settings, config).
Json = Union[None, bool, int, float, str, list["Json"], dict[str, "Json"]]
JsonObject = dict[str, Json]

T = TypeVar("T")


#: Metadata of a field left out of the JSON while it is None (the schema has it optional, and
#: not nullable).
_OMIT = {"omit_none": True}
#: Metadata of a field the detectors keep for themselves: never written to the JSON.
_INTERNAL = {"internal": True}


# ------------------------------------------------------------------------------------ per test


@dataclass(frozen=True)
class Growth:
    """Trend of one metric over the measured iterations (or samples)."""

    metric: str
    unit: str
    pattern: Pattern
    slope_per_iter: float
    slope_per_s: float
    total_growth: float
    r2: float
    mk_p: float
    tau: float
    increasing_fraction: float
    confidence: float
    noise: float
    recommendation: str


@dataclass(frozen=True)
class Finding:
    """One metric judged against the thresholds."""

    metric: str
    rate_per_iter: float  # unit per iteration (bytes or count)
    bytes_per_iter: Optional[float]  # bytes per iteration, estimated for py_blocks
    rate_per_s: float
    total: float
    pattern: Pattern
    confidence: float
    severity: Severity
    failing: bool
    reason: str


@dataclass(frozen=True)
class NoiseFloor:
    noise: float
    min_detectable_per_iter: float


@dataclass(frozen=True)
class ProcessInfo:
    """The process a ``memcheck.watch`` sampled."""

    pid: int
    cmdline: str


@dataclass(frozen=True)
class Trend:
    """RSS against heap over the run; the sampling facts of a soak or watch."""

    rss_slope_per_iter: Optional[float] = None
    heap_slope_per_iter: Optional[float] = None
    divergence_start: Optional[float] = None
    divergence_end: Optional[float] = None
    divergence_slope_per_iter: Optional[float] = None
    external_ratio: Optional[float] = None
    health: str = "unknown"
    mode: Optional[str] = field(
        default=None, metadata=_OMIT
    )  # "soak" | "watch"; absent for the repeat loop
    samples: Optional[int] = field(default=None, metadata=_OMIT)
    interval_s: Optional[float] = field(default=None, metadata=_OMIT)
    sampler_cpu_s: Optional[float] = field(default=None, metadata=_OMIT)
    judged_samples: Optional[int] = field(default=None, metadata=_OMIT)
    interval_achieved_s: Optional[float] = field(default=None, metadata=_OMIT)
    process: Optional[ProcessInfo] = field(default=None, metadata=_OMIT)
    #: why a soak or watch reached no verdict (too few samples in the judged window)
    undecided: Optional[str] = field(default=None, metadata=_OMIT)


@dataclass(frozen=True)
class LeakDetails:
    """What a detector adds to a leak: each key present only when known."""

    pattern: Optional[str] = field(default=None, metadata=_OMIT)
    metric: Optional[str] = field(default=None, metadata=_OMIT)
    #: path:line inside an installed package where the allocation happened
    allocated_in: Optional[str] = field(default=None, metadata=_OMIT)
    category: Optional[str] = field(default=None, metadata=_OMIT)  # of the native module
    buffer: Optional[JsonObject] = field(default=None, metadata=_OMIT)
    native: Optional[tuple[JsonObject, ...]] = field(
        default=None, metadata=_OMIT
    )  # modules the C-call profile names


@dataclass(frozen=True)
class Leak:
    id: str
    type: LeakType
    source: str
    severity: Severity
    estimated_size: Optional[float]
    growth_rate: Optional[float]  # in ``unit`` per iteration (per second for soak and watch)
    evidence: tuple[str, ...] = ()
    recommendation: str = ""
    stack_trace: Optional[tuple[str, ...]] = None
    unit: str = "bytes"
    growth_rate_per_s: Optional[float] = None
    confidence: float = 0.0
    fingerprint: str = ""
    module: Optional[str] = None
    retainer_path: Optional[str] = None
    objects: dict[str, float] = field(default_factory=dict)  # type name -> count per iteration
    details: LeakDetails = field(default_factory=LeakDetails)
    suppressed: bool = False
    suppressed_by: Optional[str] = None
    #: Whose code allocates it: "test code" (the test module, a conftest, a doctest),
    #: "code under test", or "unknown" (no allocating line found).
    origin: str = "unknown"
    #: the ``memleak_suppress`` entry that accepts this leak (ready to paste into the ini)
    suppression: str = ""

    @property
    def what(self) -> str:
        """Its type, or what grew when the type cannot say (a watched process's RSS)."""
        if self.type == "unknown" and self.details.metric:
            return f"{self.details.metric} growth"
        return self.type


@dataclass(frozen=True)
class SiteRecord:
    """An allocation site the traced pass found growing (``detectors.sites.Site``), or one an
    earlier test's traced pass found, recognised again (``known_from``)."""

    source: str  # path:line of the innermost user frame (or innermost frame)
    stack: tuple[str, ...]  # innermost first
    bytes_per_iter: float
    blocks_per_iter: float
    total_bytes: int
    growing_steps: int
    steps: int
    numpy: bool = False
    user: bool = True
    resized: bool = False  # found by the fallback rule: one block that grew in rare steps
    #: path:line of the innermost installed-package frame when the allocation happened inside
    #: an installed package called from the user's code (the source is then the calling line)
    package: Optional[str] = None
    sizes: tuple[int, ...] = ()
    #: The test whose traced diagnosis found this site, when this one recognised it without
    #: tracing (the same surviving objects, holder and calls: ``diagnose.causes``)
    known_from: Optional[str] = field(default=None, metadata=_OMIT)
    #: tracemalloc's frames, oldest first (for the detectors; not in the report)
    frames: tuple[tuple[str, int], ...] = field(
        default=(), metadata=_INTERNAL, repr=False, compare=False
    )


@dataclass(frozen=True)
class DiagnosisRecord:
    """What the traced diagnosis found (``None`` on a test when it did not run)."""

    iterations: int = 0
    seconds: float = 0.0
    sites: tuple[SiteRecord, ...] = ()
    objects: dict[str, float] = field(default_factory=dict)
    resources: JsonObject = field(default_factory=dict)
    lines: dict[str, tuple[JsonObject, ...]] = field(default_factory=dict)
    modules: tuple[JsonObject, ...] = ()
    retainers: dict[str, JsonObject] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    traced_per_iter: float = 0.0
    untraced_malloc_per_iter: Optional[float] = None
    settled_rss_per_iter: Optional[float] = None
    allocator_settled: bool = False
    rss_rising_steps: Optional[int] = None


@dataclass(frozen=True)
class TestResult:
    """The verdict and evidence for one measured body (a test, a fixture block, a check())."""

    __test__ = False  # not a pytest test class

    nodeid: str
    verdict: Verdict
    iterations: int = 0
    warmup: int = 0
    label: str = ""  # "" for the whole test, a name for a fixture measurement
    origin: str = "marker"  # marker | all | fixture | library
    severity: Severity = "none"
    message: str = ""
    partial: bool = False
    stop_reason: str = ""
    error: Optional[str] = None
    error_iteration: Optional[int] = None
    duration_s: float = 0.0
    rounds: tuple[int, ...] = ()
    screens: dict[str, tuple[str, ...]] = field(default_factory=dict)
    snapshots: dict[str, tuple[Optional[float], ...]] = field(default_factory=dict)
    trend: Trend = field(default_factory=Trend)
    growth: dict[str, Growth] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()
    noise: dict[str, NoiseFloor] = field(default_factory=dict)
    leaks: tuple[Leak, ...] = ()
    settings: JsonObject = field(default_factory=dict)
    probe_notes: dict[str, str] = field(default_factory=dict)
    diagnosis: Optional[DiagnosisRecord] = None
    #: this test against its baseline entry (when the run compares against one)
    baseline: Optional["ComparisonRow"] = field(default=None, metadata=_OMIT)

    @property
    def key(self) -> str:
        """The test's identity across runs: its node id, and the label of a fixture block."""
        return f"{self.nodeid}::{self.label}" if self.label else self.nodeid

    @property
    def active_leaks(self) -> tuple[Leak, ...]:
        """The leaks no suppression accepted."""
        return tuple(lk for lk in self.leaks if not lk.suppressed)


#: The series whose first and last readings a session keeps (the terminal's wide table).
SUMMARY_SERIES = ("rss", "heap", "external")


#: The probe note a slimmed result keeps: native growth not judged (the test stops
#: tracemalloc where that leaks), which the terminal summary names.
KEPT_NOTE = "tracemalloc"

#: What :func:`slimmed` empties (the bulk of a result's JSON), and with what. One mapping,
#: shared by every slimmed result (results are frozen: never written to).
_NONE: dict[str, Any] = {}
_EMPTIED: dict[str, Any] = {
    "message": "",
    "screens": _NONE,
    "growth": _NONE,
    "noise": _NONE,
    "settings": _NONE,
    "probe_notes": _NONE,
    "diagnosis": None,
}


def slimmed(result: TestResult) -> TestResult:
    """``result`` as a session keeps it once its JSON text is written out: what the terminal
    summary, the leak groups and the baseline comparison read (the verdict, findings, leaks,
    trend, and the first and last readings of :data:`SUMMARY_SERIES`). The series, the growth
    of every metric, the noise floors, screens, settings, probe notes, message and the
    diagnosis's raw output (~12 KB of JSON a leaking test) are read back from that text when
    needed (the HTML report)."""
    series = result.snapshots
    kept: dict[str, tuple[Optional[float], ...]] = {
        k: (series[k][0], series[k][-1]) for k in SUMMARY_SERIES if series.get(k)
    }
    notes = result.probe_notes
    if KEPT_NOTE in notes:  # what the terminal summary says of the test
        return dataclasses.replace(
            result, snapshots=kept, **{**_EMPTIED, "probe_notes": {KEPT_NOTE: notes[KEPT_NOTE]}}
        )
    return dataclasses.replace(result, snapshots=kept, **_EMPTIED)


#: What :func:`slimmed_from_json` does not read (the probe notes are read: :func:`slimmed`
#: keeps the one the summary names; the snapshots are read apart).
_NOT_READ = (_EMPTIED.keys() - {"probe_notes"}) | {"snapshots"}


def slimmed_from_json(data: JsonObject) -> TestResult:
    """``slimmed(from_json(TestResult, data))``, reading only what it keeps: an xdist
    controller reads every test's JSON (0.6-1 ms a test read whole, ~0.1 ms so)."""
    light = {k: v for k, v in data.items() if k not in _NOT_READ}
    series = data.get("snapshots")
    if isinstance(series, dict):
        light["snapshots"] = {
            k: [v[0], v[-1]] for k in SUMMARY_SERIES if isinstance(v := series.get(k), list) and v
        }
    return slimmed(from_json(TestResult, light))


# ------------------------------------------------------------------------------------ per run


@dataclass(frozen=True)
class Environment:
    python: str
    platform: str
    plugin: str
    pytest: str
    implementation: str = ""
    machine: str = ""
    argv: tuple[str, ...] = ()


@dataclass(frozen=True)
class Summary:
    checked: int = 0
    ok: int = 0
    leak: int = 0
    error: int = 0
    skipped: int = 0
    leaks: int = 0
    not_checked: int = 0
    suppressions_used: int = 0


@dataclass(frozen=True)
class NotChecked:
    """A collected test the plugin did not measure, and why."""

    nodeid: str
    kind: str
    reason: str


@dataclass(frozen=True)
class RunRef:
    name: Optional[str] = None
    created: Optional[str] = None


@dataclass(frozen=True)
class ComparisonRow:
    """One test compared with the baseline. Rates are bytes/iteration, totals bytes; ``None``
    when the side is missing or unmeasured."""

    key: str
    nodeid: str
    status: str
    label: str = ""
    name: str = ""
    old_verdict: Optional[str] = None
    new_verdict: Optional[str] = None
    old_rate: Optional[float] = None
    new_rate: Optional[float] = None
    delta: Optional[float] = None
    delta_pct: Optional[float] = None
    old_total: Optional[float] = None
    new_total: Optional[float] = None
    total_delta: Optional[float] = None
    total_delta_pct: Optional[float] = None
    new_fingerprints: tuple[str, ...] = ()
    failures: tuple[str, ...] = ()
    hint: str = ""
    renamed: tuple[str, ...] = ()
    old_nodeid: Optional[str] = None
    reason: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.failures)


@dataclass(frozen=True)
class Comparison:
    """This run against a baseline."""

    baseline: str = ""
    old: RunRef = field(default_factory=RunRef)
    new: RunRef = field(default_factory=RunRef)
    rule: str = ""
    failed: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    floors: dict[str, float] = field(default_factory=dict)
    rows: tuple[ComparisonRow, ...] = ()

    @property
    def failures(self) -> tuple[ComparisonRow, ...]:
        return tuple(r for r in self.rows if r.failed)


@dataclass(frozen=True)
class LeakGroup:
    """Leaks of several tests that share one signature: one cause, one entry."""

    fingerprint: str
    type: LeakType
    source: str
    count: int
    tests: tuple[str, ...]  # the entries' keys, in report order
    holder: Optional[str] = None
    allocated_in: Optional[str] = None
    rate_min: Optional[float] = None
    rate_max: Optional[float] = None
    unit: str = "bytes"
    suppression: str = ""


@dataclass(frozen=True)
class RunReport:
    """One session's report: what the JSON file holds."""

    environment: Environment
    summary: Summary
    tests: tuple[TestResult, ...] = ()
    schema: str = SCHEMA
    created: str = ""
    partial: bool = False
    config: JsonObject = field(default_factory=dict)
    not_checked: Optional[tuple[NotChecked, ...]] = field(default=None, metadata=_OMIT)
    running: Optional[str] = field(default=None, metadata=_OMIT)
    crashed: Optional[tuple[str, ...]] = field(default=None, metadata=_OMIT)
    comparison: Optional[Comparison] = field(default=None, metadata=_OMIT)
    groups: Optional[tuple[LeakGroup, ...]] = field(default=None, metadata=_OMIT)


# ---------------------------------------------------------------------------------- building


def environment() -> Environment:
    import pytest

    from .version import __version__

    return Environment(
        python=platform.python_version(),
        implementation=platform.python_implementation(),
        platform=platform.platform(),
        machine=platform.machine(),
        plugin=__version__,
        pytest=pytest.__version__,
        argv=tuple(str(a) for a in sys.argv),
    )


def summarise(tests: tuple[TestResult, ...], not_checked: int = 0) -> Summary:
    counts: dict[str, int] = dict.fromkeys(VERDICTS, 0)
    for t in tests:
        counts[t.verdict] += 1
    return Summary(
        checked=len(tests),
        ok=counts["ok"],
        leak=counts["leak"],
        error=counts["error"],
        skipped=counts["skipped"],
        leaks=sum(len(t.active_leaks) for t in tests),
        not_checked=not_checked,
        # distinct entries (the user's patterns, each known cache) that accepted a leak
        suppressions_used=len(
            {
                lk.suppressed_by
                for t in tests
                for lk in t.leaks
                if lk.suppressed and lk.suppressed_by
            }
        ),
    )


def build(
    tests: tuple[TestResult, ...],
    config: JsonObject,
    *,
    partial: bool = False,
    not_checked: tuple[NotChecked, ...] = (),
    running: Optional[str] = None,
    crashed: tuple[str, ...] = (),
    comparison: Optional[Comparison] = None,
    environment_: Optional[Environment] = None,
    groups: Optional[tuple[LeakGroup, ...]] = None,
) -> RunReport:
    """The run's report, stamped with the time and this environment."""
    return RunReport(
        schema=SCHEMA,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        partial=partial,
        environment=environment_ or environment(),
        config=config,
        summary=summarise(tests, len(not_checked)),
        tests=tests,
        not_checked=not_checked,
        running=running,
        crashed=crashed or None,
        comparison=comparison,
        groups=groups,
    )


# ------------------------------------------------------------------------------ JSON at edges


def to_json(value: object) -> Json:
    """The JSON form of a model value: NaN/inf become null, tuples lists, numpy scalars
    Python numbers, and fields marked "omit when None" are left out while None."""
    t = type(value)
    if t is float:  # (exact types first: most of a report is numbers in lists and dicts)
        return value if math.isfinite(value) else None  # type: ignore[arg-type,return-value]
    if t is str or t is int or t is bool or value is None:
        return value  # type: ignore[return-value]
    if t is dict:
        return {str(k): to_json(v) for k, v in value.items()}  # type: ignore[attr-defined]
    if t is list or t is tuple:
        return [to_json(v) for v in value]  # type: ignore[attr-defined]
    if isinstance(value, (str, int)):  # (bool is an int)
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Json] = {}
        for name, omit_none in _json_fields(type(value)):
            item = getattr(value, name)
            if item is None and omit_none:
                continue
            out[name] = to_json(item)
        return out
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    item_of = getattr(value, "item", None)  # a numpy scalar
    if callable(item_of):
        return to_json(item_of())
    return str(value)


@functools.cache
def _json_fields(cls: type) -> tuple[tuple[str, bool], ...]:
    """A dataclass's fields in its JSON form, each with "omit when None"."""
    return tuple(
        (f.name, bool(f.metadata.get("omit_none")))
        for f in dataclasses.fields(cls)
        if not f.metadata.get("internal")
    )


def to_object(value: object) -> JsonObject:
    """:func:`to_json` of a dataclass (always a JSON object)."""
    out = to_json(value)
    assert isinstance(out, dict)
    return out


def from_json(cls: type[T], data: object) -> T:
    """The model value of type ``cls`` that ``data`` (schema-valid JSON) describes.

    Unknown keys are ignored, so a newer report still loads; a missing key takes the field's
    default. Values are converted by the field's annotation; a value whose type does not fit
    (which the schema rules out) raises ``TypeError``.
    """
    return _convert(cls, data)  # type: ignore[no-any-return]


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _convert(tp: Any, data: object) -> Any:
    if tp is Json or tp is Any or tp is object:
        return data
    origin = get_origin(tp)
    if origin is Union:
        args = get_args(tp)
        if data is None:
            if type(None) in args:
                return None
            raise TypeError(f"null where {tp} is expected")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, data)
            except TypeError as exc:
                errors.append(str(exc))
        raise TypeError("; ".join(errors))
    if origin is Literal:
        if data not in get_args(tp):
            raise TypeError(f"{data!r} is not one of {get_args(tp)}")
        return data
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(data, Mapping):
            raise TypeError(f"{tp.__name__} needs an object, got {type(data).__name__}")
        hints = _hints(tp)
        kwargs = {
            f.name: _convert(hints[f.name], data[f.name])
            for f in dataclasses.fields(tp)
            if f.init and f.name in data
        }
        return tp(**kwargs)
    if origin in (tuple, list):
        if not isinstance(data, (list, tuple)):
            raise TypeError(f"a list is expected, got {type(data).__name__}")
        args = get_args(tp)
        item = args[0] if args else Any
        items = [_convert(item, v) for v in data]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(data, Mapping):
            raise TypeError(f"an object is expected, got {type(data).__name__}")
        args = get_args(tp)
        value_type = args[1] if len(args) == 2 else Any
        return {str(k): _convert(value_type, v) for k, v in data.items()}
    if tp is float:
        if data is None:  # a non-finite number is written as null
            return math.nan
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            raise TypeError(f"a number is expected, got {data!r}")
        return float(data)
    if tp in (int, str, bool):
        if not isinstance(data, tp) or (tp is int and isinstance(data, bool)):
            raise TypeError(f"{tp.__name__} expected, got {data!r}")
        return data
    raise TypeError(f"cannot read {tp!r} from JSON")
