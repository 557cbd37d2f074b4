#!/usr/bin/env python
"""Real test suites from PyPI, run plainly and under --memleak-all: what the plugin checks, finds and breaks.

    .venv/bin/python benchmarks/bench_real_suites.py [--quick] [--runs N] [--suite NAME ...]

The suites are pinned in ``benchmarks/real_suites.json`` (name, version, pytest arguments, test-only
dependencies, why). Each one's source distribution is fetched with
``pip download --no-binary :all: --no-deps NAME==VERSION`` and unpacked into the work folder
``benchmarks/.real-suites/`` (gitignored; what is there is reused). A virtualenv made there
(``python -m venv``) gets pytest-memleak from this repository (editable), the pinned runner and
the suites' test dependencies, and the projects marked ``install`` (the others run from their
unpacked tree), so the development venv is left alone.

A suite without a pytest configuration file of its own gets an empty ``pytest.ini`` in its
unpacked folder, so that pytest's rootdir stays there instead of walking up to this repository's
configuration. Each suite is run from its unpacked folder, once plainly
(``python -m pytest ARGS -p no:cacheprovider -q --junitxml=plain.xml``) and N times with the plugin
(``... --memleak-all --memleak-report=report.json --junitxml=memleak.xml``), timing the wall
clock of each. Printed: per suite the tests, the tests checked and not checked (by kind), the
leak verdicts, the tests that fail plainly (left out of the comparison), the tests that pass or
skip plainly but fail with the plugin (split into those failed by a leak verdict and the others:
broken by the plugin), the wall times and their ratio, and with --runs > 1 whether the verdicts
were identical across the runs. Then every leak (source, type, the report's origin and a triage:
allocated in the suite's test code, in the project's package, or elsewhere), the tests broken
by the plugin with the first line of their failure, the tests failing plainly and any crash of
a plugin run (exit code >= 2, an INTERNALERROR, no report) with the tail of its output.

--quick: the suites marked quick (two small ones), one plugin run. Standard library only.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
import zipfile
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as c

SUITES_JSON = os.path.join(c.BENCH, "real_suites.json")
WORK = os.path.join(c.BENCH, ".real-suites")
PLAIN_TIMEOUT = 900.0
BAD = ("failed", "error")
RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}


# ------------------------------------------------------------------------------- setup
class SetupError(Exception):
    pass


def sh(cmd: list[str], cwd: str | None = None, timeout: float = 1800) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=c.env(), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise SetupError("%s: exit %d\n%s" % (" ".join(cmd), proc.returncode, c.tail(proc, 3000)))
    return proc


def venv_python(work: str) -> str:
    return os.path.join(work, "venv", "bin", "python")


def load_stamp(path: str) -> dict[str, Any]:
    try:
        return c.load_json(path)
    except (OSError, ValueError):
        return {}


def save_stamp(path: str, doc: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, sort_keys=True)


def ensure_venv(work: str, runner: list[str], deps: list[str]) -> dict[str, Any]:
    """The bench venv with pytest-memleak (editable), the runner pins and ``deps``; returns its stamp."""
    py = venv_python(work)
    stamp_path = os.path.join(work, "venv", "bench-stamp.json")
    if not os.path.exists(py):
        c.log("venv: creating %s" % os.path.dirname(os.path.dirname(py)))
        sh([c.PYTHON, "-m", "venv", os.path.join(work, "venv")])
    stamp = load_stamp(stamp_path)
    have = set(stamp.get("requirements", []))
    want = ["-e " + c.ROOT] + runner + deps
    missing = [r for r in want if r not in have]
    if missing:
        c.log("venv: pip install %s" % " ".join(missing))
        args: list[str] = []
        for r in missing:
            args += r.split(" ", 1) if r.startswith("-e ") else [r]
        sh([py, "-m", "pip", "install", "-q", "--disable-pip-version-check"] + args)
        stamp["requirements"] = sorted(have | set(missing))
        save_stamp(stamp_path, stamp)
    return stamp


def find_sdist(downloads: str, name: str, version: str) -> str | None:
    norm = re.sub(r"[-_.]+", "_", name).lower()
    for fn in sorted(os.listdir(downloads)) if os.path.isdir(downloads) else []:
        base = fn.lower()
        for ext in (".tar.gz", ".zip", ".tar.bz2"):
            if base.endswith(ext):
                stem = base[: -len(ext)]
                n, _, v = stem.rpartition("-")
                if re.sub(r"[-_.]+", "_", n) == norm and v == version.lower():
                    return os.path.join(downloads, fn)
    return None


def download(work: str, suite: dict[str, Any]) -> str:
    downloads = os.path.join(work, "downloads")
    os.makedirs(downloads, exist_ok=True)
    found = find_sdist(downloads, suite["name"], suite["version"])
    if found:
        return found
    spec = "%s==%s" % (suite["name"], suite["version"])
    c.log("download: %s" % spec)
    sh([venv_python(work), "-m", "pip", "download", "--disable-pip-version-check", "--no-binary", ":all:",
        "--no-deps", spec, "-d", downloads])
    found = find_sdist(downloads, suite["name"], suite["version"])
    if not found:
        raise SetupError("pip download %s saved no source distribution in %s" % (spec, downloads))
    return found


def unpack(work: str, archive: str) -> str:
    """The unpacked top folder of ``archive`` under work/src (reused when already complete)."""
    dest = os.path.join(work, "src")
    os.makedirs(dest, exist_ok=True)
    if archive.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            names = z.namelist()
            top = collections.Counter(n.split("/")[0] for n in names).most_common(1)[0][0]
            folder = os.path.join(dest, top)
            if not os.path.exists(os.path.join(folder, ".bench-unpacked")):
                shutil.rmtree(folder, ignore_errors=True)
                z.extractall(dest)
    else:
        with tarfile.open(archive) as t:
            top = collections.Counter(m.name.split("/")[0] for m in t.getmembers()).most_common(1)[0][0]
            folder = os.path.join(dest, top)
            if not os.path.exists(os.path.join(folder, ".bench-unpacked")):
                shutil.rmtree(folder, ignore_errors=True)
                if hasattr(tarfile, "data_filter"):
                    t.extractall(dest, filter="data")
                else:
                    t.extractall(dest)
    open(os.path.join(folder, ".bench-unpacked"), "w").close()
    return folder


def install_project(work: str, suite: dict[str, Any], folder: str) -> None:
    stamp_path = os.path.join(work, "venv", "bench-stamp.json")
    stamp = load_stamp(stamp_path)
    key = "%s==%s" % (suite["name"], suite["version"])
    if key in stamp.get("projects", []):
        return
    c.log("venv: pip install --no-deps %s" % folder)
    sh([venv_python(work), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps", folder])
    stamp = load_stamp(stamp_path)
    stamp["projects"] = sorted(set(stamp.get("projects", [])) | {key})
    save_stamp(stamp_path, stamp)


def setup(work: str, runner: list[str], suites: list[dict[str, Any]]) -> tuple[dict[str, str], dict[str, str]]:
    """Folders of the suites that are ready, and the setup error of the others."""
    os.makedirs(work, exist_ok=True)
    deps = sorted({d for s in suites for d in s.get("deps", [])})
    ensure_venv(work, runner, deps)
    folders: dict[str, str] = {}
    errors: dict[str, str] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        futures = {s["name"]: pool.submit(download, work, s) for s in suites}
    for s in suites:
        try:
            folder = unpack(work, futures[s["name"]].result())
            if s.get("install"):
                install_project(work, s, folder)
            s["config"] = pin_rootdir(folder)
            folders[s["name"]] = folder
        except (SetupError, OSError, tarfile.TarError, zipfile.BadZipFile, subprocess.SubprocessError) as e:
            errors[s["name"]] = str(e)
            c.log("setup of %s FAILED: %s" % (s["name"], str(e)[:2000]))
    return folders, errors


def own_config(folder: str) -> str | None:
    """The pytest configuration file of an unpacked suite, as pytest would find it in its folder."""
    for name in ("pytest.toml", ".pytest.toml", "pytest.ini", ".pytest.ini"):
        if os.path.isfile(os.path.join(folder, name)):
            return name
    for name, pattern in (("pyproject.toml", r"^\[tool\.pytest(\.ini_options)?\]"), ("tox.ini", r"^\[pytest\]"),
                          ("setup.cfg", r"^\[tool:pytest\]")):
        try:
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                if re.search(pattern, f.read(), re.M):
                    return name
        except OSError:
            pass
    return None


def pin_rootdir(folder: str) -> str:
    """Keep pytest's rootdir and configuration inside the suite: without a configuration file of its
    own, pytest would walk up to this repository's pyproject.toml (its addopts and filterwarnings).
    Returns the suite's configuration file, or 'none (empty pytest.ini added)'."""
    added = os.path.join(folder, "pytest.ini")
    found = own_config(folder)
    if found and not (found == "pytest.ini" and os.path.exists(added + ".bench-added")):
        return found
    with open(added, "w", encoding="utf-8") as f:
        f.write("[pytest]\n")
    open(added + ".bench-added", "w").close()
    return "none (empty pytest.ini added)"


def has_randomly(work: str) -> bool:
    proc = subprocess.run([venv_python(work), "-c", "import importlib.util, sys; "
                           "sys.exit(importlib.util.find_spec('pytest_randomly') is None)"],
                          capture_output=True, text=True, env=c.env())
    return proc.returncode == 0


# ------------------------------------------------------------------------------- runs
def pytest_run(work: str, folder: str, args: list[str], extra: list[str], log_path: str,
               timeout: float, extra_env: dict[str, str]) -> tuple[int | None, float, str]:
    """(exit code or None on timeout, wall s, output) of one pytest run; the output goes to log_path too."""
    cmd = [venv_python(work), "-m", "pytest"] + args + extra
    t0 = time.perf_counter()
    try:
        proc, wall, _ = c.run(cmd, cwd=folder, extra_env=extra_env, timeout=timeout)
        rc: int | None = proc.returncode
        out = (proc.stdout or "") + (proc.stderr or "")
    except subprocess.TimeoutExpired as e:
        wall = time.perf_counter() - t0
        rc = None
        out = _text(e.stdout) + _text(e.stderr) + "\n[timed out after %.0f s]\n" % timeout
    with open(log_path, "w", encoding="utf-8") as f:
        f.write("$ (cd %s && %s)\n%s" % (folder, " ".join(cmd), out))
    return rc, wall, out


def _text(b: Any) -> str:
    if b is None:
        return ""
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b)


def junit_key(nodeid: str) -> tuple[str, str]:
    """(classname, name) of a node id as pytest's junitxml writes them (mangle_test_address)."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


def read_junit(path: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(classname, name) -> (worst outcome, first line of its message) over the testcases of a file."""
    out: dict[tuple[str, str], tuple[str, str]] = {}
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return out
    for tc in root.iter("testcase"):
        key = (tc.get("classname") or "", tc.get("name") or "")
        outcome, msg = "passed", ""
        for tag, name in (("error", "error"), ("failure", "failed"), ("skipped", "skipped")):
            el = tc.find(tag)
            if el is not None:
                outcome = name
                msg = first_line(el.get("message") or el.text or "")
                break
        old = out.get(key)
        if old is None or RANK[outcome] > RANK[old[0]]:
            out[key] = (outcome, msg)
    return out


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


def read_report(path: str) -> dict[str, Any] | None:
    try:
        return c.load_json(path)
    except (OSError, ValueError):
        return None


def crash_of(rc: int | None, out: str, doc: dict[str, Any] | None) -> str:
    """Why a plugin run counts as a crash ('' when it does not)."""
    why = []
    if rc is None:
        why.append("timed out")
    elif rc not in (0, 1):
        why.append("exit code %d" % rc)
    if "INTERNALERROR" in out:
        why.append("INTERNALERROR")
    if doc is None:
        why.append("no report")
    elif doc.get("partial"):
        why.append("partial report")
    return ", ".join(why)


def verdicts(doc: dict[str, Any] | None) -> dict[str, str]:
    """nodeid (+ ' [label]') -> verdict."""
    out: dict[str, str] = {}
    for t in (doc or {}).get("tests", []):
        key = t.get("nodeid", "?") + (" [%s]" % t["label"] if t.get("label") else "")
        out[key] = t.get("verdict", "?")
    return out


def triage(source: str | None, suite: dict[str, Any], folder: str) -> str:
    """Where the leak is allocated: the suite's test code, the project's package, or elsewhere."""
    if not source or source == "unknown":
        return "unknown (check)"
    path = re.sub(r":\d+$", "", source)
    if path.startswith("<doctest"):
        return "test code leaks"
    rel = path
    if os.path.isabs(path):
        real, base = os.path.realpath(path), os.path.realpath(folder)
        if real == base or real.startswith(base + os.sep):
            rel = os.path.relpath(real, base)
    rel = rel.replace(os.sep, "/")
    name = rel.rsplit("/", 1)[-1]
    if (name == "conftest.py" or re.match(r"test_.*\.py$|.*_test\.py$", name)
            or any(rel == t or rel.startswith(t.rstrip("/") + "/") for t in suite.get("test_paths", []))):
        return "test code leaks"
    for pkg in suite.get("packages", []):
        if (rel.startswith(pkg + "/") or rel.startswith("src/" + pkg + "/") or rel == pkg + ".py"
                or "/site-packages/%s/" % pkg in rel):
            return "library leaks (check)"
    return "unknown (check)"


def fmt_rate(lk: dict[str, Any]) -> str:
    rate, unit = lk.get("growth_rate"), lk.get("unit") or "bytes"
    if rate is None:
        return "-"
    if unit == "bytes":
        return c.fmt_bytes(rate)
    return "%.3g %s" % (rate, unit)


def run_suite(work: str, suite: dict[str, Any], folder: str, runs: int, timeout: float,
              randomly: bool) -> dict[str, Any]:
    out_dir = os.path.join(work, "runs", suite["name"])
    os.makedirs(out_dir, exist_ok=True)
    base = ["-p", "no:cacheprovider", "-q"] + (["-p", "no:randomly"] if randomly else [])
    if not any(d.split("=")[0].strip().lower() == "hypothesis" for d in suite.get("deps", [])):
        # Hypothesis is in the bench venv for the suites that need it; its plugin's import
        # (~0.65 s) would otherwise be in every other suite's runs, plain and with the plugin.
        base += ["-p", "no:hypothesispytest"]
    env = dict(suite.get("env", {}))
    plain_xml = os.path.join(out_dir, "plain.xml")
    c.log("[%s] plain: pytest %s" % (suite["name"], " ".join(suite["args"])))
    prc, pwall, pout = pytest_run(work, folder, suite["args"], base + ["--junitxml=" + plain_xml],
                                  os.path.join(out_dir, "plain.log"), PLAIN_TIMEOUT, env)
    res: dict[str, Any] = {"suite": suite, "folder": folder, "plain_rc": prc, "plain_wall": pwall,
                           "plain_tail": pout[-3000:], "plain": read_junit(plain_xml), "runs": []}
    c.log("[%s] plain: exit %s in %.1f s, %d tests" % (suite["name"], prc, pwall, len(res["plain"])))
    for k in range(1, runs + 1):
        xml = os.path.join(out_dir, "memleak-%d.xml" % k)
        report = os.path.join(out_dir, "report-%d.json" % k)
        for p in (xml, report):
            if os.path.exists(p):
                os.unlink(p)
        c.log("[%s] plugin run %d/%d" % (suite["name"], k, runs))
        rc, wall, out = pytest_run(
            work, folder, suite["args"],
            base + ["--memleak-all", "--memleak-report=" + report, "--junitxml=" + xml],
            os.path.join(out_dir, "memleak-%d.log" % k), timeout, env)
        doc = read_report(report)
        res["runs"].append({"rc": rc, "wall": wall, "tail": out[-4000:], "junit": read_junit(xml), "doc": doc,
                            "crash": crash_of(rc, out, doc),
                            "internal": _internal_error(out)})
        c.log("[%s] plugin run %d: exit %s in %.1f s (%.1fx)%s" % (
            suite["name"], k, rc, wall, wall / pwall if pwall else float("nan"),
            ("; CRASH: " + res["runs"][-1]["crash"]) if res["runs"][-1]["crash"] else ""))
    return res


def _internal_error(out: str) -> str:
    lines = [ln for ln in out.splitlines() if ln.startswith("INTERNALERROR")]
    return "\n".join(lines[-60:])


# ------------------------------------------------------------------------------- analysis
def analyse(res: dict[str, Any]) -> dict[str, Any]:
    suite, folder = res["suite"], res["folder"]
    first = res["runs"][0]
    doc = first["doc"] or {}
    entries = doc.get("tests", [])
    checked = {t.get("nodeid") for t in entries}
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = collections.defaultdict(list)
    for t in entries:
        by_key[junit_key(t.get("nodeid", ""))].append(t)
    not_checked = doc.get("not_checked") or []
    nc_key = {junit_key(n.get("nodeid", "")): n for n in not_checked}
    nc_kinds = collections.Counter(n.get("kind") or (n.get("reason") or "?").split(":")[0] for n in not_checked)
    leak_ids = sorted({t.get("nodeid") for t in entries if t.get("verdict") == "leak"})

    # One row per triage group: the tests a hand-written rule of real_suites.json ("triage")
    # matches, or per automatic triage of the first leak's source when no rule matches.
    groups: dict[tuple[int, str], dict[str, Any]] = {}
    rules = suite.get("triage", [])
    for t in entries:
        if t.get("verdict") != "leak":
            continue
        nodeid = t.get("nodeid", "?")
        shown = [lk for lk in t.get("leaks") or [] if not lk.get("suppressed")]
        seen = " ".join(" ".join([lk.get("source") or "", lk.get("retainer_path") or "",
                                  *(lk.get("stack_trace") or [])]) for lk in shown)
        rule = next((i for i, r in enumerate(rules) if fnmatch.fnmatchcase(nodeid, r["tests"])
                     and all(m in seen for m in r.get("match", []))), None)
        if rule is not None:
            key = (rule, rules[rule]["verdict"])
            label, why = rules[rule]["verdict"], rules[rule]["why"]
        else:
            auto = triage(shown[0].get("source") if shown else None, suite, folder)
            key = (-1, auto)
            label, why = "untriaged", "automatic, by the first leak's source: " + auto
        g = groups.setdefault(key, {"tests": [], "types": collections.Counter(), "sources": collections.Counter(),
                                    "origins": collections.Counter(), "rates": [], "label": label, "why": why})
        g["tests"].append(nodeid)
        for lk in shown[:1]:
            g["types"][lk.get("type", "?")] += 1
            g["sources"][re.sub(r":\d+$", "", lk.get("source") or "-")] += 1
            g["origins"][lk.get("origin") or "-"] += 1
            if lk.get("growth_rate") is not None and (lk.get("unit") or "bytes") == "bytes":
                g["rates"].append(lk["growth_rate"])
    leaks = []
    for g in groups.values():
        rate = "%s-%s" % (c.fmt_bytes(min(g["rates"])), c.fmt_bytes(max(g["rates"]))) if g["rates"] else "-"
        example = g["tests"][0] + (" (+%d more)" % (len(g["tests"]) - 1) if len(g["tests"]) > 1 else "")
        leaks.append([suite["name"], len(g["tests"]), example, _counts(g["types"]), _counts(g["sources"]), rate,
                      _counts(g["origins"]), g["label"], g["why"]])

    plain, plug = res["plain"], first["junit"]
    fail_plain = sorted(k for k, v in plain.items() if v[0] in BAD)
    by_leak, broken, missing = [], [], []
    for key, (outcome, _) in sorted(plain.items()):
        if outcome in BAD:
            continue
        if key not in plug:
            missing.append(key)
            continue
        p_outcome, p_msg = plug[key]
        if p_outcome not in BAD:
            continue
        ents = by_key.get(key, [])
        if any(t.get("verdict") == "leak" for t in ents):
            by_leak.append(key)
        else:
            where = ",".join(sorted({t.get("verdict", "?") for t in ents})) if ents else (
                "not checked: %s" % (nc_key[key].get("kind") or "?") if key in nc_key else "not in report")
            broken.append([suite["name"], _show(key), outcome, p_outcome, where, p_msg])

    stable = None
    differ: list[list[Any]] = []
    if len(res["runs"]) > 1:
        maps = [verdicts(r["doc"]) for r in res["runs"]]
        keys = sorted(set().union(*maps))
        for k in keys:
            vs = [m.get(k, "-") for m in maps]
            if len(set(vs)) > 1:
                differ.append([suite["name"], k, " / ".join(vs)])
        stable = not differ
    walls = [r["wall"] for r in res["runs"]]
    return {
        "tests": len(plain), "checked": len(checked), "not_checked": nc_kinds, "n_not_checked": len(not_checked),
        "leak_tests": leak_ids, "leaks": leaks, "fail_plain": fail_plain, "by_leak": by_leak, "broken": broken,
        "missing": missing, "stable": stable, "differ": differ, "wall_plugin": c.median(walls),
        "crashes": [(k + 1, r) for k, r in enumerate(res["runs"]) if r["crash"]],
    }


def _counts(counter: collections.Counter) -> str:
    return ", ".join("%s (%d)" % (k, n) if len(counter) > 1 else str(k) for k, n in counter.most_common(3))


def _show(key: tuple[str, str]) -> str:
    cls, name = key
    return "%s::%s" % (cls, name) if cls else name


def fmt_kinds(kinds: collections.Counter) -> str:
    if not kinds:
        return "0"
    return "%d (%s)" % (sum(kinds.values()), ", ".join("%s %d" % (k, n) for k, n in kinds.most_common()))


# ------------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1, help="plugin runs per suite (default 1); > 1 compares the verdicts")
    ap.add_argument("--suite", action="append", default=[], metavar="NAME", help="run only this suite (repeatable)")
    ap.add_argument("--quick", action="store_true", help="only the suites marked quick (two small ones)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per plugin run (default 1800)")
    ap.add_argument("--work", default=WORK, help="work folder (default benchmarks/.real-suites)")
    a = ap.parse_args()
    t_start = time.perf_counter()
    spec = c.load_json(SUITES_JSON)
    suites = spec["suites"]
    if a.suite:
        wanted = {s.lower() for s in a.suite}
        unknown = wanted - {s["name"].lower() for s in suites}
        if unknown:
            ap.error("unknown suite(s) %s; known: %s" % (", ".join(sorted(unknown)),
                                                         ", ".join(s["name"] for s in suites)))
        suites = [s for s in suites if s["name"].lower() in wanted]
    elif a.quick:
        suites = [s for s in suites if s.get("quick")]
    runs = max(1, a.runs)
    work = os.path.abspath(a.work)

    try:
        folders, setup_errors = setup(work, spec.get("runner", []), suites)
    except (SetupError, OSError, subprocess.SubprocessError) as e:
        c.log("setup FAILED: %s" % e)
        c.header("bench_real_suites.py", a.quick, "setup failed")
        c.summary("setup failed: %s" % first_line(str(e)))
        return 1
    setup_s = time.perf_counter() - t_start
    c.log("setup: %.0f s" % setup_s)
    randomly = has_randomly(work)

    results = []
    t_runs = time.perf_counter()
    for s in suites:
        if s["name"] in folders:
            res = run_suite(work, s, folders[s["name"]], runs, a.timeout, randomly)
            results.append((res, analyse(res)))
    runs_s = time.perf_counter() - t_runs
    total_s = time.perf_counter() - t_start

    c.header("bench_real_suites.py", a.quick, "%d suites, %d plugin run%s each; setup %.0f s, runs %.0f s, total %.0f s"
             % (len(results), runs, "" if runs == 1 else "s", setup_s, runs_s, total_s))

    c.table(["suite", "version", "style", "pytest args", "pytest config", "extra deps", "why"],
            [[s["name"], s["version"], s.get("style", ""), " ".join(s["args"]) + ("" if s.get("install") else
             " (from the tree)"), s.get("config", "?"), " ".join(s.get("deps", [])) or "none", s.get("why", "")]
             for s in suites],
            title="Suites (pinned in benchmarks/real_suites.json; run from the unpacked sdist; "
                  "every run adds `-p no:cacheprovider -q`%s, and `-p no:hypothesispytest` unless the "
                  "suite's deps have Hypothesis):" % (" `-p no:randomly`" if randomly else ""))

    rows = []
    for res, an in results:
        ratio = an["wall_plugin"] / res["plain_wall"] if res["plain_wall"] else None
        row = [res["suite"]["name"], an["tests"], an["checked"], fmt_kinds(an["not_checked"]), len(an["leak_tests"]),
               len(an["fail_plain"]), len(an["by_leak"]), len(an["broken"]), len(an["missing"]),
               c.fmt_s(res["plain_wall"]), c.fmt_s(an["wall_plugin"]), "%.1fx" % ratio if ratio else "-"]
        if runs > 1:
            row.append("yes" if an["stable"] else "NO (%d differ)" % len(an["differ"]))
        row.append(", ".join(("%s" % r["rc"]) for r in res["runs"]) if res["runs"] else "-")
        rows.append(row)
    headers = ["suite", "tests", "checked", "not checked (by kind)", "leak verdicts", "fail plainly",
               "plain ok, plugin fail: leak", "broken by plugin", "missing with plugin", "wall plain s",
               "wall plugin s", "ratio"]
    if runs > 1:
        headers.append("verdicts identical over %d runs" % runs)
    headers.append("plugin exit")
    c.table(headers, rows, title="Per suite (tests: test cases in the plain JUnit file; checked: distinct node ids "
            "in the report's tests; 'plain ok, plugin fail': passed or skipped plainly, failed or errored "
            "with the plugin, split into failed by a leak verdict and broken; wall plugin: median of the runs):")

    leaks = [row for _, an in results for row in an["leaks"]]
    if leaks:
        c.table(["suite", "tests", "example", "leak type", "source file (first leak)", "rate/call",
                 "origin (report)", "triage", "why"], leaks,
                title="Leak verdicts of run 1, grouped by triage (the hand-written rules in "
                      "benchmarks/real_suites.json, checked by reading the test and the code it calls; "
                      "'untriaged' when no rule matches):")
    else:
        print("Leaks: none.\n")

    broken = [row for _, an in results for row in an["broken"]]
    if broken:
        c.table(["suite", "test (JUnit classname::name)", "plain", "plugin", "report verdict",
                 "first line of the failure"], broken,
                title="Tests broken by the plugin (passed or skipped plainly, failed or errored with the "
                      "plugin, without a leak verdict):")
    else:
        print("Tests broken by the plugin: none.\n")

    missing = [[res["suite"]["name"], _show(k)] for res, an in results for k in an["missing"]]
    if missing:
        c.table(["suite", "test in the plain run, absent with the plugin"], missing,
                title="Tests missing from the plugin's JUnit file:")

    fails = [[res["suite"]["name"], _show(k), res["plain"][k][0], res["plain"][k][1]]
             for res, an in results for k in an["fail_plain"]]
    if fails:
        c.table(["suite", "test", "plain outcome", "first line"], fails,
                title="Tests failing plainly (left out of the comparison):")
    else:
        print("Tests failing plainly: none.\n")

    differ = [row for _, an in results for row in an["differ"]]
    if differ:
        c.table(["suite", "test", "verdicts per run"], differ, title="Verdicts that differed between the runs:")

    n_crash = 0
    for res, an in results:
        for k, r in an["crashes"]:
            n_crash += 1
            print("Crash of the plugin run %d of %s (%s; log in %s):\n" % (
                k, res["suite"]["name"], r["crash"], os.path.relpath(os.path.join(work, "runs", res["suite"]["name"],
                                                                     "memleak-%d.log" % k), c.ROOT)))
            print("```\n%s\n```\n" % (r["internal"] or r["tail"][-2500:]))
    for name, err in setup_errors.items():
        print("Setup of %s failed:\n\n```\n%s\n```\n" % (name, err[-2500:]))

    n_tests = sum(an["tests"] for _, an in results)
    n_checked = sum(an["checked"] for _, an in results)
    n_leak = sum(len(an["leak_tests"]) for _, an in results)
    tri: collections.Counter = collections.Counter()
    for row in leaks:
        tri[row[7].split(" ")[0]] += row[1]
    n_broken = len(broken)
    n_plain = len(fails)
    ratios = [an["wall_plugin"] / res["plain_wall"] for res, an in results if res["plain_wall"]]
    stable_txt = ""
    if runs > 1:
        n_diff = len(differ)
        stable_txt = "; verdicts %s across %d runs" % ("identical" if not n_diff else "DIFFER for %d tests" % n_diff,
                                                         runs)
    c.summary("%d suites, %d tests: %d checked, %d leak verdicts (triaged: %d library leaks, %d test code leaks, "
              "%d false alarms, %d untriaged), "
              "%d tests broken by the plugin, %d failed by a leak verdict, %d fail plainly, %d plugin crashes%s; "
              "wall ratio median %.1fx (%.1f-%.1fx); total %.0f s"
              % (len(results), n_tests, n_checked, n_leak, tri.get("library", 0), tri.get("test", 0),
                 tri.get("false", 0), tri.get("untriaged", 0), n_broken,
                 sum(len(an["by_leak"]) for _, an in results), n_plain, n_crash,
                 stable_txt, c.median(ratios) if ratios else float("nan"), min(ratios, default=float("nan")),
                 max(ratios, default=float("nan")), total_s))
    return 1 if (n_crash or setup_errors) else 0


if __name__ == "__main__":
    sys.exit(main())
