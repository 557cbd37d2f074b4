"""Faults: a run that is cut short, a probe that fails, hostile text. Nothing is lost or crashes."""

from __future__ import annotations

import json

import pytest

from pytest_memleak.render import json_report


def _schema_errors(doc: dict) -> list[str]:
    return json_report.validate(doc)


def test_timeout_stops_the_loop_and_marks_partial(pytester, run_memleak):
    pytester.makepyfile(
        """
        import time
        import pytest

        BUF = []

        @pytest.mark.memcheck(timeout="0.5s", iterations=50, max_iterations=100)
        def test_slow():
            time.sleep(0.05)
            if BUF:  # memory moves up and down: never "flat", never growing
                BUF.pop()
            else:
                BUF.append(bytes(100))
        """
    )
    run = run_memleak("--memleak-warmup=1")
    run.result.assert_outcomes(passed=1)
    entry = run.test("test_slow")
    assert entry["partial"] is True
    assert entry["stop_reason"] == "timeout"
    assert entry["iterations"] < 50
    assert entry["verdict"] == "ok"
    assert _schema_errors(run.report) == []


def test_interpreter_exit_mid_run_leaves_a_valid_partial_report(pytester, run_memleak):
    pytester.makepyfile(
        """
        import os
        import pytest

        SINK = []
        CALLS = []

        @pytest.mark.memcheck
        def test_a_leak():
            SINK.append(bytes(4096))

        @pytest.mark.memcheck
        def test_b_exits():
            CALLS.append(1)
            if len(CALLS) == 3:
                os._exit(3)
        """
    )
    run = run_memleak("--memleak-iterations=6", "--memleak-warmup=1")
    assert run.result.ret == 3
    assert run.report is not None, run.output
    assert run.report["partial"] is True
    assert [t["nodeid"].split("::")[-1] for t in run.report["tests"]] == ["test_a_leak"]
    assert run.test("test_a_leak")["verdict"] == "leak"
    assert _schema_errors(run.report) == []


def test_keyboard_interrupt_mid_loop_keeps_earlier_results(pytester, run_memleak):
    pytester.makepyfile(
        """
        import pytest

        CALLS = []

        @pytest.mark.memcheck
        def test_a_clean():
            x = [1, 2, 3]

        @pytest.mark.memcheck
        def test_b_interrupted():
            CALLS.append(1)
            if len(CALLS) == 2:
                raise KeyboardInterrupt
        """
    )
    run = run_memleak("--memleak-iterations=6", "--memleak-warmup=1")
    assert run.result.ret == pytest.ExitCode.INTERRUPTED
    assert run.report is not None
    assert run.report["partial"] is True
    assert run.test("test_a_clean")["verdict"] == "ok"
    assert _schema_errors(run.report) == []


def test_failing_probes_degrade_to_null_with_a_note(run_memleak, monkeypatch, leak_and_clean):
    monkeypatch.setenv("PYTEST_MEMLEAK_FAULTS", "malloc:absent,fds:raise")
    run = run_memleak("--memleak-iterations=6", "--memleak-warmup=1")
    run.result.assert_outcomes(passed=1, failed=1)
    leak = run.test("test_leak")
    assert leak["verdict"] == "leak"  # py_blocks still sees it
    assert set(leak["snapshots"]["malloc"]) == {None}
    assert set(leak["snapshots"]["fds"]) == {None}
    assert "not available" in leak["probe_notes"]["malloc"]
    assert "failed at run time" in leak["probe_notes"]["fds"]
    assert run.test("test_clean")["verdict"] == "ok"
    assert "Traceback" not in run.output


def test_background_thread_churn_is_no_false_alarm(pytester, run_memleak):
    pytester.makepyfile(
        """
        import logging
        import threading
        from concurrent.futures import ThreadPoolExecutor

        import pytest

        STOP = threading.Event()
        log = logging.getLogger("exporter")

        def exporter():
            while not STOP.wait(0.002):
                metrics = {str(i): [i] * 8 for i in range(64)}
                log.debug("exported %d", len(metrics))

        T = threading.Thread(target=exporter, daemon=True)
        T.start()
        POOL = ThreadPoolExecutor(2)

        @pytest.mark.memcheck
        def test_clean_with_background_work():
            assert sum(POOL.map(len, ["ab", "cde"])) == 5
        """
    )
    for _ in range(3):
        run = run_memleak()
        run.result.assert_outcomes(passed=1)
        assert run.test("test_clean_with_background_work")["verdict"] == "ok"


HOSTILE = """
import pytest

SINK = []
IDS = ["<script>alert(1)</script>", 'quote"s\\'', "new\\nline", "x" * 3000, "bad\\udcff"]

@pytest.mark.memcheck
@pytest.mark.parametrize("tag", IDS, ids=IDS)
def test_hostile(tag):
    SINK.append(bytes(1024))
"""


def test_hostile_ids_are_safe_in_terminal_and_json(pytester, run_memleak):
    pytester.makepyfile(test_hostile=HOSTILE)
    run = run_memleak("--memleak-iterations=5", "--memleak-warmup=1")
    run.result.assert_outcomes(failed=5)
    assert len(run.report["tests"]) == 5
    text = json.dumps(run.report)  # round-trips: no lone surrogates, no NaN
    assert json.loads(text)["tests"][0]["nodeid"]
    table = [
        line
        for line in run.result.outlines
        if line.startswith("LEAK ") and "test_hostile.py::" in line
    ]
    assert len(table) == 5
    assert all(len(line) < 400 for line in table)  # the 3000-character id is cut
    assert _schema_errors(run.report) == []


def test_a_class_that_is_its_own_metaclass_is_typed_not_an_error(pytester, run_memleak):
    """h11's sentinels: a class whose type is itself, made per call. The collector clears
    such a class and cannot free it (a real leak), and its ``__name__`` lookup then fails: the
    census raised AttributeError, which failed the test as an error, and pytest's own
    traceback formatting crashed the session on the same class (INTERNALERROR)."""
    pytester.makepyfile(
        test_sentinels="""
        class Sentinel(type):
            def __new__(cls, name, bases, namespace, **kwds):
                v = super().__new__(cls, name, bases, namespace, **kwds)
                v.__class__ = v
                return v


        def test_make_sentinel():
            class S(Sentinel, metaclass=Sentinel):
                pass

            assert type(S) is S
        """
    )
    run = run_memleak("--memleak-all")
    t = run.test("test_make_sentinel")
    assert t["verdict"] == "leak", (t["verdict"], t["error"])
    assert t["error"] is None
    assert "test_make_sentinel.<locals>.S" in t["diagnosis"]["objects"], t["diagnosis"]
    assert "INTERNALERROR" not in run.output
    run.result.assert_outcomes(failed=1)
    run.result.stdout.fnmatch_lines(["*memleak: *test_make_sentinel leaks*"])


_BROKEN_CENSUS = """
import pytest_memleak.detectors.objects as objects

def _census(*mine):
    raise RuntimeError("census broke")

objects.census = _census
"""

_BROKEN_RESULT = """
import pytest_memleak.analysis as analysis

def _result_of(*args, **kwargs):
    raise RuntimeError("result broke")

analysis.result_of = _result_of
"""

_LEAKS = """
KEPT = []

def test_leaks():
    KEPT.append([object() for _ in range(20)])

def test_clean():
    [object() for _ in range(20)]
"""


def test_a_bug_in_the_diagnosis_stops_it_and_the_verdict_stands(pytester, run_memleak):
    """The plugin's own code raising in the diagnosis failed the user's test with that
    exception (a leak or not). The diagnosis stops with a note, the measured verdict stands."""
    pytester.makeconftest(_BROKEN_CENSUS)
    pytester.makepyfile(test_leaks=_LEAKS)
    run = run_memleak("--memleak-all")
    t = run.test("test_leaks")
    assert t["verdict"] == "leak", (t["verdict"], t["error"])
    assert t["error"] is None
    notes = " ".join(t["probe_notes"].values())
    assert "pytest-memleak's own code raised RuntimeError: census broke" in notes, notes
    assert run.test("test_clean")["verdict"] == "ok"
    run.result.assert_outcomes(failed=1, passed=1)


def test_a_bug_in_the_analysis_names_the_test_as_not_checked(pytester, run_memleak):
    """The plugin's own analysis raising after the loop failed the user's test with that
    exception. The test now passes as a single call would, named as not checked (internal
    error), and the report stays valid."""
    pytester.makeconftest(_BROKEN_RESULT)
    pytester.makepyfile(test_leaks=_LEAKS)
    run = run_memleak("--memleak-all")
    run.result.assert_outcomes(passed=2)
    kinds = {n["nodeid"].split("::")[-1]: n for n in run.report["not_checked"]}
    assert set(kinds) == {"test_leaks", "test_clean"}, kinds
    note = kinds["test_leaks"]
    assert note["kind"] == "internal error"
    assert "RuntimeError: result broke" in note["reason"], note
    assert _schema_errors(run.report) == []
    run.result.stdout.fnmatch_lines(["*pytest-memleak could not judge it (R*: please report it)*"])


_STOPS_TRACEMALLOC = """
import tracemalloc

KEPT = []


def _deep(n):
    if n == 0:
        return [object() for _ in range(3)]
    return _deep(n - 1)


def _traced():
    tracemalloc.start(10)
    for n in range(30):
        _deep(n % 10)
    tracemalloc.stop()


def test_traces_itself():
    _traced()


def test_traces_itself_and_leaks():
    _traced()
    KEPT.append([object() for _ in range(10)])
"""


def test_a_body_that_stops_tracemalloc_is_not_charged_with_its_leak(pytester, run_memleak):
    """On CPython before 3.12.5, stopping tracemalloc leaks every traceback it traced
    (cpython#121390): msgpack's tests that measure themselves with tracemalloc read as native
    leaks (3-24 KiB a call) and took 48 s instead of 3.5. Their native memory is not judged
    there, and the summary says so; their Python objects still are."""
    from pytest_memleak.hygiene import TRACEMALLOC_STOP_LEAKS

    pytester.makepyfile(test_tracing=_STOPS_TRACEMALLOC)
    run = run_memleak("--memleak-all")
    clean, leaking = run.test("test_traces_itself"), run.test("test_traces_itself_and_leaks")
    assert clean["verdict"] == "ok", clean["findings"]
    assert leaking["verdict"] == "leak"
    assert [f["metric"] for f in leaking["findings"] if f["failing"]] == ["py_blocks"], leaking
    if TRACEMALLOC_STOP_LEAKS:
        note = clean["probe_notes"]["tracemalloc"]
        assert "cpython#121390" in note, note
        assert "not charged" in note, note
        assert clean["iterations"] <= 10, clean["iterations"]  # decided as a flat body is
        run.result.stdout.fnmatch_lines(
            [
                "memleak: malloc and rss not judged in 2 tests: they stop tracemalloc,",
                "  which leaks on this Python (cpython#121390, fixed in 3.12.5):",
                "      test_tracing.py::test_traces_itself",
            ]
        )
    else:
        assert "tracemalloc" not in clean["probe_notes"]
        assert "not judged" not in run.output
    run.result.assert_outcomes(passed=1, failed=1)


def test_a_slimmed_result_keeps_the_note_the_summary_names():
    from pytest_memleak import model

    note = {"tracemalloc": "the test stopped tracemalloc 3 time(s), ...", "rss": "other"}
    result = model.TestResult(nodeid="t.py::test", verdict="ok", probe_notes=note)
    assert model.slimmed(result).probe_notes == {"tracemalloc": note["tracemalloc"]}
    data = model.to_json(result)
    assert model.slimmed_from_json(data).probe_notes == {"tracemalloc": note["tracemalloc"]}
    plain = model.TestResult(nodeid="t.py::test", verdict="ok", probe_notes={"rss": "other"})
    assert model.slimmed(plain).probe_notes == {}
