"""Accepted leaks: the user's ``memleak_suppress`` patterns, then the known caches.

A suppressed leak stays in the report (with what accepted it) but does not fail the test.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Iterable
from typing import Callable

from .. import model
from ..model import Json

#: A rule of a known cache: does it explain this leak?
Matches = Callable[[model.Leak], bool]

#: Known caches of the interpreter and common libraries whose growth is accepted by default.
#: Each is named; ``memleak_suppress = -NAME`` switches one off, ``-defaults`` all of them.
#: A rule matches a leak entry and says why it is accepted.
KNOWN_CACHES: dict[str, tuple[str, Matches]] = {
    "openssl-cache": (
        "OpenSSL fills internal caches during roughly the first hundred SSL_CTX_new() calls of "
        "a process (no Python object survives; only _ssl's malloc grows, then stops)",
        lambda lk: lk.type == "native_module" and lk.module in ("_ssl", "ssl") and not lk.objects,
    ),
    "environ-strings": (
        "glibc keeps every distinct NAME=value string ever given to setenv/putenv (old environ "
        "pointers must stay valid); a fresh tmp_path per call set into os.environ "
        "(monkeypatch.setenv) makes a new one each call",
        lambda lk: lk.type == "native_module" and not lk.objects and _mostly_putenv(lk),
    ),
    "typing-cache": ("typing's generic-alias caches", lambda lk: _in_file(lk, "typing.py")),
    "re-cache": (
        "compiled regular expressions kept by re's own cache",
        lambda lk: _in_file(lk, "re/_compiler.py", "sre_compile.py", "re/__init__.py"),
    ),
    "linecache": ("source lines cached for tracebacks", lambda lk: _in_file(lk, "linecache.py")),
    "import-system": (
        "modules imported on first use",
        lambda lk: _in_file(lk, "importlib/_bootstrap.py", "importlib/_bootstrap_external.py"),
    ),
    "pytest-records": (
        "pytest's and pluggy's own per-item records",
        lambda lk: _in_file(lk, "_pytest/", "pluggy/"),
    ),
}


def suppress(leaks: Iterable[model.Leak], patterns: tuple[str, ...]) -> list[model.Leak]:
    """The leaks, those accepted marked suppressed: by the user's patterns (fnmatch on the
    fingerprint, source, type, module, object types, top frame), then by the named known caches
    not switched off (``-NAME``, ``-defaults``)."""
    switched_off = {p[1:] for p in patterns if p.startswith("-")}
    user = [p for p in patterns if not p.startswith("-")]
    out = []
    for lk in leaks:
        by = _accepted_by(lk, user, switched_off)
        out.append(lk if by is None else dataclasses.replace(lk, suppressed=True, suppressed_by=by))
    return out


def _accepted_by(lk: model.Leak, user: list[str], switched_off: set[str]) -> str | None:
    fields = [
        lk.fingerprint,
        lk.source,
        lk.type,
        lk.module or "",
        *lk.objects.keys(),
        *(lk.stack_trace or ())[:1],
    ]
    for pat in user:
        if any(fnmatch.fnmatchcase(f, pat) for f in fields if f):
            return pat
    if lk.suppressed or "defaults" in switched_off:
        return None
    for name, (why, matches) in KNOWN_CACHES.items():
        if name not in switched_off and matches(lk):
            return f"known cache {name}: {why}"
    return None


def _number(value: Json) -> float:
    return float(value) if isinstance(value, (int, float)) else 0.0


def _mostly_putenv(lk: model.Leak) -> bool:
    """The C-call profile charges at least half of the leak's growth to ``posix.putenv``."""
    rate = lk.growth_rate or 0.0
    for mod in lk.details.native or ():
        functions = mod.get("functions")
        charged = functions if isinstance(functions, dict) else {}
        total = sum(_number(v) for v in charged.values())
        if rate <= 0 or total <= 0:
            continue
        # functions hold totals over the traced calls; per_iter is the module's per call
        per_call = _number(mod.get("per_iter")) * _number(charged.get("posix.putenv")) / total
        if per_call >= 0.5 * rate:
            return True
    return False


def _in_file(lk: model.Leak, *parts: str) -> bool:
    path = lk.source.rpartition(":")[0].replace("\\", "/")
    return any(path.endswith(p) or f"/{p}" in path for p in parts)
