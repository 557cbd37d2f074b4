"""The monitor's live state: the samples (soak's Sampler, retention and downsampling
included), their analysis through soak's verdict step, the alerts raised, the event log, and
the subscribers (the dashboard's Server-Sent Events) told of each change.

Every reader (the run loop, the terminal view, the HTTP handlers) goes through
:class:`Monitor`, which is thread-safe: the sampler appends under its lock, readers judge a
frozen copy of the samples.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..model import Json, JsonObject, ProcessInfo, RunReport, TestResult, build, to_object
from ..settings import Settings
from ..soak import (
    WATCH_FIELDS,
    Sampler,
    analyse_samples,
    build_result,
    judged_window,
    short_command,
)
from ..units import format_size
from ..vocabulary import severity_rank

#: How long a computed analysis is reused by concurrent readers.
ANALYSIS_TTL_S = 0.5
#: Most subscribers (dashboard tabs) at once; more are refused.
MAX_SUBSCRIBERS = 32


class LiveSampler(Sampler):
    """soak's Sampler, with a lock around taking a sample (the sampler thread and a forced
    ``POST /api/snapshot`` may take one at once), a callback per sample, and frozen copies."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lock = threading.RLock()
        self.on_sample: Callable[[dict[str, float]], None] | None = None

    def _take(self) -> bool:
        with self.lock:
            ok = super()._take()
            row = dict(self.samples[-1]) if ok and self.samples else None
        if row is not None and self.on_sample is not None:
            self.on_sample(row)
        return ok

    def take_now(self) -> dict[str, float] | None:
        """One sample now, outside the schedule (None when the process has ended)."""
        if self.ended is not None:
            return None
        with self.lock:
            ok = self._take()
            return dict(self.samples[-1]) if ok and self.samples else None

    def frozen(self) -> Sampler:
        """A copy whose samples no longer change (what :func:`build_result` judges)."""
        with self.lock:
            view = copy.copy(self)
            view.samples = list(self.samples)
        return view


@dataclass(frozen=True)
class Alert:
    """A threshold crossed or a growth confirmed, once (again only if its severity rises)."""

    t: float  # seconds since sampling started
    time: str  # wall clock, ISO 8601
    kind: str  # "growth" | "threshold"
    metric: str
    severity: str
    message: str

    def line(self) -> str:
        return f"ALERT {self.t:7.1f}s [{self.severity}] {self.message}"


class EventLog:
    """JSON lines, one event per line, appended and flushed as they happen (``--events``).

    The events are the plugin's hooks, by name, with the same payloads (the plain dicts of the
    JSON report): ``growth_detected`` (metric, growth), ``leak_detected`` (leak), and the
    monitor's own ``alert``, ``start`` and ``end``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, event: str, **data: Json) -> None:
        line = json.dumps({"event": event, "time": _now(), **data}, allow_nan=False)
        with self._lock:
            if not self._file.closed:
                self._file.write(line + "\n")
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def health_of(result: TestResult) -> str:
    """The health word of the dashboard: collecting (too few samples to judge), healthy,
    warning (low or medium severity) or critical (high or critical)."""
    if result.verdict == "skipped":
        return "collecting"
    rank = severity_rank(result.severity)
    if result.verdict != "leak" or rank <= 0:
        return "healthy"
    return "warning" if rank <= severity_rank("medium") else "critical"


class Subscribers:
    """The clients of the live stream: one queue each, told of every event published."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._subscribers: list[queue.Queue[tuple[str, JsonObject]]] = []

    def subscribe(self) -> queue.Queue[tuple[str, JsonObject]] | None:
        with self._lock:
            if len(self._subscribers) >= MAX_SUBSCRIBERS:
                return None
            q: queue.Queue[tuple[str, JsonObject]] = queue.Queue(maxsize=100)
            self._subscribers.append(q)
            return q

    def unsubscribe(self, q: queue.Queue[tuple[str, JsonObject]]) -> None:
        with self._lock:
            if q in self._subscribers:
                self._subscribers.remove(q)

    def publish(self, kind: str, data: JsonObject) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for q in subscribers:
            with contextlib.suppress(queue.Full):  # a stalled client misses this one
                q.put_nowait((kind, data))


class Monitor(Subscribers):
    """Samples of one process, judged on demand, with alerts and subscribers."""

    def __init__(
        self,
        process: ProcessInfo,
        sampler: LiveSampler,
        settings: Settings,
        *,
        extra_fields: tuple[str, ...] = (),
        max_rss: int | None = None,
        warmup: float = 0.0,
        events: EventLog | None = None,
        config: JsonObject | None = None,
        notes: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.process = process
        self.sampler = sampler
        self.settings = settings
        self.extra_fields = extra_fields
        self.fields = (*WATCH_FIELDS, *extra_fields)
        self.max_rss = max_rss
        self.warmup = warmup
        self.events = events
        self.config = config or {}
        self.notes = dict(notes or {})
        self.started = _now()
        self.alerts: list[Alert] = []
        self.running = True
        self.nodeid = f"monitor pid {process.pid}"
        self._cache: tuple[float, int, TestResult] | None = None
        self._seen: dict[str, int] = {}  # metric -> severity rank alerted
        self._leaks_seen: set[tuple[str, str]] = set()

    # ----------------------------------------------------------------------- analysis
    def result(self, fresh: bool = False) -> TestResult:
        """The samples so far judged like a ``memcheck.watch`` (cached briefly)."""
        with self._lock:
            view = self.sampler.frozen()
            if self.warmup > 0:  # the start-up of a command is not judged, nor charted
                view.samples = [s for s in view.samples if s["t"] >= self.warmup]
            now = time.monotonic()
            if (
                not fresh
                and self._cache is not None
                and self._cache[1] == len(view.samples)
                and now - self._cache[0] < ANALYSIS_TTL_S
            ):
                return self._cache[2]
            result = build_result(
                self.nodeid,
                short_command(self.process.cmdline),
                "watch",
                view,
                WATCH_FIELDS,
                self.settings,
                self.process,
            )
            extra = {f: tuple(_finite(s.get(f)) for s in view.samples) for f in self.extra_fields}
            extra = {f: v for f, v in extra.items() if any(x is not None for x in v)}
            window = judged_window(view.samples, self.settings)
            # USS and the tree's RSS are bytes (the vocabulary knows only the judged metrics)
            growth = {
                m: dataclasses.replace(g, unit="bytes")
                for m, g in analyse_samples(window, ("t", *extra)).items()
            }
            notes = dict(result.probe_notes)
            notes.update(self.notes)
            if self.alerts:
                notes["alerts"] = "; ".join(a.message for a in self.alerts[-5:])
            result = dataclasses.replace(
                result,
                snapshots={**result.snapshots, **extra},
                growth={**result.growth, **growth},
                probe_notes=notes,
                partial=result.partial or (self.running and bool(view.samples)),
                stop_reason="running" if self.running else result.stop_reason,
                # the sampler's CPU time is known when it stops
                trend=dataclasses.replace(result.trend, sampler_cpu_s=None)
                if self.running
                else result.trend,
            )
            self._cache = (now, len(view.samples), result)
            return result

    def last_result(self) -> TestResult | None:
        """The last judgement made, without judging again (None before the first)."""
        cache = self._cache
        return cache[2] if cache is not None else None

    def report(self) -> RunReport:
        """The JSON report's document: the one monitored process as its one entry."""
        return build((self.result(),), self.config, partial=self.running)

    # ------------------------------------------------------------------------- alerts
    def check(self) -> list[Alert]:
        """Judge the samples now; raise an alert for each growth newly confirmed (or whose
        severity rose) and each threshold newly crossed; log and publish them."""
        result = self.result(fresh=True)
        samples = self.sampler.samples
        t = samples[-1]["t"] if samples else 0.0
        new: list[Alert] = []
        for f in result.findings:
            if not f.failing or self._seen.get(f.metric, -1) >= severity_rank(f.severity):
                continue
            self._seen[f.metric] = severity_rank(f.severity)
            new.append(Alert(t, _now(), "growth", f.metric, f.severity, f.reason))
            if self.events is not None:
                growth = result.growth.get(f.metric)
                self.events.write(
                    "growth_detected",
                    test=self.nodeid,
                    pid=self.process.pid,
                    metric=f.metric,
                    growth={**(to_object(growth) if growth else {}), **to_object(f)},
                )
        for leak in result.leaks:
            key = (leak.type, leak.details.metric or "")
            if key not in self._leaks_seen:
                self._leaks_seen.add(key)
                if self.events is not None:
                    self.events.write(
                        "leak_detected",
                        test=self.nodeid,
                        pid=self.process.pid,
                        leak=to_object(leak),
                    )
        rss = _finite(samples[-1].get("rss")) if samples else None
        crossed = self.max_rss is not None and rss is not None and rss > self.max_rss
        if crossed and rss is not None and self.max_rss is not None and "max_rss" not in self._seen:
            self._seen["max_rss"] = severity_rank("high")
            limit = format_size(self.max_rss)
            message = f"rss {format_size(rss)} is above --max-rss {limit}"
            new.append(Alert(t, _now(), "threshold", "rss", "high", message))
        for alert in new:
            with self._lock:
                self.alerts.append(alert)
                self._cache = None
            if self.events is not None:
                self.events.write(
                    "alert", test=self.nodeid, pid=self.process.pid, **to_object(alert)
                )
            self.publish("alert", to_object(alert))
        return new

    def worst_severity(self) -> str:
        """The worst severity of the verdict and of every alert raised."""
        result = self.result()
        ranks = [severity_rank(result.severity) if result.verdict == "leak" else 0]
        ranks += [severity_rank(a.severity) for a in self.alerts]
        from ..vocabulary import SEVERITIES

        return SEVERITIES[max(ranks)]

    def finish(self, reason: str) -> None:
        """Sampling is over: tell the subscribers, once."""
        with self._lock:
            if not self.running:
                return
            self.running = False
            self._cache = None
        self.publish("end", {"reason": reason})

    # -------------------------------------------------------------- what the API returns
    def latest(self) -> dict[str, float | None]:
        samples = self.sampler.samples
        if not samples:
            return {}
        return {k: _finite(v) for k, v in samples[-1].items()}

    def status(self) -> JsonObject:
        result = self.result()
        latest = self.latest()
        patterns = {m: g.pattern for m, g in result.growth.items()}
        rates = {m: _finite(g.slope_per_s) for m, g in result.growth.items()}
        sampler = self.sampler
        return {
            "target": to_object(self.process),
            "running": self.running,
            "ended": sampler.ended,
            "started": self.started,
            "elapsed_s": latest.get("t") or 0.0,
            "samples": len(sampler.samples),
            "interval_s": sampler.interval * sampler.step,
            "latest": dict(latest.items()),
            "verdict": result.verdict,
            "severity": result.severity,
            "health": health_of(result),
            "undecided": result.trend.undecided,
            "patterns": dict(patterns.items()),
            "rates_per_s": dict(rates.items()),
            "leaks": len(result.active_leaks),
            "alerts": [to_object(a) for a in self.alerts],
        }

    def snapshots(self, since: float | None) -> JsonObject:
        with self.sampler.lock:
            rows = list(self.sampler.samples)
        if since is not None:
            rows = [r for r in rows if r["t"] > since]
        return {
            "fields": list(self.fields),
            "step": self.sampler.step,
            "samples": [{k: _finite(v) for k, v in r.items()} for r in rows],
        }

    def trends(self) -> JsonObject:
        result = self.result()
        return {
            "growth": {m: to_object(g) for m, g in result.growth.items()},
            "findings": [to_object(f) for f in result.findings],
            "verdict": result.verdict,
            "severity": result.severity,
        }

    def leaks(self) -> JsonObject:
        result = self.result()
        return {
            "verdict": result.verdict,
            "severity": result.severity,
            "leaks": [to_object(lk) for lk in result.leaks],
            "alerts": [to_object(a) for a in self.alerts],
        }

    # ----------------------------------------------------------- what the page shows
    def focus(self) -> TestResult:
        return self.result()

    def take_snapshot(self) -> JsonObject | None:
        row = self.sampler.take_now()
        if row is None:
            return None
        self.publish("sample", {k: _finite(v) for k, v in row.items()})
        return {k: _finite(v) for k, v in row.items()}

    def summary(self) -> JsonObject:
        """The dashboard's header: title, cards, banner and alert lines."""
        result = self.result()
        latest = self.latest()
        health = health_of(result)
        growth = result.growth.get("rss")

        def size(key: str) -> str:
            value = latest.get(key)
            return format_size(value) if value is not None else "-"

        def num(key: str) -> str:
            value = latest.get(key)
            return f"{value:.0f}" if value is not None else "-"

        rate = f"{format_size(growth.slope_per_s)}/s" if growth else "-"
        cards: list[Json] = [
            {"key": "state", "label": "state", "value": "running" if self.running else "ended"},
            {"key": "elapsed", "label": "elapsed", "value": f"{latest.get('t') or 0.0:.1f} s"},
            {"key": "samples", "label": "samples", "value": str(len(self.sampler.samples))},
            {"key": "rss", "label": "RSS", "value": size("rss")},
            {"key": "uss", "label": "USS", "value": size("uss")},
            {"key": "rate", "label": "RSS rate", "value": rate},
            {"key": "pattern", "label": "pattern", "value": growth.pattern if growth else "-"},
            {"key": "fds", "label": "fds", "value": num("fds")},
            {"key": "threads", "label": "threads", "value": num("threads")},
            {
                "key": "severity",
                "label": "severity",
                "value": result.severity,
                "hot": result.verdict == "leak",
            },
            {"key": "health", "label": "health", "value": health, "hot": health == "critical"},
            {
                "key": "leaks",
                "label": "leaks",
                "value": str(len(result.active_leaks)),
                "hot": bool(result.active_leaks),
            },
        ]
        if "tree_rss" in self.extra_fields:
            cards.insert(5, {"key": "tree", "label": "tree RSS", "value": size("tree_rss")})
        banner: JsonObject
        if result.verdict == "leak":
            banner = {"cls": "bad", "text": result.message.splitlines()[0][8:]}
        elif result.verdict == "skipped":
            banner = {
                "cls": "none",
                "text": "collecting samples: " + (result.trend.undecided or ""),
            }
        else:
            banner = {"cls": "good", "text": "no growth found so far"}
        return {
            "title": f"pytest-memleak monitor · pid {self.process.pid}",
            "subtitle": f"pid {self.process.pid}: {self.process.cmdline[:300]} · started "
            f"{self.started}",
            "cards": cards,
            "banner": banner,
            "alerts": [{"severity": a.severity, "line": a.line()} for a in self.alerts],
            "samples": len(self.sampler.samples),
            "table": False,
        }
