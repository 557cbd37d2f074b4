"""``python -m pytest_memleak``: the ``pytest-memleak`` command (see :mod:`pytest_memleak.cli`)."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
