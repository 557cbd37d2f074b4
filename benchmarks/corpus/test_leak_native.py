"""Leaks outside Python's object allocator: libc calloc, numpy buffers pinned by views."""
import ctypes

import numpy as np

_libc = ctypes.CDLL(None)
_libc.calloc.restype = ctypes.c_void_p
_libc.calloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]


def test_ctypes_calloc_never_freed():
    p = _libc.calloc(1, 8192)  # leak-source
    assert p
    del p  # the pointer is forgotten: 8 KiB of C heap per call, invisible to Python


_HEADS = []


def test_numpy_views_pin_their_base():
    frame = np.arange(4096, dtype=np.int64)  # leak-source
    _HEADS.append(frame[:4])  # a 4-element view keeps the 32 KiB base alive
    assert _HEADS[-1][3] == 3
