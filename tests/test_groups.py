"""One cause, one finding: leaks grouped across tests, and the holders the retainer search names
(closure cells, functools caches, WeakKeyDictionary entries whose value refers to their key)."""

from __future__ import annotations

import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_memleak.detectors import objects
from pytest_memleak.groups import group_leaks, holder_text, signatures
from pytest_memleak.model import Leak, LeakDetails, TestResult
from pytest_memleak.render.json_report import read_report

# ------------------------------------------------------------------------- group_leaks (model)


def _leak(
    source: str = "lib.py:10",
    *,
    fingerprint: str = "f" * 16,
    rate: float | None = 1300.0,
    holder: str | None = None,
    allocated_in: str | None = None,
    suppressed: bool = False,
    suppression: str = "",
    kind: str = "python_object",
    unit: str = "bytes",
) -> Leak:
    return Leak(
        id="L1",
        type=kind,  # type: ignore[arg-type]
        source=source,
        severity="high",
        estimated_size=None,
        growth_rate=rate,
        unit=unit,
        fingerprint=fingerprint,
        retainer_path=holder,
        details=LeakDetails(allocated_in=allocated_in),
        suppressed=suppressed,
        suppressed_by="x" if suppressed else None,
        suppression=suppression,
    )


def _test(nodeid: str, *leaks: Leak, label: str = "") -> TestResult:
    return TestResult(nodeid=nodeid, verdict="leak", label=label, leaks=leaks)


def test_twenty_tests_one_cause_make_one_group():
    tests = [
        _test(
            f"t.py::test_{i}",
            _leak(rate=1300.0 + i, holder=f"lib._STREAMS (list) -> [{40 * i}] (lib.Wrapper)"),
        )
        for i in range(20)
    ]
    (group,) = group_leaks(tests)
    assert group.count == 20
    assert group.tests == tuple(f"t.py::test_{i}" for i in range(20))
    assert group.fingerprint == "f" * 16
    assert (group.type, group.source, group.unit) == ("python_object", "lib.py:10", "bytes")
    assert group.holder == "lib._STREAMS (list) -> [...] (lib.Wrapper)"
    assert (group.rate_min, group.rate_max) == (1300.0, 1319.0)
    assert group.allocated_in is None
    assert group.suppression == ""


def test_a_leak_of_a_single_test_is_no_group():
    tests = [
        _test("t.py::test_a", _leak(fingerprint="a" * 16)),
        _test("t.py::test_b", _leak(fingerprint="b" * 16)),
        _test("t.py::test_c"),
    ]
    assert group_leaks(tests) == ()
    assert group_leaks([]) == ()


def test_suppressed_leaks_are_left_out():
    tests = [
        _test("t.py::test_a", _leak()),
        _test("t.py::test_b", _leak(suppressed=True)),
    ]
    assert group_leaks(tests) == ()
    tests.append(_test("t.py::test_c", _leak()))
    (group,) = group_leaks(tests)
    assert group.tests == ("t.py::test_a", "t.py::test_c")


def test_calls_into_an_installed_package_group_by_its_line():
    """Each test calls the package from a line of its own (other fingerprints): one cause."""
    inside = "/venv/lib/python3.11/site-packages/click/testing.py:179"
    tests = [
        _test(
            f"t.py::test_{i}", _leak(f"t.py:{3 * i}", fingerprint=f"{i:016x}", allocated_in=inside)
        )
        for i in range(5)
    ]
    tests.append(_test("t.py::test_own", _leak("t.py:99", fingerprint="e" * 16)))
    (group,) = group_leaks(tests)
    assert group.count == 5
    assert group.tests == tuple(f"t.py::test_{i}" for i in range(5))
    assert group.allocated_in == inside
    assert group.source == "t.py:0"  # the most common calling line (the first among equals)
    # No member fingerprint is the group's: one made from the type and the package line,
    # from the package's folder on (the same in every virtualenv).
    assert group.fingerprint not in {f"{i:016x}" for i in range(5)}
    assert len(group.fingerprint) == 16
    elsewhere = "C:\\env\\Lib\\site-packages\\click\\testing.py:179"
    moved = [
        _test(t.nodeid, _leak(fingerprint=f"{i:016x}", allocated_in=elsewhere))
        for i, t in enumerate(tests[:5])
    ]
    assert group_leaks(moved)[0].fingerprint == group.fingerprint


def test_signature_rule():
    own = ("fingerprint", "9" * 16, "bytes")
    assert signatures(_leak(fingerprint="9" * 16)) == (own,)
    assert signatures(_leak(fingerprint="9" * 16, allocated_in="/v/site-packages/x.py:3")) == (
        own,
        ("package", "python_object", "x.py:3", "bytes"),
    )
    assert signatures(_leak(fingerprint="")) == (("source", "python_object", "lib.py:10", "bytes"),)
    # Rates in other units do not compare: another group.
    assert signatures(_leak(unit="fds")) != signatures(_leak())


def test_leaks_linked_through_a_shared_signature_are_one_cause():
    """The same call charged to one line of the package in some tests and to the next line in
    others (two allocations of one call, merged at the calling line): one group."""
    lines = ("site-packages/lib/io.py:7", "site-packages/lib/io.py:11")
    same_call = [
        _test(f"t.py::test_{i}", _leak(f"t.py:{i}", allocated_in=lines[i % 2])) for i in range(4)
    ]
    (group,) = group_leaks(same_call)
    assert group.count == 4
    assert group.allocated_in == lines[0]
    # Other calls (other fingerprints) charged to other lines: two causes, unlinked.
    apart = [
        _test(f"t.py::test_{i}", _leak(fingerprint=f"{i:016x}", allocated_in=lines[i % 2]))
        for i in range(5)
    ]
    assert [g.count for g in group_leaks(apart)] == [3, 2]
    assert [g.allocated_in for g in group_leaks(apart)] == list(lines)


def test_largest_group_first_ties_in_report_order():
    small, large, other = "1" * 16, "2" * 16, "3" * 16
    tests = [
        _test("t.py::a", _leak(fingerprint=small), _leak(fingerprint=other)),
        _test("t.py::b", _leak(fingerprint=small), _leak(fingerprint=large)),
        _test("t.py::c", _leak(fingerprint=large), _leak(fingerprint=other)),
        _test("t.py::d", _leak(fingerprint=large)),
    ]
    assert [g.fingerprint for g in group_leaks(tests)] == [large, small, other]


def test_a_test_counts_once_its_rate_is_the_sum_of_its_leaks():
    tests = [
        _test("t.py::a", _leak(rate=100.0), _leak(rate=50.0)),
        _test("t.py::b", _leak(rate=120.0)),
        _test("t.py::c", _leak(rate=None)),
    ]
    (group,) = group_leaks(tests)
    assert group.count == 3
    assert group.tests == ("t.py::a", "t.py::b", "t.py::c")
    assert (group.rate_min, group.rate_max) == (120.0, 150.0)
    unrated = group_leaks([_test("t.py::a", _leak(rate=None)), _test("t.py::b", _leak(rate=None))])
    assert (unrated[0].rate_min, unrated[0].rate_max) == (None, None)


def test_keys_of_fixture_measurements():
    tests = [
        _test("t.py::a", _leak(), label="setup"),
        _test("t.py::a", _leak(), label="teardown"),
    ]
    assert group_leaks(tests)[0].tests == ("t.py::a::setup", "t.py::a::teardown")


def test_holder_is_the_most_common_and_suppression_is_copied():
    wkd = "a weakref.WeakKeyDictionary: value refers to its key -> [weakref to X] (X)"
    full = "app.make.<locals>.get (function) -> cell 'cache' (weakref.WeakKeyDictionary) -> [9] (X)"
    tests = [
        _test("t.py::a", _leak(holder=None, suppression="")),
        _test("t.py::b", _leak(holder=wkd, suppression="lib.py:10")),
        _test("t.py::c", _leak(holder=full.replace("[9]", "[12]"), suppression="lib.py:10")),
        _test("t.py::d", _leak(holder=full)),
    ]
    (group,) = group_leaks(tests)
    assert group.holder == full.replace("[9]", "[...]")
    assert group.suppression == "lib.py:10"
    assert group_leaks([tests[0], _test("t.py::e", _leak())])[0].holder is None


def test_holder_text_drops_what_differs_between_tests():
    assert holder_text("m.L (list) -> [12] (T) -> .d (dict) -> [-3] (U)") == (
        "m.L (list) -> [...] (T) -> .d (dict) -> [...] (U)"
    )
    assert holder_text("m.D (dict) -> ['name'] (T) at 0x7f00AB") == (
        "m.D (dict) -> ['name'] (T) at 0x..."
    )


# ------------------------------------------------------------------ holders (in this process)


@pytest.fixture(autouse=True)
def _no_known_holders() -> Iterator[None]:
    objects.forget_holders()
    yield
    objects.forget_holders()


@pytest.fixture(params=["library", "user"])
def app(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest
) -> types.ModuleType:
    """A module ``app_under_test`` with one holder of each kind, each already holding objects:
    a library's (no file of the user's), and the user's (its file in a temporary folder),
    whose globals the search walks down from before it scans the heap. The paths are the
    same either way."""
    module = types.ModuleType("app_under_test")
    if request.param == "user":
        module.__file__ = str(tmp_path / "app_under_test.py")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(objects, "_user_modules", (-1, frozenset()))
    exec(
        textwrap.dedent(
            """
            import functools
            import weakref

            class Payload:
                def __init__(self, n):
                    self.n = n

            def make_handler():
                seen = []
                def handle(x):
                    seen.append(x)
                return handle

            HANDLE = make_handler()

            @functools.lru_cache(maxsize=None)
            def lookup(key):
                return Payload(key)

            @functools.cache
            def load(key):
                return Payload(key)

            class Key:
                pass

            class Value:
                def __init__(self, key):
                    self.key = key

            class Registry:
                def __init__(self):
                    self.by_key = weakref.WeakKeyDictionary()

            REGISTRY = Registry()
            PLAIN = weakref.WeakKeyDictionary()
            KEEP = []

            class Bus:
                listeners = []

            class Connection:  # keeps a cache of its own, as sqlite3's statement cache
                def __init__(self):
                    self.statements = functools.lru_cache(maxsize=None)(self)

                def __call__(self, n):
                    return Payload(n)

            CONNECTIONS = [Connection()]
            CONNECTIONS[0].statements(1)

            for i in range(3):
                HANDLE(Payload(i))
                lookup(i)
                load(i)
                k = Key()
                REGISTRY.by_key[k] = Value(k)
                KEEP.append(k)
                PLAIN[k] = Payload(i)
                Bus.listeners.append(Payload(i))
            del i, k
            """
        ),
        module.__dict__,
    )
    return module


def _closure_list(fn: types.FunctionType) -> list[object]:
    assert fn.__closure__ is not None
    seen = fn.__closure__[0].cell_contents
    assert isinstance(seen, list)
    return seen


def test_holder_closure_cell(app: types.ModuleType) -> None:
    path, status = objects.find_retainer([_closure_list(app.HANDLE)[-1]], budget_s=2.0)
    assert status == "found (closure cell)"
    assert path == (
        "app_under_test.make_handler.<locals>.handle (function) -> cell 'seen' (list) "
        "-> [2] (app_under_test.Payload)"
    )


def test_holder_lru_cache_and_cache(app: types.ModuleType) -> None:
    path, status = objects.find_retainer([app.lookup(1)], budget_s=2.0)
    assert status == "found (functools cache)"
    assert path == "app_under_test.lookup (functools cache) -> [1] (app_under_test.Payload)"
    path, _ = objects.find_retainer([app.load(2)], budget_s=2.0)
    assert path == "app_under_test.load (functools cache) -> [2] (app_under_test.Payload)"


def test_holder_weak_key_dictionary_whose_value_refers_to_its_key(app: types.ModuleType) -> None:
    path, status = objects.find_retainer([next(iter(app.REGISTRY.by_key.values()))], budget_s=2.0)
    assert status == "found (module global)"
    assert path == (
        "app_under_test.REGISTRY (app_under_test.Registry) -> .by_key "
        "(weakref.WeakKeyDictionary: value refers to its key) "
        "-> [weakref to app_under_test.Key] (app_under_test.Value)"
    )
    # The key, reached through its value, has the same holder.
    path, _ = objects.find_retainer([next(iter(app.REGISTRY.by_key.keys()))], budget_s=2.0)
    assert path is not None
    assert "value refers to its key" in path
    assert path.endswith("(app_under_test.Value) -> .key (app_under_test.Key)")


def test_a_cache_an_object_keeps_for_itself_is_not_a_function_cache(app: types.ModuleType) -> None:
    path, status = objects.find_retainer([app.CONNECTIONS[0].statements(1)], budget_s=2.0)
    assert status == "found (module global)"
    assert path is not None
    assert path.startswith(
        "app_under_test.CONNECTIONS (list) -> [0] (app_under_test.Connection) "
        "-> .statements (functools._lru_cache_wrapper)"
    )


def test_a_weak_key_dictionary_whose_values_do_not_refer_to_their_keys(app):
    path, _ = objects.find_retainer([next(iter(app.PLAIN.values()))], budget_s=2.0)
    assert path == (
        "app_under_test.PLAIN (weakref.WeakKeyDictionary) "
        "-> [weakref to app_under_test.Key] (app_under_test.Payload)"
    )


def test_holder_class_attribute(app: types.ModuleType) -> None:
    path, status = objects.find_retainer([app.Bus.listeners[0]], budget_s=2.0)
    assert status == "found (class attribute)"
    assert path == "app_under_test.Bus.listeners (list) -> [0] (app_under_test.Payload)"


def test_a_holder_found_before_is_tried_first(app: types.ModuleType) -> None:
    path, status = objects.find_retainer([_closure_list(app.HANDLE)[0]], budget_s=2.0)
    assert status == "found (closure cell)"
    app.HANDLE(app.Payload(99))  # a new object, held the same way
    again, status = objects.find_retainer([_closure_list(app.HANDLE)[-1]], budget_s=2.0)
    assert status == "found (closure cell, a holder found before)"
    assert again == path.replace("[0]", "[3]")
    objects.forget_holders()
    assert objects.find_retainer([_closure_list(app.HANDLE)[-1]], 2.0)[1] == "found (closure cell)"


def test_a_holder_among_the_users_globals_is_found_without_a_heap_scan(
    app: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each level of the search from below scans the whole heap (``gc.get_referrers``, ~4 ms
    in the zoo's run). A module-level container, a class attribute and a module-level
    object's attribute of the user's are found walking down from the user's globals instead;
    a function's closure is still left to the search from below, which names the function."""
    import gc

    scans: list[int] = []
    real = gc.get_referrers

    def counting(*objs: object) -> list[object]:
        scans.append(len(objs))
        return real(*objs)

    monkeypatch.setattr(gc, "get_referrers", counting)
    user = app.__dict__.get("__file__") is not None
    path, status = objects.find_retainer([app.Bus.listeners[1]], budget_s=2.0)
    assert (path, status) == (
        "app_under_test.Bus.listeners (list) -> [1] (app_under_test.Payload)",
        "found (class attribute)",
    )
    path, status = objects.find_retainer([app.CONNECTIONS[0]], budget_s=2.0)
    assert (path, status) == (
        "app_under_test.CONNECTIONS (list) -> [0] (app_under_test.Connection)",
        "found (module global)",
    )
    assert bool(scans) is not user, scans
    path, status = objects.find_retainer([_closure_list(app.HANDLE)[1]], budget_s=2.0)
    assert status == "found (closure cell)"
    assert scans


def test_no_sample_and_no_root() -> None:
    assert objects.find_retainer([]) == (None, "no sample object")
    assert objects.retainer_path(None) == (None, "no sample object")
    path, status = objects.find_retainer([object()], budget_s=2.0)
    assert path is None
    assert status == "no root found"


# -------------------------------------------------------------------------- end to end (runs)

#: A library installed in a site-packages folder: every call keeps a stream wrapper alive.
FAKELIB = """
_STREAMS = []


class Wrapper:
    def __init__(self):
        self.buffer = bytearray(1300)


def invoke():
    wrapper = Wrapper()
    _STREAMS.append(wrapper)
    return wrapper
"""

ADD_SITE = """
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "site-packages"))
"""


def test_one_library_leak_in_twenty_tests_is_one_group(pytester, run_memleak, fast_args):
    lib = pytester.path / "site-packages" / "fakelib"
    lib.mkdir(parents=True)
    (lib / "__init__.py").write_text(FAKELIB, encoding="utf-8")
    pytester.makeconftest(ADD_SITE)
    body = "".join(f"\n\ndef test_cli_{i}():\n    fakelib.invoke()\n" for i in range(20))
    pytester.makepyfile(test_cli="import fakelib\n" + body)
    run = run_memleak("--memleak-all", *fast_args)
    run.result.assert_outcomes(failed=20)
    assert run.report is not None
    leaks = [lk for t in run.report["tests"] for lk in t["leaks"]]
    assert len(leaks) == 20
    assert len({lk["fingerprint"] for lk in leaks}) == 1
    assert all(
        "site-packages/fakelib/__init__.py:" in lk["details"]["allocated_in"] for lk in leaks
    )
    assert run.report_path is not None
    report = read_report(str(run.report_path))
    (group,) = group_leaks(report.tests)
    assert group.count == 20
    assert group.tests == tuple(f"test_cli.py::test_cli_{i}" for i in range(20))
    assert group.holder == "fakelib._STREAMS (list) -> [...] (fakelib.Wrapper)"
    assert group.allocated_in is not None
    assert "site-packages/fakelib/__init__.py:" in group.allocated_in
    assert group.rate_min is not None
    assert group.rate_min > 1000
    # the report carries the group as written, and the summary shows it as one entry
    assert report.groups == (group,)
    run.result.stdout.fnmatch_lines(
        [
            "memleak: 1 leak shared by several tests (20 tests), one entry per cause:",
            # (the source and its library frame, cut to the width; the rates may differ)
            "  20 tests: python_object at test_cli.p*.py:*), *KiB/iter*",
            "      held by: fakelib._STREAMS (list) -> [[]...[]] (fakelib.Wrapper)",
            "      in test_cli_0, test_cli_1, test_cli_2 and 17 more",
        ]
    )
    assert not any(ln.startswith("  ") and ", in test_cli_" in ln for ln in run.result.outlines)


HOLDERS = """
import functools
import weakref

import pytest


class Payload:
    def __init__(self, n):
        self.n = n
        self.text = "x" * 200


def make_handler():
    seen = []

    def handle(x):
        seen.append(x)

    return handle


HANDLE = make_handler()
CALLS = [0]


@pytest.mark.memcheck
def test_closure():
    HANDLE(Payload(1))


@functools.lru_cache(maxsize=None)
def lookup(key):
    return Payload(key)


@pytest.mark.memcheck
def test_cache():
    CALLS[0] += 1
    lookup(CALLS[0])


class Key:
    pass


class Value:
    def __init__(self, key):
        self.key = key
        self.text = "y" * 200


class Registry:
    def __init__(self):
        self.by_key = weakref.WeakKeyDictionary()


REGISTRY = Registry()


@pytest.mark.memcheck
def test_weak_key():
    key = Key()
    REGISTRY.by_key[key] = Value(key)
"""


def test_holders_through_indirection_end_to_end(pytester, run_memleak, fast_args):
    pytester.makepyfile(test_holders=HOLDERS)
    run = run_memleak(*fast_args)
    run.result.assert_outcomes(failed=3)
    paths = {
        name: [lk["retainer_path"] for lk in run.test(name)["leaks"]]
        for name in ("test_closure", "test_cache", "test_weak_key")
    }
    assert paths["test_closure"][0].startswith(
        "test_holders.make_handler.<locals>.handle (function) -> cell 'seen' (list) -> ["
    ), paths
    assert paths["test_cache"][0].startswith("test_holders.lookup (functools cache) -> ["), paths
    assert paths["test_weak_key"][0].startswith(
        "test_holders.REGISTRY (test_holders.Registry) -> .by_key "
        "(weakref.WeakKeyDictionary: value refers to its key) -> [weakref to test_holders.Key]"
    ), paths
