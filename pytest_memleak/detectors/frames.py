"""Which source files are the user's: not the standard library, not installed packages, not us."""

from __future__ import annotations

import functools
import linecache
import os
import sys
import sysconfig

_PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _library_roots() -> tuple[str, ...]:
    roots = set()
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        if paths.get(key):
            roots.add(os.path.realpath(paths[key]))
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        roots.add(os.path.realpath(os.path.join(prefix, "lib")))
    roots.add(os.path.realpath(_PLUGIN_DIR))
    return tuple(sorted(roots))


_ROOTS = _library_roots()


@functools.lru_cache(maxsize=4096)
def is_user_file(filename: str) -> bool:
    """True for the user's code: a real file outside the interpreter's and packages' folders."""
    if not filename or filename.startswith("<"):
        return False
    real = os.path.realpath(filename)
    if "site-packages" in real.split(os.sep) or "dist-packages" in real.split(os.sep):
        return False
    return not any(real == root or real.startswith(root + os.sep) for root in _ROOTS)


@functools.lru_cache(maxsize=4096)
def is_plugin_file(filename: str) -> bool:
    return os.path.realpath(filename).startswith(os.path.realpath(_PLUGIN_DIR) + os.sep)


def short_path(filename: str) -> str:
    """Path relative to the current directory when below it, else as is."""
    try:
        rel = os.path.relpath(filename)
    except ValueError:
        return filename
    return filename if rel.startswith("..") else rel


def location(filename: str, lineno: int) -> str:
    return f"{short_path(filename)}:{lineno}"


def frame_line(filename: str, lineno: int) -> str:
    """``path:line: source`` for stack traces."""
    text = linecache.getline(filename, lineno).strip()
    return f"{location(filename, lineno)}: {text}" if text else location(filename, lineno)


_RUNNER_PARTS = ("_pytest", "pluggy", "pytest_asyncio", "anyio", "xdist", "execnet")


@functools.lru_cache(maxsize=4096)
def is_runner_file(filename: str) -> bool:
    """pytest's own machinery (and the test-running plugins) below the test function."""
    parts = os.path.realpath(filename).split(os.sep)
    return any(p in parts for p in _RUNNER_PARTS)
