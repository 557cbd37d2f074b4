"""The cheap probes themselves (the plugin's behaviour through them is in the pytester tests)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from pytest_memleak import probes

pytestmark = pytest.mark.skipif(
    not os.path.exists(f"/proc/self/task/{os.getpid()}/children"),
    reason="needs /proc/PID/task/TID/children (Linux with CONFIG_PROC_CHILDREN)",
)


def test_a_thread_ending_between_listing_and_reading_keeps_the_children_probe_on_proc(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A helper thread that exits after ``/proc/self/task`` is listed used to switch the probe
    to psutil's scan of every process (~1.6 ms a read) for the rest of the run."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        p = probes.Probes()
        real_listdir = os.listdir

        def listdir_with_a_thread_that_just_ended(path: str) -> list[str]:
            names = real_listdir(path)
            return [*names, "999999999"] if path.endswith("/task") else names

        monkeypatch.setattr(os, "listdir", listdir_with_a_thread_that_just_ended)
        assert probes.proc_children("self") == [child.pid]
        assert p.children() == 1.0

        def no_psutil() -> object:
            raise AssertionError("fell back to psutil")

        monkeypatch.setattr(p, "_process", no_psutil)
        assert p.children() == 1.0
        assert probes.child_pids() == {child.pid}
    finally:
        child.kill()
        child.wait()


def test_children_of_a_process_that_does_not_exist_is_none() -> None:
    assert probes.proc_children(999_999_999) is None


def test_children_count_zombies_and_nothing_once_they_are_reaped() -> None:
    p = probes.Probes()
    base = p.children()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    for _ in range(200):  # until it has exited (a zombie: not reaped yet)
        with open(f"/proc/{child.pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.01)
    assert p.children() == base + 1
    child.wait()
    assert p.children() == base


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_malloc_reading_counts_a_chunk_served_from_glibcs_thread_cache() -> None:
    """glibc counts the chunks its per-thread cache holds as in use: a 256 B allocation served
    from that cache moved the raw reading by nothing (a small native leak then read flat for
    up to 7 calls in a row). The reading leaves out what the main thread's cache holds, so
    the allocation moves it by its chunk, 272 B, from a full cache as from an empty one (from
    an empty one glibc may hand out a free chunk up to 31 B larger rather than split it)."""
    import ctypes

    reader = probes.Probes()
    if not reader.status["malloc"].available or probes._load_tcache_reader() is None:
        pytest.skip("no mallinfo2 here, or a glibc whose per-thread cache cannot be read")
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    deltas = {}
    for state in ("full", "empty"):
        seen = []
        for _ in range(5):  # another thread (xdist's) may allocate meanwhile: one clean read
            held = [libc.malloc(264) for _ in range(7)]  # empties the 272 B cache
            if state == "full":
                for ptr in held:
                    libc.free(ptr)
            before = reader.malloc()
            ptr = libc.malloc(256)
            after = reader.malloc()
            libc.free(ptr)
            if state == "empty":
                for ptr in held:
                    libc.free(ptr)
            seen.append(after - before)
        deltas[state] = seen
    assert 272 in deltas["full"], deltas
    assert any(272 <= d < 272 + 32 for d in deltas["empty"]), deltas


def test_the_cache_is_filled_only_where_it_is_not_read_exactly() -> None:
    """The reading leaves out the main thread's per-thread cache, so a snapshot in the main
    thread needs no fill (~0.3 ms); a body run in another thread has its own cache, which is
    still filled before each exact snapshot."""
    import threading

    reader = probes.Probes()
    if probes._load_tcache_reader() is None or reader._settle_allocator is None:
        pytest.skip("a glibc whose per-thread cache cannot be read")
    seen: list[tuple[bool, bool]] = []
    reader._settle_allocator = lambda trim, fill: seen.append((trim, fill))
    reader.settle_allocator(trim=False)
    assert seen == []  # main thread, no trim: nothing to do
    reader.settle_allocator(trim=True)
    assert seen == [(True, False)]  # the trim only
    worker = threading.Thread(target=reader.settle_allocator, kwargs={"trim": False})
    worker.start()
    worker.join()
    assert seen[-1] == (False, True)


def test_the_arena_limit_follows_glibcs_settings() -> None:
    assert probes.arena_limit({"MALLOC_ARENA_MAX": "4"}) == 4
    tunables = "glibc.malloc.tcache_count=0:glibc.malloc.arena_max=3"
    assert probes.arena_limit({"GLIBC_TUNABLES": tunables, "MALLOC_ARENA_MAX": "4"}) == 3
    cpus = min(os.cpu_count() or 1, len(os.sched_getaffinity(0)))
    assert probes.arena_limit({"MALLOC_ARENA_MAX": "none"}) == 8 * cpus
    assert probes.arena_limit({}) == 8 * cpus


def _malloc_info(arenas: int) -> bytes:
    heap = (
        '<heap nr="{}">\n<sizes>\n</sizes>\n<total type="fast" count="2" size="96"/>\n'
        '<total type="rest" count="5" size="4000"/>\n<system type="current" size="{}"/>\n'
        '<system type="max" size="200000"/>\n</heap>\n'
    )
    body = "".join(heap.format(i, 135168 * (i + 1)) for i in range(arenas))
    tail = '<total type="fast" count="0" size="0"/>\n</malloc>'
    return f'<malloc version="1">\n{body}{tail}'.encode()


def test_the_main_arena_is_not_read_once_threads_share_it() -> None:
    """With as many arenas as glibc makes, new threads are given existing arenas, the main one
    too: more-itertools' 100-thread tee test moved the main arena by kilobytes between calls,
    which the quick check took for the main thread's own growth (31 calls of 1.7 s instead of
    9). The reading is then None, and the probe switches off with a note."""
    assert probes.main_arena_in_use(_malloc_info(3), limit=16) == 135168 - 96 - 4000
    assert probes.main_arena_in_use(_malloc_info(16), limit=16) is None
    assert probes.main_arena_in_use(_malloc_info(15), limit=16) == 135168 - 96 - 4000
    assert probes.main_arena_in_use(b"<malloc/>", limit=16) != probes.main_arena_in_use(
        b"<malloc/>", limit=16
    )  # NaN: not understood


def test_the_main_arena_probe_switches_off_when_threads_share_it() -> None:
    """In a process limited to 2 arenas, 3 threads that allocate make glibc share them."""
    code = (
        "import threading\n"
        "from pytest_memleak import probes\n"
        "p = probes.Probes()\n"
        "before = p.malloc_main()\n"
        "ev = threading.Event()\n"
        "def work():\n"
        "    x = [bytes(100) for _ in range(1000)]\n"
        "    ev.wait()\n"
        "ts = [threading.Thread(target=work) for _ in range(3)]\n"
        "[t.start() for t in ts]\n"
        "after = p.malloc_main()\n"
        "ev.set()\n"
        "[t.join() for t in ts]\n"
        "print(before == before, after == after, p.status['malloc_main'].note)\n"
    )
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("True False malloc_main: not read from here on"), out.stdout
    assert "limit of 2 arenas" in out.stdout
