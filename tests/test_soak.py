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


# ------------------------------------------------------------------------------------------
# The verdict of sampled series, pinned on synthetic samples: the findings, severities, leaks
# and messages of a soak and of a watch.


def _sampled(columns, *, dt=0.1, process=None, **settings):
    """build_result over samples taken every ``dt`` seconds (``columns``: metric -> values)."""
    from pytest_memleak.settings import Settings
    from pytest_memleak.soak import SOAK_FIELDS, WATCH_FIELDS, Sampler, build_result

    fields = WATCH_FIELDS if process is not None else SOAK_FIELDS
    n = len(next(iter(columns.values())))
    sampler = Sampler(lambda: {}, fields, dt, 1000)
    sampler.samples = [
        {"t": i * dt, **{f: columns.get(f, [1.0] * n)[i] for f in fields[1:]}} for i in range(n)
    ]
    return build_result(
        "t.py::test_s",
        "watch pid 4242" if process is not None else "",
        "watch" if process is not None else "marker",
        sampler,
        fields,
        Settings(**settings),
        process,
    )


def _ramp(start, step, n=30):
    return [float(start + i * step) for i in range(n)]


RSS_LINE = "rss grew 2.5 MiB/s, 7.2 MiB over 2.9 s; pattern linear, confidence 1.00"
SOAK_FIX = (
    "Memory grows while the test runs: rerun the workload as a repeated "
    "@pytest.mark.memcheck test to get leak sites."
)


def test_a_soak_verdict_its_findings_leaks_and_message_are_pinned():
    result = _sampled(
        {
            "rss": _ramp(50_000_000, 262_144),
            "malloc": _ramp(20_000_000, 131_072),
            "py_blocks": _ramp(100_000, 300),
            "fds": _ramp(10, 1),
            "threads": _ramp(2, 1),
            "children": [0.0] * 30,
        }
    )
    lines = [
        RSS_LINE,
        "py_blocks grew +3000.00 py_blocks/s, +8700 over 2.9 s; pattern linear, confidence 1.00",
        "malloc grew 1.2 MiB/s, 3.6 MiB over 2.9 s; pattern linear, confidence 1.00",
        "fds grew +10.00 fds/s, +29 over 2.9 s; pattern linear, confidence 1.00",
        "threads grew +10.00 threads/s, +29 over 2.9 s; pattern linear, confidence 1.00",
    ]
    assert (result.verdict, result.severity, result.stop_reason) == (
        "leak",
        "critical",
        "confirmed growth",
    )
    # The memory metrics are one leak: each finding takes the severity of the largest growth.
    assert [(f.metric, f.severity, f.failing, f.reason) for f in result.findings] == [
        ("rss", "critical", True, lines[0]),
        ("py_blocks", "critical", True, lines[1]),
        ("malloc", "critical", True, lines[2]),
        ("fds", "high", True, lines[3]),
        ("threads", "high", True, lines[4]),
    ]
    rss = result.findings[0]
    assert rss.bytes_per_iter is None  # a sampled series has no iterations
    assert rss.rate_per_s == 2621440.0
    assert rss.total == 7602176.0
    assert [
        (lk.id, lk.type, lk.source, lk.severity, lk.estimated_size, lk.growth_rate, lk.unit)
        for lk in result.leaks
    ] == [
        ("L1", "unknown", "t.py::test_s", "critical", 7602176.0, 2621440.0, "bytes/s"),
        ("L2", "file_handle", "t.py::test_s", "high", None, 10.0, "fds/s"),
        ("L3", "thread", "t.py::test_s", "high", None, 10.0, "threads/s"),
    ]
    memory, fds, threads = result.leaks
    assert memory.evidence == tuple(lines[:3])
    assert memory.recommendation == SOAK_FIX
    assert (memory.details.pattern, memory.details.metric) == ("linear", "rss")
    assert memory.growth_rate_per_s == 2621440.0
    assert memory.confidence == rss.confidence
    assert fds.evidence == (lines[3],)
    assert fds.details.metric == "fds"
    assert fds.recommendation.startswith("Open file descriptors keep growing")
    assert threads.recommendation.startswith("Threads keep being started")
    assert result.message == "\n".join(
        ["memleak: t.py::test_s leaks (30 samples over 2.9 s)"] + [f"  - {x}" for x in lines]
    )
    assert set(result.growth) == {"rss", "py_blocks", "malloc", "fds", "threads", "children"}


def test_sampled_memory_takes_the_severity_of_the_metric_that_grew_most():
    # rss grew most in total (25 MiB: medium) while malloc grew faster (586 KiB/s alone would
    # be high): the memory leak, and both findings, are medium.
    rss = _ramp(50_000_000, 5_000)
    rss[-1] += 25 * 2**20
    result = _sampled({"rss": rss, "malloc": _ramp(20_000_000, 600_000)}, dt=1.0)
    assert [(f.metric, f.severity) for f in result.findings] == [
        ("rss", "medium"),
        ("malloc", "medium"),
    ]
    assert [(lk.type, lk.severity, lk.details.metric) for lk in result.leaks] == [
        ("unknown", "medium", "rss")
    ]
    assert result.severity == "medium"
    assert result.findings[1].reason == (
        "malloc grew 585.9 KiB/s, 16.6 MiB over 29.0 s; pattern linear, confidence 1.00"
    )


def test_a_soak_of_python_blocks_alone_is_a_low_memory_leak():
    result = _sampled({"py_blocks": _ramp(100_000, 300)})
    assert [(f.metric, f.severity) for f in result.findings] == [("py_blocks", "low")]
    (leak,) = result.leaks
    assert (leak.type, leak.severity, leak.estimated_size, leak.unit) == (
        "unknown",
        "low",
        8700.0,
        "bytes/s",
    )


def test_sampled_thresholds_fail_on_max_rate_and_max_growth():
    from pytest_memleak.units import Rate

    ramp = {"rss": _ramp(50_000_000, 262_144)}
    # Any sustained growth above its floor fails a soak, whatever fail_on says.
    assert _sampled(ramp, fail_on="critical").verdict == "leak"
    assert _sampled(ramp, fail_on="critical").findings[0].severity == "critical"
    # A max_rate per second tolerates slower growth: no finding at all.
    tolerated = _sampled(ramp, max_rate=Rate(3 * 2**20, "s"))
    assert (tolerated.verdict, tolerated.findings, tolerated.leaks) == ("ok", (), ())
    assert (tolerated.severity, tolerated.message, tolerated.stop_reason) == ("none", "", "clean")
    assert _sampled(ramp, max_rate=Rate(2 * 2**20, "s")).verdict == "leak"
    # A max_rate per iteration means nothing to a series in time.
    assert _sampled(ramp, max_rate=Rate(16, "iter")).findings[0].reason == RSS_LINE
    # max_growth raises the floor: a total that reaches it fails, one below passes.
    two_mib = {"rss": _ramp(50_000_000, 65_536, 33)}
    reached = _sampled(two_mib, max_growth=2 * 2**20)
    assert (reached.verdict, reached.severity) == ("leak", "high")
    assert reached.message == (
        "memleak: t.py::test_s leaks (33 samples over 3.2 s)\n"
        "  - rss grew 640.0 KiB/s, 2.0 MiB over 3.2 s; pattern linear, confidence 1.00"
    )
    assert _sampled(two_mib, max_growth=2 * 2**20 + 1).verdict == "ok"


def test_a_watch_leak_names_the_process():
    from pytest_memleak.model import ProcessInfo

    result = _sampled(
        {"rss": _ramp(50_000_000, 262_144), "children": _ramp(0, 1)},
        process=ProcessInfo(4242, "/venv/bin/python /srv/server.py"),
    )
    children = "children grew +10.00 children/s, +29 over 2.9 s; pattern linear, confidence 1.00"
    assert result.message == (
        "memleak: watched process 4242 (/venv/bin/python /srv/server.py) leaks (30 samples over "
        "2.9 s)\n"
        f"  - {RSS_LINE}\n  - {children}"
    )
    assert [(lk.id, lk.type, lk.source, lk.severity, lk.unit) for lk in result.leaks] == [
        ("L1", "unknown", "pid 4242 (python server.py)", "critical", "bytes/s"),
        ("L2", "subprocess", "pid 4242 (python server.py)", "high", "children/s"),
    ]
    assert result.leaks[0].recommendation.startswith("Memory of the watched process grows")
    assert result.leaks[1].recommendation.startswith("Child processes accumulate")
    assert [(f.metric, f.severity) for f in result.findings] == [
        ("rss", "critical"),
        ("children", "high"),
    ]
    assert (result.trend.mode, result.trend.process) == (
        "watch",
        ProcessInfo(4242, "/venv/bin/python /srv/server.py"),
    )


def test_a_window_too_short_for_five_samples_is_not_decided():
    result = _sampled({"rss": _ramp(50_000_000, 262_144)}, window=0.35)
    assert (result.verdict, result.severity, result.stop_reason) == (
        "skipped",
        "none",
        "not decided",
    )
    assert (result.findings, result.leaks, result.growth) == ((), (), {})
    assert result.trend.judged_samples == 4
    assert result.message == (
        "memleak: t.py::test_s not decided: 4 samples in the judged window, at least 5 are "
        "needed (run it longer, or shorten interval, or widen window)"
    )
