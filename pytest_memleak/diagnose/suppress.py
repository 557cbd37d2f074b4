"""Accepted leaks: the user's ``memleak_suppress`` entries, then the known caches.

An entry is ``fingerprint:<16 hex digits>`` (exactly one leak: the form the failure message
offers, ready to paste) or an fnmatch pattern. A suppressed leak stays in the report (with the
entry that accepted it) but does not fail the test.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Iterable, Sequence
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
    "hypothesis-caches": (
        "Hypothesis's own caches of strategies (its strategy cache, bounded at 1,024 entries, "
        "and a structural-coverage tag per strategy label): a test that builds strategies "
        "inside a draw makes new ones at every call",
        lambda lk: _held_by_hypothesis(lk),  # (defined below)
    ),
}


#: The entry that accepts exactly one leak: this prefix and the leak's fingerprint.
FINGERPRINT_PREFIX = "fingerprint:"
#: An inline comment after an entry (pytest reads the ini without stripping them).
_COMMENT = re.compile(r"(?:^|\s)#.*$", re.DOTALL)


def entry_for(fingerprint: str) -> str:
    """The ``memleak_suppress`` entry that accepts the leak of this fingerprint ("" for none)."""
    return f"{FINGERPRINT_PREFIX}{fingerprint}" if fingerprint else ""


def clean_entry(text: str) -> str:
    """An entry without its inline comment (``fingerprint:...  # python_object at ...``)."""
    return _COMMENT.sub("", text).strip()


def suppress(leaks: Iterable[model.Leak], patterns: tuple[str, ...]) -> list[model.Leak]:
    """The leaks, those accepted marked suppressed: by the user's entries (``fingerprint:HEX``
    exactly; a pattern by fnmatch on the fingerprint, source, type, module, object types, top
    frame), then by the named known caches not switched off (``-NAME``, ``-defaults``)."""
    entries = [e for e in map(clean_entry, patterns) if e]
    switched_off = {p[1:] for p in entries if p.startswith("-")}
    user = [p for p in entries if not p.startswith("-")]
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
        if pat[: len(FINGERPRINT_PREFIX)].lower() == FINGERPRINT_PREFIX:
            if lk.fingerprint and pat[len(FINGERPRINT_PREFIX) :].strip().lower() == lk.fingerprint:
                return pat
        elif any(fnmatch.fnmatchcase(f, pat) for f in fields if f):
            return pat
    if lk.suppressed or "defaults" in switched_off:
        return None
    for name, (why, matches) in KNOWN_CACHES.items():
        if name not in switched_off and matches(lk):
            return f"known cache {name}: {why}"
    return None


def paste_lines(leaks: Sequence[model.Leak], name: str, library: bool = False) -> list[str]:
    """The end of a failure message: the ``memleak_suppress`` line that accepts these leaks,
    ready to paste into pytest.ini (at the start of the line: an indented line continues the
    key above it), and the marker's form. ``name`` is the test's (node id and label);
    ``library`` is a ``check()`` body, which reads no ini file and no marker."""
    entries: dict[str, str] = {}
    for lk in leaks:
        entry = entry_for(lk.fingerprint)
        if entry and entry not in entries:
            entries[entry] = f"{entry}  # {lk.type} at {lk.source} ({name})"
    if not entries:
        return []
    listed = ", ".join(f'"{e}"' for e in entries)
    if library:
        return [f"  to accept it: check(..., suppress=[{listed}])"]
    first, *more = entries.values()
    lines = []
    if any(lk.source == "unknown" for lk in leaks):
        lines.append(
            "  (no allocating line was found: an ini entry accepts every unlocated leak of this "
            "type in every test; the marker keeps it to this one)"
        )
    these = "this leak" if not more else f"these {len(entries)} leaks"
    return [
        *lines,
        f"  to accept {these}: in pytest.ini under [pytest] (memleak_suppress already set? add "
        "each entry on an indented line below it)",
        f"memleak_suppress = {first}",
        *(f"    {line}" for line in more),
        f"  or on the test: @pytest.mark.memcheck(suppress=[{listed}])",
    ]


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


def _held_by_hypothesis(lk: model.Leak) -> bool:
    """Held by a global of Hypothesis's, or (no holder found) allocated by Hypothesis's own
    code: never what the user's code keeps of the drawn examples (its holder is the user's)."""
    if lk.retainer_path:
        return lk.retainer_path.startswith("hypothesis.")
    top = (lk.stack_trace or ("",))[0].replace("\\", "/")
    return "/hypothesis/" in top.partition(": ")[0]


def _in_file(lk: model.Leak, *parts: str) -> bool:
    path = lk.source.rpartition(":")[0].replace("\\", "/")
    return any(path.endswith(p) or f"/{p}" in path for p in parts)
