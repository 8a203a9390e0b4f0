"""``--device auto|cpu|cuda|cuda:N``: an index is a whole number below the visible GPU count, checked where the run
starts; anything else is one line and exit 2. ``cuda:N`` takes every CUDA path ``cuda`` takes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import run_cli

from harness import environment, runner
from harness.config import parse_suite
from harness.errors import ConfigError
from harness.plan import expand


def _suite(tmp_path: Path) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps({"name": "s", "models": ["sknet50"], "complexity": {}}))
    return path


def _lines(err: str) -> list[str]:
    return [line for line in err.strip().splitlines() if line]


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal of a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:1"])
def test_a_gpu_asked_for_where_there_is_no_cuda_is_the_same_one_line(tmp_path, capsys, device):
    code, out, err = run_cli(capsys, "run", _suite(tmp_path), "--device", device, "--out", tmp_path / "r")
    assert code == 2 and out == [] and not (tmp_path / "r").exists()
    (line,) = _lines(err)
    assert line == f"error: device '{device}' requested but CUDA is not available here; use --device cpu or auto"


@pytest.mark.parametrize("device", ["nvidia", "cuda:x", "cuda:-1", "cuda:1.0", "cuda:", "cpu:0", "CUDA"])
def test_a_device_that_is_not_a_device_is_an_argparse_error(tmp_path, capsys, device):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(capsys, "run", _suite(tmp_path), "--device", device, "--out", tmp_path / "r")
    out, err = capsys.readouterr()
    assert exit_info.value.code == 2 and out == ""
    usage, line = _lines(err)
    assert usage.startswith("usage:") and f"--device {device!r}" in line and "cuda:N" in line


def _two_gpus(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def test_an_index_below_the_visible_count_is_the_device_used(monkeypatch):
    _two_gpus(monkeypatch)
    assert environment.resolve_device("cuda:1") == "cuda:1"
    assert environment.resolve_device("cuda") == "cuda" and environment.resolve_device("auto") == "cuda"


def test_an_index_past_the_visible_gpus_is_one_line_saying_what_is_visible(monkeypatch):
    _two_gpus(monkeypatch)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    with pytest.raises(ConfigError) as info:
        environment.resolve_device("cuda:2")
    message = str(info.value)
    assert "\n" not in message and message.startswith("--device cuda:2: this process sees 2 GPUs")
    assert "CUDA_VISIBLE_DEVICES=2,3" in message and "cuda:0 to cuda:1" in message


def test_cuda_n_plans_the_cuda_batch_sizes_and_names_the_device_it_runs_on():
    suite = parse_suite({"name": "s", "models": ["sknet50"],
                         "latency": {"batch_sizes": {"cpu": [1], "cuda": [8, 16]}},
                         "train": {"dataset": "cifar10", "models": ["sknet29"], "epochs": 1, "seeds": [0]}})
    timed = [t for t in expand(suite, device="cuda:1") if t.kind == "latency"]
    assert sorted(m.batch_size for t in timed for m in t.members) == [8, 16]
    assert {m.device for t in timed for m in t.members} == {"cuda:1"}
    (trained,) = [t for t in expand(suite, device="cuda:1") if t.kind == "train"]
    assert trained.device == "cuda:1"


def test_launcher_and_torchrun_refuse_an_index(tmp_path, capsys, monkeypatch):
    code, out, err = run_cli(capsys, "run", _suite(tmp_path), "--device", "cuda:1", "--launcher", "local",
                             "--shards", "1", "--out", tmp_path / "r")
    assert code == 2 and not (tmp_path / "r").exists()
    (line,) = _lines(err)
    assert "--device cuda:1" in line and "--launcher" in line
    for name, value in {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(runner, "resolve_device", lambda device: device)  # as on a machine with two GPUs
    suite = parse_suite({"name": "s", "models": ["sknet50"], "complexity": {}})
    with pytest.raises(ConfigError, match="--device cuda:1 under torchrun: each rank takes the GPU of its LOCAL_RANK"):
        runner.run_suite(suite, options=runner.RunOptions(out_root=tmp_path / "r", device="cuda:1", progress=False))
    assert not (tmp_path / "r").exists()


@pytest.mark.gpu
def test_a_run_on_cuda_0_records_the_device_it_ran_on(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps({"name": "s", "models": ["sknet50"],
                                "latency": {"batch_sizes": [1], "warmup": 1, "min_time_s": 0.05, "processes": 1}}))
    code, out, err = run_cli(capsys, "run", path, "--device", "cuda:0", "--out", tmp_path / "r", "--reports",
                             tmp_path / "p", "--no-progress")
    assert code == 0, err
    from harness.results import load_run

    run = load_run(Path(out[0]))
    assert run.manifest["device"] == "cuda:0" and run.manifest["environment"]["device"]["name"] == "cuda:0"
    timed = [r for r in run.records if r.kind == "latency"]
    assert timed and {r.device for r in timed} == {"cuda:0"} and {r.status for r in timed} == {"ok"}
    assert {r.timer for r in timed} == {"cuda_event"}
