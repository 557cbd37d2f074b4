"""Resource inventory: which file descriptors, threads and child processes are new.

Only the diagnosis pass uses this (the cheap probes count; this names them).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ..probes import fd_table as _fd_table


@dataclass
class Inventory:
    fds: dict[int, str] = field(default_factory=dict)  # fd -> what it points to
    threads: dict[int, str] = field(default_factory=dict)  # ident -> "name (target)"
    children: dict[int, str] = field(default_factory=dict)  # pid -> command line


def _describe_thread(t: threading.Thread) -> str:
    target = getattr(t, "_target", None)
    where = ""
    if target is not None:
        name = getattr(target, "__qualname__", None) or repr(target)
        mod = getattr(target, "__module__", None)
        where = f" target={mod + '.' if mod else ''}{name}"
    return f"{t.name}{' daemon' if t.daemon else ''}{where}"


def _children() -> dict[int, str]:
    try:
        import psutil

        out = {}
        for child in psutil.Process().children():
            try:
                out[child.pid] = " ".join(child.cmdline()) or child.name()
            except Exception:
                out[child.pid] = "?"
        return out
    except Exception:
        return {}


def capture(want_children: bool = True) -> Inventory:
    threads = {t.ident or 0: _describe_thread(t) for t in threading.enumerate()}
    return Inventory(
        fds=_fd_table(), threads=threads, children=_children() if want_children else {}
    )


def socket_endpoints() -> dict[int, str]:
    """fd -> "laddr -> raddr (status)" for this process's sockets (psutil; may be empty)."""
    try:
        import psutil

        out = {}
        for c in psutil.Process().net_connections(kind="all"):
            if c.fd == -1:
                continue
            laddr = ":".join(map(str, c.laddr)) if c.laddr else "-"
            raddr = ":".join(map(str, c.raddr)) if c.raddr else "-"
            out[c.fd] = f"{laddr} -> {raddr} ({c.status})"
        return out
    except Exception:
        return {}


def diff(before: Inventory, after: Inventory) -> dict[str, int | list[str]]:
    """New resources, grouped: sockets and files by target, threads by name, children by cmd."""
    new_fds = {fd: target for fd, target in after.fds.items() if before.fds.get(fd) != target}
    sockets = {fd: t for fd, t in new_fds.items() if t.startswith("socket:")}
    files = {fd: t for fd, t in new_fds.items() if fd not in sockets}
    if sockets:
        endpoints = socket_endpoints()
        sockets = {fd: endpoints.get(fd, t) for fd, t in sockets.items()}
    threads = {i: d for i, d in after.threads.items() if i not in before.threads}
    children = {p: c for p, c in after.children.items() if p not in before.children}
    return {
        "files": sorted(set(files.values())),
        "file_count": len(files),
        "sockets": sorted(set(sockets.values())),
        "socket_count": len(sockets),
        "threads": sorted(set(threads.values())),
        "thread_count": len(threads),
        "children": sorted(set(children.values())),
        "child_count": len(children),
    }
