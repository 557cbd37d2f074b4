"""Clean tests: nothing survives a call once the call is over (or growth stops early)."""
import collections
import contextlib
import ctypes
import itertools
import os
import random
import socket
import sqlite3
import tempfile
import threading

import numpy as np

# --- a bounded LRU cache with unique keys: fills during warm-up, then evicts ----------------
_LRU = collections.OrderedDict()
_LRU_MAX = 4
_lru_keys = itertools.count()


def test_bounded_lru_cache():
    key = next(_lru_keys)
    _LRU[key] = "value-%d" % key * 10
    _LRU.move_to_end(key)
    while len(_LRU) > _LRU_MAX:
        _LRU.popitem(last=False)
    assert len(_LRU) <= _LRU_MAX


def test_with_statement_files():
    with tempfile.NamedTemporaryFile("w+b", suffix=".dat") as f:
        f.write(os.urandom(4096))
        f.flush()
        f.seek(0)
        assert len(f.read()) == 4096


def test_threads_joined():
    out = []
    threads = [threading.Thread(target=lambda: out.append(sum(range(1000)))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == [499500, 499500]


def test_numpy_temporaries():
    rng = np.random.default_rng(0)
    a = rng.random((96, 96))
    b = a @ a.T
    assert np.isfinite(np.linalg.norm(b))


class _Node:
    def __init__(self, payload):
        self.payload = payload
        self.peer = None


def test_cycles_freed_by_gc():
    a, b = _Node(bytearray(4096)), _Node(bytearray(4096))
    a.peer, b.peer = b, a  # a reference cycle: only the cyclic collector frees it
    del a, b


# --- a background thread, started at import, churning garbage of random size ---------------
_CHURN_STOP = threading.Event()


def _churn():
    rng = random.Random(1)
    held = []
    while not _CHURN_STOP.wait(0.002):
        held = [bytes(1024) for _ in range(rng.randrange(0, 16))]  # 0-16 KiB, replaced each tick
    del held


_CHURN = threading.Thread(target=_churn, name="corpus-churn", daemon=True)
_CHURN.start()


def test_background_thread_churns_garbage():
    assert _CHURN.is_alive()
    sum(i * i for i in range(2000))


# --- lazy initialisation: the first call builds a table, later calls only read it ----------
_SETTINGS = None


def test_lazy_singleton():
    global _SETTINGS
    if _SETTINGS is None:
        _SETTINGS = {"key%d" % i: [i] * 8 for i in range(2000)}
    assert _SETTINGS["key7"][0] == 7


def test_socketpair_closed_with_with():
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"x" * 512)
        assert len(b.recv(512)) > 0


_libc = ctypes.CDLL(None)
_libc.calloc.restype = ctypes.c_void_p
_libc.calloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
_libc.free.restype = None
_libc.free.argtypes = [ctypes.c_void_p]


def test_ctypes_calloc_and_free():
    p = _libc.calloc(1, 8192)
    assert p
    _libc.free(p)


def test_sqlite_with_closing():
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        conn.execute("create table kv (k text primary key, v blob)")
        conn.executemany("insert into kv values (?, ?)", [("k%d" % i, b"v" * 64) for i in range(40)])
        assert conn.execute("select count(*) from kv").fetchone()[0] == 40


def _corpus_cleanup():
    _CHURN_STOP.set()
    _CHURN.join(timeout=5)
