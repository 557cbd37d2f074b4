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
