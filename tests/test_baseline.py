"""Baseline comparison and run history (pytest_memleak.baseline) on hand-made model objects."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from pytest_memleak import baseline
from pytest_memleak.baseline import (
    Rule,
    Storage,
    Term,
    compare_runs,
    compare_test,
    parse_rule,
)
from pytest_memleak.baseline.compare import rate_of, total_of
from pytest_memleak.errors import ConfigError, ReportError
from pytest_memleak.model import (
    Environment,
    Finding,
    Leak,
    RunReport,
    Summary,
    TestResult,
    to_json,
)
from pytest_memleak.render.terminal import comparison_lines
from pytest_memleak.settings import resolve

KiB = 1024
MiB = 1024 * 1024


def leak(fp: str, rate: float = 4096.0, *, suppressed: bool = False) -> Leak:
    return Leak(
        id="L1",
        type="python_object",
        source="app.py:12",
        severity="low",
        estimated_size=rate * 10,
        growth_rate=rate,
        unit="bytes",
        fingerprint=fp,
        suppressed=suppressed,
    )


def finding(
    rate_per_iter: float,
    bytes_per_iter: float | None,
    total: float,
    *,
    metric: str = "malloc",
    failing: bool = True,
) -> Finding:
    return Finding(
        metric=metric,
        rate_per_iter=rate_per_iter,
        bytes_per_iter=bytes_per_iter,
        rate_per_s=rate_per_iter * 100,
        total=total,
        pattern="linear",
        confidence=1.0,
        severity="low",
        failing=failing,
        reason="...",
    )


def entry(
    nodeid: str = "test_a.py::test_f",
    rate: float = 0.0,
    *,
    verdict: str | None = None,
    iterations: int = 10,
    label: str = "",
    leaks: tuple[Leak, ...] = (),
    failing: bool = True,
) -> TestResult:
    """A test result with one confirmed malloc finding growing ``rate`` bytes/iter (none when
    0). The verdict defaults to leak when rate > 0."""
    findings = (finding(rate, rate, rate * iterations, failing=failing),) if rate else ()
    return TestResult(
        nodeid=nodeid,
        label=label,
        iterations=iterations,
        verdict=verdict or ("leak" if rate else "ok"),
        severity="low" if rate else "none",
        findings=findings,
        leaks=leaks,
    )


def run(*tests: TestResult, created: str = "2026-11-28T09:00:00+0000") -> RunReport:
    return RunReport(
        environment=Environment(python="3.12.0", platform="Linux", plugin="0.1.0", pytest="8.0"),
        summary=Summary(checked=len(tests)),
        tests=tests,
        created=created,
    )


# ------------------------------------------------------------------------------------------
# parse_rule


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("rate:10%", (Term("rate", percent=10.0),)),
        ("rate:4KiB", (Term("rate", bytes=4096.0),)),
        ("rate:4 KiB/iter", (Term("rate", bytes=4096.0),)),
        ("rate:512", (Term("rate", bytes=512.0),)),
        ("rate:0.1KiB", (Term("rate", bytes=102.4),)),
        ("growth:20%", (Term("growth", percent=20.0),)),
        ("growth:1MiB", (Term("growth", bytes=float(MiB)),)),
        ("new-leaks", (Term("new-leaks"),)),
        (
            " Rate:2.5% , NEW-LEAKS,growth:1MB ",
            (Term("rate", percent=2.5), Term("new-leaks"), Term("growth", bytes=1e6)),
        ),
        ("rate:10%,rate:4KiB", (Term("rate", percent=10.0), Term("rate", bytes=4096.0))),
    ],
)
def test_parse_rule_accepts(text: str, terms: tuple[Term, ...]) -> None:
    rule = parse_rule(text)
    assert rule.terms == terms
    assert parse_rule(str(rule)) == rule  # str() round-trips


@pytest.mark.parametrize(
    "text",
    [
        "",
        "  ",
        "rate",
        "rate:",
        "rate:ten%",
        "rate:-5%",
        "rate:10%%",
        "speed:10%",
        "rate:4KiB/s",
        "growth:1MiB/iter",
        "new-leaks:3",
        "rate:10%,",
        ",rate:10%",
        "rate:nan%",
        "rate:4 parsecs",
        "10%",
    ],
)
def test_parse_rule_rejects(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_rule(text, "--memleak-compare-fail")
    err = info.value
    assert err.key == "--memleak-compare-fail"
    assert err.value == text
    assert "rate:10%" in err.expected
    assert "new-leaks" in err.expected
    assert "--memleak-compare-fail" in str(err)
    if all(part.strip() for part in text.split(",")):
        assert "is not a term" in err.expected


def test_parse_rule_names_the_key() -> None:
    with pytest.raises(ConfigError, match="--fail"):
        parse_rule("bogus", "--fail")


# ------------------------------------------------------------------------------------------
# The settings hold the parsed rule


def test_settings_hold_the_parsed_rule() -> None:
    """--memleak-compare-fail is parsed once, at start-up: the settings hold the Rule, and the
    report's settings show its normalised text."""
    s = resolve([("cli", {"compare_fail": " Rate:4KiB/iter , new_leaks"})])
    assert s.compare_fail == Rule((Term("rate", bytes=4096.0), Term("new-leaks")))
    assert s.sources["compare_fail"] == "cli"
    assert s.to_dict()["compare_fail"] == "rate:4KiB,new-leaks"
    for nothing in (None, "", "  "):
        empty = resolve([("ini", {"compare_fail": nothing})])
        assert empty.compare_fail is None
        assert empty.to_dict()["compare_fail"] is None


@pytest.mark.parametrize(
    ("origin", "value", "key", "expected"),
    [
        ("cli", "rate:lots", "--memleak-compare-fail", "; 'rate:lots' is not a term"),
        ("ini", "rate:4KiB/s", "memleak_compare_fail", "; 'rate:4KiB/s' is not a term"),
        ("cli", "rate:10%,", "--memleak-compare-fail", ""),
        ("ini", 5, "memleak_compare_fail", None),
    ],
)
def test_a_bad_rule_is_refused_at_start_up(
    origin: str, value: object, key: str, expected: str | None
) -> None:
    with pytest.raises(ConfigError) as info:
        resolve([(origin, {"compare_fail": value})])
    wanted = (
        "a rule such as 'rate:10%,growth:1MiB,new-leaks'"
        if expected is None
        else baseline.RULE_EXPECTED + expected
    )
    assert str(info.value) == f"memleak: invalid value for {key}: {value!r}; expected {wanted}"


def test_the_plugin_compares_with_the_rule_the_settings_hold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Judging a test against the baseline never parses the rule's text again."""
    from pytest_memleak import outcome, settings
    from pytest_memleak.baseline import rules

    held = resolve([("cli", {"compare_fail": "rate:10%"})])

    def parse_again(*args: object, **kwargs: object) -> Rule:
        raise AssertionError("the rule was parsed again")

    for module in (rules, settings, baseline):
        monkeypatch.setattr(module, "parse_rule", parse_again)
    base = outcome.Baseline.of("old.json", run(entry("t.py::test_a", 4 * KiB)), held.compare_fail)
    results, [message] = outcome.regressions([entry("t.py::test_a", 8 * KiB)], base)
    assert "regressed against baseline old.json" in message
    assert "rate:10% broke" in message
    assert results[0].baseline is not None
    assert results[0].baseline.status == "regressed"


def test_empty_rule_is_falsy_and_never_fails() -> None:
    assert not Rule()
    row = compare_test(entry(rate=0), entry(rate=100 * KiB), Rule())
    assert not row.failed
    assert row.status == "worse"


# ------------------------------------------------------------------------------------------
# compare_test


def test_key_includes_label() -> None:
    assert entry("t.py::test_f").key == "t.py::test_f"
    assert entry("t.py::test_f", label="db").key == "t.py::test_f::db"


def test_new_test_never_fails() -> None:
    row = compare_test(
        None,
        entry(rate=8 * KiB, leaks=(leak("aa"),)),
        parse_rule("rate:0%,rate:0,growth:0,new-leaks"),
    )
    assert row.status == "new"
    assert not row.failed
    assert row.new_rate == 8 * KiB
    assert row.old_rate is None
    assert row.delta is None


def test_same_within_percent() -> None:
    row = compare_test(entry(rate=4 * KiB), entry(rate=4.2 * KiB), parse_rule("rate:10%"))
    assert row.status == "same"
    assert row.failures == ()
    assert row.delta == pytest.approx(0.2 * KiB)
    assert row.delta_pct == pytest.approx(5.0)


def test_regressed_by_percent() -> None:
    row = compare_test(entry(rate=4 * KiB), entry(rate=6 * KiB), parse_rule("rate:10%"))
    assert row.status == "regressed"
    assert row.delta_pct == pytest.approx(50.0)
    [line] = row.failures
    assert line.startswith("rate:10% broke:")
    assert "4.0 KiB/iter -> 6.0 KiB/iter" in line
    assert "+2.0 KiB/iter" in line
    assert "+50.0%" in line


def test_regressed_by_bytes() -> None:
    rule = parse_rule("rate:1KiB")
    within = compare_test(entry(rate=4 * KiB), entry(rate=4.9 * KiB), rule)
    assert within.status == "worse"
    assert not within.failed
    row = compare_test(entry(rate=4 * KiB), entry(rate=5.5 * KiB), rule)
    assert row.status == "regressed"
    assert "rate:1KiB broke" in row.failures[0]
    assert "allowed +1.0 KiB/iter" in row.failures[0]


def test_regression_judged_even_when_both_runs_pass() -> None:
    """Tolerated growth (verdict ok in both runs) still counts: 0 -> 3 KiB/iter breaks 1 KiB."""
    old = entry(rate=0)
    new = entry(rate=3 * KiB, verdict="ok", failing=False)
    row = compare_test(old, new, parse_rule("rate:1KiB"))
    assert (row.old_verdict, row.new_verdict) == ("ok", "ok")
    assert row.status == "regressed"
    assert row.delta_pct is None  # from zero
    assert "from zero" in row.failures[0]


def test_percent_rule_noise_floor() -> None:
    """From 0 any increase is an infinite percentage: the 256 B/iter floor keeps jitter out."""
    rule = parse_rule("rate:10%")
    jitter = compare_test(entry(rate=0), entry(rate=200, verdict="ok"), rule)
    assert jitter.status == "same"
    assert not jitter.failed
    real = compare_test(entry(rate=0), entry(rate=300, verdict="ok"), rule)
    assert real.status == "regressed"


def test_percent_rule_relative_floor() -> None:
    """The floor is also 1 % of the old value: +5 KiB on 1 MiB/iter is noise for rate:0%."""
    rule = parse_rule("rate:0%")
    assert not compare_test(entry(rate=MiB), entry(rate=MiB + 5 * KiB), rule).failed
    assert compare_test(entry(rate=MiB), entry(rate=MiB + 20 * KiB), rule).failed


def test_growth_rules_use_total() -> None:
    old = entry(rate=KiB, iterations=10)  # 10 KiB total
    new = entry(rate=KiB, iterations=30)  # 30 KiB total, same rate
    by_rate = compare_test(old, new, parse_rule("rate:10%"))
    assert by_rate.status == "worse"
    assert not by_rate.failed
    row = compare_test(old, new, parse_rule("growth:20%"))
    assert row.status == "regressed"
    assert row.old_total == 10 * KiB
    assert row.new_total == 30 * KiB
    assert "growth:20% broke: total growth 10.0 KiB -> 30.0 KiB" in row.failures[0]
    assert not compare_test(old, new, parse_rule("growth:1MiB")).failed
    assert compare_test(old, new, parse_rule("growth:16KiB")).failed
    # below the 4 KiB total floor a percent term does not break
    assert not compare_test(
        entry(rate=100, iterations=10), entry(rate=300, iterations=10), parse_rule("growth:10%")
    ).failed


def test_py_blocks_total_is_converted_to_bytes() -> None:
    e = dataclasses.replace(
        entry(rate=0), findings=(finding(2.0, 128.0, 20.0, metric="py_blocks"),)
    )
    assert rate_of(e) == 128.0
    assert total_of(e) == 1280.0


def test_count_only_findings_have_no_byte_rate() -> None:
    e = dataclasses.replace(entry(rate=0), findings=(finding(1.0, None, 10.0, metric="fds"),))
    assert rate_of(e) == 0.0
    assert total_of(e) == 0.0


def test_non_finite_numbers_are_unknown() -> None:
    """A NaN (written as null, read back as NaN) is no rate and no total, as before the model."""
    nan = float("nan")
    e = dataclasses.replace(
        entry(rate=0), findings=(finding(nan, nan, 10.0), finding(2.0, 64.0, nan))
    )
    assert rate_of(e) == 64.0
    assert total_of(e) == 0.0


def test_new_leaks_fails_whatever_the_size() -> None:
    old = entry(rate=4 * KiB, leaks=(leak("aaaa"),))
    new = entry(rate=4 * KiB, leaks=(leak("aaaa"), leak("bbbb", rate=8)))
    row = compare_test(old, new, parse_rule("new-leaks"))
    assert row.status == "regressed"
    assert row.new_fingerprints == ("bbbb",)
    assert "new-leaks broke" in row.failures[0]
    assert "bbbb" in row.failures[0]
    assert "app.py:12" in row.failures[0]
    # the same fingerprints: fine; without the term: recorded but not failing
    assert not compare_test(old, old, parse_rule("new-leaks")).failed
    other = compare_test(old, new, parse_rule("rate:10%"))
    assert other.new_fingerprints == ("bbbb",)
    assert not other.failed


def test_suppressed_leaks_are_not_new() -> None:
    new = entry(rate=0, leaks=(leak("cccc", suppressed=True),))
    assert not compare_test(entry(rate=0), new, parse_rule("new-leaks")).failed


def test_improved_and_fixed() -> None:
    rule = parse_rule("rate:10%,new-leaks")
    improved = compare_test(entry(rate=8 * KiB), entry(rate=2 * KiB), rule)
    assert improved.status == "improved"
    assert improved.delta == -6 * KiB
    assert improved.delta_pct == pytest.approx(-75.0)
    fixed = compare_test(entry(rate=8 * KiB, leaks=(leak("aa"),)), entry(rate=0), rule)
    assert fixed.status == "fixed"
    assert not fixed.failed


def test_worse_without_breaking_the_rule() -> None:
    row = compare_test(entry(rate=4 * KiB), entry(rate=5 * KiB), parse_rule("rate:50%"))
    assert row.status == "worse"
    assert not row.failed


def test_unmeasured_sides() -> None:
    rule = parse_rule("rate:0%")
    errored = compare_test(entry(rate=KiB), entry(verdict="error"), rule)
    assert errored.status == "error"
    assert not errored.failed
    assert errored.new_rate is None
    skipped = compare_test(entry(rate=KiB), entry(verdict="skipped"), rule)
    assert skipped.status == "skipped"
    no_baseline = compare_test(entry(verdict="error"), entry(rate=8 * KiB), rule)
    assert no_baseline.status == "new"
    assert not no_baseline.failed
    assert "no measurement" in no_baseline.reason


# ------------------------------------------------------------------------------------------
# compare_runs


def test_compare_runs_rows_and_statuses() -> None:
    old = run(
        entry("t.py::test_same", 2 * KiB),
        entry("t.py::test_grow", 2 * KiB),
        entry("t.py::test_gone"),
        created="2026-11-01T00:00:00+0000",
    )
    new = run(
        entry("t.py::test_grow", 8 * KiB),
        entry("t.py::test_same", 2 * KiB),
        entry("t.py::test_added", KiB),
    )
    comp = compare_runs(
        old, new.tests, parse_rule("rate:10%"), old_name="old.json", new_name="new.json"
    )
    assert [(r.key, r.status) for r in comp.rows] == [
        ("t.py::test_grow", "regressed"),
        ("t.py::test_same", "same"),
        ("t.py::test_added", "new"),
        ("t.py::test_gone", "removed"),
    ]
    assert comp.failed
    assert [r.key for r in comp.failures] == ["t.py::test_grow"]
    assert comp.counts == {"regressed": 1, "new": 1, "removed": 1, "same": 1}
    gone = comp.rows[-1]
    assert gone.old_rate == 0.0
    assert gone.new_rate is None
    assert gone.reason == "not in the new run"
    assert not compare_runs(old, old.tests, parse_rule("rate:10%")).failed


def test_labels_are_separate_rows() -> None:
    old = run(entry("t.py::test_f", KiB, label="db"), entry("t.py::test_f"))
    new = run(entry("t.py::test_f", 9 * KiB, label="db"), entry("t.py::test_f"))
    comp = compare_runs(old, new.tests, parse_rule("rate:1KiB"))
    assert {r.key: r.status for r in comp.rows} == {
        "t.py::test_f::db": "regressed",
        "t.py::test_f": "same",
    }
    assert comp.rows[0].name == "t.py::test_f [db]"


def test_renamed_hint_by_function_name() -> None:
    old = run(entry("tests/test_old.py::TestK::test_parse[a]", KiB), entry("t.py::test_x"))
    new = run(entry("tests/test_new.py::test_parse[b]", KiB), entry("t.py::test_x"))
    comp = compare_runs(old, new.tests)
    rows = {r.key: r for r in comp.rows}
    removed = rows["tests/test_old.py::TestK::test_parse[a]"]
    added = rows["tests/test_new.py::test_parse[b]"]
    assert (removed.status, added.status) == ("removed", "new")
    assert removed.hint == "renamed? now tests/test_new.py::test_parse[b]"
    assert added.hint == "renamed? was tests/test_old.py::TestK::test_parse[a]"
    assert added.old_nodeid == "tests/test_old.py::TestK::test_parse[a]"
    assert removed.old_nodeid is None
    assert "renamed?" in removed.reason
    assert rows["t.py::test_x"].hint == ""


def test_renamed_hint_by_fingerprint() -> None:
    old = run(entry("t.py::test_cache", 4 * KiB, leaks=(leak("f00d"),)))
    new = run(
        entry("t.py::test_lru", 4 * KiB, leaks=(leak("f00d"),)),
        entry("t.py::test_other", 4 * KiB, leaks=(leak("beef"),)),
    )
    rows = {r.key: r for r in compare_runs(old, new.tests).rows}
    assert rows["t.py::test_cache"].renamed == ("t.py::test_lru",)
    assert rows["t.py::test_lru"].hint == "renamed? was t.py::test_cache"
    assert rows["t.py::test_other"].hint == ""


def test_json_form_is_plain_json() -> None:
    old = run(entry("t.py::test_a", 0.0), entry("t.py::test_b", KiB))
    new = run(entry("t.py::test_a", 3 * KiB))
    data = to_json(
        compare_runs(old, new.tests, parse_rule("rate:1KiB"), old_name="o.json", new_name="n.json")
    )
    assert isinstance(data, dict)
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert data["failed"] is True
    assert data["rule"] == "rate:1KiB"
    assert data["old"] == {"name": "o.json", "created": "2026-11-28T09:00:00+0000"}
    assert data["new"] == {"name": "n.json", "created": ""}
    assert data["baseline"] == "o.json"
    assert data["counts"] == {"regressed": 1, "removed": 1}
    assert data["floors"] == {"rate": 256.0, "growth": 4096.0, "relative": 0.01}
    rows = data["rows"]
    assert isinstance(rows, list)
    first = rows[0]
    assert isinstance(first, dict)
    for key in ("nodeid", "status", "old_rate", "new_rate", "delta_pct", "reason"):
        assert key in first
    assert first["status"] == "regressed"
    assert first["delta_pct"] is None
    assert str(first["reason"]).startswith("rate:1KiB broke")
    assert first["name"] == "t.py::test_a"
    assert first["old_nodeid"] is None
    assert rows[1]["status"] == "removed"


def test_compare_test_is_the_row_compare_runs_builds() -> None:
    """The plugin judges each test as it finishes (compare_test) and the run at the end
    (compare_runs): the same row for a test in both runs."""
    rule = parse_rule("rate:10%,growth:20%,new-leaks")
    old = run(entry("t.py::test_a", 4 * KiB), entry("t.py::test_b", KiB, leaks=(leak("aa"),)))
    new = run(entry("t.py::test_a", 8 * KiB, leaks=(leak("bb"),)), entry("t.py::test_b", KiB))
    rows = compare_runs(old, new.tests, rule).rows
    assert rows == tuple(compare_test(o, n, rule) for o, n in zip(old.tests, new.tests))
    assert rows[0].reason == "; ".join(rows[0].failures)
    assert rows[0].new_fingerprints == ("bb",)


def test_compare_runs_takes_a_sequence_and_the_new_run_time() -> None:
    old = run(entry("t.py::test_a"))
    comp = compare_runs(old, [entry("t.py::test_a")], None, new_created="2026-12-01T00:00:00")
    assert comp.new.created == "2026-12-01T00:00:00"
    assert comp.baseline == "2026-11-28T09:00:00+0000"  # no name: the baseline's time
    assert comp.rule == ""
    assert not comp.failed


def test_table_lines() -> None:
    old = run(entry("t.py::test_a", 4 * KiB), entry("t.py::test_b"))
    new = run(entry("t.py::test_a", 8 * KiB), entry("t.py::test_b"))
    lines = comparison_lines(
        compare_runs(old, new.tests, parse_rule("rate:10%"), old_name="o.json", new_name="n.json")
    )
    text = "\n".join(lines)
    header = next(line for line in lines if line.startswith("test "))
    for col in ("status", "old rate", "new rate", "Δ", "verdict"):
        assert col in header
    assert re.search(
        r"t\.py::test_a\s+regressed\s+4\.0 KiB/iter\s+8\.0 KiB/iter\s+"
        r"\+4\.0 KiB/iter \(\+100%\)\s+LEAK",
        text,
    )
    assert "REGRESSED t.py::test_a:" in text
    assert lines[:2] == ["baseline: o.json (created 2026-11-28T09:00:00+0000)", "current:  n.json"]
    assert lines[-1] == (
        "memleak compare: 2 tests: 1 regressed, 1 same; rule rate:10%: FAILED (1 test)"
    )


def test_table_is_safe_with_odd_ids() -> None:
    old = run(entry("t.py::test_a[\n\x1b]", KiB))
    lines = comparison_lines(compare_runs(old, old.tests))
    assert all("\n" not in line and "\x1b" not in line for line in lines)


# ------------------------------------------------------------------------------------------
# Storage

RUN_NAME = re.compile(r"^\d{8}-\d{6}_[A-Za-z0-9]+(-\d+)?\.json$")
NOW = 1_795_000_000.0  # a fixed time stamp


def test_save_names_and_content(tmp_path: Path) -> None:
    store = Storage(str(tmp_path / "hist"), commit="abc1234")
    path = store.save(run(entry()), now=NOW)
    name = os.path.basename(path)
    assert RUN_NAME.match(name)
    assert name.endswith("_abc1234.json")
    assert name.startswith(
        __import__("time").strftime("%Y%m%d-%H%M%S", __import__("time").localtime(NOW))
    )
    assert json.loads(Path(path).read_text())["tests"][0]["nodeid"] == "test_a.py::test_f"
    assert [p.name for p in (tmp_path / "hist").iterdir()] == [name]  # no temp file left


def test_save_never_overwrites(tmp_path: Path) -> None:
    store = Storage(str(tmp_path), commit="abc1234")
    paths = [store.save(run(entry(f"t.py::test_{i}")), now=NOW) for i in range(3)]
    names = [os.path.basename(p) for p in paths]
    stem = names[0][: -len(".json")]
    assert names == [f"{stem}.json", f"{stem}-2.json", f"{stem}-3.json"]
    assert store.list() == paths  # oldest first, even though "-2" sorts before "." as text
    for i, p in enumerate(paths):
        assert json.loads(Path(p).read_text())["tests"][0]["nodeid"] == f"t.py::test_{i}"


def test_list_sorted_and_filtered(tmp_path: Path) -> None:
    store = Storage(str(tmp_path), commit="c0ffee1")
    late = store.save(run(), now=NOW + 3600)
    early = store.save(run(), now=NOW)
    (tmp_path / "notes.json").write_text("{}")
    (tmp_path / ".save.x.tmp").write_text("")
    (tmp_path / "20990101-000000_dir.json").mkdir()
    assert store.list() == [early, late]
    assert store.latest() == late


def test_empty_or_missing_storage(tmp_path: Path) -> None:
    store = Storage(str(tmp_path / "nope"))
    assert store.list() == []
    assert store.latest() is None
    with pytest.raises(ReportError) as info:
        store.resolve("latest")
    assert info.value.path == "latest"
    assert "no saved runs" in info.value.reason


def test_commit_outside_git_is_nogit(tmp_path: Path) -> None:
    store = Storage(str(tmp_path / "h"), cwd=str(tmp_path))
    assert store.commit() == "nogit"
    assert store.save(run(), now=NOW).endswith("_nogit.json")


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_commit_in_git_repo(tmp_path: Path) -> None:
    git = [
        "git",
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.com",
        "-c",
        "commit.gpgsign=false",
    ]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], cwd=tmp_path, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert Storage(str(tmp_path / "h"), cwd=str(tmp_path)).commit() == head


def test_save_unwritable_root(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ReportError) as info:
        Storage(str(blocker / "hist"), commit="abc1234").save(run())
    assert "cannot save" in info.value.reason


def test_save_honours_the_umask(tmp_path: Path) -> None:
    """Saved runs hold the full command line: written like the JSON report, through the shared
    atomic writer (the mode a plain open() gives, so 0600 under umask 077)."""
    store = Storage(str(tmp_path), commit="abc1234")
    old = os.umask(0o077)
    try:
        private = store.save(run(), now=NOW)
        os.umask(0o022)
        shared = store.save(run(), now=NOW)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o644
    assert sorted(os.listdir(tmp_path)) == sorted(map(os.path.basename, (private, shared)))


def test_save_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where hard links fail (some file systems), a taken name is still never overwritten."""

    def no_link(src: object, dst: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    store = Storage(str(tmp_path), commit="abc1234")
    monkeypatch.setattr(os, "link", no_link)
    paths = [store.save(run(entry(f"t.py::test_{i}")), now=NOW) for i in range(2)]
    assert paths[0].endswith("_abc1234.json")
    assert paths[1] == paths[0][: -len(".json")] + "-2.json"
    assert sorted(os.listdir(tmp_path)) == sorted(map(os.path.basename, paths))
    for i, p in enumerate(paths):
        assert json.loads(Path(p).read_text())["tests"][0]["nodeid"] == f"t.py::test_{i}"


def test_resolve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Storage(str(tmp_path / "h"), commit="abc1234")
    first = store.save(run(), now=NOW)
    second = store.save(run(), now=NOW + 86400)
    name1, name2 = os.path.basename(first), os.path.basename(second)
    assert store.resolve("latest") == second
    assert store.resolve(name1) == first
    assert store.resolve(name1[: -len(".json")]) == first
    assert store.resolve(name2[:11]) == second  # unique prefix: "YYYYmmdd-HH"
    other = tmp_path / "elsewhere.json"
    other.write_text("{}")
    assert store.resolve(str(other)) == str(other)
    monkeypatch.chdir(tmp_path)
    assert store.resolve("elsewhere.json") == "elsewhere.json"


def test_resolve_ambiguous_prefix(tmp_path: Path) -> None:
    store = Storage(str(tmp_path), commit="abc1234")
    store.save(run(), now=NOW)
    store.save(run(), now=NOW)
    with pytest.raises(ReportError) as info:
        store.resolve(os.path.basename(store.latest() or "")[:8])
    assert "matches 2 saved runs" in info.value.reason


def test_resolve_unknown_lists_runs(tmp_path: Path) -> None:
    store = Storage(str(tmp_path / "h"), commit="abc1234")
    saved = os.path.basename(store.save(run(), now=NOW))
    with pytest.raises(ReportError) as info:
        store.resolve("19990101")
    assert info.value.path == "19990101"
    assert "no such file" in info.value.reason
    assert str(tmp_path / "h") in info.value.reason
    assert saved in info.value.reason
    with pytest.raises(ReportError, match="empty reference"):
        store.resolve("")
    with pytest.raises(ReportError, match="is a directory"):
        store.resolve(str(tmp_path))
