"""The ``pytest-memleak`` command (``python -m pytest_memleak``) on real reports.

Two reports are produced once per module by running pytest in subprocesses on the same test
file: ``old.json`` leaks 1 KiB per call, ``new.json`` 16 KiB per call.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_memleak.baseline import Storage
from pytest_memleak.cli import main
from pytest_memleak.render.json_report import read_report

APP = """
import os

import pytest

SINK = []
SIZE = int(os.environ["LEAK_SIZE"])


@pytest.mark.memcheck
def test_leak():
    SINK.append(bytes(SIZE))


@pytest.mark.memcheck
def test_clean():
    x = [1, 2, 3]
"""

HTML_READY = importlib.util.find_spec("pytest_memleak.render.html") is not None
SCHEMA_READY = (
    Path(__file__).resolve().parent.parent / "pytest_memleak" / "schema.json"
).is_file() and importlib.util.find_spec("jsonschema") is not None
NOW = 1_795_000_000.0


@dataclass
class Reports:
    dir: Path
    old: Path  # test_leak leaks 1 KiB/call
    new: Path  # test_leak leaks 16 KiB/call
    history: Path  # a storage folder holding old (earlier) then new (latest)
    old_run: str  # file names in history
    new_run: str


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Reports:
    work = tmp_path_factory.mktemp("cli")
    (work / "test_app.py").write_text(APP, encoding="utf-8")
    procs = {}
    for name, size in (("old", 1024), ("new", 16384)):
        argv = [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            f"--memleak-report={name}.json",
            "--memleak-iterations=6",
            "--memleak-warmup=1",
            "test_app.py",
        ]
        env = {**os.environ, "LEAK_SIZE": str(size)}
        procs[name] = subprocess.Popen(
            argv, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=300)
        assert (work / f"{name}.json").is_file(), f"no {name}.json written:\n{out}"
    store = Storage(str(work / "history"), commit="abc1234")
    old_run = store.save(read_report(str(work / "old.json")), now=NOW)
    new_run = store.save(read_report(str(work / "new.json")), now=NOW + 60)
    return Reports(
        work,
        work / "old.json",
        work / "new.json",
        work / "history",
        os.path.basename(old_run),
        os.path.basename(new_run),
    )


def cli(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_memleak", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


# ------------------------------------------------------------------------------------------
# show


def test_show_prints_summary_table(reports: Reports) -> None:
    proc = cli("show", "old.json", cwd=reports.dir)
    assert proc.returncode == 0, proc.stderr  # show exits 0 even though a test leaked
    out = proc.stdout
    assert out.startswith("report: old.json (created ")
    assert "memleak summary" in out
    header = next(line for line in out.splitlines() if line.startswith("verdict "))
    assert "rate" in header
    assert "test" in header
    assert "LEAK test_app.py::test_leak: " in out  # show prints each leak's detail
    assert "test_app.py::test_leak" in out
    assert "test_app.py::test_clean" in out
    assert "memleak: 2 checked:" in out
    assert proc.stderr == ""


def test_show_saved_run(reports: Reports) -> None:
    proc = cli("show", "latest", "--storage", "history", cwd=reports.dir)
    assert proc.returncode == 0, proc.stderr
    assert f"report: {os.path.join('history', reports.new_run)}" in proc.stdout


# ------------------------------------------------------------------------------------------
# compare


def test_compare_same_run_passes(reports: Reports) -> None:
    proc = cli("compare", "old.json", "old.json", "--fail", "rate:10%,new-leaks", cwd=reports.dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    header = next(line for line in lines if line.startswith("test "))
    for col in ("status", "old rate", "new rate", "Δ", "verdict"):
        assert col in header
    assert lines[-1] == "memleak compare: 2 tests: 2 same; rule rate:10%,new-leaks: passed"


def test_compare_regression_fails(reports: Reports) -> None:
    proc = cli("compare", "old.json", "new.json", "--fail", "rate:50%", cwd=reports.dir)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "REGRESSED test_app.py::test_leak:" in proc.stdout
    assert "rate:50% broke: rate " in proc.stdout
    assert proc.stdout.splitlines()[-1].endswith("rule rate:50%: FAILED (1 test)")
    assert proc.stderr == ""


def test_compare_without_rule_never_fails(reports: Reports) -> None:
    proc = cli("compare", "old.json", "new.json", cwd=reports.dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    leak_row = next(
        line for line in proc.stdout.splitlines() if line.startswith("test_app.py::test_leak")
    )
    assert " worse " in leak_row


def test_compare_improvement_passes(reports: Reports) -> None:
    proc = cli("compare", "new.json", "old.json", "--fail", "rate:10%", cwd=reports.dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "improved" in proc.stdout


def test_compare_json(reports: Reports) -> None:
    proc = cli("compare", "old.json", "new.json", "--fail", "rate:50%", "--json", cwd=reports.dir)
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    rows = {r["nodeid"]: r for r in data["rows"]}
    assert rows["test_app.py::test_leak"]["status"] == "regressed"
    assert rows["test_app.py::test_leak"]["new_rate"] > rows["test_app.py::test_leak"]["old_rate"]
    assert rows["test_app.py::test_clean"]["status"] == "same"
    assert data["failed"] is True
    new = json.loads((reports.dir / "new.json").read_text())
    assert data["new"] == {"name": "new.json", "created": new["created"]}


def test_compare_saved_runs(reports: Reports) -> None:
    proc = cli(
        "compare",
        reports.old_run[:13],
        "latest",
        "--storage",
        "history",
        "--fail",
        "rate:50%",
        cwd=reports.dir,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"baseline: {os.path.join('history', reports.old_run)}" in proc.stdout
    assert f"current:  {os.path.join('history', reports.new_run)}" in proc.stdout


# ------------------------------------------------------------------------------------------
# list, validate, html


def test_list(reports: Reports, tmp_path: Path) -> None:
    proc = cli("list", "--storage", reports.history, cwd=reports.dir)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith(f"2 saved runs in {reports.history} (oldest first):")
    assert out.index(reports.old_run) < out.index(reports.new_run)
    empty = cli("list", cwd=tmp_path)
    assert empty.returncode == 0
    assert empty.stdout == "no saved runs in .memleak/history\n"


@pytest.mark.skipif(not SCHEMA_READY, reason="schema.json or jsonschema not available yet")
def test_validate_valid(reports: Reports) -> None:
    proc = cli("validate", "new.json", cwd=reports.dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == "new.json: valid (pytest-memleak/1, 2 tests)\n"


@pytest.mark.skipif(not SCHEMA_READY, reason="schema.json or jsonschema not available yet")
def test_validate_invalid(reports: Reports, tmp_path: Path) -> None:
    doc = json.loads(reports.new.read_text())
    doc["tests"][0]["verdict"] = "maybe"
    del doc["summary"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    proc = cli("validate", bad, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"{bad}: invalid, ")
    assert "'summary' is a required property" in proc.stdout
    assert "tests/0/verdict: " in proc.stdout
    no_traceback(proc)


@pytest.mark.xfail(not HTML_READY, reason="html renderer not merged yet", strict=False)
def test_html(reports: Reports, tmp_path: Path) -> None:
    out = tmp_path / "out" / "report.html"
    proc = cli(
        "html",
        "new.json",
        "-o",
        out,
        "--compare",
        "old.json",
        "--fail",
        "rate:50%",
        cwd=reports.dir,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == f"HTML report written to {out}\n"
    text = out.read_text(encoding="utf-8")
    assert "<html" in text.lower()
    assert "test_app.py::test_leak" in text


# ------------------------------------------------------------------------------------------
# errors: one line on stderr, exit 2, no traceback


@pytest.fixture(scope="module")
def bad_files(reports: Reports) -> Path:
    d = reports.dir / "bad"
    d.mkdir()
    real = reports.old.read_text()
    (d / "corrupt.json").write_text(real[: len(real) // 2])
    (d / "foreign.json").write_text(json.dumps({"schema": "other-tool/3", "tests": []}))
    (d / "v2.json").write_text(json.dumps({"schema": "pytest-memleak/2", "tests": []}))
    (d / "malformed.json").write_text(
        json.dumps({"schema": "pytest-memleak/1", "tests": [{"nodeid": "t.py::test_x"}]})
    )
    (d / "old.json").write_text(real)
    (d / "empty").mkdir()
    return d


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "missing.json"), "missing.json: no such file, and no saved run in "),
        (("show", "corrupt.json"), "corrupt.json: is not valid JSON (truncated or corrupt?)"),
        (("show", "foreign.json"), "foreign.json: is a report of another tool"),
        (("show", "v2.json"), "v2.json: has schema 'pytest-memleak/2'; this version reads"),
        (
            ("show", "malformed.json"),
            "malformed.json: does not match the report schema: <root>: 'created' is a required",
        ),
        (("show", "latest", "--storage", "empty"), "latest: there are no saved runs in empty"),
        (("compare", "old.json", "nosuchref"), "nosuchref: no such file"),
        (("compare", "corrupt.json", "old.json"), "corrupt.json: is not valid JSON"),
        (
            ("compare", "old.json", "old.json", "--fail", "rate:lots"),
            "invalid value for --fail: 'rate:lots'; expected comma-separated terms",
        ),
        (("validate", "corrupt.json"), "corrupt.json: is not valid JSON"),
        (("validate", "missing.json"), "missing.json: no such file"),
        (("html", "missing.json", "-o", "x.html"), "missing.json: no such file"),
    ],
)
def test_errors(bad_files: Path, args: tuple[str, ...], message: str) -> None:
    proc = cli(*args, cwd=bad_files)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith(f"pytest-memleak: error: {message}"), proc.stderr
    assert proc.stderr.count("\n") == 1  # one line
    assert proc.stdout == ""
    no_traceback(proc)


@pytest.mark.parametrize(
    ("args", "prog"),
    [
        ((), "pytest-memleak"),
        (("frobnicate",), "pytest-memleak"),
        (("compare", "only-one.json"), "pytest-memleak compare"),
    ],
)
def test_usage_errors(args: tuple[str, ...], prog: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(list(args)) == 2  # argparse's own messages, in process (same code path)
    err = capsys.readouterr().err
    assert err.startswith("usage: ")
    assert f"{prog}: error: " in err


def test_version_and_help(tmp_path: Path) -> None:
    version = cli("--version", cwd=tmp_path)
    assert version.returncode == 0
    assert version.stdout.startswith("pytest-memleak ")
    helped = cli("--help", cwd=tmp_path)
    assert helped.returncode == 0
    for command in ("show", "compare", "html", "validate", "list"):
        assert command in helped.stdout


def test_main_in_process(reports: Reports, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(reports.old), str(reports.old)]) == 0
    assert "memleak compare: 2 tests: 2 same" in capsys.readouterr().out
    assert main(["show", str(reports.dir / "nope.json")]) == 2
    assert capsys.readouterr().err.startswith("pytest-memleak: error: ")
    assert main([]) == 2
    assert main(["--version"]) == 0


@pytest.mark.skipif(
    not (Path(sys.executable).parent / "pytest-memleak").is_file(),
    reason="console script not installed",
)
def test_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "pytest-memleak"
    proc = subprocess.run(
        [str(script), "list"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "no saved runs" in proc.stdout


@pytest.mark.parametrize("command", ["show", "compare", "html", "validate", "list"])
def test_every_subcommand_has_working_help(command):
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_memleak", command, "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage: pytest-memleak" in proc.stdout
    assert "Traceback" not in proc.stderr
