"""Session cleanup only: no markers, no fixtures, no behaviour change during the tests.

At session end every test module of this folder that defines ``_corpus_cleanup()`` gets it
called (closes retained handles, releases the blocked threads, stops the background thread).
"""
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


def pytest_sessionfinish(session, exitstatus):
    for mod in list(sys.modules.values()):
        path = getattr(mod, "__file__", None) or ""
        if os.path.dirname(os.path.abspath(path)) != _HERE:
            continue
        cleanup = getattr(mod, "_corpus_cleanup", None)
        if callable(cleanup):
            try:
                cleanup()
            except Exception as exc:  # never fail the session from here
                sys.stderr.write("corpus cleanup of %s failed: %r\n" % (mod.__name__, exc))
