"""What the loop measured for one body: the :class:`Measurement` every later stage reads.

The runner fills it (the snapshot series, each round's screens, the confirmed metrics, and the
loop's facts: calls, stop reason, errors); the verdict judges it; a diagnosis that ran hangs its
findings on it (:class:`DiagnosisFindings`, the part a judgement may read).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .model import DiagnosisRecord, Growth
from .settings import Settings


class DiagnosisFindings(Protocol):
    """What a diagnosis found, as far as the verdict reads it (``diagnose.Diagnosis`` has it)."""

    @property
    def iterations(self) -> int:
        """Calls the diagnosis made (untraced and traced)."""

    @property
    def untraced_calls(self) -> int:
        """Calls of the untraced pass (the readings below span them)."""

    @property
    def resources(self) -> Mapping[str, Any]:
        """New fds, threads and children over the untraced calls (``file_count``, ...)."""

    @property
    def objects(self) -> Mapping[str, float]:
        """Types whose live count grew: name -> objects per call."""

    @property
    def allocator_settled(self) -> bool:
        """The native readings were taken with glibc's caches settled at both ends."""

    @property
    def untraced_malloc_per_iter(self) -> float | None:
        """malloc in-use growth per untraced call."""

    @property
    def untraced_main_per_iter(self) -> float | None:
        """The main arena's malloc in-use growth per untraced call (None where not read)."""

    @property
    def settled_rss_per_iter(self) -> float | None:
        """RSS growth per untraced call."""

    @property
    def rss_rising_steps(self) -> int | None:
        """Untraced calls after which RSS was higher than before."""

    @property
    def notes(self) -> list[str]:
        """What the diagnosis tells about itself (timings, why it stopped)."""

    def record(self) -> DiagnosisRecord:
        """The report's copy of the findings."""


@dataclass
class Measurement:
    """What the loop measured for one test body."""

    settings: Settings
    warmup: int = 0
    iterations: int = 0
    rounds: list[int] = field(default_factory=list)  # measured iterations at each round's end
    series: dict[str, list[float | None]] = field(default_factory=dict)
    screens: dict[str, list[str]] = field(default_factory=dict)  # metric -> per-round screen
    confirmed: list[str] = field(default_factory=list)
    growth: dict[str, Growth] = field(default_factory=dict)
    error_iteration: int | None = None
    error: str | None = None
    outcome: str = "ok"  # ok | error | skipped | not_repeatable
    stop_reason: str = "clean"
    partial: bool = False
    duration_s: float = 0.0
    probe_notes: dict[str, str] = field(default_factory=dict)
    diagnosis: DiagnosisFindings | None = None  # when the diagnosis ran
    block_size: float = 0.0
    runaway: str | None = None  # why the runaway guard stopped the loop
    undecided: str | None = None  # the time budget ran out before a verdict could be reached
