"""Soak mode and memcheck.watch(): sampled growth of long tests and of other processes."""

from __future__ import annotations

SOAK = """
import time
import pytest

HOLD = []

@pytest.mark.memcheck(mode="soak", interval="10ms")
def test_soak_leak():
    for _ in range(50):
        HOLD.append(bytearray(64 * 1024))
        time.sleep(0.005)

@pytest.mark.memcheck(mode="soak", interval="10ms")
def test_soak_clean():
    for _ in range(50):
        scratch = bytearray(64 * 1024)
        del scratch
        time.sleep(0.005)
"""

CHILD = r"""
import sys, time
print("ready", flush=True)  # started: the watch begins after the interpreter's own start-up
keep = []
for i in range(int(sys.argv[2])):
    b = bytearray(128 * 1024)
    b[::4096] = b"x" * len(b[::4096])
    if sys.argv[1] == "leak":
        keep.append(b)
    time.sleep(0.005)
time.sleep(float(sys.argv[3]))
"""

WATCH = """
import signal
import subprocess
import sys
import time

import pytest

CHILD = {child!r}


@pytest.mark.parametrize("kind", ["leak", "clean"])
def test_watch(memcheck, kind):
    p = subprocess.Popen([sys.executable, "-c", CHILD, kind, "80", "0"], stdout=subprocess.PIPE)
    p.stdout.readline()
    with memcheck.watch(p, interval="10ms") as w:
        p.wait()
    p.stdout.close()
    assert w.result is not None and w.result.verdict == ("leak" if kind == "leak" else "ok")


def test_watch_crash(memcheck):
    p = subprocess.Popen([sys.executable, "-c", CHILD, "clean", "20", "30"],
                         stdout=subprocess.PIPE)
    p.stdout.readline()
    with memcheck.watch(p, interval="10ms") as w:
        time.sleep(0.5)
        p.send_signal(signal.SIGKILL)
        p.wait()
        time.sleep(0.1)
    p.stdout.close()
    assert w.result.partial
    assert "signal 9" in w.result.stop_reason
"""


def test_soak_catches_growth_and_passes_clean(pytester, run_memleak):
    pytester.makepyfile(test_soak=SOAK)
    run = run_memleak()
    run.result.assert_outcomes(passed=1, failed=1)
    leak = run.test("test_soak_leak")
    clean = run.test("test_soak_clean")
    assert leak["verdict"] == "leak"
    assert leak["trend"]["mode"] == "soak"
    assert leak["iterations"] >= 10  # samples
    assert {f["metric"] for f in leak["findings"]} & {"rss", "malloc"}
    assert all(f["rate_per_s"] > 0 for f in leak["findings"])
    assert clean["verdict"] == "ok"
    run.result.stdout.fnmatch_lines(["*memleak: *test_soak_leak leaks (* samples over *"])


def test_soak_progress_respects_quiet(pytester, run_memleak):
    pytester.makepyfile(test_soak=SOAK.replace("range(50)", "range(250)"))
    loud = run_memleak("-k", "clean")
    loud.result.stdout.fnmatch_lines(["memleak soak *s  rss *"])
    quiet = run_memleak("-k", "clean", "-q")
    quiet.result.stdout.no_fnmatch_line("memleak soak *")


def test_watch_child_process(pytester, run_memleak):
    pytester.makepyfile(test_watch=WATCH.format(child=CHILD))
    run = run_memleak()
    run.result.assert_outcomes(passed=2, failed=1)
    leaking = run.test("test_watch[leak]")
    assert leaking["verdict"] == "leak"
    assert leaking["origin"] == "watch"
    assert leaking["trend"]["process"]["pid"] > 0
    assert "-c" in leaking["trend"]["process"]["cmdline"]
    assert leaking["leaks"][0]["source"].startswith("pid ")
    assert run.test("test_watch[clean]")["verdict"] == "ok"
    run.result.stdout.fnmatch_lines(["*memleak: watched process * leaks*"])


def test_watched_process_crash_is_reported_not_lost(pytester, run_memleak):
    pytester.makepyfile(test_watch=WATCH.format(child=CHILD))
    run = run_memleak("-k", "crash")
    run.result.assert_outcomes(passed=1)
    entry = run.test("test_watch_crash")
    assert entry["partial"] is True
    assert "killed by signal 9" in entry["probe_notes"]["ended"]
    assert entry["iterations"] >= 5  # the samples taken before the crash are kept
    assert run.report["summary"]["checked"] == 1


def test_a_soak_or_watch_with_too_few_samples_is_not_decided(pytester, run_memleak):
    # A 0.3 s soak sampled every 0.2 s (2 samples) kept 2 MiB a sample and ended "ok"; so did
    # window=0. Too few samples to judge are "not decided", never ok.
    pytester.makepyfile(
        test_few="""
        import subprocess
        import sys
        import time
        import pytest

        HOLD = []

        @pytest.mark.memcheck(mode="soak", interval="200ms")
        def test_short_soak():
            for _ in range(3):
                HOLD.append(bytearray(2 * 1024 * 1024))
                time.sleep(0.1)

        @pytest.mark.memcheck(mode="soak", interval="10ms", window="0s")
        def test_zero_window():
            for _ in range(30):
                HOLD.append(bytearray(256 * 1024))
                time.sleep(0.005)

        def test_short_watch(memcheck):
            proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
            try:
                with memcheck.watch(proc, interval="200ms"):
                    time.sleep(0.3)
            finally:
                proc.wait()
        """
    )
    run = run_memleak()
    run.result.assert_outcomes(passed=3)
    notes = {n["nodeid"].split("::")[-1]: n for n in run.report["not_checked"]}
    for name in ("test_short_soak", "test_zero_window"):
        assert notes[name]["kind"] == "not decided", notes
        assert "at least 5 are needed" in notes[name]["reason"]
    (watch,) = [t for t in run.report["tests"] if t["nodeid"].endswith("test_short_watch")]
    assert watch["verdict"] == "skipped"
    assert watch["stop_reason"] == "not decided"
    assert "not decided:" in watch["message"]


def test_the_achieved_sampling_interval_is_reported(pytester, run_memleak):
    pytester.makepyfile(SOAK)
    run = run_memleak()
    trend = run.test("test_soak_clean")["trend"]
    assert trend["interval_s"] == 0.01
    # Taken as the median gap between samples: at least the interval asked for.
    assert trend["interval_achieved_s"] >= 0.009
    assert trend["judged_samples"] == trend["samples"]


def test_a_watched_process_ending_on_a_drop_still_leaks():
    # Under load the last reading before a watched process ended caught it tearing down (RSS
    # back near its start), so 10 MiB of steady growth read as -392 KiB and "ok".
    import time

    from pytest_memleak.model import ProcessInfo
    from pytest_memleak.settings import resolve
    from pytest_memleak.soak import WATCH_FIELDS, Sampler, build_result

    readings = [float(10_000_000 + i * 262_144) for i in range(30)] + [9_000_000.0]

    def read() -> dict[str, float]:
        if not readings:
            raise ProcessLookupError("process 4242 exited with code 0")
        return {"rss": readings.pop(0), "fds": 4.0, "threads": 1.0, "children": 0.0}

    sampler = Sampler(read, WATCH_FIELDS, interval=0.002, retention=1000).start()
    deadline = time.monotonic() + 10
    while sampler.ended is None and time.monotonic() < deadline:
        time.sleep(0.01)
    sampler.stop()
    assert sampler.ended == "process 4242 exited with code 0"
    result = build_result(
        "t.py::test_w",
        "watch pid 4242",
        "watch",
        sampler,
        WATCH_FIELDS,
        resolve([]),
        ProcessInfo(pid=4242, cmdline="server"),
    )
    assert result.verdict == "leak", (result.growth.get("rss"), result.snapshots["rss"][-3:])
