"""Cheap probes: one snapshot of the process's memory and resources.

Every probe reads a kernel or allocator counter in microseconds; none traces. A probe the
platform lacks is marked unavailable once (with a note) and reads as NaN, so a snapshot never
raises. Values are written into a preallocated ``array('d')`` so that measuring allocates no
Python object that survives an iteration (our own bookkeeping must not look like a leak).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import math
import operator
import os
import re
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

NAN = float("nan")

#: Fields of a snapshot, in storage order. ``heap`` and ``external`` are derived (see ``derive``).
FIELDS = ("t", "rss", "py_blocks", "malloc", "fds", "threads", "children", "malloc_main")
INDEX = {name: i for i, name in enumerate(FIELDS)}
WIDTH = len(FIELDS)
_MAIN = INDEX["malloc_main"]

#: What each metric means; the same text is in docs/measurement.md.
DESCRIPTIONS = {
    "t": "seconds since the first snapshot of the test (time.perf_counter)",
    "rss": "resident set size in bytes (/proc/self/statm, psutil elsewhere)",
    "py_blocks": "memory blocks allocated by Python's object allocator (sys.getallocatedblocks)",
    "malloc": "bytes in use in the C heap (glibc mallinfo2: uordblks + hblkhd)",
    "malloc_main": "bytes in use in glibc's main arena only (malloc_info; the main thread's "
    "allocations, without other threads' arenas): a second opinion on malloc growth",
    "heap": "Python heap estimate: malloc + py_blocks x mean pymalloc block size",
    "external": "rss - heap: memory outside the heap (pymalloc arenas' slack, mmaps, stacks, code)",
    "fds": "open file descriptors (/proc/self/fd)",
    "threads": "live Python threads (threading.active_count)",
    "children": "child processes, zombies included (/proc/self/task/*/children, psutil elsewhere)",
}


#: Test seam: "malloc:absent,fds:raise" makes probes unavailable or fail at run time.
FAULTS_ENV = "PYTEST_MEMLEAK_FAULTS"


def _nan() -> float:
    return NAN


def _raiser(name: str) -> Callable[[], float]:
    def fail() -> float:
        raise PermissionError(f"injected {name} probe failure")

    return fail


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


@dataclass(frozen=True)
class ProbeStatus:
    name: str
    available: bool
    note: str


def _load_mallinfo2() -> Callable[[], _Mallinfo2] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _Mallinfo2
    fn.argtypes = []
    reader: Callable[[], _Mallinfo2] = fn
    return reader


def _tcache_count() -> int:
    """Chunks glibc's per-thread cache keeps per size: 7 unless GLIBC_TUNABLES says otherwise."""
    for part in os.environ.get("GLIBC_TUNABLES", "").split(":"):
        key, _, value = part.partition("=")
        if key.strip() == "glibc.malloc.tcache_count":
            try:
                return max(0, min(int(value), 127))
            except ValueError:
                return 7
    return 7


def _libc_malloc_free() -> tuple[ctypes.CDLL, Any, Any]:
    """The C library with its ``malloc`` and ``free`` typed (raises OSError, AttributeError)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
    malloc, free = libc.malloc, libc.free
    malloc.restype = ctypes.c_void_p
    malloc.argtypes = [ctypes.c_size_t]
    free.argtypes = [ctypes.c_void_p]
    free.restype = None
    return libc, malloc, free


def _load_allocator_settler() -> Callable[[bool, bool], None] | None:
    """A function that brings glibc's allocator to a reproducible state, or None.

    glibc (2.26 and newer; the ``malloc`` probe needs ``mallinfo2``, 2.33) keeps freed chunks
    of up to ~1 KiB in a per-thread cache (tcache, 64 sizes x 7 chunks) that ``mallinfo2``
    counts as in use: a body that frees chunks of sizes the cache did not hold yet makes the
    in-use bytes drift up by up to ~230 KiB, then stop. Filling the calling thread's cache
    (allocate, then free, the full count of each size) makes that part constant. Then
    ``malloc_trim(0)`` returns free pages to the system, so RSS no longer holds memory that
    was freed. Cost: ~0.3 ms plus the trim; used by the diagnosis only, not per snapshot.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc, malloc, free = _libc_malloc_free()
        trim = libc.malloc_trim
        libc.mallinfo2  # noqa: B018 - glibc >= 2.33, as the malloc probe
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    count = _tcache_count()
    # One request size per tcache bin (chunk sizes 32 .. 1040 in steps of 16 on 64-bit).
    sizes = [16 * i + 8 for i in range(1, 65)] if ctypes.sizeof(ctypes.c_void_p) == 8 else []
    # (Tried: bytearray buffers for the sizes above 512 B, 2.4x cheaper. In some heap states a
    # 256 B/call native leak then went unseen; size by size through malloc and free it does not.)

    def settle(trim_pages: bool = True, fill: bool = True) -> None:
        for size in sizes if fill else ():
            ptrs = [malloc(size) for _ in range(count)]
            for ptr in ptrs:
                free(ptr)
        if trim_pages:
            trim(0)

    return settle


def _load_tcache_reader() -> Callable[[], int] | None:
    """A reader of the bytes held in the main thread's glibc tcache, or None.

    ``mallinfo2`` counts the chunks in glibc's per-thread cache (tcache: up to 7 freed chunks
    of each size up to ~1 KiB) as in use, so a body's small allocation served from that cache
    moves nothing, and the cache's refill later moves the reading by an unrelated amount.
    Filling the cache before each reading was meant to make that part constant, but in some
    heap states it did not (a 256 B/call leak read flat for 7 calls in a row and was judged
    clean). Reading the cache instead gives the exact figure: its counts are the first chunk
    of the main thread's heap (glibc >= 2.30 layout: 64 ``uint16`` counts, then 64 pointers;
    the ``malloc`` probe needs glibc >= 2.33 anyway). The layout is checked at start-up
    (the chunk's size field, then one malloc and free of a known size must move its count by
    one each); anything else gives None and the fill is used as before. ~2 us a read.
    """
    if not sys.platform.startswith("linux") or ctypes.sizeof(ctypes.c_void_p) != 8:
        return None
    try:
        _, malloc, free = _libc_malloc_free()
        with open("/proc/self/maps", encoding="ascii", errors="replace") as f:
            start = next(
                int(line.split("-", 1)[0], 16) for line in f if line.rstrip().endswith("[heap]")
            )
    except (OSError, AttributeError, StopIteration, ValueError):
        return None
    if ctypes.c_size_t.from_address(start + 8).value != 0x291:  # 656 B, previous in use
        return None
    counts = (ctypes.c_uint16 * 64).from_address(start + 16)
    bin_272 = 15  # chunk sizes 32 + 16 * i: malloc(264) and malloc(256) use bin 15

    def moves_by_one() -> bool:
        before = counts[bin_272]
        ptr = malloc(264)
        taken = counts[bin_272]
        free(ptr)
        after = counts[bin_272]
        return bool(ptr) and (taken, after) == ((before - 1, before) if before else (0, 1))

    # The first calls through ctypes can allocate on their own (seen on 3.10): three tries.
    if not any(moves_by_one() for _ in range(3)) or any(c > 127 for c in counts):
        return None
    sizes = [32 + 16 * i for i in range(64)]
    mul = operator.mul
    view = memoryview(counts).cast("B").cast("H")  # 3x faster to iterate than the ctypes array

    def read() -> int:
        return sum(map(mul, view, sizes))

    return read


_HEAP0 = re.compile(
    rb'<heap nr="0">.*?<total type="fast" count="\d+" size="(\d+)"/>\s*'
    rb'<total type="rest" count="\d+" size="(\d+)"/>\s*<system type="current" size="(\d+)"/>',
    re.S,
)


_HEAP = b'<heap nr="'


def arena_limit(environ: Mapping[str, str] = os.environ) -> int:
    """How many arenas glibc makes at most before threads share them (the main arena among
    them): ``MALLOC_ARENA_MAX`` or the ``glibc.malloc.arena_max`` tunable, else 8 per CPU the
    process may run on (64-bit; 2 on 32-bit), counted low where they differ."""
    tunables = dict(
        kv.partition("=")[::2] for kv in environ.get("GLIBC_TUNABLES", "").split(":") if kv
    )
    for text in (tunables.get("glibc.malloc.arena_max"), environ.get("MALLOC_ARENA_MAX")):
        if text and text.strip().isdigit() and int(text) > 0:
            return int(text)
    cpus = os.cpu_count() or 1
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        with contextlib.suppress(OSError):
            cpus = min(cpus, len(affinity(0)) or cpus)
    return cpus * (8 if sys.maxsize > 2**32 else 2)


def main_arena_in_use(text: bytes, limit: int) -> float | None:
    """The main arena's in-use bytes from ``malloc_info``'s XML; NaN when it cannot be read;
    None when the process has as many arenas as glibc makes (``limit``): threads then share
    arenas, the main one too, and it no longer shows the main thread's memory alone."""
    if text.count(_HEAP) >= limit:
        return None
    m = _HEAP0.search(text)
    if m is None:
        return NAN
    fast, rest, current = (int(g) for g in m.groups())
    return float(current - fast - rest)


#: Why malloc_main is switched off once the main arena is shared (see main_arena_in_use).
SHARED_MAIN_ARENA = (
    "malloc_main: not read from here on: the process reached glibc's limit of {limit} arenas, "
    "so threads share them, the main arena too (malloc alone is judged)"
)


def _load_main_arena_reader(limit: int) -> Callable[[], float | None] | None:
    """A reader of the main arena's in-use bytes through ``malloc_info`` (~5 us), or None.
    The reader returns None once the process has ``limit`` arenas (see
    :func:`main_arena_in_use`)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        open_memstream = libc.open_memstream
        malloc_info = libc.malloc_info
        fclose = libc.fclose
        free = libc.free
    except (OSError, AttributeError):
        return None
    open_memstream.restype = ctypes.c_void_p
    open_memstream.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_size_t)]
    malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    malloc_info.restype = ctypes.c_int
    fclose.argtypes = [ctypes.c_void_p]
    free.argtypes = [ctypes.c_void_p]
    free.restype = None
    buf = ctypes.c_char_p()
    size = ctypes.c_size_t()
    buf_ref, size_ref = ctypes.byref(buf), ctypes.byref(size)

    def read() -> float | None:
        fp = open_memstream(buf_ref, size_ref)
        if not fp:
            return NAN
        malloc_info(0, fp)
        fclose(fp)
        text = ctypes.string_at(buf, size.value)
        free(buf)
        return main_arena_in_use(text, limit)

    try:
        value = read()
    except Exception:
        return None
    return read if value is None or value == value else None  # NaN: the XML not understood


def mean_block_size() -> float:
    """Mean size of an allocated pymalloc block, read once from ``sys._debugmallocstats``.

    Costs a few milliseconds, so it runs once per process; 64 bytes when it cannot be read.
    """
    fallback = 64.0
    debug = getattr(sys, "_debugmallocstats", None)
    if debug is None:
        return fallback
    try:
        saved = os.dup(2)
    except OSError:
        return fallback
    try:
        with tempfile.TemporaryFile() as tmp:
            sys.stderr.flush()
            os.dup2(tmp.fileno(), 2)
            try:
                debug()
            finally:
                os.dup2(saved, 2)
            tmp.seek(0)
            text = tmp.read().decode("ascii", "replace")
    except OSError:
        return fallback
    finally:
        os.close(saved)
    match = re.search(r"# bytes in allocated blocks\s*=\s*([\d,]+)", text)
    blocks = sys.getallocatedblocks()
    if not match or blocks <= 0:
        return fallback
    used = int(match.group(1).replace(",", ""))
    return max(16.0, used / blocks)


class Probes:
    """The default probe set. ``read(buf, offset)`` writes one snapshot into ``buf``."""

    def __init__(self) -> None:
        self.status: dict[str, ProbeStatus] = {}
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self._statm = os.path.exists("/proc/self/statm")
        self._proc_fd = os.path.isdir("/proc/self/fd")
        self._children_files = os.path.exists(f"/proc/self/task/{os.getpid()}/children")
        self._mallinfo = _load_mallinfo2()
        self._arena_limit = arena_limit()
        self._malloc_info = _load_main_arena_reader(self._arena_limit) if self._mallinfo else None
        self._settle_allocator = _load_allocator_settler() if self._mallinfo else None
        self._tcache = _load_tcache_reader() if self._mallinfo else None
        self._psutil_proc: object | None = None
        self._t0 = time.perf_counter()
        self._blocks_ok = sys.getallocatedblocks() > 0
        self.block_size = mean_block_size() if self._blocks_ok else 0.0
        self._note("t", True, "")
        self._note("rss", True, "" if self._statm else "via psutil")
        self._note(
            "py_blocks",
            self._blocks_ok,
            "" if self._blocks_ok else "sys.getallocatedblocks() reads 0 (PYTHONMALLOC=malloc?)",
        )
        self._note(
            "malloc",
            self._mallinfo is not None,
            "" if self._mallinfo else "glibc mallinfo2() not available on this platform",
        )
        self._note(
            "malloc_main",
            self._malloc_info is not None,
            "" if self._malloc_info else "glibc malloc_info() not available on this platform",
        )
        self._note("fds", True, "" if self._proc_fd else "via psutil")
        self._note("threads", True, "")
        self._note("children", True, "" if self._children_files else "via psutil")
        self._install_readers()

    def _note(self, name: str, available: bool, note: str) -> None:
        self.status[name] = ProbeStatus(name, available, note)

    def disable(self, name: str, note: str) -> None:
        """Switch a probe off for the rest of the process after it failed at run time."""
        self._note(name, False, note)
        if name == "malloc":
            self._mallinfo = None
        elif name == "py_blocks":
            self._blocks_ok = False
        readers = getattr(self, "_readers", None)
        if readers is not None and name in INDEX and name != "t":
            i = INDEX[name]
            readers[i - 1] = (i, name, _nan)

    def reset_clock(self) -> None:
        self._t0 = time.perf_counter()

    def _process(self) -> Any:
        if self._psutil_proc is None:
            import psutil

            self._psutil_proc = psutil.Process()
        return self._psutil_proc

    def rss(self) -> float:
        if self._statm:
            try:
                with open("/proc/self/statm", "rb") as f:
                    return float(int(f.read().split()[1]) * self._page)
            except (OSError, ValueError, IndexError):
                self._statm = False
        try:
            return float(self._process().memory_info().rss)
        except Exception as exc:  # psutil.Error, access denied, ...
            self.disable("rss", f"rss probe failed: {exc!r}")
            return NAN

    def malloc(self) -> float:
        fn = self._mallinfo
        if fn is None:
            return NAN
        info = fn()
        cached = self._tcache() if self._tcache is not None else 0
        return float(info.uordblks + info.hblkhd - cached)

    def settle_allocator(self, trim: bool = True) -> bool:
        """Fill glibc's per-thread cache and (``trim``) trim free pages before a native reading
        (see :func:`_load_allocator_settler`); False where that is not possible."""
        if self._settle_allocator is None:
            return False
        # With the cache read exactly (``_tcache``: the main thread's) the readings need no
        # fill; a body run in another thread (an old execnet model) still has its cache filled.
        fill = self._tcache is None or threading.current_thread() is not threading.main_thread()
        if trim or fill:
            self._settle_allocator(trim, fill)
        return True

    def malloc_main(self) -> float:
        """In-use bytes of glibc's main arena (heap 0 of ``malloc_info``): what the main
        thread allocated, without the arenas of other threads, whose memory moves on its own."""
        fn = self._malloc_info
        if fn is None:
            return NAN
        value = fn()
        if value is None:  # shared from now on: arenas are never given back
            self.disable("malloc_main", SHARED_MAIN_ARENA.format(limit=self._arena_limit))
            self._malloc_info = None
            return NAN
        return value - (self._tcache() if self._tcache is not None else 0)

    def fds(self) -> float:
        if self._proc_fd:
            try:
                return float(len(os.listdir("/proc/self/fd")) - 1)  # minus listdir's own fd
            except OSError:
                self._proc_fd = False
        try:
            return float(self._process().num_fds())
        except Exception as exc:
            self.disable("fds", f"fd probe failed: {exc!r}")
            return NAN

    def children(self) -> float:
        if self._children_files:
            pids = proc_children("self")
            if pids is not None:
                return float(len(pids))
            self._children_files = False
        try:
            return float(len(self._process().children()))
        except Exception as exc:
            self.disable("children", f"children probe failed: {exc!r}")
            return NAN

    def _blocks(self) -> float:
        return float(sys.getallocatedblocks()) if self._blocks_ok else NAN

    @staticmethod
    def _threads() -> float:
        return float(threading.active_count())

    def _install_readers(self) -> None:
        self._readers = [
            (1, "rss", self.rss),
            (2, "py_blocks", self._blocks),
            (3, "malloc", self.malloc),
            (4, "fds", self.fds),
            (5, "threads", self._threads),
            (6, "children", self.children),
            (7, "malloc_main", self.malloc_main),
        ]
        for fault in os.environ.get(FAULTS_ENV, "").split(","):
            name, _, how = fault.strip().partition(":")
            if name not in INDEX or name == "t":
                continue
            if how == "absent":
                self.disable(name, f"{name} probe not available (injected by {FAULTS_ENV})")
            elif how == "raise":
                i = INDEX[name]
                self._readers[i - 1] = (i, name, _raiser(name))

    def read(self, buf: array[float], offset: int, main: bool = True) -> None:
        """Write one snapshot (FIELDS order) into ``buf[offset:offset + WIDTH]``.
        ``main=False``: malloc_main is not read (NaN): the quick check judges without it, and
        its ``malloc_info`` walk is the dearest probe (~32 us, more in a fragmented heap).

        A probe that raises is switched off for the rest of the process with a note, and reads
        NaN (``null`` in the report) from then on: a snapshot never raises.
        """
        buf[offset] = time.perf_counter() - self._t0
        for i, name, reader in self._readers:
            if i == _MAIN and not main:
                buf[offset + i] = NAN
                continue
            try:
                buf[offset + i] = reader()
            except Exception as exc:
                self.disable(name, f"{name} probe failed at run time: {exc!r}")
                buf[offset + i] = NAN

    def snapshot(self) -> dict[str, float | None]:
        """One snapshot as a dict (for the fixture's ``snapshot()``), derived fields included."""
        buf = array("d", [0.0] * WIDTH)
        self.read(buf, 0)
        row = {name: buf[i] for i, name in enumerate(FIELDS)}
        row.update(derive(row, self.block_size))
        return {k: (None if math.isnan(v) else v) for k, v in row.items()}


def derive(row: dict[str, float], block_size: float) -> dict[str, float]:
    """Heap, external memory and external ratio from one snapshot's raw fields."""
    malloc = row["malloc"]
    blocks = row["py_blocks"]
    parts = [malloc, blocks * block_size if not math.isnan(blocks) else NAN]
    heap = NAN if all(math.isnan(p) for p in parts) else sum(p for p in parts if not math.isnan(p))
    external = row["rss"] - heap if not math.isnan(heap) else NAN
    ratio = external / heap if heap and not math.isnan(heap) and heap > 0 else NAN
    return {"heap": heap, "external": external, "external_ratio": ratio}


# ---------------------------------------------------------------- resource identities


def fd_table() -> dict[int, str]:
    """Open descriptors and what each points to (/proc, else psutil)."""
    table: dict[int, str] = {}
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return fd_table_psutil()
    for name in names:
        try:
            table[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except (OSError, ValueError):
            continue
    return table


def fd_table_psutil() -> dict[int, str]:
    try:
        import psutil

        proc = psutil.Process()
        table = {f.fd: f.path for f in proc.open_files()}
        for conn in proc.net_connections(kind="all"):
            if conn.fd != -1:
                table[conn.fd] = "socket"
        return table
    except Exception:
        return {}


def other_threads_cpu() -> float:
    """CPU seconds this process's threads other than the calling one have used, ended threads
    included: the process's CPU clock less the calling thread's (~1 us). Two readings a
    moment apart in a process of one thread differ by up to ~30 us either way (summed over
    20,000 readings: ~5 us); ``getrusage`` drifted by 1.4 ms over as many."""
    own = time.thread_time()  # first: the process's reading then includes all of it
    return time.process_time() - own


def os_thread_count() -> int:
    """Threads of this process as the OS sees them (native ones included); ~10 us."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def proc_children(pid: int | str = "self") -> list[int] | None:
    """The direct children of a process from ``/proc/PID/task/*/children`` (tens of
    microseconds; psutil scans every process on the machine, about 1 ms per 100), or None
    where that is unavailable. A thread that exits between the listing and the read is
    skipped: helper threads come and go all the time, and must not switch this off."""
    pids: list[int] = []
    if pid == "self" and not _may_have_children():
        return pids
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                pids.extend(int(p) for p in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended meanwhile
        except (OSError, ValueError):
            return None
    return pids


def _may_have_children() -> bool:
    """False when this process has no child at all, running or a zombie: one ``waitid`` that
    reaps nothing (``WNOWAIT``) answers ECHILD, in about a microsecond, where reading every
    thread's children file costs ~10 us a thread. Since Linux 2.4 it sees the children of
    every thread of the process."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    except (OSError, AttributeError):  # no waitid, or interrupted: read the files
        return True
    return True


def child_pids() -> set[int]:
    """This process's children, from /proc (no psutil: ~10 us); empty where unavailable."""
    return set(proc_children("self") or ())


def identities(metric: str) -> set[tuple[object, ...]]:
    """What makes each resource of a count metric itself, so that "the same resources survive"
    can be told from "a count happened to be higher": a thread by ident, native id and name
    (idents are reused), a descriptor by number and target, a child by pid."""
    if metric == "threads":
        return {(t.ident, t.native_id, t.name) for t in threading.enumerate()}
    if metric == "fds":
        return set(fd_table().items())
    if metric == "children":
        return {(pid,) for pid in child_pids()}
    return set()
