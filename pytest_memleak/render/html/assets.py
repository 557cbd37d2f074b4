"""The page's stylesheet and scripts, shipped as package data beside this module.

``style.css`` is inlined in ``<style>``; ``errors.js`` runs first, in ``<head>``, and records
script errors on ``<body>``; ``main.js`` runs last (the table filter, opening a test's section
when its anchor is followed, putting a lazy section's ``<template>`` in place when it opens, and
the load markers for automated checks). The scripts read only
the DOM and write only properties and ``dataset``. The Content-Security-Policy allows exactly
these two scripts, by the SHA-256 of the text inlined, computed here when the module loads.
"""

from __future__ import annotations

import base64
import hashlib
from importlib import resources

__all__ = ["CSS", "JS_ERRORS", "JS_MAIN", "SCRIPT_SRC"]

_PACKAGE = __name__.rpartition(".")[0]


def _read(name: str) -> str:
    if hasattr(resources, "files"):
        return (resources.files(_PACKAGE) / name).read_text(encoding="utf-8")
    return resources.read_text(_PACKAGE, name, encoding="utf-8")  # pragma: no cover


def _csp_hash(script: str) -> str:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


CSS = _read("style.css")
#: The scripts as inlined (and hashed): the files without their final newline.
JS_ERRORS = _read("errors.js").rstrip()
JS_MAIN = _read("main.js").rstrip()
#: The CSP ``script-src`` sources: the two scripts' hashes.
SCRIPT_SRC = f"{_csp_hash(JS_ERRORS)} {_csp_hash(JS_MAIN)}"
