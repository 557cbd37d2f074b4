"""Which source files are the user's: not the standard library, not installed packages, not us."""

from __future__ import annotations

import functools
import linecache
import os
import sys
import sysconfig

_PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _library_roots() -> tuple[str, ...]:
    """The interpreter's and packages' folders, spelled both as given and with links resolved
    (so that a cheap ``abspath`` of a file name can be compared without ``realpath``)."""
    found = []
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        if paths.get(key):
            found.append(paths[key])
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        found.append(os.path.join(prefix, "lib"))
    found.append(_PLUGIN_DIR)
    roots = {os.path.abspath(p) for p in found} | {os.path.realpath(p) for p in found}
    return tuple(sorted(roots))


_ROOTS = _library_roots()


@functools.lru_cache(maxsize=4096)
def is_user_file(filename: str) -> bool:
    """True for the user's code: a real file outside the interpreter's and packages' folders."""
    if not filename or filename.startswith("<"):
        return False
    path = os.path.abspath(filename)
    parts = path.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return False
    return not any(path == root or path.startswith(root + os.sep) for root in _ROOTS)


@functools.lru_cache(maxsize=4096)
def is_package_file(filename: str) -> bool:
    """True for an installed third-party package (site-packages, dist-packages)."""
    if not filename or filename.startswith("<"):
        return False
    parts = os.path.abspath(filename).split(os.sep)
    return "site-packages" in parts or "dist-packages" in parts


_PLUGIN_ROOTS = tuple({os.path.abspath(_PLUGIN_DIR), os.path.realpath(_PLUGIN_DIR)})


@functools.lru_cache(maxsize=4096)
def is_plugin_file(filename: str) -> bool:
    path = os.path.abspath(filename)
    return any(path.startswith(root + os.sep) for root in _PLUGIN_ROOTS)


def short_path(filename: str) -> str:
    """Path relative to the current directory when below it, else as is."""
    return _short_path(filename, os.getcwd())


@functools.lru_cache(maxsize=4096)
def _short_path(filename: str, cwd: str) -> str:
    try:
        rel = os.path.relpath(filename, cwd)
    except ValueError:
        return filename
    return filename if rel.startswith("..") else rel


def location(filename: str, lineno: int) -> str:
    return f"{short_path(filename)}:{lineno}"


def frame_line(filename: str, lineno: int) -> str:
    """``path:line: source`` for stack traces."""
    lines = _lines(filename)
    text = lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""
    return f"{location(filename, lineno)}: {text}" if text else location(filename, lineno)


@functools.lru_cache(maxsize=256)
def _lines(filename: str) -> tuple[str, ...]:
    """A source file's lines, read once: the loop clears ``linecache`` between calls (it is a
    cache that grows), so reading through it alone re-read whole files for every stack."""
    return tuple(linecache.getlines(filename))


_RUNNER_PARTS = ("_pytest", "pluggy", "pytest_asyncio", "anyio", "xdist", "execnet")


@functools.lru_cache(maxsize=4096)
def is_runner_file(filename: str) -> bool:
    """pytest's own machinery (and the test-running plugins) below the test function."""
    parts = os.path.abspath(filename).split(os.sep)
    return any(p in parts for p in _RUNNER_PARTS)
