"""What a test's results mean for its pytest outcome: the failure messages, the JUnit figures,
and an expected failure's verdict.

A test fails on the leaks of its own loop, of a soak or of a watched process (a ``memcheck``
fixture measurement only returns its result: ``assert_no_leak`` raises by itself), and on a
regression against the baseline the run compares with.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from .baseline import Rule, compare_test
from .model import RunReport, TestResult
from .units import format_leak_rate


@dataclass(frozen=True)
class Baseline:
    """The run this session compares with, indexed by test key, and the rule that fails it."""

    path: str
    report: RunReport
    rule: Rule | None = None
    index: dict[str, TestResult] = field(default_factory=dict)

    @classmethod
    def of(cls, path: str, report: RunReport, rule: Rule | None) -> Baseline:
        return cls(path, report, rule, {t.key: t for t in report.tests})


def leak_messages(results: Sequence[TestResult]) -> list[str]:
    """The failure messages of the results that fail the test."""
    return [r.message for r in results if r.verdict == "leak" and r.origin != "fixture"]


def regressions(
    results: Sequence[TestResult], baseline: Baseline
) -> tuple[list[TestResult], list[str]]:
    """Each result with its comparison row, and a failure message per regressed result."""
    compared: list[TestResult] = []
    messages: list[str] = []
    for r in results:
        row = compare_test(baseline.index.get(r.key), r, baseline.rule)
        compared.append(dataclasses.replace(r, baseline=row))
        if row.failures:
            lines = [f"memleak: {r.nodeid} regressed against baseline {baseline.path}"]
            lines += [f"  - {f}" for f in row.failures]
            messages.append("\n".join(lines))
    return compared, messages


def short_reason(results: Sequence[TestResult], messages: Sequence[str]) -> str:
    """One line for pytest's short test summary: the first leak that fails the test (the
    detail is in the failure section; pytest prints the summary line whole under CI)."""
    leaks = [
        lk
        for r in results
        if r.verdict == "leak" and r.origin != "fixture"
        for lk in r.active_leaks
    ]
    if leaks:
        lk = leaks[0]
        more = f" (+{len(leaks) - 1} more)" if len(leaks) > 1 else ""
        rate = format_leak_rate(lk.growth_rate, lk.unit)
        return f"memleak: {lk.what} at {lk.source}, {rate}{more}"
    return messages[0].splitlines()[0] if messages else "memleak"


def junit_properties(results: Sequence[TestResult]) -> list[tuple[str, object]]:
    """Key figures as JUnit user properties (``memleak.verdict``, ``memleak.leaks``, ...; a
    fixture measurement's are suffixed with its label)."""
    props: list[tuple[str, object]] = []
    for r in results:
        prefix = "memleak" + (f"[{r.label}]" if r.label else "")
        props += [
            (f"{prefix}.verdict", r.verdict),
            (f"{prefix}.iterations", r.iterations),
            (f"{prefix}.leaks", len(r.active_leaks)),
            (f"{prefix}.severity", r.severity),
        ]
        main = max(r.findings, key=lambda f: f.bytes_per_iter or 0, default=None)
        if main is not None and main.bytes_per_iter is not None:
            props.append((f"{prefix}.bytes_per_iter", round(main.bytes_per_iter, 1)))
    return props


def expected_failure(result: TestResult) -> TestResult:
    """A test marked xfail whose body raised at its first call: pytest reports it xfailed, and
    so does the report (verdict ``skipped``, the exception kept), not as an error."""
    if result.verdict != "error":
        return result
    return dataclasses.replace(result, verdict="skipped", stop_reason="skipped")
