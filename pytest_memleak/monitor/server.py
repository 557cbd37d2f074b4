"""The dashboard's HTTP server: the standard library's ThreadingHTTPServer, no dependency.

Routes (JSON unless said otherwise)::

    GET  /                  the dashboard page (HTML, CSP: nothing loads from elsewhere)
    GET  /api/events        Server-Sent Events: "update" every 2 s, "alert" as raised, "end"
    GET  /api/status        current values, verdict, severity, health, patterns, alerts
    GET  /api/snapshots     the samples kept (?since=T: those after T seconds)
    GET  /api/trends        the growth analysis of each metric, the findings
    GET  /api/leaks         the leaks found so far, and the alerts
    GET  /api/export        the JSON report (the same document as --memleak-report)
    POST /api/snapshot      take one sample now (needs the token)

Reading is open to whoever can reach the address: loopback by default; another address only
with ``--allow-remote``. Whatever changes state needs the token printed at start-up, in an
``Authorization: Bearer TOKEN`` (or ``X-Memleak-Token``) header. On a loopback address the
``Host`` header must name the loopback (a page of another site cannot read the API through a
DNS name pointing at 127.0.0.1).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import queue
import secrets
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from ..errors import ConfigError
from ..model import JsonObject, RunReport, TestResult, to_json

#: Seconds between two "update" events of the stream.
PUSH_EVERY_S = 2.0
SERVE_EXPECTED = "HOST:PORT, such as 127.0.0.1:8765 (port 0: any free port)"


class Source(Protocol):
    """What the server shows: a monitored process, or a pytest run."""

    running: bool

    def status(self) -> JsonObject: ...

    def snapshots(self, since: float | None) -> JsonObject: ...

    def trends(self) -> JsonObject: ...

    def leaks(self) -> JsonObject: ...

    def report(self) -> RunReport: ...

    def focus(self) -> TestResult | None: ...

    def take_snapshot(self) -> JsonObject | None: ...

    def subscribe(self) -> queue.Queue[tuple[str, JsonObject]] | None: ...

    def unsubscribe(self, q: queue.Queue[tuple[str, JsonObject]]) -> None: ...


def parse_address(text: str, key: str = "--serve") -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6; ``:PORT`` or ``PORT`` alone: 127.0.0.1)."""
    value = text.strip()
    host, sep, port_text = value.rpartition(":")
    if not sep:
        host, port_text = "", value
    host = host.strip("[]") or "127.0.0.1"
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535 or not host:
        raise ConfigError(key, text, SERVE_EXPECTED)
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(host: str, allow_remote: bool, key: str = "--serve") -> None:
    if not is_loopback(host) and not allow_remote:
        raise ConfigError(
            key,
            host,
            "a loopback address (127.0.0.1, ::1, localhost): the dashboard and its API are "
            "readable by whoever reaches them, so serving another address needs --allow-remote",
        )


def export_bytes(report: RunReport) -> bytes:
    """The report as the JSON file holds it."""
    text = json.dumps(to_json(report), indent=1, ensure_ascii=True, allow_nan=False)
    return text.encode("utf-8")


class DashboardServer(ThreadingHTTPServer):
    daemon_threads = True
    # SO_REUSEADDR: a port left in TIME_WAIT by the last run can be taken again; one another
    # server listens on is still refused. Never SO_REUSEPORT (that would share it).
    allow_reuse_address = True
    allow_reuse_port = False

    def __init__(
        self,
        address: tuple[str, int],
        source: Source,
        page: Any,
        update: Any,
        token: str | None = None,
        push_every: float = PUSH_EVERY_S,
    ) -> None:
        host = address[0]
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        if host == "localhost":
            address = ("127.0.0.1", address[1])
        super().__init__(address, Handler)
        self.source = source
        self.page = page  # () -> str: the dashboard's HTML
        self.update = update  # () -> JsonObject: one "update" event
        self.token = token or secrets.token_urlsafe(18)
        self.push_every = push_every
        self.closing = threading.Event()
        self.loopback = is_loopback(host)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = str(self.server_address[0]), self.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def start(self) -> DashboardServer:
        self._thread = threading.Thread(
            target=self.serve_forever, name="memleak-dashboard", daemon=True
        )
        self._thread.start()
        return self

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A request that failed (a client gone mid-answer...) costs it its answer, never a
        traceback on the monitor's terminal."""

    def stop(self) -> None:
        self.closing.set()
        if self._thread is not None:  # shutdown() waits for serve_forever: only if it runs
            self.shutdown()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    server: DashboardServer
    server_version = "pytest-memleak"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the terminal shows the monitor, not the requests

    # ------------------------------------------------------------------ responses
    def _send(
        self, code: int, body: bytes, ctype: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, code: int, data: object) -> None:
        body = json.dumps(to_json(data), allow_nan=False).encode("utf-8")
        self._send(code, body, "application/json")

    def _error(self, code: int, message: str) -> None:
        self._json(code, {"error": message})

    def _host_ok(self) -> bool:
        """On a loopback address, the Host header names the loopback."""
        if not self.server.loopback:
            return True
        host = (self.headers.get("Host") or "").strip().lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return name.strip("[]") in ("127.0.0.1", "localhost", "::1") or name.startswith("127.")

    def _route(self) -> tuple[str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        return parts.path.rstrip("/") or "/", parse_qs(parts.query)

    # -------------------------------------------------------------------- methods
    def do_GET(self) -> None:  # http.server's naming
        if not self._host_ok():
            self._error(403, "the Host header must name the loopback address served")
            return
        path, query = self._route()
        source = self.server.source
        try:
            if path == "/":
                from .dashboard import CSP

                body = self.server.page().encode("utf-8")
                self._send(
                    200,
                    body,
                    "text/html; charset=utf-8",
                    {"Content-Security-Policy": CSP + "; frame-ancestors 'none'"},
                )
            elif path == "/api/status":
                self._json(200, source.status())
            elif path == "/api/snapshots":
                since = query.get("since", [None])[0]
                try:
                    since_s = float(since) if since is not None else None
                except ValueError:
                    self._error(400, f"since={since!r}: expected seconds, such as since=12.5")
                    return
                self._json(200, source.snapshots(since_s))
            elif path == "/api/trends":
                self._json(200, source.trends())
            elif path == "/api/leaks":
                self._json(200, source.leaks())
            elif path == "/api/export":
                self._send(200, export_bytes(source.report()), "application/json")
            elif path == "/api/events":
                self._events()
            elif path == "/api/snapshot":
                self._error(405, "POST /api/snapshot takes a sample; it needs the token")
            else:
                self._error(404, f"no such page: {path[:100]}")
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_HEAD = do_GET

    def do_POST(self) -> None:
        if not self._host_ok():
            self._error(403, "the Host header must name the loopback address served")
            return
        path = self._route()[0]
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._error(400, "Content-Length is not a number")
            return
        if 0 < length <= 65536:
            self.rfile.read(length)
        if path != "/api/snapshot":
            self._error(404 if not path.startswith("/api/") else 405, f"cannot POST {path[:100]}")
            return
        given = self.headers.get("Authorization", "")
        token = given[7:].strip() if given.lower().startswith("bearer ") else ""
        token = token or self.headers.get("X-Memleak-Token", "").strip()
        if not token:
            self._error(
                401,
                "this request changes state: it needs the token printed at start-up, in a "
                "header 'Authorization: Bearer TOKEN'",
            )
            return
        if not hmac.compare_digest(token.encode(), self.server.token.encode()):
            self._error(403, "wrong token: use the one printed at start-up")
            return
        row = self.server.source.take_snapshot()
        if row is None:
            self._error(409, "no sample taken: the process has ended")
            return
        self._json(201, {"sample": row})

    def _method_not_allowed(self) -> None:
        self._error(405, f"{self.command} is not supported: use GET, or POST /api/snapshot")

    do_PUT = do_DELETE = do_PATCH = _method_not_allowed

    # ----------------------------------------------------------------- the stream
    def _events(self) -> None:
        source = self.server.source
        if self.command == "HEAD":
            self._send(200, b"", "text/event-stream")
            return
        q = source.subscribe()
        if q is None:
            self._error(503, "too many dashboards are open")
            return
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Accel-Buffering", "no")
            self.end_headers()
            self._event("update", self.server.update())
            closing = self.server.closing
            every = self.server.push_every
            due = time.monotonic() + every
            while not closing.is_set():
                try:
                    kind, data = q.get(timeout=max(due - time.monotonic(), 0.0))
                except queue.Empty:
                    self._event("update", self.server.update())
                    due += every
                    continue
                if kind == "end":
                    self._event("update", self.server.update())
                    self._event("end", data)
                    return
                self._event(kind, data)
        except (BrokenPipeError, ConnectionResetError, TimeoutError, OSError):
            pass
        finally:
            source.unsubscribe(q)

    def _event(self, kind: str, data: object) -> None:
        text = json.dumps(to_json(data), allow_nan=False)
        self.wfile.write(f"event: {kind}\ndata: {text}\n\n".encode())
        self.wfile.flush()


def serve(
    address: tuple[str, int], source: Source, page: Any, update: Any, token: str | None = None
) -> DashboardServer:
    """Listen on ``address`` and serve in a daemon thread; OSError when it cannot listen."""
    return DashboardServer(address, source, page, update, token).start()
