"""What one iteration of a checked test is, for each kind of pytest item.

* A test function: its body, between a fresh set-up and tear-down of its function-scoped
  fixtures (``fixtures = per-iteration``, the default), as a separate run of the test would see
  them (``tmp_path`` is the first call's directory again, emptied); class-, module- and
  session-scoped fixtures stay shared. What a fixture records during
  a call (``mocker``'s patchers, ``monkeypatch``'s undo list, ``request.addfinalizer``) is
  released before the snapshot, and a body that changes its fixtures' state (a file in
  ``tmp_path``, a hook registered on a plugin manager) meets fresh ones. The next call's
  fixtures are set up right after a call's teardown, before the snapshot: every snapshot sees
  them fresh, and the last call leaves them set up for pytest's own teardown. With
  ``fixtures = shared`` they are set up once for all calls. ``async def`` bodies always share
  them: the event loop they run in is one of them. What a shared ``mocker`` or
  ``monkeypatch`` kept of a call is let go before the next (:class:`SharedFixtureCalls`).
  A ``unittest.mock`` object among the test's parameters (``@pytest.mark.parametrize``) is
  made once for the whole session and records every call made on it: its call records are
  reset after each call (``reset_mock()``, which keeps its configuration), so each call meets
  it as the single plain run did. Likewise a
  parameter that is plain data holding a mutable container (a list, dict, set or bytearray of
  numbers, strings and such containers, up to 10,000 items) is handed to each call after the
  first as a fresh copy of its value before the first call: a body that changes its parameter
  in place (negates a list, pops a dict) meets the value pytest gave the first call.
* A ``unittest.TestCase`` method: what unittest calls one run of the test -- ``setUp``, the
  method, ``tearDown`` and the cleanups -- each time, on the same instance.
* A doctest: its examples, each time from the globals the first run started with.

Only the first call's results reach pytest: subtests of later calls are not reported again
(they would multiply the counts), and a call after the first that fails makes the test "not
repeatable" rather than failed (see :class:`NotRepeatable`). Any other kind of item, and a test
that uses a fixture that cannot run twice, is not checked: :func:`unrepeatable` says why.

The set-up and tear-down go through pytest's own ``SetupState`` (the item's finalizers) and
``Function._initrequest`` / ``Function.setup``, as pytest-rerunfailures does to re-run a test.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import functools
import inspect
import shutil
import sys
import types
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Callable

import pytest

#: Fixtures whose value cannot be used for more than one measured call of the same test.
UNREPEATABLE_FIXTURES = {
    "benchmark": "uses the benchmark fixture (pytest-benchmark times the body itself)",
    "benchmark_weave": "uses the benchmark_weave fixture (pytest-benchmark)",
}

#: Exceptions of a call after the first that make a test "not repeatable" (pytest.exit,
#: KeyboardInterrupt and SystemExit still stop the run).
REPEAT_FAILURES: tuple[type[BaseException], ...] = (
    Exception,
    pytest.fail.Exception,
    pytest.skip.Exception,
    pytest.xfail.Exception,
)


class NotRepeatable(Exception):
    """A call after the first failed, in the body or in its fixtures' set-up or tear-down."""

    def __init__(self, call: int, exc: BaseException, where: str = "") -> None:
        self.call = call
        self.exc = exc
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        place = f" in {where}" if where else ""
        super().__init__(f"call {call} raised {type(exc).__name__}{place}: {text}"[:500])


def kind(item: pytest.Item) -> str:
    """function, unittest, doctest or other."""
    from _pytest.doctest import DoctestItem
    from _pytest.unittest import TestCaseFunction

    if isinstance(item, TestCaseFunction):
        return "unittest"
    if isinstance(item, DoctestItem):
        return "doctest"
    if isinstance(item, pytest.Function):
        return "function"
    return "other"


def unrepeatable(item: pytest.Item) -> tuple[str, str] | None:
    """Why this item cannot be checked, as (kind, reason) for the report, or None."""
    k = kind(item)
    if k == "other":
        return (
            "item type",
            f"not a test function, TestCase method or doctest ({type(item).__name__} items "
            "cannot be repeated)",
        )
    for name in getattr(item, "fixturenames", ()) or ():
        if name in UNREPEATABLE_FIXTURES:
            return "fixture", UNREPEATABLE_FIXTURES[name]
    if k == "function" and not _setup_state_known(item):
        return (
            "item type",
            "pytest's SetupState is not as this plugin expects (unsupported pytest version)",
        )
    return None


def _setup_state_known(item: pytest.Item) -> bool:
    state = getattr(item.session, "_setupstate", None)
    return isinstance(getattr(state, "stack", None), dict) and hasattr(item, "_initrequest")


# -- test functions --------------------------------------------------------------------------
class FixtureCycle:
    """Tears down and sets up a test function's function-scoped fixtures between calls."""

    def __init__(self, item: pytest.Function) -> None:
        self.item = item
        self.live = True  # pytest set them up for the first call
        self._state: Any = getattr(item.session, "_setupstate")  # noqa: B009 - pytest-private
        # pytest's capture manager's suspend/resume of a capture fixture (see :meth:`setup`)
        capman = item.config.pluginmanager.getplugin("capturemanager")
        suspend = getattr(capman, "suspend_fixture", None)
        resume = getattr(capman, "resume_fixture", None)
        self._capture_fixture: tuple[Callable[[], None], Callable[[], None]] | None = (
            (suspend, resume) if suspend is not None and resume is not None else None
        )
        self._tmp_key, self._tmp_saved = _tmp_path_stash(item)
        # The directories the first set-up's function-scoped fixtures made (tmp_path's,
        # pytester's), handed again (emptied) to every later call (see _same_tmp_path).
        self._first_dirs: list[tuple[str, Path]] = item.stash.get(_first_dirs_key, [])
        self._failed: BaseException | None = None

    def kwargs(self) -> dict[str, Any]:
        item = self.item
        return {name: item.funcargs[name] for name in item._fixtureinfo.argnames}

    def teardown(self) -> None:
        """Run the finalizers registered on the item since its set-up (its function-scoped
        fixtures and ``request.addfinalizer`` calls), newest first, as pytest's own teardown
        does; the node's own teardown (the first finalizer) stays for pytest."""
        entry = self._state.stack.get(self.item)
        if entry is None:
            raise RuntimeError("the test item is not set up")
        finalizers = entry[0]
        if self._tmp_key is None and _requested_tmp_path(self.item):
            # Asked for with request.getfixturevalue("tmp_path") in the body: its teardown
            # needs the stash entry too (a KeyError made such tests "not repeatable").
            self._tmp_key, self._tmp_saved = _tmp_path_stash(self.item, dynamic=True)
        if self._tmp_key is not None:
            # tmp_path's teardown reads (and deletes) the item's phase results.
            _put_in_stash(self.item, self._tmp_key, dict(self._tmp_saved))
        errors: list[BaseException] = []
        while len(finalizers) > 1:
            fin = finalizers.pop()
            try:
                fin()
            except REPEAT_FAILURES as exc:
                errors.append(exc)
        self.live = False
        self._prune_parent_finalizers()
        if errors:
            raise errors[0]

    def _prune_parent_finalizers(self) -> None:
        """A function-scoped fixture leaves its ``finish`` (with its request) on every wider
        fixture it depends on (``tmp_path`` on ``tmp_path_factory``), where pytest keeps it
        until that fixture ends. Once finished, those entries do nothing: drop them, or each
        iteration would add one (pytest's per-test bookkeeping, not the test's)."""
        info = getattr(self.item, "_fixtureinfo", None)
        static = getattr(info, "name2fixturedefs", {})
        for defs in static.values():
            for fixturedef in defs:
                self._prune(fixturedef)
        # Fixtures asked for with request.getfixturevalue (not known at collection).
        evaluated = getattr(getattr(self.item, "_request", None), "_fixture_defs", None)
        if isinstance(evaluated, dict):
            for name, fixturedef in evaluated.items():
                if name not in static:
                    self._prune(fixturedef)

    def _prune(self, fixturedef: Any) -> None:
        fins = getattr(fixturedef, "_finalizers", None)
        if not isinstance(fins, list) or not fins:
            return
        # This item's entries are the newest (its set-up appended them); the older ones are
        # earlier tests', which pytest keeps until the wider fixture ends: a module-scoped
        # fixture used by a thousand tests holds a thousand. Looking at them all after every
        # call cost 1 s in platformdirs' suite.
        start = len(fins)
        while start > 0 and self._mine(fins[start - 1]):
            start -= 1
        if start < len(fins):
            fins[start:] = [f for f in fins[start:] if not self._stale(f)]

    def _mine(self, fin: Any) -> bool:
        return (
            isinstance(fin, functools.partial)
            and getattr(fin.keywords.get("request"), "_pyfuncitem", None) is self.item
        )

    def _stale(self, fin: Any) -> bool:
        owner = getattr(fin.func, "__self__", None)
        return (
            getattr(fin.func, "__name__", "") == "finish"
            and getattr(owner, "cached_result", True) is None
        )

    def prepare(self) -> None:
        """Set the fixtures up for the next call (when they are not): done right after a
        call's teardown, so that every snapshot of the loop sees the same state (the next
        call's fixtures fresh) and what pytest keeps for good the first time a function's
        fixtures are set up again is made before the quick check's baseline, not after it.
        The loop does it (``Loop.prepare``), once it has frozen the objects that existed
        before (frozen fixtures could not be collected after their teardown), and outside the
        call (a diagnosis tracing the call does not charge the set-up to it); before that a
        call sets its fixtures up itself (:meth:`ready`). A failure is kept for the next call
        (see :meth:`ready`)."""
        if self.live or self._failed is not None:
            return
        try:
            self.setup()
        except REPEAT_FAILURES as exc:
            self._failed = exc

    def ready(self, call: int) -> None:
        """Before call ``call`` (> 1): its fixtures set up (by :meth:`prepare` or now)."""
        if self._failed is not None:
            raise NotRepeatable(call, self._failed, "fixture set-up") from self._failed
        if not self.live:
            _guarded(call, "fixture set-up", self.setup)

    def setup(self) -> None:
        item = self.item
        item._initrequest()
        with _same_tmp_path(self._first_dirs), _quick_argnames():
            item.setup()
        self.live = True
        # A capsys/capfd set up here, inside pytest's call phase, is already capturing; a
        # fixture set up after it can suspend and resume the run's capture (--setup-show
        # prints each set-up), which puts sys.stdout back to the run's stream: capsys then
        # read nothing at the next call. Its capture is suspended and resumed once more, which
        # puts its own streams back (a no-op when nothing moved them).
        if self._capture_fixture is not None:
            suspend, resume = self._capture_fixture
            suspend()
            resume()

    def restore(self) -> None:
        """After the loop: the fixtures set up (by :meth:`prepare`, normally), so that
        pytest's own teardown (and the hooks that read ``item.funcargs``) meets the state a
        single call leaves. A set-up that failed is not tried again: pytest's teardown runs
        the finalizers of what it set up."""
        if not self.live and self._failed is None:
            self.setup()
        if self._tmp_key is not None and self._tmp_key not in self.item.stash:
            self.item.stash[self._tmp_key] = dict(self._tmp_saved)


#: The numbered directories ``TempPathFactory.mktemp`` made while pytest set a checked test's
#: fixtures up for its first call: (basename, path), in the order they were made.
_first_dirs_key = pytest.StashKey[list[tuple[str, Path]]]()


@contextlib.contextmanager
def recording_tmp_dirs(item: pytest.Item) -> Iterator[None]:
    """While pytest sets a checked test's fixtures up for its first call: note the numbered
    directories its function-scoped fixtures make (``tmp_path``'s; ``pytester``'s and its
    temporary root), so that each later call gets the same ones again (see
    :func:`_same_tmp_path`). A wider fixture set up then keeps its own: it is not set up again,
    and its directory (same basename or not) must not be emptied for another."""
    try:
        from _pytest.tmpdir import TempPathFactory
    except ImportError:  # pragma: no cover - older pytest
        yield
        return
    original = TempPathFactory.mktemp
    made: list[tuple[str, Path]] = []

    def mktemp(factory: Any, basename: str, numbered: bool = True) -> Path:
        path: Path = original(factory, basename, numbered)
        if numbered and _in_function_fixture():
            made.append((basename, path))
        return path

    TempPathFactory.mktemp = mktemp  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        TempPathFactory.mktemp = original  # type: ignore[method-assign]
        item.stash[_first_dirs_key] = made


def _in_function_fixture() -> bool:
    """Is a function-scoped fixture being set up (pytest's ``pytest_fixture_setup`` on the
    stack, its innermost one for a function-scoped ``fixturedef``)?"""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name == "pytest_fixture_setup":
            fixturedef = frame.f_locals.get("fixturedef")
            return getattr(fixturedef, "scope", None) == "function"
        frame = frame.f_back  # type: ignore[assignment]
    return False


@contextlib.contextmanager
def _same_tmp_path(dirs: Sequence[tuple[str, Path]]) -> Iterator[None]:
    """While an item's fixtures are set up again: the numbered directories its function-scoped
    fixtures made at its first set-up (``dirs``: ``tmp_path``'s, ``pytester``'s; see
    :func:`recording_tmp_dirs`) are handed out again, emptied, in the same order, instead of
    new ones. A fixture that puts its directory in the environment
    (``monkeypatch.setenv("HOME", tmp_path)``; ``pytester`` does so) would otherwise set a new
    value per call, and glibc's setenv keeps every value it was ever given (a native "leak" of
    the harness: platformdirs' suite; pytest-mock's, through pytester)."""
    if not dirs:
        yield
        return
    try:
        from _pytest.tmpdir import TempPathFactory
    except ImportError:  # pragma: no cover - older pytest
        yield
        return
    original = TempPathFactory.mktemp
    pending = list(dirs)

    def mktemp(factory: Any, basename: str, numbered: bool = True) -> Path:
        if numbered:
            for i, (name, path) in enumerate(pending):
                if name == basename and path.parent == factory.getbasetemp():
                    del pending[i]
                    return _emptied(path)
        return original(factory, basename, numbered)

    TempPathFactory.mktemp = mktemp  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        TempPathFactory.mktemp = original  # type: ignore[method-assign]


@contextlib.contextmanager
def _quick_argnames() -> Iterator[None]:
    """While an item's fixtures are set up again: pytest's ``getfuncargnames`` answers at once
    for a plain function without parameters. pytest >= 9 makes a new ``FixtureDef`` for
    ``request`` each time a fixture asks for it, and reads its function's (``lambda:
    request``) signature with ``inspect.signature``: once a test plainly, at every call here
    (8 % of click's suite under ``--memleak-all``). The answer for such a function is ``()``
    whatever its name or class; anything else goes to pytest's own function."""
    fixtures = sys.modules.get("_pytest.fixtures")
    original = getattr(fixtures, "getfuncargnames", None)
    if original is None:  # pragma: no cover - another pytest layout
        yield
        return

    def getfuncargnames(function: Any, *args: Any, **kwargs: Any) -> tuple[str, ...]:
        code = getattr(function, "__code__", None)
        if (
            type(function) is types.FunctionType
            and not function.__dict__  # no __wrapped__, __signature__ or mock patchings
            and code is not None
            and code.co_argcount == 0
            and code.co_kwonlyargcount == 0
        ):
            return ()
        result: tuple[str, ...] = original(function, *args, **kwargs)
        return result

    fixtures.getfuncargnames = getfuncargnames  # type: ignore[union-attr]
    try:
        yield
    finally:
        fixtures.getfuncargnames = original  # type: ignore[union-attr]


def _emptied(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=0o700)
    return path


def _put_in_stash(item: pytest.Item, key: Any, value: Any) -> None:
    """``item.stash[key] = value`` in a fresh copy of the stash's dict when it can: a key put
    back into the same dict after every call, and deleted again by its fixture, leaves a
    deleted slot per call until the dict resizes, once, to a larger table (~570 B of malloc
    at the fourth call, for good: a step the quick check cannot tell from a small leak)."""
    stash = item.stash
    storage = getattr(stash, "_storage", None)
    if type(storage) is dict:
        try:
            stash._storage = {**storage, key: value}
            return
        except AttributeError:  # pragma: no cover - a Stash of another shape
            pass
    stash[key] = value


def _requested_tmp_path(item: pytest.Item) -> bool:
    """Was ``tmp_path`` set up for ``item``, asked for by name or by getfixturevalue?"""
    defs = getattr(getattr(item, "_request", None), "_fixture_defs", None)  # pytest-private
    return isinstance(defs, dict) and "tmp_path" in defs


def _tmp_path_stash(item: pytest.Item, dynamic: bool = False) -> tuple[Any, dict[str, bool]]:
    if not dynamic and "tmp_path" not in (getattr(item, "fixturenames", None) or ()):
        return None, {}
    try:
        from _pytest.tmpdir import tmppath_result_key
    except ImportError:  # pragma: no cover - older pytest
        return None, {}
    saved = item.stash.get(tmppath_result_key, None)
    return tmppath_result_key, dict(saved) if saved else {"setup": True}


def function_call(
    item: pytest.Function, original: Callable[..., Any], first_kwargs: dict[str, Any], fresh: bool
) -> tuple[Callable[[], Any], Callable[[], None], Callable[[], None] | None]:
    """One iteration of a test function, what to do after the loop, and what the loop does
    after each call once it has frozen what existed (the next call's fixtures set up before
    its snapshot: ``Loop.prepare``)."""
    mocks = _parameter_mocks(item)
    pristine = _plain_parameters(item, first_kwargs)
    if not fresh:
        shared_calls = 0
        shared_fixtures = SharedFixtureCalls(item, original)

        def shared_call() -> Any:
            nonlocal shared_calls
            shared_calls += 1
            kwargs = first_kwargs
            if shared_calls > 1 and pristine:
                kwargs = {**first_kwargs, **_copies(pristine)}
            shared_fixtures.before_call()
            result = original(**kwargs)
            _reset(mocks)
            return result

        return shared_call, shared_fixtures.restore, None
    cycle = FixtureCycle(item)
    mute = SubtestMute()
    calls = 0

    def call() -> Any:
        nonlocal calls
        calls += 1
        if calls > 1:
            cycle.ready(calls)
            kwargs = cycle.kwargs()
            kwargs.update(_copies(pristine))
            mute.apply(kwargs)
        else:
            kwargs = first_kwargs
        result = original(**kwargs)
        mute.check(calls)
        _guarded(calls, "fixture teardown", cycle.teardown)
        _reset(mocks)
        return result

    return call, cycle.restore, cycle.prepare


class SharedFixtureCalls:
    """Before each call after the first of a body whose fixtures are shared between calls
    (``async def`` bodies: the event loop is one of them; ``fixtures = shared``): what the
    recording fixtures among them kept of the last call is let go, as their teardown would
    have after a single run. Done before the next call, not after this one: the last call's
    patches and records are there for pytest's teardown, as after a single run.

    * a ``mocker`` (pytest-mock): the patches and spies the last call started are stopped
      (each kept its target: a class the body defines, with pytest-mock's own async spy tests
      19 KiB a call, 8 false alarms); the mocks the fixtures made before the first call stay,
      their call records reset;
    * ``monkeypatch``: what the last call changed is undone (pytest's own ``undo`` on those
      changes alone); what the fixtures changed before the first call stays;
    * the ``contextvars.Context`` a sync runner of the coroutine keeps in its closure
      (pytest-asyncio >= 1.0 copies the context once per test and runs each call in it): each
      call gets a copy of that context as it was before the first call, as a single run's
      context starts. Kept, every context variable a call set stayed in it, and a context
      keeps its variables alive (asgiref 3.13.0's ``Local()`` makes one per instance: 9
      false alarms in its suite). :meth:`restore` puts the runner's own context back.
    """

    def __init__(self, item: pytest.Item, body: object = None) -> None:
        values = _funcargs(item)
        self._mockers = [v for v in values if _is_mocker(v)]
        self._before = [list(m._mock_cache.cache) for m in self._mockers]
        self._patches = [v for v in values if _is_monkeypatch(v)]
        self._marks = [_monkeypatch_mark(mp) for mp in self._patches]
        self._contexts = _context_cells(body)
        self._fresh = [context.copy() for _, context in self._contexts]
        self._calls = 0

    def restore(self) -> None:
        """The runner's own contexts back in its closure."""
        for cell, context in self._contexts:
            cell.cell_contents = context

    def before_call(self) -> None:
        self._calls += 1
        if self._calls == 1:
            return
        for (cell, _), fresh in zip(self._contexts, self._fresh):
            cell.cell_contents = fresh.copy()
        for mocker, before in zip(self._mockers, self._before):
            entries = list(mocker._mock_cache.cache)
            for entry in reversed(entries):
                if not any(entry is kept for kept in before):
                    with contextlib.suppress(Exception):  # (stopped by the body already)
                        mocker.stop(entry.mock)
            kept = [e.mock for e in entries if any(e is k for k in before)]
            with contextlib.suppress(Exception):
                _reset([m for m in kept if callable(getattr(m, "reset_mock", None))])
        for mp, mark in zip(self._patches, self._marks):
            with contextlib.suppress(Exception):
                _undo_since(mp, mark)


def _context_cells(body: object) -> list[tuple[Any, contextvars.Context]]:
    """The closure cells of ``body``, when it is a sync wrapper a plugin made of a coroutine
    function, that hold a ``contextvars.Context``, with it (a plain test function's own
    closure is never touched)."""
    wrapped = getattr(body, "__wrapped__", None)
    if not inspect.iscoroutinefunction(wrapped):
        return []
    closure = getattr(body, "__closure__", None) or ()
    found = []
    for cell in closure:
        with contextlib.suppress(ValueError):  # (an empty cell)
            if isinstance(cell.cell_contents, contextvars.Context):
                found.append((cell, cell.cell_contents))
    return found


def _is_monkeypatch(value: object) -> bool:
    """pytest's ``MonkeyPatch``, with the change lists its ``undo`` reads."""
    mp = sys.modules.get("_pytest.monkeypatch")
    return (
        mp is not None
        and isinstance(value, mp.MonkeyPatch)
        and isinstance(getattr(value, "_setattr", None), list)
        and isinstance(getattr(value, "_setitem", None), list)
    )


def _monkeypatch_mark(mp: Any) -> tuple[int, int, bool, bool]:
    return len(mp._setattr), len(mp._setitem), mp._savesyspath is None, mp._cwd is None


def _undo_since(mp: Any, mark: tuple[int, int, bool, bool]) -> None:
    """Undo the changes ``mp`` recorded since ``mark``, with pytest's own ``undo`` run on a
    ``MonkeyPatch`` holding those changes alone."""
    setattrs, setitems, no_syspath, no_cwd = mark
    part = type(mp)()
    part._setattr = mp._setattr[setattrs:]
    part._setitem = mp._setitem[setitems:]
    del mp._setattr[setattrs:], mp._setitem[setitems:]
    if no_syspath:
        part._savesyspath, mp._savesyspath = mp._savesyspath, None
    if no_cwd:
        part._cwd, mp._cwd = mp._cwd, None
    part.undo()


def _funcargs(item: pytest.Item) -> list[Any]:
    funcargs = getattr(item, "funcargs", None)
    return list(funcargs.values()) if isinstance(funcargs, dict) else []


def _is_mocker(value: object) -> bool:
    """A pytest-mock ``MockerFixture`` whose started patches can be listed and stopped."""
    cls = type(value)
    cache = getattr(getattr(value, "_mock_cache", None), "cache", None)
    return (
        cls.__module__.startswith("pytest_mock")
        and isinstance(cache, list)
        and callable(getattr(value, "stop", None))
    )


def _parameter_mocks(item: pytest.Function) -> list[Any]:
    """The ``unittest.mock`` objects among the test's parameters (also one level inside a
    tuple, list or dict parameter)."""
    mock = sys.modules.get("unittest.mock")
    callspec = getattr(item, "callspec", None)
    if mock is None or callspec is None:
        return []
    found: list[Any] = []
    for value in getattr(callspec, "params", {}).values():
        inner = value.values() if isinstance(value, dict) else value
        for v in inner if isinstance(value, (tuple, list, dict)) else (value,):
            if isinstance(v, mock.NonCallableMock) and not any(v is f for f in found):
                found.append(v)
    return found


_SCALARS = (type(None), bool, int, float, complex, str, bytes)
_MAX_ITEMS = 10_000


def _plain_parameters(item: pytest.Function, kwargs: dict[str, Any]) -> dict[str, Any]:
    """A copy of each parameter (``callspec.params``) that is plain data holding a mutable
    container, taken before the first call."""
    callspec = getattr(item, "callspec", None)
    out: dict[str, Any] = {}
    for name, value in getattr(callspec, "params", {}).items():
        if name in kwargs and kwargs[name] is value and _plain_mutable(value):
            out[name] = copy.deepcopy(value)
    return out


def _plain_mutable(value: Any) -> bool:
    """Plain data (scalars, lists, tuples, dicts, sets, bytearrays; at most ``_MAX_ITEMS``
    items in all) with at least one mutable container in it."""
    stack, seen, mutable = [value], 0, False
    while stack:
        v = stack.pop()
        seen += 1
        if seen > _MAX_ITEMS:
            return False
        t = type(v)
        if t in _SCALARS:
            continue
        if t is bytearray:
            mutable = True
        elif t is dict:
            mutable = True
            stack.extend(v.keys())
            stack.extend(v.values())
        elif t in (list, set):
            mutable = True
            stack.extend(v)
        elif t in (tuple, frozenset):
            stack.extend(v)
        else:
            return False
    return mutable


def _copies(pristine: dict[str, Any]) -> dict[str, Any]:
    return {name: copy.deepcopy(value) for name, value in pristine.items()}


def _reset(mocks: list[Any]) -> None:
    """Reset each mock from the top of its parent chain: a parameter mock that the first call
    attached to a mock of its own (``MagicMock(mActivity=activity)``) records its calls in that
    parent's ``method_calls`` too."""
    for m in mocks:
        top, seen = m, {id(m)}
        while True:
            parent = getattr(top, "_mock_new_parent", None) or getattr(top, "_mock_parent", None)
            if parent is None or id(parent) in seen or not hasattr(parent, "reset_mock"):
                break
            seen.add(id(parent))
            top = parent
        top.reset_mock()


def _guarded(call: int, where: str, fn: Callable[[], None]) -> None:
    try:
        fn()
    except REPEAT_FAILURES as exc:
        raise NotRepeatable(call, exc, where) from exc


class SubtestMute:
    """Subtests of calls after the first are not reported again: the ``subtests`` fixture of
    those calls (pytest >= 9, or pytest-subtests) reports to hooks that drop the reports; a
    subtest that failed there makes the test not repeatable."""

    def __init__(self) -> None:
        self.relays: list[_MutedHooks] = []

    def apply(self, kwargs: dict[str, Any]) -> None:
        self.relays = []
        for value in kwargs.values():
            if type(value).__name__ not in ("Subtests", "SubTests"):
                continue
            for attr in ("_ihook", "ihook"):
                real = getattr(value, attr, None)
                if real is not None and not isinstance(real, _MutedHooks):
                    relay = _MutedHooks(real)
                    setattr(value, attr, relay)
                    self.relays.append(relay)

    def check(self, call: int) -> None:
        for relay in self.relays:
            if relay.failure is not None:
                raise NotRepeatable(call, relay.failure, "a subtest")


class _MutedHooks:
    def __init__(self, real: Any) -> None:
        self._real = real
        self.failure: BaseException | None = None

    def _logreport(self, report: Any) -> None:
        if getattr(report, "failed", False) and self.failure is None:
            self.failure = AssertionError(str(getattr(report, "longrepr", "subtest failed")))

    def __getattr__(self, name: str) -> Any:
        if name == "pytest_runtest_logreport":
            return lambda report, **_: self._logreport(report)
        if name == "pytest_exception_interact":
            return lambda **_: None
        return getattr(self._real, name)


# -- unittest and doctests -------------------------------------------------------------------
class UnittestRun:
    """One run of a TestCase method (setUp, the method, tearDown, cleanups) per call. unittest
    reports failures to the item (``item._excinfo``), not by raising: a failure of the first run
    stays there for pytest's report (and is raised here so the loop stops, see
    ``first_failure``); one of a later run is taken back and makes the test not repeatable."""

    def __init__(self, item: Any, original: Callable[[], None]) -> None:
        self.item = item
        self.original = original
        self.calls = 0
        self.first_failure: BaseException | None = None
        self._failed_subtests: list[BaseException] = []

    def _muted_add_subtest(self, test_case: Any, test: Any, exc_info: Any) -> None:
        if exc_info is None:
            return
        # pytest >= 9 reports a skipped subTest by putting its skip in the item's excinfo list
        # and passing that entry here, where its own addSubTest takes it back out (through
        # pytest_runtest_makereport): left there, a subTest that skips at every call (a
        # backend that is not installed) made the test "not repeatable" at call 2.
        pending = self.item.__dict__.get("_excinfo")
        if isinstance(pending, list):
            for i, entry in enumerate(pending):
                if entry is exc_info:
                    del pending[i]
                    break
        value = exc_info[1] if isinstance(exc_info, tuple) else getattr(exc_info, "value", None)
        if isinstance(value, BaseException) and not _is_skip(value):
            self._failed_subtests.append(value)

    def __call__(self) -> None:
        item = self.item
        self.calls += 1
        before = len(item.__dict__.get("_excinfo") or [])
        if self.calls > 1 and hasattr(item, "addSubTest"):
            item.addSubTest = self._muted_add_subtest
        try:
            self.original()
        finally:
            item.__dict__.pop("addSubTest", None)
        new = (item.__dict__.get("_excinfo") or [])[before:]
        if self.calls == 1:
            if new:
                self.first_failure = new[0].value
                raise self.first_failure
            return
        if new:
            del item._excinfo[before:]
            raise NotRepeatable(self.calls, new[0].value)
        if self._failed_subtests:
            raise NotRepeatable(self.calls, self._failed_subtests[0], "a subTest")


def _is_skip(value: BaseException) -> bool:
    import unittest

    return isinstance(value, (unittest.SkipTest, pytest.skip.Exception))


def doctest_call(item: Any, original: Callable[[], None]) -> Callable[[], None]:
    """One run of a doctest's examples; doctest clears its globals after a run, so each later
    run starts from a copy of the globals the first one had."""
    globs = item.dtest.globs
    saved = dict(globs)
    calls = 0

    def call() -> None:
        nonlocal calls
        calls += 1
        if calls > 1:
            globs.clear()
            globs.update(saved)
        original()

    return call
