"""The committed reports are what the renderer makes of the committed run dirs: a renderer change re-renders
them in the same commit, so README readers never see a stale report."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.report import render

ROOT = Path(__file__).resolve().parents[2]
RUNS = sorted(p for p in (ROOT / "results").glob("*/*") if (p / "manifest.json").is_file())


def test_there_are_committed_runs():
    assert {p.parent.name for p in RUNS} >= {"sknet_vs_senet", "paper_complexity", "ci_latency"}


@pytest.mark.parametrize("run_dir", RUNS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_report_equals_a_fresh_render(run_dir, tmp_path):
    committed = ROOT / "reports" / run_dir.parent.name / f"{run_dir.name}.md"
    fresh = render(run_dir, out=tmp_path / f"{run_dir.name}.md")
    assert fresh.read_text() == committed.read_text(), (
        f"re-render it: python -m harness report {run_dir.relative_to(ROOT)}")
