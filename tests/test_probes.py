"""The cheap probes themselves (the plugin's behaviour through them is in the pytester tests)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from array import array

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
    system = sum(135168 * (i + 1) for i in range(arenas))
    tail = (
        f'<total type="fast" count="{2 * arenas}" size="{96 * arenas}"/>\n'
        f'<total type="rest" count="{5 * arenas}" size="{4000 * arenas}"/>\n'
        '<total type="mmap" count="2" size="500000"/>\n'
        f'<system type="current" size="{system}"/>\n</malloc>'
    )
    return f'<malloc version="1">\n{body}{tail}'.encode()


#: A heap of the sample: 4 free chunks and the top, each free chunk's size read 1 B large.
_HEAP_IN_USE = 135168 - 96 - 4000 + 4


def test_the_main_arena_is_not_read_once_threads_share_it() -> None:
    """With as many arenas as glibc makes, new threads are given existing arenas, the main one
    too: more-itertools' 100-thread tee test moved the main arena by kilobytes between calls,
    which the quick check took for the main thread's own growth (31 calls of 1.7 s instead of
    9). The reading is then None, and the probe switches off with a note. The total of every
    arena is still read."""
    total3 = sum(135168 * (i + 1) - 96 - 4000 + 4 for i in range(3)) + 500000
    assert probes.malloc_in_use(_malloc_info(3), limit=16) == (total3, _HEAP_IN_USE)
    total, main = probes.malloc_in_use(_malloc_info(16), limit=16)
    assert main is None
    assert total == sum(135168 * (i + 1) for i in range(16)) - 16 * 4092 + 500000
    assert probes.malloc_in_use(_malloc_info(15), limit=16)[1] == _HEAP_IN_USE
    total, main = probes.malloc_in_use(b"<malloc/>", limit=16)
    assert total != total
    assert main != main


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_malloc_info_reads_what_mallinfo2_reads_to_the_byte() -> None:
    """malloc_info counts each free chunk 1 B large (its flag bit): taken off again, and with
    its stream kept for the process, its total is mallinfo2's reading exactly, so one walk
    gives malloc and malloc_main in a snapshot that reads both, and mallinfo2 (1 us in a
    small heap) the others."""
    p = probes.Probes()
    if p._malloc_info is None or p._mallinfo is None:
        pytest.skip("no mallinfo2 or malloc_info here")
    junk = [bytearray(600 + 37 * i) for i in range(3000)]  # free chunks of many sizes
    del junk[::2]
    equal = 0
    for _ in range(5):
        info = p._mallinfo()
        total, main = p._malloc_info()
        equal += total == info.uordblks + info.hblkhd
    assert equal >= 4, (total, info.uordblks + info.hblkhd)
    assert main is not None
    assert 0 < main <= total
    del junk


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_a_snapshot_reading_both_mallocs_walks_the_heap_once() -> None:
    p = probes.Probes()
    calls = {"mallinfo2": 0, "malloc_info": 0}
    mallinfo2, malloc_info = p._mallinfo, p._malloc_info
    if mallinfo2 is None or malloc_info is None:
        pytest.skip("no mallinfo2 or malloc_info here")

    def counted_mallinfo2():  # type: ignore[no-untyped-def]
        calls["mallinfo2"] += 1
        return mallinfo2()

    def counted_malloc_info():  # type: ignore[no-untyped-def]
        calls["malloc_info"] += 1
        return malloc_info()

    p._mallinfo, p._malloc_info = counted_mallinfo2, counted_malloc_info
    p._install_readers()
    buf = array("d", [0.0] * probes.WIDTH)
    p.read(buf, 0, main=True)
    assert calls == {"mallinfo2": 0, "malloc_info": 1}
    malloc, main = buf[probes.INDEX["malloc"]], buf[probes.INDEX["malloc_main"]]
    assert 0 < main <= malloc
    p.read(buf, 0, main=False)
    assert calls == {"mallinfo2": 1, "malloc_info": 1}
    assert buf[probes.INDEX["malloc_main"]] != buf[probes.INDEX["malloc_main"]]  # NaN
    # read alone (the diagnosis), malloc_main walks again; nothing is left paired
    assert p.malloc_main() == p.malloc_main()
    assert calls["malloc_info"] == 3


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
