"""Helpers shared by tests (importable: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from harness.results.records import RecordBase

import pytest

_ROOT = Path(__file__).resolve().parents[1]
# Every committed run is re-read, re-rendered and validated in the slow tier (which CI runs too); the default tier
# keeps the README's example run and the modes run, the two newest shapes of record, to stay within its time.
DEFAULT_TIER_RUNS = frozenset({"20261207T112605Z-a8b1", "20261207T151320Z-95a9"})


def committed_runs() -> list:
    """The committed run dirs as pytest parameters (id ``suite/run``), the ones not in ``DEFAULT_TIER_RUNS`` slow."""
    runs = sorted(p.parent for p in (_ROOT / "results").glob("*/*/manifest.json"))
    return [pytest.param(p, id=f"{p.parent.name}/{p.name}",
                         marks=() if p.name in DEFAULT_TIER_RUNS else pytest.mark.slow) for p in runs]


def plugin_model_name(plugin: Path) -> str:
    return f"tinynet_{plugin.parent.name[-8:]}".replace("-", "_")


def write_run(run_dir: Path, records: list[dict], manifest: dict | None = None) -> Path:
    """A run dir written by hand, as the runner would (for report / check tests)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    base = {"schema": 1, "run_id": run_dir.name, "suite_name": run_dir.parent.name, "environment": {}, "suite": {}}
    (run_dir / "manifest.json").write_text(json.dumps({**base, **(manifest or {})}))
    with (run_dir / "records.jsonl").open("w") as handle:
        for record in records:
            handle.write(json.dumps({"schema": 1, **record}) + "\n")
    return run_dir


class TinyNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).relu().mean((2, 3)))


def run_cli(capsys, *argv) -> tuple[int, list[str], str]:
    """``python -m harness ARGV`` in-process: exit code, stdout lines, stderr text."""
    from harness.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


LAUNCH_IGNORED = {"started_utc", "wall_s", "shard", "schema"}  # when and where, not what was measured


def tiny_launch_suite(tmp_path: Path, plugin: Path, *, models: int = 6, **sections) -> Path:
    """A suite of ``models`` tiny plugin models (complexity at 16×16): a launch of it takes seconds."""
    name = plugin_model_name(plugin)
    suite = {"name": "launched", "imports": [str(plugin)], "device": "cpu",
             "models": [{"name": name, "label": f"m{k}", "options": {"channels": 4 + k}} for k in range(models)],
             "complexity": {"input_size": [3, 16, 16], "flop_crosscheck": False}, **sections}
    path = tmp_path / "suite.yaml"
    path.write_text(json.dumps(suite))
    return path


def comparable(records: list[RecordBase]) -> list[dict]:
    """Records (as their lines hold them) without when and where they were measured, in task order: equal iff the
    measurements are."""
    return sorted(({k: v for k, v in r.to_json().items() if k not in LAUNCH_IGNORED} for r in records),
                  key=lambda r: (r["task_id"], r.get("kind"), r.get("round") or 0))
