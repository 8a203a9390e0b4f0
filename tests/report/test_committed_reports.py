"""The committed reports are what the renderer makes of the committed run dirs: a renderer change re-renders
them in the same commit, so README readers never see a stale report."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import committed_runs

from harness.report import render

ROOT = Path(__file__).resolve().parents[2]
RUNS = sorted(p for p in (ROOT / "results").glob("*/*") if (p / "manifest.json").is_file())


def test_there_are_committed_runs():
    assert {p.parent.name for p in RUNS} >= {"sknet_vs_senet", "paper_complexity", "ci_latency"}


@pytest.mark.parametrize("run_dir", committed_runs())
def test_committed_report_equals_a_fresh_render(run_dir, tmp_path):
    committed = ROOT / "reports" / run_dir.parent.name / f"{run_dir.name}.md"
    fresh = render(run_dir, out=tmp_path / f"{run_dir.name}.md")
    assert fresh.read_text() == committed.read_text(), (
        f"re-render it: python -m harness report {run_dir.relative_to(ROOT)}")


def test_rendering_the_default_run_needs_no_torch(tmp_path):
    """The report is a pure function of the run dir: rendering the newest committed default run, in a fresh
    interpreter, imports neither torch nor the model registry."""
    import subprocess
    import sys

    run_dir = max(p for p in RUNS if p.parent.name == "sknet_vs_senet")
    code = ("import sys\nfrom harness.report import render\n"
            f"render({str(run_dir)!r}, out={str(tmp_path / (run_dir.name + '.md'))!r})\n"
            "print(sorted(m for m in sys.modules if m == 'torch' or m == 'harness.models.registry'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    committed = ROOT / "reports" / "sknet_vs_senet" / f"{run_dir.name}.md"
    assert (tmp_path / f"{run_dir.name}.md").read_text() == committed.read_text()


def test_a_render_computes_each_frame_once(tmp_path, monkeypatch):
    from harness.results import frames

    calls = []
    original = frames.frame

    def counting(run, kind, *, by_round=False):
        calls.append((kind, by_round))
        return original(run, kind, by_round=by_round)

    monkeypatch.setattr(frames, "frame", counting)
    run_dir = max(p for p in RUNS if p.parent.name == "sknet_vs_senet")
    render(run_dir, out=tmp_path / "r.md")
    assert calls and len(calls) == len(set(calls)), calls
