"""Write a file atomically: a temporary file beside it (flushed to disk, with the mode a plain
``open()`` would give), then a rename. A reader sees the old file or the new one, never half of
one. The JSON and HTML reports and the saved runs of the history folder all write through here.

Imports nothing of ours.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import ReportError


@contextlib.contextmanager
def temp_file(
    folder: str | os.PathLike[str], data: bytes | Callable[[BinaryIO], None], *, prefix: str
) -> Iterator[str]:
    """A new temporary file in ``folder`` (which must exist) holding ``data`` (or what the
    function ``data`` writes to it), flushed to disk: yields its path, and removes it on exit
    unless it was renamed away meanwhile."""
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            # mkstemp makes 0600: give the file the mode a plain open() would (0666 less the
            # umask), so CI steps of other users can read it unless the umask says otherwise.
            os.chmod(tmp, 0o666 & ~_umask())
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        yield tmp
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def write_bytes_atomic(
    path: str | os.PathLike[str], data: bytes | Callable[[BinaryIO], None]
) -> None:
    """Write ``data`` (or what the function ``data`` writes) to a temporary file beside
    ``path``, then rename it over ``path``: a reader sees the old file or the new one, never
    half of one."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with temp_file(target.parent, data, prefix=f".{target.name}.") as tmp:
        os.replace(tmp, target)


def _umask() -> int:
    """The process's umask: from /proc (Linux), else by setting it and putting it back."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_writable(path: str) -> None:
    """Fail early, naming the path, when the report could not be written later."""
    target = Path(path)
    if target.is_dir() or path.endswith(("/", os.sep)):
        raise ReportError(path, "is a directory; give a file path such as report.json")
    parent = target.parent if str(target.parent) else Path(".")
    existing = parent
    while not existing.exists():  # the nearest folder that exists must let us create the rest
        existing = existing.parent
    if not existing.is_dir():
        raise ReportError(path, f"cannot create its directory: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ReportError(path, f"directory {existing} is not writable")
    if target.exists() and not os.access(target, os.W_OK):
        raise ReportError(path, "exists and is not writable")
