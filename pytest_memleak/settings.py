"""Settings: one table that makes the command-line options, the ini keys and the marker arguments.

Every option is spelled three ways from one name: ``max_rate`` is ``--memleak-max-rate`` on the
command line, ``memleak_max_rate`` in pytest.ini and ``max_rate=`` on the marker. Command-line
options default to ``None`` ("not given") so ini values are reachable. Values are parsed once
into a frozen :class:`Settings`; ``sources`` records where each value came from.

Precedence, highest first: marker, command line, ini, the chosen profile, built-in defaults.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from . import units
from .baseline.rules import Rule, parse_rule
from .errors import ConfigError
from .vocabulary import FAIL_ON_SEVERITIES

#: Raw option values from one source (marker, cli, ini), by option name, for :func:`resolve`.
Layer = dict[str, Any]

#: The values fail_on accepts (re-exported from the vocabulary).
SEVERITY_ORDER = FAIL_ON_SEVERITIES
#: What a test's function-scoped fixtures are across the repeated calls: set up and torn down
#: around every call (as separate runs of the test would see them), or set up once for all.
FIXTURE_MODES = ("per-iteration", "shared")


#: Upper bounds of the counts and durations a setting accepts: far above any useful value, low
#: enough that nothing later overflows or runs out of memory (the loop keeps one row of floats
#: per call; tracemalloc takes at most 65,535 frames; the sampler sleeps for ``interval``).
MAX_ITERATIONS = 100_000
MAX_TRACE_FRAMES = 1_000
MAX_RETENTION = 1_000_000
MAX_DURATION_S = 7 * 24 * 3600.0
MAX_INTERVAL_S = 3600.0


def _trace_frames(v: object, key: str) -> int:
    return units.parse_int(v, key, minimum=1, maximum=MAX_TRACE_FRAMES)


def _iterations(v: object, key: str) -> int:
    return units.parse_int(v, key, minimum=5, maximum=MAX_ITERATIONS)


def _max_iterations(v: object, key: str) -> int:
    return units.parse_int(v, key, minimum=5, maximum=2 * MAX_ITERATIONS)


def _warmup(v: object, key: str) -> int:
    return units.parse_int(v, key, minimum=0, maximum=MAX_ITERATIONS)


def _duration(v: object, key: str) -> float:
    value = units.parse_duration(v, key)
    if value > MAX_DURATION_S:
        raise ConfigError(key, v, "a duration of at most 7 days, such as 30s, 100ms, 2m or 1.5h")
    return value


def _optional(parse: Callable[[object, str], object]) -> Callable[[object, str], object]:
    def inner(v: object, key: str) -> Any:
        if v is None or (isinstance(v, str) and v.strip().lower() in ("none", "off", "")):
            return None
        return parse(v, key)

    return inner


def _ratio(v: object, key: str) -> float:
    return units.parse_float(v, key, minimum=0.0)


def _fail_on(v: object, key: str) -> str:
    return units.parse_choice(v, key, SEVERITY_ORDER)


def _profile(v: object, key: str) -> str:
    return units.parse_choice(v, key, tuple(PROFILES))


def _diagnose(v: object, key: str) -> str:
    return units.parse_choice(v, key, ("auto", "always", "never"))


def _table(v: object, key: str) -> str:
    return units.parse_choice(v, key, ("auto", "wide"))


def _mode(v: object, key: str) -> str:
    return units.parse_choice(v, key, ("repeat", "soak"))


def _fixtures(v: object, key: str) -> str:
    return units.parse_choice(v, key, FIXTURE_MODES)


def _interval(v: object, key: str) -> float:
    value = units.parse_duration(v, key)
    if not 0.001 <= value <= MAX_INTERVAL_S:
        raise ConfigError(key, v, "a duration from 1ms to 1h, such as 100ms or 1s")
    return value


def _retention(v: object, key: str) -> int:
    return units.parse_int(v, key, minimum=10, maximum=MAX_RETENTION)


def _serve(v: object, key: str) -> str | None:
    """HOST:PORT on the loopback (``:PORT`` alone: 127.0.0.1); 'off' for none."""
    import ipaddress

    if v is None or (isinstance(v, str) and v.strip().lower() in ("off", "none", "")):
        return None
    expected = "HOST:PORT on the loopback, such as 127.0.0.1:8765 (port 0: any free port)"
    text = v.strip() if isinstance(v, str) else ""
    m = re.fullmatch(r"\[?([0-9A-Za-z.:]*?)\]?:(\d{1,5})", text)
    if m is None or int(m.group(2)) > 65535:
        raise ConfigError(key, v, expected)
    host = m.group(1) or "127.0.0.1"
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(key, v, expected)
    return f"{host}:{m.group(2)}" if ":" not in host else f"[{host}]:{m.group(2)}"


def _ref(v: object, key: str) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str) or not v.strip():
        raise ConfigError(key, v, "'latest', a saved run's name or prefix, or a report path")
    return v.strip()


def _rule(v: object, key: str) -> Rule | None:
    """The --memleak-compare-fail rule, parsed once here (None: no rule)."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    if not isinstance(v, str):
        raise ConfigError(key, v, "a rule such as 'rate:10%,growth:1MiB,new-leaks'")
    return parse_rule(v, key)


def _path(v: object, key: str) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str):
        raise ConfigError(key, v, "a file path, or 'off' to write no report")
    text = v.strip()
    if text.lower() in ("off", "none", "no", "false", "0", ""):
        return None
    return text


#: An entry's inline comment ("fingerprint:...  # python_object at app.py:26 (test)"): pytest
#: reads the ini file without stripping comments.
_COMMENT = re.compile(r"(?:^|\s)#.*$")
_FINGERPRINT_ENTRY = re.compile(r"fingerprint:\s*[0-9a-f]{16}", re.IGNORECASE)


def _patterns(v: object, key: str) -> tuple[str, ...]:
    if v is None:
        return ()
    if isinstance(v, str):
        lines = [_COMMENT.sub("", line) for line in v.splitlines()]
        items = [p.strip() for line in lines for p in line.split(",")]
    elif isinstance(v, (list, tuple)) and all(isinstance(p, str) for p in v):
        items = [_COMMENT.sub("", p).strip() for p in v]
    else:
        raise ConfigError(key, v, "a list of patterns (fnmatch), one per line or comma-separated")
    for p in items:
        if p[:12].lower() == "fingerprint:" and not _FINGERPRINT_ENTRY.fullmatch(p):
            raise ConfigError(
                key,
                p,
                "fingerprint: and the 16 hex digits a failure message prints, such as "
                "fingerprint:302c04f2e487183e (or an fnmatch pattern)",
            )
    return tuple(p for p in items if p)


@dataclass(frozen=True)
class Option:
    name: str
    parse: Callable[[object, str], object]
    default: Any
    help: str
    metavar: str = "VALUE"
    flag: bool = False  # a command-line switch without a value
    marker: bool = True  # may be given on @pytest.mark.memcheck(...)
    ini_list: bool = False  # the ini key takes one value per line (pytest's "linelist")

    @property
    def ini_key(self) -> str:
        return f"memleak_{self.name}"

    @property
    def cli_flag(self) -> str:
        return "--memleak-" + self.name.replace("_", "-")

    @property
    def dest(self) -> str:
        return f"memleak_{self.name}"


OPTIONS: tuple[Option, ...] = (
    Option(
        "all",
        units.parse_bool,
        False,
        "check every test as if marked @pytest.mark.memcheck",
        flag=True,
        marker=False,
    ),
    Option(
        "disable",
        units.parse_bool,
        False,
        "switch checking off: marked tests run once, as plain tests",
        flag=True,
        marker=False,
    ),
    Option(
        "report",
        _path,
        ".memleak/report.json",
        "JSON report path ('off' for none); written when any test was checked",
        metavar="PATH",
        marker=False,
    ),
    Option(
        "html",
        _path,
        None,
        "also write a self-contained HTML report (charts, leaks, baseline comparison) here",
        metavar="PATH",
        marker=False,
    ),
    Option(
        "serve",
        _serve,
        None,
        "serve a live dashboard of the run on HOST:PORT of the loopback, e.g. 127.0.0.1:0 "
        "(the tests checked so far, the current test's series)",
        metavar="HOST:PORT",
        marker=False,
    ),
    Option(
        "table",
        _table,
        "auto",
        "terminal summary table: auto (the columns a reader needs first, fitted to the terminal "
        "width; all columns with -v) or wide (all columns)",
        metavar="auto|wide",
        marker=False,
    ),
    Option(
        "profile",
        _profile,
        "default",
        "threshold preset: strict, default or lenient",
        metavar="NAME",
    ),
    Option(
        "iterations",
        _iterations,
        10,
        "measured iterations per round (>= 5: fewer cannot show a significant trend)",
        metavar="N",
    ),
    Option("warmup", _warmup, 5, "warm-up iterations before measuring (not judged)", metavar="N"),
    Option(
        "max_iterations",
        _max_iterations,
        30,
        "cap on measured iterations when growth needs confirming rounds",
        metavar="N",
    ),
    Option(
        "thorough",
        units.parse_bool,
        False,
        "no quick verdict: a body that leaves every counter flat over its first calls is "
        "still measured through the full warm-up and rounds",
        flag=True,
    ),
    Option(
        "max_rate",
        _optional(units.parse_rate),
        None,
        "largest sustained growth rate allowed, e.g. '4 KiB/iter' or '100 KB/s' "
        "(default: any confirmed growth fails)",
        metavar="RATE",
    ),
    Option(
        "max_growth",
        _optional(units.parse_size),
        None,
        "largest total growth over the measured iterations allowed, e.g. '1 MiB'",
        metavar="SIZE",
    ),
    Option(
        "max_rss",
        _optional(units.parse_size),
        None,
        "fail when RSS ends above this size, e.g. '2 GiB'",
        metavar="SIZE",
    ),
    Option(
        "max_external",
        _optional(units.parse_size),
        None,
        "largest growth of external memory (RSS - heap) allowed over the measured iterations",
        metavar="SIZE",
    ),
    Option(
        "max_external_ratio",
        _optional(_ratio),
        None,
        "fail when external / heap ends above this ratio (health: < 1.5 healthy, > 2.5 critical)",
        metavar="RATIO",
    ),
    Option(
        "fail_on",
        _fail_on,
        "low",
        "lowest severity that fails a test: low, medium, high or critical",
        metavar="SEVERITY",
    ),
    Option(
        "diagnose",
        _diagnose,
        "auto",
        "diagnosis pass with tracing: auto (leaking tests only), always or never",
        metavar="WHEN",
    ),
    Option(
        "trace_frames", _trace_frames, 10, "frames per traceback in the diagnosis pass", metavar="N"
    ),
    Option(
        "timeout",
        _optional(_duration),
        None,
        "time budget for one test's whole memcheck loop, e.g. '60s'; a test it leaves "
        "undecided is listed as 'not decided', never passed as clean",
        metavar="DURATION",
    ),
    Option(
        "mode",
        _mode,
        "repeat",
        "repeat: run the body in a measured loop; soak: run it once while a background "
        "sampler watches memory (for long-running tests)",
        metavar="MODE",
    ),
    Option(
        "fixtures",
        _fixtures,
        "per-iteration",
        "function-scoped fixtures of a repeated test: per-iteration (set up and torn down "
        "around every call, as separate runs would see them) or shared (set up once for all "
        "calls)",
        metavar="MODE",
    ),
    Option(
        "interval",
        _interval,
        0.1,
        "soak / watch sampling interval, e.g. '100ms'",
        metavar="DURATION",
    ),
    Option(
        "retention",
        _retention,
        1000,
        "soak / watch: samples kept (beyond it, every other sample is dropped)",
        metavar="N",
    ),
    Option(
        "save",
        units.parse_bool,
        False,
        "save this run's report to the history folder (--memleak-storage)",
        flag=True,
        marker=False,
    ),
    Option(
        "window",
        _optional(_duration),
        None,
        "soak / watch: judge only the last DURATION of samples (growth-detection window; "
        "default: the whole run)",
        metavar="DURATION",
    ),
    Option(
        "autosave",
        units.parse_bool,
        False,
        "save every run to the history folder (like --memleak-save on each run)",
        flag=True,
        marker=False,
    ),
    Option(
        "storage",
        _path,
        ".memleak/history",
        "history folder for saved runs (one JSON per run)",
        metavar="DIR",
        marker=False,
    ),
    Option(
        "compare",
        _ref,
        None,
        "compare against a saved run: --memleak-compare=latest, a run name or prefix from "
        "the history folder, or a report path",
        metavar="REF",
        marker=False,
    ),
    Option(
        "compare_fail",
        _rule,
        None,
        "fail a test that regressed against the baseline, e.g. 'rate:10%,growth:1MiB,"
        "new-leaks' (applies even when the absolute thresholds pass)",
        metavar="RULE",
        marker=False,
    ),
    Option(
        "suppress",
        _patterns,
        (),
        "suppress known growth: patterns matched against a leak's fingerprint, source, "
        "type or module",
        metavar="PATTERNS",
        ini_list=True,
    ),
)
BY_NAME = {o.name: o for o in OPTIONS}
MARKER_KEYS = tuple(o.name for o in OPTIONS if o.marker)

#: Presets: bundles of thresholds. An explicitly given key (marker, CLI, ini) beats the preset.
PROFILES: dict[str, dict[str, Any]] = {
    "strict": {
        "iterations": 20,
        "warmup": 5,
        "max_iterations": 60,
        "fail_on": "low",
        "thorough": True,
    },
    "default": {},
    "lenient": {
        "warmup": 10,
        "max_rate": units.Rate(16 * 1024, "iter"),
        "max_growth": 1024 * 1024,
        "fail_on": "low",
    },
}


@dataclass(frozen=True)
class Settings:
    all: bool = False
    disable: bool = False
    report: str | None = ".memleak/report.json"
    html: str | None = None
    serve: str | None = None
    table: str = "auto"
    profile: str = "default"
    iterations: int = 10
    warmup: int = 5
    max_iterations: int = 30
    thorough: bool = False
    max_rate: units.Rate | None = None
    max_growth: int | None = None
    max_rss: int | None = None
    max_external: int | None = None
    max_external_ratio: float | None = None
    fail_on: str = "low"
    diagnose: str = "auto"
    trace_frames: int = 10
    timeout: float | None = None
    mode: str = "repeat"
    fixtures: str = "per-iteration"
    interval: float = 0.1
    retention: int = 1000
    window: float | None = None
    save: bool = False
    autosave: bool = False
    storage: str | None = ".memleak/history"
    compare: str | None = None
    compare_fail: Rule | None = None
    suppress: tuple[str, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Effective settings as JSON-ready values, with where each came from."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "sources":
                continue
            value = getattr(self, f.name)
            if isinstance(value, (units.Rate, Rule)):
                value = str(value)  # the normalised text: "4.0 KiB/iter", "rate:10%,new-leaks"
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        out["sources"] = dict(self.sources)
        return out


def resolve(layers: list[tuple[str, Mapping[str, Any]]]) -> Settings:
    """Build Settings from raw layers, highest precedence first, e.g.
    ``[("marker", {...}), ("cli", {...}), ("ini", {...})]``. Raises ConfigError."""
    parsed: dict[str, tuple[Any, str]] = {}
    for origin, raw in reversed(layers):  # lowest first, so higher layers overwrite
        for name, value in raw.items():
            if value is None:
                continue
            parsed[name] = (BY_NAME[name].parse(value, _key(origin, name)), origin)
    profile = parsed.get("profile", ("default", "default"))[0]
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in OPTIONS:
        if option.name in parsed:
            values[option.name], sources[option.name] = parsed[option.name]
        elif option.name in PROFILES[profile]:
            values[option.name] = PROFILES[profile][option.name]
            sources[option.name] = f"profile:{profile}"
        else:
            values[option.name] = option.default
            sources[option.name] = "default"
    # A leak is confirmed in a second round: the cap must allow two rounds.
    if values["max_iterations"] < 2 * values["iterations"]:
        if sources["max_iterations"] in ("default",) or sources["max_iterations"].startswith(
            "profile:"
        ):
            values["max_iterations"] = 2 * values["iterations"]
            sources["max_iterations"] = "derived: 2 x iterations"
        else:
            raise ConfigError(
                _key(sources["max_iterations"], "max_iterations"),
                values["max_iterations"],
                f"an integer >= 2 x iterations ({2 * values['iterations']}): growth is "
                "confirmed in a second round",
            )
    return Settings(**values, sources=sources)


def _key(origin: str, name: str) -> str:
    option = BY_NAME[name]
    if origin == "ini":
        return option.ini_key
    return option.cli_flag if origin == "cli" else f"memcheck({name}=...)"


def marker_layer(args: tuple[Any, ...], kwargs: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Check a marker's arguments; the returned dict is a layer for :func:`resolve`."""
    if args:
        raise ConfigError(
            f"{where}: @pytest.mark.memcheck",
            args,
            "keyword arguments only, e.g. memcheck(iterations=20, max_rate='1 KiB/iter')",
        )
    unknown = sorted(set(kwargs) - set(MARKER_KEYS))
    if unknown:
        raise ConfigError(
            f"{where}: @pytest.mark.memcheck({unknown[0]}=...)",
            kwargs[unknown[0]],
            "one of the keyword arguments " + ", ".join(MARKER_KEYS),
        )
    return dict(kwargs)


def marker_layers(marks: Iterable[tuple[tuple[Any, ...], Mapping[str, Any]]], where: str) -> Layer:
    """One validated layer from a test's ``memcheck`` markers as pytest lists them (closest
    first): the closest marker's value wins."""
    layer: Layer = {}
    for args, kwargs in reversed(list(marks)):
        layer.update(marker_layer(args, kwargs, where))
    return layer


def command_line_layer(value_of: Callable[[str], object]) -> Layer:
    """The options given on the command line (``value_of`` reads one by its dest)."""
    layer: Layer = {}
    for option in OPTIONS:
        value = value_of(option.dest)
        if value is not None:
            layer[option.name] = value
    return layer


def ini_layer(value_of: Callable[[str], object]) -> Layer:
    """The ini keys that are set (``value_of`` reads one by its key; empty counts as unset)."""
    layer: Layer = {}
    for option in OPTIONS:
        value = value_of(option.ini_key)
        if value not in (None, "", []):
            layer[option.name] = value
    return layer
