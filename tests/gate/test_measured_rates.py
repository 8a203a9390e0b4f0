"""README's same-job error-rate table is the committed measurement, number for number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _rates(name: str) -> dict[str, tuple[int, int, str]]:
    doc = json.loads((ROOT / "results" / "gate" / name).read_text(encoding="utf-8"))
    out = {}
    for kind in ("aa", "slow_5", "slow_20"):
        trials = [t for t in doc["trials"] if t["kind"] == kind]
        ratios = [t["normalised_ratio"] for t in trials]
        out[kind] = (sum(t["exit_code"] == 1 for t in trials), len(trials), f"{min(ratios):.3f}–{max(ratios):.3f}")
    return out


@pytest.mark.parametrize(("name", "cells"), [
    ("ab_in_process_20261128.json", ("**{0} / {1}**, ratios {2}", "**{0} / {1}**, ratios {2}", "**{0} / {1}**, {2}")),
    ("ab_processes_20261128.json", ("{0} / {1}, ratios {2}", "{0} / {1}, ratios {2}", "{0} / {1}, {2}")),
])
def test_readme_table_row_is_the_committed_measurement(name, cells):
    rates = _rates(name)
    row = " | ".join(cell.format(*rates[kind]) for cell, kind in zip(cells, ("aa", "slow_5", "slow_20"), strict=True))
    assert row in README, row


def test_the_in_process_gate_meets_its_aim():
    rates = _rates("ab_in_process_20261128.json")
    assert rates["aa"][:2] == (0, 20) and rates["slow_5"][:2] == (20, 20) and rates["slow_20"][:2] == (20, 20)


def test_readme_noise_table_is_the_committed_measurement():
    doc = json.loads((ROOT / "results" / "gate" / "noise_sources_20261128.json").read_text(encoding="utf-8"))
    rows = {
        "own round": "| model / reference timed in its own window |",
        "interleaved": "| model / reference interleaved (`reference: true` now) |",
        "in-process A/A": "| model against a copy of itself, interleaved in one process |",
        "in-process +5%": "| model with 21 layers against 20, in one process |",
    }
    for protocol, start in rows.items():
        summary = doc["summary"][protocol]
        row = f"{start} {summary['within_sd_log']:.3f} | {summary['across_sd_log']:.3f} | {summary['mean']:.3f} |"
        assert row in README, row
