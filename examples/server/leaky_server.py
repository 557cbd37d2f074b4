"""A small HTTP server (stdlib only) with a leaking endpoint and a clean one.

    python leaky_server.py PORT

``/leak`` keeps a 64 KiB session blob per request in a module-level dict that is never pruned;
``/ok`` builds the same blob and lets it go. Used by test_server_watch.py.
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SESSIONS: dict[int, bytearray] = {}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        blob = bytearray(64 * 1024)
        blob[::4096] = b"x" * len(blob[::4096])  # touch every page: RSS sees it
        if self.path.startswith("/leak"):
            SESSIONS[len(SESSIONS)] = blob  # never removed: the leak
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(server.server_address[1], flush=True)  # tell the test which port we got
    server.serve_forever()


if __name__ == "__main__":
    main()
