"""Memory and "where the extra cost goes" on hand-written runs: the overhead table against the records' ratios,
the verdict against the CI, per-stage deltas against the module counts."""

from __future__ import annotations

import numpy as np
from fake_records import MANIFEST, complexity, latency
from helpers import write_run

from harness.report import render


def _samples(median: float, seed: int) -> list[float]:
    return list(median * (1 + 0.01 * np.random.default_rng(seed).standard_normal(40)))


M = 1_000_000


def _cx(name: str, stage0: tuple[int, int], extra: list | None = None) -> dict:
    """Counts in millions: a stem of 10 MMACs / 1 M activations and one stage."""
    record = complexity(name, (10 + stage0[0]) * M, (1 + stage0[1]) * M)
    record["modules"] = [["stem", 10 * M, 1 * M], ["stages.0", stage0[0] * M, stage0[1] * M],
                         *([n, a * M, b * M] for n, a, b in extra or [])]
    return record


def _row(text: str, heading: str, first: str) -> list[str]:
    block = text.split(heading, 1)[1].split("\n## ", 1)[0]
    line = next(x for x in block.splitlines() if x.startswith(f"| {first} |"))
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_where_the_extra_cost_goes(tmp_path):
    records = [_cx("resnext50", (1000, 100), [["stages.0.0.conv2", 200, 20]]),
               _cx("senet50", (1001, 100), [["stages.0.0.conv2", 200, 20], ["stages.0.0.post", 1, 0]]),
               _cx("sknet50", (1050, 130), [["stages.0.0.conv2", 250, 50], ["stages.0.0.conv2.paths.1", 200, 20]]),
               {**latency("resnext50", "resnext50", _samples(100.0, 0)), "iter_peak_mem_bytes": 10 << 20},
               {**latency("senet50", "senet50", _samples(101.0, 1)), "iter_peak_mem_bytes": 10 << 20},
               {**latency("sknet50", "sknet50", _samples(128.0, 2)), "iter_peak_mem_bytes": 12 << 20}]
    run_dir = write_run(tmp_path / "results" / "s" / "r1", records, MANIFEST)
    text = render(run_dir, reports_root=tmp_path / "reports").read_text()
    overhead = _row(text, "### senet50 / sknet50 over resnext50", "sknet50")
    assert overhead[2:4] == [f"{1060 / 1010:.3f}", f"{131 / 101:.3f}"]  # MACs, activations ÷ plain
    latency_ratio = float(overhead[4].split()[0])
    assert abs(latency_ratio - 1.28) < 0.01 and "(" in overhead[4]
    assert "- sknet50 (batch 1 · fp32 · cpu): latency +2" in text
    # +28% (CI about ±1%) vs +5.0% MACs and +29.7% activations
    assert "latency +2" in text and ": above the MACs ratio and below the activations ratio." in text
    senet = next(x for x in text.splitlines() if x.startswith("- senet50 (batch 1"))
    assert senet.startswith("- senet50 (batch 1 · fp32 · cpu): latency +1.") and "above the MACs ratio." in senet
    stage = _row(text, "Per stage", "stages.0")
    assert stage[1:3] == ["1000.0", "100.00"] and stage[3:7] == ["+1.0 (100%)", "0", "+50.0 (100%)", "+30.00 (100%)"]
    assert _row(text, "Per stage", "stem")[1:] == ["10.0", "1.00", "0", "0", "0", "0"]
    part = _row(text, "Per block part", "conv2.paths.1")
    assert part[1] == "–" and part[5:7] == ["200.0", "20.00"]
    assert _row(text, "Per block part", "conv2")[1:7] == ["200.0", "20.00", "200.0", "20.00", "250.0", "50.00"]
    memory = _row(text, "## Memory", "sknet50")
    assert memory[1:5] == ["12.0", "1.200", "resnext50", "1.200"]
    assert (tmp_path / "reports" / "s" / "r1_overhead.png").is_file()
