"""The committed ``compare`` and ``history`` reports are what the renderers make of the committed run dirs: a
renderer change re-renders them in the same commit (the commands are in each test's failure message)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.report.compare import render_compare
from harness.report.history import render_history

ROOT = Path(__file__).resolve().parents[2]
COMPARES = sorted((ROOT / "reports" / "compare").glob("*/*.md"))
HISTORIES = sorted((ROOT / "reports").glob("*/history-*.md"))


def _committed_runs(suite: str) -> list[Path]:
    """The suite's run dirs in git (scratch runs in a working copy are not part of the committed history)."""
    try:
        listed = subprocess.run(["git", "ls-files", f"results/{suite}"], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: every run dir there is committed
        return sorted(p for p in (ROOT / "results" / suite).iterdir() if (p / "manifest.json").is_file())
    return sorted({(ROOT / f).parent for f in listed if f.endswith("manifest.json")})


def test_the_readme_examples_exist():
    assert COMPARES and HISTORIES


@pytest.mark.parametrize("report", COMPARES, ids=lambda p: p.stem)
def test_committed_comparison_equals_a_fresh_render(report, tmp_path):
    text = report.read_text()
    run_ids = [c.strip() for c in re.search(r"^\| run \|(.+)\|$", text, re.M).group(1).split("|")]
    runs = [ROOT / "results" / report.parent.name / run_id for run_id in run_ids]
    fresh = render_compare(runs, out=tmp_path / report.name)
    assert fresh.read_text() == text, (
        f"re-render it: python -m harness compare {' '.join(str(r.relative_to(ROOT)) for r in runs)} "
        f"-o {report.relative_to(ROOT)}")


@pytest.mark.parametrize("report", HISTORIES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_committed_history_equals_a_fresh_render(report, tmp_path):
    suite, metric = report.parent.name, report.stem.removeprefix("history-")
    for run in _committed_runs(suite):
        shutil.copytree(run, tmp_path / "results" / suite / run.name)
    fresh = render_history(tmp_path / "results" / suite, metric=metric, out=tmp_path / report.name)
    assert fresh.read_text() == report.read_text(), (
        f"re-render it: python -m harness history results/{suite}/ --metric {metric} -o {report.relative_to(ROOT)}")
