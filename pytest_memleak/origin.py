"""Whose leak it is: the test's own code, or the code under test."""

from __future__ import annotations


def code_origin(
    source: str, nodeid: str, allocated_in: str | None = None, holder: str | None = None
) -> str:
    """ "test code" when the leak is the test's own doing: the objects are held by a global of
    the test's code, or allocated by a line of it (its module, a conftest.py, a test_*.py /
    *_test.py file, a doctest) and not inside an installed package it calls
    (``allocated_in``); else "code under test"."""
    if holder and _is_test_module(holder.split(" ", 1)[0].rpartition(".")[0], nodeid):
        return "test code"
    if not source or source == "unknown":
        return "unknown"
    if allocated_in:
        return "code under test"
    path = source.rsplit(":", 1)[0].replace("\\", "/") if ":" in source else source
    name = path.rsplit("/", 1)[-1]
    test_file = nodeid.split("::", 1)[0].replace("\\", "/")
    own = bool(test_file) and (
        path == test_file or path.endswith("/" + test_file) or test_file.endswith("/" + path)
    )
    if own or path.startswith("<doctest") or _is_test_name(name):
        return "test code"
    return "code under test"


def _is_test_name(name: str) -> bool:
    return (
        name == "conftest.py"
        or (name.startswith("test_") and name.endswith(".py"))
        or name.endswith("_test.py")
    )


def _is_test_module(module: str, nodeid: str) -> bool:
    """A dotted module name (``tests.test_bus``) that is the test's module or test code."""
    if not module:
        return False
    last = module.rsplit(".", 1)[-1]
    test_file = nodeid.split("::", 1)[0].replace("\\", "/")
    stem = test_file.rsplit("/", 1)[-1].removesuffix(".py")
    return last == stem or _is_test_name(last + ".py")
