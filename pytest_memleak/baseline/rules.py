"""The ``--memleak-compare-fail`` mini-language: comma-separated terms, parsed once into a
:class:`Rule` that the settings hold.

* ``rate:10%``: the rate grew by more than 10 % of the baseline's rate;
* ``rate:4KiB`` (or ``rate:4KiB/iter``): the rate grew by more than 4 KiB per iteration;
* ``growth:20%`` / ``growth:1MiB``: the same for the total growth;
* ``new-leaks``: the test has a leak whose fingerprint the baseline test did not have.

``str(rule)`` is the normalised text (what the report's settings show); it parses back to the
same rule. Imports only the errors, the units and the vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from ..units import parse_float, parse_rate, parse_size

__all__ = ["RULE_EXPECTED", "Rule", "Term", "parse_rule"]

RULE_EXPECTED = (
    "comma-separated terms: rate:10% or rate:4KiB (growth rate per iteration), growth:20% or "
    "growth:1MiB (total growth), new-leaks (a leak fingerprint not in the baseline)"
)


@dataclass(frozen=True)
class Term:
    """One rule term: ``kind`` is ``rate``, ``growth`` or ``new-leaks``; ``rate``/``growth``
    carry either ``percent`` or ``bytes`` (the allowed increase)."""

    kind: str
    percent: float | None = None
    bytes: float | None = None

    def __str__(self) -> str:
        if self.kind == "new-leaks":
            return "new-leaks"
        if self.percent is not None:
            return f"{self.kind}:{self.percent:g}%"
        return f"{self.kind}:{_exact_size(self.bytes or 0.0)}"


@dataclass(frozen=True)
class Rule:
    """A comparison rule: the terms of ``--memleak-compare-fail``; empty never fails."""

    terms: tuple[Term, ...] = ()

    def __str__(self) -> str:
        return ",".join(str(t) for t in self.terms)

    def __bool__(self) -> bool:
        return bool(self.terms)

    @property
    def new_leaks(self) -> bool:
        return any(t.kind == "new-leaks" for t in self.terms)


def parse_rule(text: str, key: str = "--memleak-compare-fail") -> Rule:
    """Parse ``"rate:10%,growth:1MiB,new-leaks"``; raise ConfigError naming ``key`` if malformed."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(key, text, RULE_EXPECTED)
    terms: list[Term] = []
    for raw in text.split(","):
        part = raw.strip()
        term = _parse_term(part, key)
        if term is None:
            bad = f"{RULE_EXPECTED}; {part!r} is not a term" if part else RULE_EXPECTED
            raise ConfigError(key, text, bad)
        terms.append(term)
    return Rule(tuple(terms))


def _parse_term(part: str, key: str) -> Term | None:
    name, sep, value = part.partition(":")
    name = name.strip().lower().replace("_", "-")
    value = value.strip()
    if name == "new-leaks" and not sep:
        return Term("new-leaks")
    if name not in ("rate", "growth") or not value:
        return None
    try:
        if value.endswith("%"):
            return Term(name, percent=parse_float(value[:-1], key, minimum=0.0))
        if name == "rate":
            rate = parse_rate(value, key)  # "4KiB" or "4KiB/iter"
            return Term(name, bytes=rate.bytes) if rate.per == "iter" else None
        return Term(name, bytes=float(parse_size(value, key)))
    except ConfigError:
        return None


def _exact_size(n: float) -> str:
    """A size that parses back to exactly ``n``: "4KiB", "1MiB", "1000000B"."""
    for power, unit in ((3, "GiB"), (2, "MiB"), (1, "KiB")):
        if n and n % 1024**power == 0:
            return f"{int(n // 1024**power)}{unit}"
    return f"{int(n)}B" if float(n).is_integer() else f"{n!r}B"
