"""A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (standard library
only: no websocket). Chromium reads commands on its fd 3 and writes replies and events on fd 4,
each message JSON ended by a NUL byte. Used by the dashboard's browser test and to take the
README's screenshot."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import queue
import shutil
import threading
import time
from pathlib import Path
from typing import Any

#: The headless Chromium flags both browser tests use (no network, no profile state).
HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def find_chromium() -> str | None:
    return (
        shutil.which("chromium")
        or shutil.which("chromium-browser")
        or shutil.which("google-chrome")
    )


def require_chromium(what: str) -> str:
    """Chromium's path; skips the test without it, except under CI, where it fails."""
    import pytest

    path = find_chromium()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(
                "Chromium is not installed; CI must install it "
                f"(apt-get install -y chromium) to test {what} in a browser"
            )
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    return path


class CdpError(RuntimeError):
    pass


class Browser:
    """Headless Chromium driven through the DevTools pipe; ``events`` keeps every event."""

    def __init__(self, chromium: str, profile: Path, width: int = 1280, height: int = 1000) -> None:
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        # Moved above 10, so that placing them at 3 and 4 cannot clobber one another.
        src_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD_CLOEXEC, 10)
        src_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.log = profile.parent / f"{profile.name}-chromium.log"
        argv = [
            chromium,
            *HEADLESS_FLAGS,
            "--hide-scrollbars",
            "--remote-debugging-pipe",
            f"--window-size={width},{height}",
            f"--user-data-dir={profile}",
            "about:blank",
        ]
        self.pid = os.posix_spawn(
            chromium,
            argv,
            dict(os.environ),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, str(self.log), os.O_WRONLY | os.O_CREAT, 0o600),
                (os.POSIX_SPAWN_DUP2, src_r, 3),
                (os.POSIX_SPAWN_DUP2, src_w, 4),
            ],
        )
        os.close(src_r)
        os.close(src_w)
        self._out = os.fdopen(to_chrome_w, "wb", buffering=0)
        self._in = os.fdopen(from_chrome_r, "rb", buffering=0)
        self._replies: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._next = 0
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.session = ""

    def _read(self) -> None:
        buf = b""
        while True:
            chunk = self._in.read(65536)
            if not chunk:
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self._lock:
                        q = self._replies.get(msg["id"])
                    if q is not None:
                        q.put(msg)
                else:
                    self.events.append(msg)

    def send(self, method: str, session: bool = True, timeout: float = 30, **params: Any) -> Any:
        with self._lock:
            self._next += 1
            ident = self._next
            q: queue.Queue[dict[str, Any]] = queue.Queue()
            self._replies[ident] = q
        msg: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if session and self.session:
            msg["sessionId"] = self.session
        self._out.write(json.dumps(msg).encode() + b"\0")
        try:
            reply = q.get(timeout=timeout)
        except queue.Empty:
            raise CdpError(f"{method}: no reply within {timeout} s") from None
        if "error" in reply:
            raise CdpError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def open(self, url: str, timeout: float = 30) -> None:
        """A new page, with the runtime, log, network and page events on, loading ``url``."""
        target = self.send("Target.createTarget", session=False, url="about:blank")
        attached = self.send(
            "Target.attachToTarget", session=False, targetId=target["targetId"], flatten=True
        )
        self.session = attached["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.send(f"{domain}.enable")
        self.send("Page.navigate", url=url)
        self.wait_for(
            lambda: any(e["method"] == "Page.loadEventFired" for e in self.events),
            timeout,
            "the page's load event",
        )

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def wait_for(self, check: Any, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if check():
                return
            time.sleep(0.1)
        raise CdpError(f"timed out after {timeout} s waiting for {what}")

    def screenshot(self, path: Path | None = None) -> bytes:
        data = base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])
        if path is not None:
            path.write_bytes(data)
        return data

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries (CSP refusals among
        them) seen so far."""
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e["method"] == "Runtime.exceptionThrown":
                out.append(json.dumps(p.get("exceptionDetails", {}))[:500])
            elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(json.dumps(p.get("args", []))[:500])
            elif e["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(p["entry"].get("text", "")[:500])
        return out

    def requests(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e["method"] == "Network.requestWillBeSent"
        ]

    def close(self) -> None:
        with contextlib.suppress(CdpError, OSError):
            self.send("Browser.close", session=False, timeout=5)
        for _ in range(50):
            pid, _status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.1)
        else:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        self._out.close()
        self._in.close()
