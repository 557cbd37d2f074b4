"""A tiny "web app" used by the pytest-memleak examples.

Each module holds one classic leak and its clean counterpart:

* :mod:`myapp.profiles` - an unbounded memo dict keyed by request id vs. ``lru_cache(maxsize=32)``
* :mod:`myapp.events`   - an event bus whose listener list is never pruned vs. unsubscribing
* :mod:`myapp.storage`  - a sqlite3 connection opened per request and never closed vs. ``closing``
"""
