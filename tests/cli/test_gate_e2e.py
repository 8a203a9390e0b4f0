"""The frozen-baseline gate end to end through the CLI, on CPU: run → gate baseline → run → gate check.

The model is ``gate_convnet`` from ``benchmarks/gate_plugin.py`` (registered through the suite's
``imports:``): equal 3×3 conv layers whose number scales with a cost factor. The benchmark key includes the
model's options, so — as in CI, where the suite stays and the code changes — the options stay fixed and the
"code change" is injected through ``HARNESS_GATE_PLUGIN_COST``: 1.5 builds 15 conv layers instead of 10.

Not flaky on a loaded machine by construction: one intra-op thread (as the CI workflow sets), the reference
workload interleaved in every round, and the gate's statistic (normalised 5th percentile) moves by a few
percent between identical runs even on a busy 2-core box (benchmarks/gate_error_rates.py measures that).
The checks use a 20% threshold: far below the +50% of the slow candidate, far above that A/A drift of
runs this short.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from helpers import run_cli as _cli

PLUGIN = Path(__file__).resolve().parents[2] / "benchmarks" / "gate_plugin.py"
COST_ENV = "HARNESS_GATE_PLUGIN_COST"
# Far above A/A drift of short normalised runs here, far below the +40-50% of the slow candidate.
THRESHOLD = "20"
# A neighbour that competes for cache can move one short run by tens of percent (docs/gate.md, "Limits"); a verdict
# that holds in one of two fresh runs is what the workflow's advice (re-run a failed gate once) relies on.
ATTEMPTS = 2


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread, as in CI: two threads on a busy 2-core box stall at every parallel region."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _suite(tmp_path: Path, *, rounds: int = 4, min_time_s: float = 0.6) -> Path:
    suite = {
        "name": "gate_e2e",
        "imports": [str(PLUGIN)],
        "device": "cpu",
        "models": [{"name": "gate_convnet", "label": "gate", "options": {"channels": 16, "depth": 10}}],
        "latency": {"batch_sizes": [1], "warmup": 2, "min_time_s": min_time_s, "max_time_s": 4 * min_time_s,
                    "min_samples": 8 * rounds, "rounds": rounds, "reference": True},
    }
    path = tmp_path / "gate_e2e.yaml"
    path.write_text(json.dumps(suite))
    return path


def _run(capsys, monkeypatch, tmp_path: Path, suite: Path, cost: float) -> str:
    monkeypatch.setenv(COST_ENV, str(cost))
    # one thread, as the CI workflow sets: `auto` follows the machine's load, and a baseline and a candidate timed
    # at different thread counts do not compare (exit 2, environments differ)
    code, out, err = _cli(capsys, "run", str(suite), "--out", str(tmp_path / "results"), "--reports",
                          str(tmp_path / "reports"), "--no-progress", "--threads", "1")
    assert code == 0, err
    return out[0]


def _check(capsys, run: str, baseline: Path, *extra: str) -> tuple[int, list[str]]:
    """`gate check`; a timing made under contention is refused (exit 2, tested in
    tests/gate/test_judges_only_what_it_can.py), so on a busy machine the same check is made again with --force: this
    test is about the verdict, which the normalised low quantile keeps on a busy box (module docstring)."""
    args = ("gate", "check", run, "--baseline", str(baseline), "--threshold", THRESHOLD, "--format", "md", *extra)
    code, out, err = _cli(capsys, *args)
    if code == 2 and "under contention" in err + "\n".join(out):
        code, out, err = _cli(capsys, *args, "--force")
    return code, out


def _md_row(markdown: str, label: str) -> dict[str, str]:
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    row = next(line for line in lines[2:] if line.startswith(f"| {label} |"))
    return dict(zip(header, (c.strip() for c in row.strip("|").split("|")), strict=True))


@pytest.mark.slow  # spawns interpreters / asserts a timing verdict: tox -e slow
def test_gate_fails_on_a_real_slowdown_and_passes_an_unchanged_candidate(tmp_path, capsys, monkeypatch):
    suite = _suite(tmp_path)
    base_run = _run(capsys, monkeypatch, tmp_path, suite, 1.0)
    baseline = tmp_path / "baseline.json"
    code, out, _ = _cli(capsys, "gate", "baseline", base_run, "-o", str(baseline))
    assert code == 0 and out == [str(baseline)]
    doc = json.loads(baseline.read_text())
    (entry,) = doc["benchmarks"]
    assert entry["key"]["label"] == "gate" and len(entry["rounds"]) == 4 and len(entry["reference_rounds"]) == 4

    report_md = tmp_path / "gate.md"
    for _attempt in range(ATTEMPTS):  # as docs/gate.md says of CI: re-run a failed gate once before believing it
        slow_run = _run(capsys, monkeypatch, tmp_path, suite, 1.5)
        code, out = _check(capsys, slow_run, baseline, "--output", str(report_md))
        text = "\n".join(out)
        if code == 1:
            break
    assert code == 1, text
    assert report_md.read_text().strip() == text.strip()
    assert "**Result: FAIL (1 regression)**" in text and "raw ratio" in text and "norm. ratio" in text
    row = _md_row(text, "gate")
    assert row["verdict"] == "**regression**"
    # both ratios shown; the compute grew by 1.5x in the body, so both sit well above the 20% threshold
    assert float(row["norm. ratio"]) > 1.2 and float(row["raw ratio"]) > 1.0
    low, high = (float(x) for x in re.findall(r"[\d.]+", row["95% CI"]))
    assert 1.0 < low <= float(row["norm. ratio"]) <= high

    for _attempt in range(ATTEMPTS):
        same_run = _run(capsys, monkeypatch, tmp_path, suite, 1.0)
        code, out = _check(capsys, same_run, baseline)
        text = "\n".join(out)
        if code == 0:
            break
    assert code == 0, text
    assert "**Result: PASS" in text and "regression" not in _md_row(text, "gate")["verdict"]
    assert float(_md_row(text, "gate")["norm. ratio"]) == pytest.approx(1.0, abs=0.2)
