"""``compare`` and ``history`` on hand-written run dirs: matched benchmarks, ratios to the first run with CIs, the
overhead-vs-MACs table, environment differences shown, complexity differences flagged; change points found where
a step persists and not where a single run is noisy."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pytest
from fake_records import MANIFEST, complexity, latency
from helpers import write_run

from harness.errors import ConfigError
from harness.gate import THRESHOLD_PCT
from harness.report.compare import render_compare
from harness.report.history import CHANGE_THRESHOLD_PCT, change_points, render_history


def _samples(median: float, n: int = 30, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(median * (1 + 0.02 * rng.standard_normal(n)))


def _run(root: Path, run_id: str, medians: dict[str, float], *, threads: int = 2, created: str = "2026-01-01T00:00:00Z",
         sk_macs: int = 4_200, commit: str = "abc") -> Path:
    env = {"cpu": {"model": "Test CPU", "torch_threads": threads}, "packages": {"torch": "2.9.0", "fvcore": "0.1.5"}}
    manifest = {**MANIFEST, "run_id": run_id, "created_utc": created, "environment": env,
                "git": {"commit": commit, "dirty": False}}
    records = [complexity("resnext50", 4_000, 100), complexity("sknet50", sk_macs, 130)]
    records += [{**latency(label, label, _samples(m, seed=i)), "threads": threads}
                for i, (label, m) in enumerate(medians.items())]
    return write_run(root / "results" / "s" / run_id, records, manifest)


def _row(text: str, heading: str, *first: str) -> list[str]:
    block = text.split(heading, 1)[1].split("\n## ", 1)[0]
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[:len(first)] == list(first):
            return cells
    raise AssertionError(f"no row {first} under {heading}")


def test_compare_lines_up_runs_with_ratios_overheads_and_environment(tmp_path):
    one = _run(tmp_path, "one", {"resnext50": 100.0, "sknet50": 130.0}, threads=1)
    two = _run(tmp_path, "two", {"resnext50": 60.0, "sknet50": 72.0}, threads=2)
    out = render_compare([one, two], out=tmp_path / "cmp.md")
    text = out.read_text()
    assert _row(text, "## Runs", "**torch threads** ⚠")[1:] == ["1", "2"]
    assert _row(text, "## Runs", "torch")[1:] == ["2.9.0", "2.9.0"]  # the same: no mark
    assert "✓ Parameters, MACs and activations are identical in every run for all 2 models" in text
    sk2 = _row(text, "### Latency · batch 1 · fp32", "sknet50", "#2")
    ratio = float(sk2[5].split()[0])
    expected = statistics.median(_samples(72.0, seed=1)) / statistics.median(_samples(130.0, seed=1))
    assert ratio == pytest.approx(expected, abs=5e-4) and "(" in sk2[5]  # with its CI
    overhead = _row(text, "## Overhead over the plain network, per run", "sknet50")
    assert overhead[1:3] == ["resnext50", "1.050"]
    cost1, cost2 = (float(c.split()[0]) for c in overhead[4:6])
    assert cost1 == pytest.approx(1.30, abs=0.03) and cost2 == pytest.approx(1.20, abs=0.03)
    assert (tmp_path / "cmp.png").stat().st_size > 10_000


def test_compare_flags_different_complexity_as_a_reproducibility_problem(tmp_path):
    one = _run(tmp_path, "one", {"resnext50": 100.0})
    two = _run(tmp_path, "two", {"resnext50": 100.0}, sk_macs=4_300)
    text = render_compare([one, two], out=tmp_path / "cmp.md").read_text()
    assert "⚠ **Reproducibility problem**" in text
    assert _row(text, "## Complexity", "sknet50")[2:5] == ["macs", "4200", "4300"]


def test_compare_needs_two_runs(tmp_path):
    with pytest.raises(ConfigError, match="compare needs at least two run dirs"):
        render_compare([_run(tmp_path, "one", {"resnext50": 1.0})])


@pytest.mark.parametrize(("values", "expected"), [
    ([100, 101, 99, 115, 116, 114], [(3, True)]),  # a persistent +15%
    ([100, 115, 100, 101, 99], []),  # one noisy run
    ([100, 100, 99, 110], [(3, False)]),  # the last run: unconfirmed
    ([100, 90, 91, 89, 100, 101], [(1, True), (4, True)]),  # down, then back up
    ([100, None, 103, 104], []),  # below the threshold; a run without the benchmark
    ([100, 115, 116, 100, 100], [(1, True), (3, True)]),  # slower for two runs, then fixed
    ([100, 94, 112, 111], [(2, True)]),  # -6% is an outlier, not part of the level
])
def test_change_points(values, expected):
    assert [(s.index, s.confirmed) for s in change_points(values, 5.0)] == expected


def test_history_orders_runs_in_time_and_marks_a_persistent_step(tmp_path):
    medians = [100.0, 101.0, 120.0, 121.0]
    for k, m in enumerate(medians):  # run ids out of time order on purpose
        _run(tmp_path, f"r{9 - k}", {"resnext50": 50.0, "sknet50": m}, created=f"2026-01-0{k + 1}T00:00:00Z",
             commit=f"c{k}")
    out = render_history(tmp_path / "results" / "s", out=tmp_path / "h.md")
    text = out.read_text()
    assert f"more than {CHANGE_THRESHOLD_PCT:g}%" in text and CHANGE_THRESHOLD_PCT == THRESHOLD_PCT == 5.0
    rows = [_row(text, "#### latency · batch 1 · fp32", str(k + 1)) for k in range(4)]
    assert [r[1] for r in rows] == ["r9", "r8", "r7", "r6"]
    assert "▲+" in rows[2][-1] and "▲" not in rows[3][-1] and "▲" not in "".join(r[-2] for r in rows)
    assert "- sknet50: +19" in text and "held over 1 later run(s) (all)" in text
    assert (tmp_path / "h.png").stat().st_size > 10_000


def test_history_keeps_machines_apart(tmp_path):
    _run(tmp_path, "a", {"resnext50": 100.0}, threads=1, created="2026-01-01T00:00:00Z")
    _run(tmp_path, "b", {"resnext50": 50.0}, threads=2, created="2026-01-02T00:00:00Z")
    text = render_history(tmp_path / "results" / "s", out=tmp_path / "h.md").read_text()
    assert "## cpu · Test CPU · 1 threads" in text and "## cpu · Test CPU · 2 threads" in text
    tables = text.split("## cpu · Test CPU · 1 threads", 1)[1]
    assert "▼" not in tables and "▲" not in tables  # half the time on another machine is not a change point


def test_history_of_an_empty_folder_is_a_one_line_error(tmp_path):
    with pytest.raises(ConfigError, match="no run dirs"):
        render_history(tmp_path)
