"""A self-contained HTML report: one file, inline CSS, charts as inline SVG drawn here.

``render(report)`` turns a :class:`~pytest_memleak.model.RunReport` (with its baseline
comparison, when it has one) into a page that needs no network and no JavaScript to be read:
the charts are SVG generated in Python. A little inline JavaScript adds a table filter, puts a
lazy section (a test that neither leaks nor errs) in place when it is opened, and records, on
``<body>``, that the page loaded (``data-status``), how many charts are drawn (``data-charts``)
and how many sections wait to be opened (``data-lazy``), by how many pixels the page is wider
than the window (``data-overflow``, 0 when nothing overflows) and any script error
(``data-errors``), for automated checks. Without JavaScript the page shows everything but the
bodies of the lazy sections (the tests table has every test's figures). A
Content-Security-Policy allows only those scripts (by hash) and forbids every network load.

Every string taken from the report is passed through :func:`esc`; the script reads nothing from
the report but the test names it filters on, and never uses ``innerHTML`` (a lazy section is a
``<template>`` the browser parsed; the script moves its content into the page).

Modules, one job each:

- :mod:`.text`: escaping, names, badges, and the number formats (sizes, counts, rates);
- :mod:`.charts`: the SVG chart engine, pure functions from numbers to SVG;
- :mod:`.sections`: the tests table and each test's section, from :class:`TestResult`;
- :mod:`.leaks`: what the diagnosis located (leaks, buffers, native memory, open resources)
  and the run's leak groups;
- :mod:`.comparison`: the baseline comparison section, from :class:`Comparison`;
- :mod:`.assets`: the stylesheet and scripts (package data) and their CSP hashes;
- :mod:`.page`: the header, the assembly of the page, and writing it.
"""

from __future__ import annotations

from .page import render, write
from .text import esc

__all__ = ["esc", "render", "write"]
