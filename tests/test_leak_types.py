"""Each leak type, leaking and clean: type, source line, evidence and the terminal block."""

from __future__ import annotations

import pytest

# name: (setup at module level, leaking body, clean body, expected type)
CASES = {
    "python_object": (
        "HOLD = []",
        "HOLD.append({'id': len(HOLD), 'payload': 'x' * 100})",
        "tmp = {'id': 1, 'payload': 'x' * 100}",
    ),
    "buffer_leak": (
        "import array\nHOLD = []",
        "HOLD.append(array.array('d', [0.0]) * 512)",
        "tmp = array.array('d', [0.0]) * 512",
    ),
    "native_module": (
        "import ctypes\nlibc = ctypes.CDLL(None)\nlibc.malloc.restype = ctypes.c_void_p\n"
        "libc.malloc.argtypes = [ctypes.c_size_t]\nlibc.free.argtypes = [ctypes.c_void_p]",
        "p = libc.malloc(32 * 1024)",
        "libc.free(libc.malloc(32 * 1024))",
    ),
    "file_handle": (
        "import os",
        "fd = os.open(os.devnull, os.O_RDONLY)",
        "os.close(os.open(os.devnull, os.O_RDONLY))",
    ),
    "socket": (
        "import socket\nHOLD = []",
        "HOLD.append(socket.socket(socket.AF_INET, socket.SOCK_STREAM))",
        "socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()",
    ),
    "thread": (
        "import threading\nSTOP = threading.Event()",
        "threading.Thread(target=STOP.wait, daemon=True).start()",
        "t = threading.Thread(target=len, args=('x',)); t.start(); t.join()",
    ),
    "subprocess": (
        "import subprocess\nHOLD = []",
        "HOLD.append(subprocess.Popen(['sleep', '30'], stdin=subprocess.DEVNULL))",
        "subprocess.run(['true'], check=True)",
    ),
    "connection_pool": (
        "import sqlite3\nHOLD = []",
        "HOLD.append(sqlite3.connect(':memory:'))",
        "sqlite3.connect(':memory:').close()",
    ),
    "crypto_context": (
        "import ssl\nHOLD = []\nfor _ in range(128):\n    ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)",
        "HOLD.append(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))",
        "ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)",
    ),
}

CLEANUP = """

def teardown_module():
    for name in ("STOP",):
        if name in globals():
            globals()[name].set()
    for obj in globals().get("HOLD", []):
        for method in ("kill", "close"):
            if hasattr(obj, method):
                getattr(obj, method)()
        if hasattr(obj, "wait"):
            obj.wait()
"""


def _module(setup: str, leaking: str, clean: str) -> tuple[str, int]:
    lines = ["import pytest", setup, "", "", "@pytest.mark.memcheck", "def test_leaking():"]
    leak_line = len("\n".join(lines).splitlines()) + 1
    lines += [f"    {leaking}", "", "", "@pytest.mark.memcheck", "def test_clean():"]
    lines += [f"    {clean}"]
    return "\n".join(lines) + CLEANUP, leak_line


@pytest.mark.parametrize("kind", sorted(CASES))
def test_leak_type_source_and_block(pytester, run_memleak, kind):
    source, line = _module(*CASES[kind])
    pytester.makepyfile(**{f"test_{kind}": source})
    run = run_memleak("--memleak-iterations=6", "--memleak-warmup=2")
    run.result.assert_outcomes(passed=1, failed=1)
    leaking = run.test("test_leaking")
    assert leaking["verdict"] == "leak"
    types = [lk["type"] for lk in leaking["leaks"]]
    assert types[0] == kind, leaking["leaks"]
    first = leaking["leaks"][0]
    src_line = int(first["source"].rsplit(":", 1)[1])
    assert first["source"].startswith(f"test_{kind}.py:")
    assert abs(src_line - line) <= 1, (first["source"], line)
    assert first["evidence"]
    assert first["recommendation"]
    assert first["fingerprint"]
    clean = run.test("test_clean")
    assert clean["verdict"] == "ok"
    # Only known caches may show, suppressed (OpenSSL's first-contexts cache, say).
    assert all(lk["suppressed"] for lk in clean["leaks"]), clean["leaks"]
    run.result.stdout.fnmatch_lines(
        [
            f"LEAK test_{kind}.py::test_leaking: *",
            f"  L1 {kind} at test_{kind}.py:{src_line}: *",
            "      fix: *",
        ]
    )


def test_retainer_path_and_surviving_objects(pytester, run_memleak):
    pytester.makepyfile(
        test_bus="""
        import pytest

        class Handler:
            def __init__(self, callback):
                self.callback = callback

        class Bus:
            def __init__(self):
                self.listeners = []

        BUS = Bus()

        @pytest.mark.memcheck
        def test_subscribe():
            BUS.listeners.append(Handler(lambda event: event))
        """
    )
    run = run_memleak("--memleak-iterations=6", "--memleak-warmup=1")
    leak = run.test("test_subscribe")["leaks"][0]
    assert leak["retainer_path"].startswith("test_bus.BUS (test_bus.Bus) -> .listeners (list)")
    assert "(test_bus.Handler)" in leak["retainer_path"]
    assert leak["objects"]["test_bus.Handler"] == pytest.approx(1.0)
    run.result.stdout.fnmatch_lines(["      held by: test_bus.BUS (test_bus.Bus) -> .listeners*"])


def test_fingerprints_are_stable_across_runs(pytester, run_memleak):
    source, _ = _module(*CASES["python_object"])
    pytester.makepyfile(test_fp=source)
    first = run_memleak("--memleak-iterations=6", "--memleak-warmup=1")
    second = run_memleak("--memleak-iterations=6", "--memleak-warmup=1")
    fp1 = [lk["fingerprint"] for lk in first.test("test_leaking")["leaks"]]
    fp2 = [lk["fingerprint"] for lk in second.test("test_leaking")["leaks"]]
    assert fp1 == fp2
    assert fp1


def test_suppression_by_pattern_passes_and_is_listed(pytester, run_memleak):
    source, line = _module(*CASES["python_object"])
    pytester.makepyfile(test_sup=source)
    pytester.makeini(f"[pytest]\nmemleak_suppress =\n    test_sup.py:{line}\n")
    run = run_memleak("--memleak-iterations=6", "--memleak-warmup=1")
    run.result.assert_outcomes(passed=2)
    leak = run.test("test_leaking")["leaks"][0]
    assert leak["suppressed"] is True
    assert leak["suppressed_by"] == f"test_sup.py:{line}"
    run.result.stdout.fnmatch_lines([f"*python_object at test_sup.py:{line}*suppressed*"])


def test_openssl_cache_is_a_known_cache_that_can_be_switched_off(pytester, run_memleak):
    setup, leaking, clean = CASES["crypto_context"]
    # Retained contexts first: OpenSSL's caches then keep growing for a while on new contexts.
    source, _ = _module(setup, leaking, clean)
    pytester.makepyfile(test_ossl=source)
    run = run_memleak("--memleak-iterations=6", "--memleak-warmup=2", "-k", "clean or leaking")
    entry = run.test("test_clean")
    assert entry["verdict"] == "ok"
    suppressed = [lk for lk in entry["leaks"] if lk["suppressed"]]
    assert suppressed, entry  # the cache grows inside the measured window (OpenSSL 3)
    assert suppressed[0]["suppressed_by"].startswith("known cache openssl-cache")
    off = run_memleak(
        "--memleak-iterations=6", "--memleak-warmup=2", "--memleak-suppress=-openssl-cache"
    )
    assert off.test("test_clean")["verdict"] == "leak"
