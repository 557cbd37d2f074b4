"""A ready-to-paste suppression for every leak: the ``fingerprint:`` entry, the failure message's
``memleak_suppress`` line and marker form, what a suppressed leak records, and the count of
suppressions used."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import iniconfig
import pytest

from pytest_memleak.diagnose.suppress import (
    clean_entry,
    entry_for,
    paste_lines,
    suppress,
)
from pytest_memleak.model import Leak, TestResult

FAST = ("--memleak-iterations=6", "--memleak-warmup=1")

#: Two tests leaking at two different lines of the code under test.
APP = """HOLD = []


def remember(n):
    HOLD.append({"id": n, "payload": "x" * 100})


def keep(n):
    HOLD.append(("kept", n, "y" * 200))
"""

TESTS = """
import pytest

import app


@pytest.mark.memcheck
def test_remember():
    app.remember(len(app.HOLD))


@pytest.mark.memcheck
def test_keep():
    app.keep(len(app.HOLD))
"""

INI_LINE = re.compile(r"^memleak_suppress = (fingerprint:[0-9a-f]{16})  # (.+)$")
MARKER_LINE = "  or on the test: "


def _ini_line(lines: list[str], test: str) -> tuple[str, str]:
    """The pasteable ini line the failure message of ``test`` offers, and its entry."""
    found = [ln for ln in lines if INI_LINE.match(ln) and ln.endswith(f"::{test})")]
    assert len(found) == 1, "\n".join(lines)
    match = INI_LINE.match(found[0])
    assert match is not None
    return found[0], match.group(1)


def _leak(fp: str, source: str = "app.py:5", **kw: Any) -> Leak:
    return Leak(
        id="L1",
        type="python_object",
        source=source,
        severity="low",
        estimated_size=None,
        growth_rate=96.0,
        fingerprint=fp,
        suppression=entry_for(fp),
        **kw,
    )


# ------------------------------------------------------------------------- end to end (pytest)


def test_pasted_ini_line_accepts_exactly_that_leak(pytester, run_memleak):
    pytester.makepyfile(app=APP, test_sup=TESTS)
    first = run_memleak(*FAST)
    first.result.assert_outcomes(failed=2)
    line, entry = _ini_line(first.result.outlines, "test_remember")
    assert line.endswith("# python_object at app.py:5 (test_sup.py::test_remember)"), line
    leaking = first.test("test_remember")
    (leak,) = leaking["leaks"]
    assert leak["suppression"] == entry == f"fingerprint:{leak['fingerprint']}"
    # The message ends with the ini line and the marker's form.
    message = leaking["message"].splitlines()
    assert message[-2:] == [line, f'{MARKER_LINE}@pytest.mark.memcheck(suppress=["{entry}"])']
    _, other_entry = _ini_line(first.result.outlines, "test_keep")
    assert other_entry != entry

    pytester.makeini(f"[pytest]\n{line}\n")  # exactly as printed, comment and all
    second = run_memleak(*FAST)
    second.result.assert_outcomes(passed=1, failed=1)
    accepted = second.test("test_remember")
    assert (accepted["verdict"], accepted["stop_reason"]) == ("ok", "suppressed")
    (leak,) = accepted["leaks"]
    assert leak["suppressed"] is True
    assert leak["suppressed_by"] == entry
    assert leak["suppression"] == entry
    # A fingerprint entry accepts that leak only: the other test still fails, with its own line.
    other = second.test("test_keep")
    assert other["verdict"] == "leak"
    assert not any(lk["suppressed"] for lk in other["leaks"])
    assert _ini_line(second.result.outlines, "test_keep")[1] == other_entry


def test_pasted_marker_accepts_the_leak(pytester, run_memleak):
    pytester.makepyfile(app=APP, test_mark=TESTS)
    first = run_memleak(*FAST, "-k", "test_remember")
    first.result.assert_outcomes(failed=1)
    _, entry = _ini_line(first.result.outlines, "test_remember")
    (marker_line,) = [ln for ln in first.result.outlines if ln.startswith(MARKER_LINE)]
    marker = marker_line[len(MARKER_LINE) :]
    assert marker == f'@pytest.mark.memcheck(suppress=["{entry}"])'

    source = TESTS.replace(
        "@pytest.mark.memcheck\ndef test_remember", f"{marker}\ndef test_remember"
    )
    assert source != TESTS
    pytester.makepyfile(test_mark=source)
    second = run_memleak(*FAST)
    second.result.assert_outcomes(passed=1, failed=1)
    accepted = second.test("test_remember")
    assert accepted["verdict"] == "ok"
    (leak,) = accepted["leaks"]
    assert (leak["suppressed"], leak["suppressed_by"], leak["suppression"]) == (True, entry, entry)
    assert second.test("test_keep")["verdict"] == "leak"  # the marker is that test's only


def test_same_leak_same_fingerprint_from_another_checkout(pytester, run_memleak, monkeypatch):
    # The same code in two directories, run from different places: the sources are shown
    # relative to where pytest runs, the fingerprint (type, file name, line text) is the same.
    for checkout in ("one", "two"):
        root = pytester.mkdir(checkout)
        (root / "app.py").write_text(APP, encoding="utf-8")
        (root / "test_fp.py").write_text(textwrap.dedent(TESTS), encoding="utf-8")
    monkeypatch.chdir(pytester.path / "one")
    inside = run_memleak(*FAST, "-k", "test_remember", report=str(pytester.path / "one.json"))
    monkeypatch.chdir(pytester.path)
    above = run_memleak(
        *FAST, "-k", "test_remember", "two/test_fp.py", report=str(pytester.path / "two.json")
    )
    (one,) = inside.test("test_remember")["leaks"]
    (two,) = above.test("test_remember")["leaks"]
    assert (one["source"], two["source"]) == ("app.py:5", "two/app.py:5")
    assert one["fingerprint"] == two["fingerprint"]
    assert one["suppression"] == two["suppression"] == f"fingerprint:{one['fingerprint']}"


# ------------------------------------------------------------------------------- unit: entries


def test_fingerprint_entry_matches_that_fingerprint_only():
    mine, other = _leak("302c04f2e487183e"), _leak("aaaaaaaaaaaaaaaa")
    out = suppress([mine, other], ("fingerprint:302c04f2e487183e",))
    assert [lk.suppressed for lk in out] == [True, False]
    assert out[0].suppressed_by == "fingerprint:302c04f2e487183e"
    # Exact: no prefix, no glob, and it is not an fnmatch pattern on the other fields.
    for entry in ("fingerprint:302c04f2", "fingerprint:*", "fingerprint:302c04f2e487183e0"):
        assert not any(lk.suppressed for lk in suppress([mine], (entry,))), entry
    (nameless,) = suppress([_leak("")], ("fingerprint:",))
    assert not nameless.suppressed
    # Case and spacing do not matter; the entry as written is what accepted it.
    (upper,) = suppress([mine], ("Fingerprint:302C04F2E487183E",))
    assert upper.suppressed_by == "Fingerprint:302C04F2E487183E"


def test_patterns_still_work_beside_fingerprints():
    leak = _leak("302c04f2e487183e", objects={"app.Handler": 1.0})
    for pattern in ("app.py:*", "302c04f2*", "python_object", "app.Handler"):
        (out,) = suppress([leak], ("fingerprint:aaaaaaaaaaaaaaaa", pattern))
        assert out.suppressed_by == pattern


def test_inline_comment_is_not_part_of_the_entry():
    # pytest reads the ini without stripping comments: the pasted line's comment arrives.
    pasted = "fingerprint:302c04f2e487183e  # python_object at app.py:5 (t.py::test_a[x, y])"
    assert clean_entry(pasted) == "fingerprint:302c04f2e487183e"
    assert clean_entry("# a whole comment line") == ""
    assert clean_entry("-re-cache  # we rely on it") == "-re-cache"
    assert clean_entry("*#literal*") == "*#literal*"  # a '#' inside a pattern stays
    (out,) = suppress([_leak("302c04f2e487183e")], (pasted,))
    assert out.suppressed_by == "fingerprint:302c04f2e487183e"


def test_pasted_block_of_several_leaks_is_one_valid_ini_key(tmp_path: Path):
    leaks = [_leak("302c04f2e487183e"), _leak("0123456789abcdef", source="app.py:8")]
    lines = paste_lines(leaks, "t.py::test_a")
    assert lines[-1] == (
        '  or on the test: @pytest.mark.memcheck(suppress=["fingerprint:302c04f2e487183e", '
        '"fingerprint:0123456789abcdef"])'
    )
    assert lines[0].startswith("  to accept these 2 leaks: in pytest.ini under [pytest]")
    block = lines[1:-1]
    assert block == [
        "memleak_suppress = fingerprint:302c04f2e487183e"
        "  # python_object at app.py:5 (t.py::test_a)",
        "    fingerprint:0123456789abcdef  # python_object at app.py:8 (t.py::test_a)",
    ]
    ini = tmp_path / "pytest.ini"
    ini.write_text("[pytest]\naddopts = -q\n" + "\n".join(block) + "\n", encoding="utf-8")
    value = iniconfig.IniConfig(str(ini))["pytest"]["memleak_suppress"]
    entries = tuple(v.strip() for v in value.split("\n") if v.strip())  # pytest's "linelist"
    assert all(lk.suppressed for lk in suppress(leaks, entries))


def test_paste_lines_for_duplicates_unlocated_leaks_and_check():
    same = [_leak("302c04f2e487183e"), _leak("302c04f2e487183e", source="app.py:7")]
    assert sum(ln.startswith("memleak_suppress = ") for ln in paste_lines(same, "t")) == 1
    assert not any(ln.startswith("    ") for ln in paste_lines(same, "t"))
    assert paste_lines([_leak("")], "t") == []
    unlocated = paste_lines([_leak("0123456789abcdef", source="unknown")], "t")
    assert "every unlocated leak" in unlocated[0]
    assert unlocated[-2].startswith("memleak_suppress = fingerprint:0123456789abcdef")
    assert paste_lines([_leak("302c04f2e487183e")], "fn", library=True) == [
        '  to accept it: check(..., suppress=["fingerprint:302c04f2e487183e"])'
    ]


# ------------------------------------------------------------------------ suppressions used


def _result(*leaks: Leak) -> TestResult:
    return TestResult(nodeid="t.py::test", verdict="ok", leaks=leaks)


def test_suppressions_used_counts_distinct_entries():
    from pytest_memleak.model import summarise

    cache = "known cache re-cache: compiled regular expressions kept by re's own cache"

    def by(entry: str | None) -> Leak:
        return _leak("302c04f2e487183e", suppressed=entry is not None, suppressed_by=entry)

    tests = [
        _result(by("fingerprint:302c04f2e487183e"), by(None)),
        _result(by("fingerprint:302c04f2e487183e"), by("vendor/*")),  # the same entry again
        _result(by(cache)),
        _result(by(cache), by(None)),
        _result(),
    ]
    assert summarise(tuple(tests)).suppressions_used == 3
    assert summarise(tuple(tests[-1:])).suppressions_used == 0
    assert summarise(()).suppressions_used == 0


@pytest.mark.parametrize("fp", ["", "302c04f2e487183e"])
def test_entry_for(fp):
    assert entry_for(fp) == (f"fingerprint:{fp}" if fp else "")


def test_a_malformed_fingerprint_entry_is_a_start_up_error(pytester, run_memleak):
    pytester.makepyfile("import pytest\n\n@pytest.mark.memcheck\ndef test_a():\n    pass\n")
    pytester.makeini("[pytest]\nmemleak_suppress = fingerprint:xyz\n")
    run = run_memleak()
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR
    assert (
        "memleak: invalid value for memleak_suppress: 'fingerprint:xyz'; expected fingerprint: "
        "and the 16 hex digits a failure message prints" in run.output
    )


def test_hypothesis_caches_are_a_known_cache_but_not_what_the_user_keeps():
    """attrs' property tests build strategies inside a draw: Hypothesis's own caches of them
    grew at every call (a structural-coverage tag per label, with no bound) and failed three
    tests as leaks held by ``hypothesis.internal.conjecture.data.STRUCTURAL_COVERAGE_CACHE``.
    Accepted by default as a known cache; a holder of the user's is never accepted, nor an
    allocation of the user's code without a holder."""
    held = _leak(
        "aaaaaaaaaaaaaaaa",
        source="tests/strategies.py:95",
        retainer_path="hypothesis.internal.conjecture.data.STRUCTURAL_COVERAGE_CACHE (dict) "
        "-> [7167511461255628743] (StructuralCoverageTag)",
    )
    made = _leak(
        "bbbbbbbbbbbbbbbb",
        source="tests/strategies.py:96",
        stack_trace=(
            "/venv/lib/python3.11/site-packages/hypothesis/strategies/_internal/lazy.py:71: "
            "s._unwrapped = result",
            "tests/strategies.py:96: st.dictionaries(keys=keys, values=vals)",
        ),
    )
    kept_by_user = _leak(
        "cccccccccccccccc",
        source="tests/test_app.py:12",
        retainer_path="tests.test_app.SEEN (list) -> [3] (int)",
        stack_trace=("/venv/lib/python3.11/site-packages/hypothesis/core.py:10: draw",),
    )
    users_own = _leak(
        "dddddddddddddddd", source="app.py:5", stack_trace=("app.py:5: HOLD.append(x)",)
    )
    out = suppress([held, made, kept_by_user, users_own], ())
    by = [(lk.suppressed_by or "").partition(":")[0] for lk in out]
    assert by == ["known cache hypothesis-caches"] * 2 + [""] * 2, by
    (on,) = suppress([held], ("-hypothesis-caches",))
    assert not on.suppressed
