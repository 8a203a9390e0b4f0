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
    # most important first: timing and memory of the Table 2 trio, the A/A calibration, modes, compile, training
    assert names == ["default suite", "A/A calibration (R = 5)", "modes (fp32, bf16 + channels_last, compile)",
                     "throughput fp16", "pytest -m gpu", "fake CIFAR",
                     "cifar_short (bf16 AMP, channels_last)", "torchrun, 1 process, NCCL", "SK speed"]
    parser = build_parser()
    for step in steps:
        words = step.command
        if "harness" in words and "-m" in words:
            args = words[words.index("harness") + 1:]
            parsed = parser.parse_args(args)
            if args[0] == "run":
                assert (ROOT / parsed.suite).is_file()
                assert all("=" in item for item in parsed.overrides)
    torchrun = steps[names.index("torchrun, 1 process, NCCL")]
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


def test_the_plan_is_chunks_of_at_most_8_minutes_by_its_estimates(acceptance, tmp_path, capsys):
    steps = acceptance["plan"](tmp_path, dry=False)
    chunks = acceptance["chunks"](steps)
    assert sorted(i for chunk in chunks for i in chunk) == list(range(1, len(steps) + 1))
    for chunk in chunks:
        assert sum(steps[i - 1].estimate_s for i in chunk) <= acceptance["CHUNK_S"] == 480
        assert all(steps[i - 1].timeout_s <= 600 for i in chunk)  # one device command runs 10 minutes at most
    for i, step in enumerate(steps, 1):  # a step that reads another's output is in the same chunk
        if step.needs:
            (chunk,) = [c for c in chunks if i in c]
            assert any(steps[j - 1].name == step.needs for j in chunk)
    assert chunks[0] == [1, 2]  # the default suite's timing and memory first, then the A/A calibration
    assert acceptance["main"](["--plan"]) == 0
    assert "chunk 1: about 440 s" in capsys.readouterr().out


def test_steps_are_chosen_by_number_or_exact_name_and_unknown_ones_are_refused(acceptance, tmp_path):
    steps = acceptance["plan"](tmp_path, dry=False)
    select = acceptance["select"]
    assert [s.name for s in select(steps, ["2", "throughput fp16"])] == [
        "A/A calibration (R = 5)", "throughput fp16"]
    # a step's dependency comes along
    assert [s.name for s in select(steps, ["cifar_short (bf16 AMP, channels_last)"])] == [
        "fake CIFAR", "cifar_short (bf16 AMP, channels_last)"]
    for bad in ("torchrun", "0", "10", "", "default suite,SK speed"):
        with pytest.raises(SystemExit, match="names no step"):
            select(steps, [bad])


def test_the_summary_is_written_after_every_step(acceptance, tmp_path, monkeypatch):
    """A run cut short (a device call's time limit) keeps the summary of the steps it finished."""
    calls = []

    def fake_run(step, out, logs, *, dry):
        calls.append(step.name)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed mid-way
        step.status, step.wall_s = "ok", 1.0

    monkeypatch.setitem(acceptance["main"].__globals__, "_run", fake_run)
    with pytest.raises(KeyboardInterrupt):
        acceptance["main"](["--out", str(tmp_path), "--dry-run", "--only", "1", "--only", "3"])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [(s["name"], s["status"]) for s in summary["steps"]] == [
        ("default suite", "ok"), ("modes (fp32, bf16 + channels_last, compile)", "not run")]
