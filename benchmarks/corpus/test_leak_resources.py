"""Leaked OS resources and native handles kept alive by a module-level list."""
import socket
import sqlite3
import tempfile
import threading

_SPOOLS = []


def test_unclosed_temporary_files():
    f = tempfile.TemporaryFile()  # leak-source  # noqa: SIM115
    f.write(b"spool" * 100)
    _SPOOLS.append(f)


_PAIRS = []


def test_socketpair_retained():
    a, b = socket.socketpair()  # leak-source
    a.sendall(b"ping")
    assert b.recv(4) == b"ping"
    _PAIRS.append((a, b))


_STOP = threading.Event()


def _worker():
    _STOP.wait()


def test_worker_thread_never_joined():
    t = threading.Thread(target=_worker, name="corpus-worker", daemon=True)  # leak-source
    t.start()


_DATABASES = []


def test_sqlite_connections_kept():
    conn = sqlite3.connect(":memory:")  # leak-source
    conn.execute("create table kv (k text primary key, v blob)")
    conn.executemany("insert into kv values (?, ?)", [("k%d" % i, b"v" * 64) for i in range(40)])
    conn.execute("create index kv_v on kv (v)")
    _DATABASES.append(conn)


def _corpus_cleanup():
    _STOP.set()
    for f in _SPOOLS:
        f.close()
    for a, b in _PAIRS:
        a.close()
        b.close()
    for conn in _DATABASES:
        conn.close()
