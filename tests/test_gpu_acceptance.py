"""benchmarks/gpu_acceptance.py cannot rot: its commands parse (fast), and its dry run on the CPU runs every
step that does not need CUDA end to end (slow)."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_acceptance.py"


@pytest.fixture(scope="module")
def acceptance():
    return runpy.run_path(str(SCRIPT))


@pytest.mark.parametrize("dry", [False, True])
def test_every_harness_command_of_the_plan_parses_and_names_existing_suites(acceptance, tmp_path, dry):
    steps = acceptance["plan"](tmp_path, dry=dry)
    names = [s.name for s in steps]
    assert names == ["pytest -m gpu", "default suite", "throughput bf16 + channels_last", "throughput fp16",
                     "torch.compile default", "fake CIFAR", "cifar_short (bf16 AMP, channels_last)", "SK speed",
                     "torchrun, 1 process, NCCL"]
    parser = build_parser()
    for step in steps:
        words = step.command
        if "harness" in words and "-m" in words:
            args = words[words.index("harness") + 1:]
            parsed = parser.parse_args(args)
            if args[0] == "run":
                assert (ROOT / parsed.suite).is_file()
                assert all("=" in item for item in parsed.overrides)
    torchrun = steps[-1]
    assert torchrun.env == {"HARNESS_DISTRIBUTED": "always"} and "torch.distributed.run" in torchrun.command
    gpu = {s.name for s in steps if s.gpu_only}
    assert gpu == {"pytest -m gpu", "throughput fp16"}


def test_the_overrides_of_every_step_load(acceptance, tmp_path):
    from harness.config import load_suite

    for dry in (False, True):
        for step in acceptance["plan"](tmp_path, dry=dry):
            words = step.command
            if "run" in words and "harness" in words:
                args = build_parser().parse_args(words[words.index("harness") + 1:])
                suite = load_suite(ROOT / args.suite, overrides=args.overrides)
                assert suite.train is None or suite.train.epochs >= 1


@pytest.mark.slow
def test_the_dry_run_runs_every_cpu_step(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path), "--dry-run"], capture_output=True,
                          text=True, timeout=1500, cwd=ROOT)
    summary = json.loads((tmp_path / "summary.json").read_text())
    statuses = {s["name"]: s["status"] for s in summary["steps"]}
    assert done.returncode == 0, (statuses, done.stderr[-2000:])
    assert set(statuses.values()) == {"ok", "skipped"}
    assert statuses["pytest -m gpu"] == statuses["throughput fp16"] == "skipped"
    steps = {s["name"]: s for s in summary["steps"]}
    assert steps["default suite"]["numbers"]["timer"] == "perf_counter_ns"
    train = steps["torchrun, 1 process, NCCL"]["numbers"]["train"]["sknet29"]
    assert train["distributed"] == {"backend": "gloo", "world_size": 1} and train["img_per_s"] > 0
    assert steps["SK speed"]["numbers"]["median_ratio"] > 0
    assert (tmp_path / "summary.md").read_text().startswith("# GPU acceptance run")
    assert (tmp_path / "results.tar.gz").stat().st_size > 0
