"""Native attribution: which line, and which extension module's C function, grew a counter.

During a few diagnosis iterations a line tracer (``sys.settrace``, the user's frames only) and a
profile hook (``sys.setprofile``, C calls) read cheap counters — malloc in-use bytes, open fds,
threads, child processes — whenever the line running changes and around each C call, and charge
each change to the line or the C function that was running. What tracemalloc cannot see (libc
malloc through ctypes, an extension's own allocator, an fd with no Python object) is found this
way, with measured evidence.
"""

from __future__ import annotations

import math
import re
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from types import FrameType
from typing import Callable, Optional, TypedDict

from .frames import is_plugin_file, is_runner_file, is_user_file, location

#: A ``sys.settrace`` function: called per event, returns the local tracer (or None).
Tracer = Callable[[FrameType, str, object], Optional["Tracer"]]


class LineCharge(TypedDict):
    """A user line whose events grew a counter, over the traced calls."""

    source: str  # path:line
    per_iter: float
    allocations: int  # readings that found the counter raised (a line run again is one reading)
    frees: int  # readings that found it lowered
    iterations_positive: int  # traced calls in which the line's net charge was positive


class ModuleCharge(TypedDict):
    """An extension module whose C functions grew malloc, over the traced calls."""

    module: str
    total: float
    allocations: int
    frees: int
    functions: dict[str, float]  # its C functions -> total growth, the largest three
    per_iter: float
    range: list[float]  # [smallest, largest] growth in one call
    confidence: float
    category: str


#: Module name prefix -> category.
CATEGORIES: tuple[tuple[str, str], ...] = (
    ("_sqlite3", "database"),
    ("sqlite3", "database"),
    ("psycopg", "database"),
    ("_mysql", "database"),
    ("pymysql", "database"),
    ("asyncpg", "database"),
    ("_ssl", "crypto"),
    ("ssl", "crypto"),
    ("_hashlib", "crypto"),
    ("cryptography", "crypto"),
    ("_socket", "network"),
    ("socket", "network"),
    ("select", "network"),
    ("_asyncio", "network"),
    ("zlib", "compression"),
    ("_bz2", "compression"),
    ("bz2", "compression"),
    ("_lzma", "compression"),
    ("lzma", "compression"),
    ("_zstd", "compression"),
    ("numpy", "numeric"),
    ("scipy", "numeric"),
    ("pandas", "numeric"),
    ("pyexpat", "xml"),
    ("_elementtree", "xml"),
    ("xml", "xml"),
    ("lxml", "xml"),
    ("ctypes", "ffi"),
    ("_ctypes", "ffi"),
    ("cffi", "ffi"),
)


#: Public module names under which C types and functions present themselves -> the extension
#: module that holds their code (``sqlite3.Connection`` lives in ``_sqlite3``).
EXTENSIONS = {
    "sqlite3": "_sqlite3",
    "ssl": "_ssl",
    "socket": "_socket",
    "hashlib": "_hashlib",
    "bz2": "_bz2",
    "lzma": "_lzma",
    "json": "_json",
    "pickle": "_pickle",
    "decimal": "_decimal",
    "datetime": "_datetime",
    "csv": "_csv",
    "select": "select",
}


def extension_module(module: str) -> str:
    """The extension module behind a public name, when it is loaded (else the name itself)."""
    ext = EXTENSIONS.get(module.split(".")[0])
    return ext if ext is not None and ext in sys.modules else module


def category(module: str) -> str:
    for prefix, cat in CATEGORIES:
        if module == prefix or module.startswith(prefix + "."):
            return cat
    return "other"


def _c_module(fn: object) -> str:
    mod = getattr(fn, "__module__", None)
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, type):
        mod = owner.__module__
    elif mod is None and owner is not None:
        mod = type(owner).__module__
    return mod or "builtins"


@dataclass
class Charge:
    total: float = 0.0
    up: int = 0  # readings that found the counter raised (allocations)
    down: int = 0  # readings that found it lowered (frees)
    per_iter: list[float] = field(default_factory=list)


_C_EVENTS = frozenset(("c_call", "c_return", "c_exception"))


def _in_body(frame: FrameType | None) -> bool:
    """True when code running in ``frame`` was called by the user's code: walking outwards, a
    frame of a user file comes before one of pytest's machinery or of this plugin."""
    while frame is not None:
        name = frame.f_code.co_filename
        if is_runner_file(name) or is_plugin_file(name):
            return False
        if is_user_file(name) or name.startswith("<doctest "):
            return True
        frame = frame.f_back
    return False


class Attributor:
    """Charges counter changes to user lines and C functions. Install per iteration."""

    def __init__(self, counters: dict[str, Callable[[], float]]) -> None:
        self.counters = counters
        self.names = list(counters)
        self.lines: dict[str, dict[str, Charge]] = {n: defaultdict(Charge) for n in self.names}
        self.cfuncs: dict[str, dict[str, Charge]] = {"malloc": defaultdict(Charge)}
        self._last: list[float] = [0.0] * len(self.names)
        self._where = "<start>"
        self._cstack: list[tuple[str, float]] = []
        self._iter_c: dict[str, float] = {}
        self._thread = threading.get_ident()
        self._iter_lines: dict[str, dict[str, float]] = {}
        self._cread = counters.get("malloc")
        self._locations: dict[tuple[str, int], str] = {}
        #: When (``time.perf_counter()``) tracing stops, mid-call if need be: a call of a
        #: body that makes a million C calls (a Hypothesis test: 100 examples a call) read
        #: malloc twice per C call, for minutes. ``cut``: it stopped so.
        self.deadline = math.inf
        self.cut = False

    def _over(self) -> bool:
        """Past the deadline: stop tracing now (the rest of the call runs untraced)."""
        if time.perf_counter() < self.deadline:
            return False
        self.cut = True
        sys.settrace(None)
        sys.setprofile(None)
        return True

    # -- hooks ---------------------------------------------------------------------------------
    def _read(self) -> list[float]:
        return [fn() for fn in self.counters.values()]

    def _charge(self, where: str) -> None:
        now = self._read()
        for i, name in enumerate(self.names):
            d = now[i] - self._last[i]
            if d:
                c = self.lines[name][where]
                c.total += d
                if d > 0:
                    c.up += 1
                else:
                    c.down += 1
                it = self._iter_lines.setdefault(name, {})
                it[where] = it.get(where, 0.0) + d
        self._last = now

    def _location(self, filename: str, lineno: int) -> str:
        key = (filename, lineno)
        where = self._locations.get(key)
        if where is None:
            where = self._locations[key] = location(filename, lineno)
        return where

    def _move(self, where: str) -> None:
        """The running line is now ``where``: the counters' change so far is the last line's.
        A line run again (a loop, a comprehension, a generator resumed from it) is not read
        again: its changes add up to the same charge at the next reading."""
        if where != self._where:
            self._charge(self._where)
            self._where = where

    def _local(self, frame: FrameType, event: str, arg: object) -> Tracer | None:
        if self.cut:
            return None
        if event == "line":
            if self._over():
                return None
            self._move(self._location(frame.f_code.co_filename, frame.f_lineno))
        elif event == "return":
            back = frame.f_back
            if back is not None and is_user_file(back.f_code.co_filename):
                self._move(self._location(back.f_code.co_filename, back.f_lineno))
        return self._local

    def _global(self, frame: FrameType, event: str, arg: object) -> Tracer | None:
        if self.cut:
            return None
        if event == "call" and is_user_file(frame.f_code.co_filename):
            self._move(self._location(frame.f_code.co_filename, frame.f_lineno))
            return self._local
        return None

    def _profile(self, frame: FrameType, event: str, arg: object) -> None:
        # C calls are charged on the malloc counter only: it costs ~1 us to read, the resource
        # counters tens of microseconds, and a C call can be made thousands of times per line.
        read = self._cread
        if read is None or event not in _C_EVENTS:
            return  # (Python calls and returns reach the profile function too)
        if self.cut or self._over():
            return
        if not _in_body(frame):
            # pytest's fixture set-up and tear-down, and this plugin's own, run inside each
            # call too, through the standard library as well (inspect.signature for every
            # fixture): their C calls are not the body's, and reading malloc costs more the
            # more free chunks glibc holds (tens of microseconds late in a long run).
            return
        if event == "c_call":
            self._cstack.append((f"{_c_module(arg)}.{getattr(arg, '__qualname__', '?')}", read()))
        elif self._cstack:
            name, before = self._cstack.pop()
            d = read() - before
            if d:
                c = self.cfuncs["malloc"][name]
                c.total += d
                self._iter_c[name] = self._iter_c.get(name, 0.0) + d
                if d > 0:
                    c.up += 1
                else:
                    c.down += 1

    def install(self) -> None:
        if self.cut:
            return
        self._last = self._read()
        self._where = "<start>"
        self._iter_lines = {}
        self._iter_c = {}
        sys.settrace(self._global)
        if self._cread is not None:
            sys.setprofile(self._profile)

    def uninstall(self) -> None:
        sys.settrace(None)
        sys.setprofile(None)
        self._cstack.clear()
        if self.cut:
            # A call cut short: its partial charges are left out (a line after the cut would
            # read as not growing at that call), and it is no traced call.
            for name, per in self._iter_lines.items():
                for where, v in per.items():
                    self.lines[name][where].total -= v
            for cname, v in self._iter_c.items():
                self.cfuncs["malloc"][cname].total -= v
            self._iter_lines, self._iter_c = {}, {}
            return
        self._charge(self._where)
        for name in self.names:
            per = self._iter_lines.get(name, {})
            for where, charge in self.lines[name].items():
                charge.per_iter.append(per.get(where, 0.0))
        for cname, charge in self.cfuncs["malloc"].items():
            charge.per_iter.append(self._iter_c.get(cname, 0.0))

    # -- results -------------------------------------------------------------------------------
    def top_lines(self, counter: str, iterations: int, limit: int = 3) -> list[LineCharge]:
        """Lines whose net charge grew the counter in most iterations, largest first."""
        out: list[LineCharge] = []
        for where, c in self.lines[counter].items():
            if where.startswith("<") or c.total <= 0:
                continue
            positive = sum(1 for v in c.per_iter if v > 0)
            if positive < 0.6 * max(1, iterations):
                continue
            out.append(
                {
                    "source": where,
                    "per_iter": c.total / max(1, iterations),
                    "allocations": c.up,
                    "frees": c.down,
                    "iterations_positive": positive,
                }
            )
        out.sort(key=lambda line: -line["per_iter"])
        return out[:limit]

    def modules(self, counter: str, iterations: int) -> list[ModuleCharge]:
        """Extension modules whose C functions grew the counter, largest first."""
        by_module: dict[str, _ModuleSum] = {}
        for name, c in self.cfuncs[counter].items():
            public = name.rsplit(".", 1)[0].split(".")[0] if "." in name else name
            module = extension_module(public)
            m = by_module.setdefault(module, _ModuleSum(iters=[0.0] * len(c.per_iter)))
            m.total += c.total
            m.allocations += c.up
            m.frees += c.down
            m.functions[name] = m.functions.get(name, 0.0) + c.total
            for i, v in enumerate(c.per_iter[: len(m.iters)]):
                m.iters[i] += v
        growing = sum(m.total for m in by_module.values() if m.total > 0) or 1.0
        out: list[ModuleCharge] = []
        for module, m in by_module.items():
            if m.total <= 0:
                continue
            iters = m.iters
            per_iter = m.total / max(1, iterations)
            positive = sum(1 for v in iters if v > 0) / max(1, len(iters))
            out.append(
                ModuleCharge(
                    module=module,
                    total=m.total,
                    allocations=m.allocations,
                    frees=m.frees,
                    functions=dict(sorted(m.functions.items(), key=lambda kv: -kv[1])[:3]),
                    per_iter=per_iter,
                    range=[min(iters), max(iters)] if iters else [per_iter, per_iter],
                    # Sure when the module grew malloc in every iteration and explains most of it.
                    confidence=round(positive * m.total / growing, 2),
                    category=category(module),
                )
            )
        out.sort(key=lambda m: -m["total"])
        return out


@dataclass
class _ModuleSum:
    """One extension module's charges while :meth:`Attributor.modules` adds them up."""

    iters: list[float]  # growth per traced call
    total: float = 0.0
    allocations: int = 0
    frees: int = 0
    functions: dict[str, float] = field(default_factory=dict)


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def ctypes_on_line(source: str) -> bool:
    """True when the line at ``path:line`` calls through ctypes (a CDLL function or the module)."""
    import linecache

    path, _, lineno = source.rpartition(":")
    text = linecache.getline(path, int(lineno)) if lineno.isdigit() else ""
    if not text:
        return False
    ctypes = sys.modules.get("ctypes")
    if ctypes is None:
        return False
    namespaces = [vars(m) for m in _modules_at(path)]
    for ident in _IDENT.findall(text):
        for ns in namespaces:
            obj = ns.get(ident)
            if obj is ctypes or isinstance(obj, (ctypes.CDLL, ctypes._CFuncPtr)):
                return True
    return "ctypes" in text or "libc" in text


def _same(a: str, b: str) -> bool:
    import os

    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def _line_namespace(source: str) -> tuple[str, list[dict[str, object]]]:
    import linecache

    path, _, lineno = source.rpartition(":")
    text = linecache.getline(path, int(lineno)) if lineno.isdigit() else ""
    if not text:
        return "", []
    return text, [vars(m) for m in _modules_at(path)]


def _modules_at(path: str) -> list[object]:
    """The imported modules whose file is ``path`` (only files of the same name are compared
    on disk: a stat of every module's file cost ~4 ms a leak)."""
    import os

    base = os.path.basename(path)
    return [
        m
        for m in list(sys.modules.values())
        if isinstance(getattr(m, "__file__", None), str)
        and os.path.basename(m.__file__ or "") == base
        and _same(m.__file__ or "", path)
    ]


def modules_called_on_line(source: str) -> list[str]:
    """Modules of the classes, functions and modules named on the line at ``path:line``.

    ``zlib.compressobj(...)`` gives ``["zlib"]``, ``bytearray(8)`` gives ``["builtins.bytearray"]``
    (builtins are named with their type); instances (``buf.extend``) are skipped.
    """
    import builtins
    import types as _types

    text, spaces = _line_namespace(source)
    found: list[str] = []
    for ident in _IDENT.findall(text.split("#", 1)[0]):
        obj: object = None
        for ns in spaces:
            if ident in ns:
                obj = ns[ident]
                break
        else:
            obj = getattr(builtins, ident, None)
        if isinstance(obj, _types.ModuleType):
            found.append(obj.__name__)
        elif isinstance(obj, (type, _types.FunctionType, _types.BuiltinFunctionType)):
            mod = getattr(obj, "__module__", None) or "builtins"
            found.append(f"builtins.{obj.__name__}" if mod == "builtins" else mod)
    return found
