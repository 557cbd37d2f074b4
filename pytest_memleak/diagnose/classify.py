"""The leak type of growing memory, as an ordered rule table: the first rule that matches wins.

Resource leaks (fds, threads, children) take their type from their metric (``leaks.py``). Memory
(py_blocks, malloc, rss) is typed here from what the diagnosis saw: the types of the objects that
survived, what the allocating line calls, and how much of the growth tracemalloc could see. No
rule matching means Python objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Callable, Optional

from ..detectors import native
from ..detectors.native import ModuleCharge
from ..detectors.sites import Site
from ..vocabulary import LeakType

#: (leak type, the extension module behind it when known)
Kind = tuple[LeakType, Optional[str]]

BUFFER_TYPES = ("numpy.ndarray", "memoryview", "array.array", "mmap.mmap")
CONNECTION_TYPES = (
    "sqlite3.Connection",
    "sqlite3.Cursor",
    "psycopg",
    "pymysql.connections",
    "asyncpg.connection",
)
CRYPTO_TYPES = (
    "ssl.SSLContext",
    "_ssl._SSLContext",
    "ssl.SSLSocket",
    "ssl.SSLObject",
    "_ssl._SSLSocket",
)
#: Modules a line may call to make a buffer.
BUFFER_MODULES = ("array", "mmap", "numpy", "builtins.memoryview")
#: Categories of extension modules whose growth is the extension's own memory.
NATIVE_CATEGORIES = ("compression", "xml", "ffi")


@dataclass(frozen=True)
class Evidence:
    """What the rules look at."""

    #: types whose live count grew (name -> objects per call), most first
    objects: Mapping[str, float]
    #: the largest growing allocation site tracemalloc saw, if any
    top_site: Site | None
    #: the line the C-call profile charged most with malloc growth, if any
    malloc_line: str | None
    #: native growth (malloc, RSS) at least twice what tracemalloc saw
    mostly_native: bool
    #: malloc (total or main arena) was confirmed growing
    malloc_grew: bool
    #: Python's allocated blocks were confirmed growing
    py_blocks_grew: bool


def _connection_objects(e: Evidence) -> Kind | None:
    """Database connections or cursors survive."""
    for name in e.objects:
        if any(name.startswith(c) for c in CONNECTION_TYPES):
            return "connection_pool", native.extension_module(name.split(".")[0])
    return None


def _ssl_objects(e: Evidence) -> Kind | None:
    """SSL contexts or sockets survive."""
    for name in e.objects:
        if name in CRYPTO_TYPES:
            return "crypto_context", "_ssl"
    return None


def _extension_objects(e: Evidence) -> Kind | None:
    """Objects of a compression, XML or FFI extension survive."""
    for name in e.objects:
        mod = name.split(".")[0] if "." in name else ""
        if mod and native.category(mod) in NATIVE_CATEGORIES:
            return "native_module", native.extension_module(mod)
    return None


def _buffer_objects(e: Evidence) -> Kind | None:
    """Buffers (arrays, memoryviews, mmaps) survive."""
    for name in e.objects:
        if name in BUFFER_TYPES:
            return "buffer_leak", None
    return None


def _what_the_line_calls(e: Evidence) -> Kind | None:
    """Objects the census cannot see (untracked, held by an old container): what does the
    allocating line call? (sqlite3.connect -> connection_pool, zlib -> native)"""
    top = e.top_site
    line = top.source if top is not None and top.user else e.malloc_line
    return kind_from_line(line) if line else None


def _mostly_native(e: Evidence) -> Kind | None:
    """Most of the growth is memory tracemalloc does not see."""
    return ("native_module", None) if e.mostly_native else None


def _numpy_site(e: Evidence) -> Kind | None:
    """The top allocation site is numpy's data buffers."""
    return ("buffer_leak", None) if e.top_site is not None and e.top_site.numpy else None


def _native_without_python(e: Evidence) -> Kind | None:
    """malloc grew, tracemalloc saw no Python allocation grow and no object survived: the
    memory is native (ctypes, an extension's own malloc), even when no single line could be
    charged with it."""
    if e.top_site is None and e.malloc_grew and not e.py_blocks_grew and not e.objects:
        return "native_module", None
    return None


def _nothing_located(e: Evidence) -> Kind | None:
    """No allocation site and no line charged with the growth."""
    located = e.top_site is not None or (e.malloc_line or "unknown") != "unknown"
    return None if located else ("unknown", None)


Rule = Callable[[Evidence], Optional[Kind]]

#: The rules in order; the first that gives a type wins (none: ``python_object``).
RULES: tuple[tuple[str, Rule], ...] = (
    ("connection objects survive", _connection_objects),
    ("SSL objects survive", _ssl_objects),
    ("extension objects survive", _extension_objects),
    ("buffers survive", _buffer_objects),
    ("the allocating line calls an extension", _what_the_line_calls),
    ("mostly native growth", _mostly_native),
    ("numpy buffers at the top site", _numpy_site),
    ("malloc alone grew", _native_without_python),
    ("nothing located", _nothing_located),
)


def classify(e: Evidence) -> Kind:
    """(leak type, module) of the growing memory: the first rule of :data:`RULES` that
    matches, else Python objects."""
    for _name, rule in RULES:
        kind = rule(e)
        if kind is not None:
            return kind
    return "python_object", None


def kind_from_line(source: str) -> Kind | None:
    """Leak type from what the allocating line calls, for objects the census cannot see."""
    for mod in native.modules_called_on_line(source):
        top = mod.split(".")[0]
        if native.category(top) in NATIVE_CATEGORIES and top != "builtins":
            return "native_module", top
        if native.category(top) == "database":
            return "connection_pool", native.extension_module(top)
        if any(mod == b or mod.startswith(b + ".") for b in BUFFER_MODULES):
            return "buffer_leak", None
    return None


def native_module_name(source: str, modules: Sequence[ModuleCharge]) -> str | None:
    """The extension behind native growth no surviving object named: ctypes when the line at
    ``source`` calls through it, else the module the C-call profile charged most."""
    if source and native.ctypes_on_line(source):
        return "ctypes"
    return modules[0]["module"] if modules else None
