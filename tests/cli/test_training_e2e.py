"""Training through the CLI on a generated CIFAR-format dataset with a tiny plugin model (CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import plugin_model_name, run_cli

from harness.results import load_run
from harness.train.fake_cifar import write_fake_cifar


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    write_fake_cifar(root, "cifar10", n_train=640, n_test=200, seed=0)
    return root


def _suite(tmp_path: Path, plugin: Path, *, epochs: int = 2, seeds=(0,), models=None, **train) -> Path:
    name = plugin_model_name(plugin)
    suite = {
        "name": "train_e2e", "imports": [str(plugin)],
        "complexity": {"models": [name]},
        "train": {"dataset": "cifar10", "download": False, "models": models or [name], "epochs": epochs,
                  "seeds": list(seeds), "batch_size": 64, "lr": 0.05, **train},
    }
    path = tmp_path / "suite.yaml"
    path.write_text(json.dumps(suite))
    return path


def _run(capsys, *argv) -> tuple[int, list[str], str]:
    return run_cli(capsys, *argv, *(["--no-progress"] if argv[0] == "run" else []))


def _train_records(run_dir: Path) -> list[dict]:
    return [r for r in load_run(run_dir).records if r.kind == "train"]


def test_absent_data_is_one_line_and_skipped_records(tmp_path, plugin_file, capsys):
    suite = _suite(tmp_path, plugin_file, seeds=(0, 1))
    code, out, err = _run(capsys, "run", suite, "--data-dir", tmp_path / "nowhere", "--out", tmp_path / "r",
                          "--reports", tmp_path / "p")
    assert code == 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "cifar10 not found under" in lines[0] and "--data-dir" in lines[0]
    run = load_run(Path(out[0]))
    kinds = sorted((r.kind, r.status) for r in run.records)
    assert kinds == [("complexity", "ok"), ("train", "skipped"), ("train", "skipped")]
    assert "Skipped: cifar10 not found" in Path(out[1]).read_text()


def test_training_learns_and_same_seed_gives_identical_metrics(tmp_path, plugin_file, fake_data, capsys):
    """Identical at the same thread count: `--threads auto` could pick 1 thread in one run and 2 in the other on
    a busy machine, and a float sum split over two threads rounds differently (losses 2.2044447 vs 2.2044453)."""
    suite = _suite(tmp_path, plugin_file, epochs=3, seeds=(0,))
    results = []
    for k in range(2):
        code, out, _ = _run(capsys, "run", suite, "--data-dir", fake_data, "--out", tmp_path / f"r{k}",
                            "--reports", tmp_path / "p", "--threads", "1")
        assert code == 0
        results.append(_train_records(Path(out[0])))
    (first,), (second,) = results  # equal task ids: one record per task
    assert first.synthetic is True and first.epochs == 3 and len(first.curve) == 3
    assert first.top1_err < 70.0  # chance is 90% error on 10 classes
    assert [e.train_loss for e in first.curve] == [e.train_loss for e in second.curve]
    assert first.top1_err == second.top1_err
    report = Path(out[1]).read_text()
    assert "SYNTHETIC DATA" in report and "paper err %" in report


@pytest.mark.slow  # spawns interpreters / asserts a timing verdict: tox -e slow
def test_kill_mid_training_then_resume_records_each_epoch_once(tmp_path, plugin_file, fake_data, capsys):
    suite = _suite(tmp_path, plugin_file, epochs=4, seeds=(0,))
    cmd = [sys.executable, "-m", "harness", "run", str(suite), "--data-dir", str(fake_data), "--out",
           str(tmp_path / "r"), "--reports", str(tmp_path / "p"), "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    records = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        found = list((tmp_path / "r").glob("train_e2e/*/records.jsonl"))
        if found and sum('"train_epoch"' in line for line in found[0].read_text().splitlines()) >= 2:
            records = found[0]
            break
        time.sleep(0.05)
    assert records is not None, "training did not reach epoch 2 in time"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_dir = records.parent
    assert not any('"kind": "train",' in line for line in records.read_text().splitlines())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # resume as the run was started (OMP_NUM_THREADS=1): a resume checks that
    try:
        code, out, err = _run(capsys, "run", suite, "--resume", run_dir, "--data-dir", fake_data, "--reports",
                              tmp_path / "p")
    finally:
        torch.set_num_threads(threads)
    assert code == 0, err
    lines = [json.loads(x) for x in records.read_text().splitlines()]
    epochs = [r["epoch"] for r in lines if r["kind"] == "train_epoch"]
    assert sorted(epochs) == [1, 2, 3, 4]  # none missing, none twice
    assert sum(r["kind"] == "train" for r in lines) == 1
    assert sum(r["kind"] == "complexity" for r in lines) == 1
    assert not list((run_dir / "checkpoints").glob("*.pt"))  # removed once the task succeeded

    # the resumed run ends where an uninterrupted one does
    code, out2, _ = _run(capsys, "run", suite, "--data-dir", fake_data, "--out", tmp_path / "u", "--reports",
                         tmp_path / "p")
    (resumed,), (straight,) = _train_records(run_dir), _train_records(Path(out2[0]))
    assert resumed.top1_err == straight.top1_err


def test_shard_and_merge_round_trip(tmp_path, plugin_file, fake_data, capsys):
    name = plugin_model_name(plugin_file)
    models = [name, {"name": name, "label": "deep", "options": {"repeat": 2}}]
    suite = _suite(tmp_path, plugin_file, epochs=1, models=models)
    shards = []
    for i in (1, 2):
        code, out, _ = _run(capsys, "run", suite, "--shard", f"{i}/2", "--data-dir", fake_data, "--out",
                            tmp_path / "r", "--reports", tmp_path / "p")
        assert code == 0
        shards.append(Path(out[0]))
    ids = [{r.task_id for r in load_run(s).records} for s in shards]
    assert ids[0] and ids[1] and not ids[0] & ids[1]
    code, out, _ = _run(capsys, "merge", *shards, "--out", tmp_path / "m", "--reports", tmp_path / "p")
    assert code == 0
    merged = load_run(Path(out[0]))
    assert {r.task_id for r in merged.records} == ids[0] | ids[1]
    assert merged.manifest["shard"] is None and len(merged.manifest["merged_from"]) == 2
    assert "deep" in Path(out[1]).read_text()
    with pytest.raises(SystemExit) as exit_info:
        _run(capsys, "run", suite, "--shard", "3/2")
    assert exit_info.value.code == 2
    assert "--shard '3/2': I must be between 1 and N" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_two_gloo_processes(tmp_path, plugin_file, fake_data):
    suite = _suite(tmp_path, plugin_file, epochs=2, seeds=(0,))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "harness",
           "run", str(suite), "--data-dir", str(fake_data), "--out", str(tmp_path / "r"), "--reports",
           str(tmp_path / "p"), "--no-progress", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    run_dirs = list((tmp_path / "r" / "train_e2e").iterdir())
    assert len(run_dirs) == 1  # rank 0 alone writes
    (rec,) = _train_records(run_dirs[0])
    assert rec.distributed is not None and rec.distributed.to_json() == {"world_size": 2, "backend": "gloo"}
    assert len(rec.curve) == 2 and 0.0 <= rec.top1_err <= 100.0
    assert all(e.train_loss == e.train_loss for e in rec.curve)  # finite, not NaN
