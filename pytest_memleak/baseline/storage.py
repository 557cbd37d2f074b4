"""Run history, in the spirit of pytest-benchmark's storage: one JSON report per saved run in a
folder (``.memleak/history`` by default), named ``<YYYYmmdd-HHMMSS>_<short git commit or
"nogit">.json``. A saved run is never overwritten: a taken name gets ``-2``, ``-3``...
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from ..atomic import temp_file
from ..encoding import encode
from ..errors import ReportError
from ..model import RunReport
from .compare import few

__all__ = ["HISTORY_DIR", "Storage"]

HISTORY_DIR = ".memleak/history"

_RUN_NAME = re.compile(r"^(\d{8}-\d{6})_([A-Za-z0-9]+)(?:-(\d+))?\.json$")
_COMMIT = re.compile(r"[0-9a-f]{4,40}")


class Storage:
    """A folder of saved runs: ``<YYYYmmdd-HHMMSS>_<commit>.json``, ``-2``, ``-3``... when a
    name is taken. ``commit`` overrides ``git rev-parse --short HEAD`` (run in ``cwd``)."""

    def __init__(
        self, root: str = HISTORY_DIR, *, commit: str | None = None, cwd: str | None = None
    ) -> None:
        self.root = str(root)
        self.cwd = cwd
        self._commit = commit

    def __repr__(self) -> str:
        return f"Storage({self.root!r})"

    def commit(self) -> str:
        """Short git commit of ``cwd``, or ``"nogit"`` when git is missing, slow or fails."""
        if self._commit is None:
            self._commit = "nogit"
            try:
                out = subprocess.run(
                    ["git", "rev-parse", "--short", "HEAD"],
                    cwd=self.cwd,
                    capture_output=True,
                    text=True,
                    timeout=5,
                    check=False,
                    stdin=subprocess.DEVNULL,
                )
            except (OSError, subprocess.SubprocessError, ValueError):
                return self._commit
            text = out.stdout.strip()
            if out.returncode == 0 and _COMMIT.fullmatch(text):
                self._commit = text
        return self._commit

    def save(
        self,
        report: RunReport,
        *,
        now: float | None = None,
        write: Callable[[BinaryIO], None] | None = None,
    ) -> str:
        """Write ``report`` as a new run and return its path; never overwrites a saved run.
        ``write``: writes the report's JSON text to a file (the session's, test by test)."""
        root = Path(self.root)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
        commit = re.sub(r"[^A-Za-z0-9]", "", self.commit()) or "nogit"
        data: bytes | Callable[[BinaryIO], None] = (
            write if write is not None else encode(report).encode("utf-8")
        )
        try:
            root.mkdir(parents=True, exist_ok=True)
            with temp_file(root, data, prefix=".save.") as tmp:
                for n in itertools.count(1):
                    suffix = "" if n == 1 else f"-{n}"
                    target = root / f"{stamp}_{commit}{suffix}.json"
                    try:
                        os.link(tmp, target)  # atomic, and fails if the name is taken
                    except FileExistsError:
                        continue
                    except OSError:  # no hard links here: check, then rename
                        if target.exists():
                            continue
                        os.replace(tmp, target)
                    return str(target)
        except OSError as exc:
            raise ReportError(self.root, f"cannot save the run: {exc.strerror or exc}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def list(self) -> list[str]:
        """Paths of the saved runs, oldest first (by the time stamp in the name, then counter)."""
        try:
            names = os.listdir(self.root)
        except OSError:
            return []
        runs = []
        for name in names:
            m = _RUN_NAME.match(name)
            if m and os.path.isfile(os.path.join(self.root, name)):
                runs.append(((m.group(1), int(m.group(3) or 1), name), name))
        return [os.path.join(self.root, name) for _, name in sorted(runs)]

    def latest(self) -> str | None:
        """Path of the most recent saved run, or None."""
        runs = self.list()
        return runs[-1] if runs else None

    def resolve(self, ref: str) -> str:
        """Path of ``ref``: ``"latest"``, the exact name (``.json`` optional) or a unique prefix
        of a saved run, or a path to a JSON file. ReportError names ``ref`` and lists the runs."""
        runs = self.list()
        names = [os.path.basename(p) for p in runs]
        if ref == "latest":
            if not runs:
                raise ReportError(ref, f"there are no saved runs in {self.root}")
            return runs[-1]
        if not ref.strip():
            raise ReportError(repr(ref), "empty reference; give a saved run or a report path")
        if os.sep not in ref:
            for candidate in (ref, ref + ".json"):
                if os.path.isfile(os.path.join(self.root, candidate)):
                    return os.path.join(self.root, candidate)
        if os.path.isfile(ref):
            return ref
        matches = [p for p, n in zip(runs, names) if n.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise ReportError(
                ref,
                f"matches {len(matches)} saved runs in {self.root}: "
                f"{few(os.path.basename(p) for p in matches)}; "
                "give more of the name",
            )
        if os.path.isdir(ref):
            raise ReportError(ref, "is a directory; give a report file or a saved run")
        known = (
            f"saved runs: {few(reversed(names), 5)} (newest first)"
            if names
            else "there are no saved runs there"
        )
        raise ReportError(ref, f"no such file, and no saved run in {self.root} matches it; {known}")
