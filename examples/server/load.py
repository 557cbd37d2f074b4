"""Bounded load on the example server, on the loopback only: N requests, one at a time.

    python load.py PORT [--path /leak] [--requests 1500] [--pause 0.01]

Used with ``pytest-memleak monitor`` (see the README): the monitor watches leaky_server.py while
this loop drives it, and its dashboard shows the RSS climbing on /leak and flat on /ok.
"""

from __future__ import annotations

import argparse
import time
import urllib.request


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("port", type=int)
    ap.add_argument("--path", default="/leak", help="/leak (keeps 64 KiB a request) or /ok")
    ap.add_argument("--requests", type=int, default=1500)
    ap.add_argument("--pause", type=float, default=0.01, help="seconds between requests")
    a = ap.parse_args()
    url = f"http://127.0.0.1:{a.port}{a.path}"
    for _ in range(a.requests):
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                resp.read()
        except OSError as exc:
            raise SystemExit(f"load.py: {url}: {exc}; is leaky_server.py running?") from None
        time.sleep(a.pause)
    print(f"{a.requests} requests sent to {url}")


if __name__ == "__main__":
    main()
