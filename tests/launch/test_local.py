"""The whole launcher path on this machine (submitit's local executor): 3 shards of a tiny suite, one killed
mid-way and resubmitted, one preempted and requeued; the merged run equals the unsharded one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import comparable, run_cli, tiny_launch_suite

from harness.results import load_run

pytest.importorskip("submitit")

FAULT_PLUGIN = Path(__file__).with_name("shard_fault_plugin.py")


def _faulty_launch(capsys, monkeypatch, tmp_path: Path, suite: Path, faults: str, *, shards: int):
    """A local launch whose shards end as FAULT_PLUGIN's faults say (killed or preempted after their K-th record)."""
    monkeypatch.setenv("HARNESS_TEST_SHARD_FAULT", faults)
    (tmp_path / "faults").mkdir()
    monkeypatch.setenv("HARNESS_TEST_SHARD_FAULT_DIR", str(tmp_path / "faults"))
    return run_cli(capsys, "run", suite, "--launcher", "local", "--shards", shards, "--out", tmp_path / "r",
                   "--reports", tmp_path / "p", "--no-progress", "--import", FAULT_PLUGIN)


@pytest.mark.slow
def test_killed_and_preempted_shards_resume_and_the_merge_equals_the_unsharded_run(tmp_path, plugin_file, capsys,
                                                                                     monkeypatch):
    suite = tiny_launch_suite(tmp_path, plugin_file)
    code, out, err = _faulty_launch(capsys, monkeypatch, tmp_path, suite, "2/3:kill:1,3/3:preempt:1", shards=3)
    assert code == 0, err
    merged_dir, report = Path(out[0]), Path(out[1])
    (launch_dir,) = (tmp_path / "r" / "launched").glob("launch-*")
    assert merged_dir.name == launch_dir.name.removeprefix("launch-")
    state = json.loads((launch_dir / "launch.json").read_text())
    attempts = {s["name"]: len(s["attempts"]) for s in state["shards"]}
    assert attempts == {"1/3": 1, "2/3": 2, "3/3": 1}  # killed: resubmitted; preempted: requeued as the same job
    assert "shard 2/3 failed (the shard's process ended without a result" in err and "resubmitting it once" in err
    assert all(s["state"] == "done" for s in state["shards"])
    requeued = Path(state["shards"][2]["attempts"][0]["stdout"]).read_text()
    assert "this job is preempted" in requeued and "Requeued job" in requeued

    for shard in ("shard-2of3", "shard-3of3"):  # stopped after the first record, resumed: each task once
        (records,) = (launch_dir / shard).glob("launched/*/records.jsonl")
        ids = [json.loads(line)["task_id"] for line in records.read_text().splitlines()]
        assert len(ids) == 2 and len(set(ids)) == 2

    merged = load_run(merged_dir)
    assert merged.manifest["incomplete"] == [] and len(merged.manifest["merged_from"]) == 3
    assert {r.shard.index for r in merged.records} == {0, 1, 2}
    code, out, err = run_cli(capsys, "run", suite, "--out", tmp_path / "u", "--reports", tmp_path / "p",
                             "--no-progress")
    assert code == 0, err
    unsharded = load_run(Path(out[0]))
    assert len(unsharded.records) == 6
    assert comparable(merged.records) == comparable(unsharded.records)
    text = report.read_text()
    assert "Merged from shards" in text and "Incomplete" not in text


@pytest.mark.slow
def test_a_shard_failing_twice_is_named_and_the_others_are_merged(tmp_path, plugin_file, capsys, monkeypatch):
    suite = tiny_launch_suite(tmp_path, plugin_file)
    # killed after one record, and again after the resume's one
    code, out, err = _faulty_launch(capsys, monkeypatch, tmp_path, suite, "2/2:kill:1:always", shards=2)
    assert code == 1
    assert "error: shard 2/2 failed 2 times; last: the shard's process ended without a result" in err
    assert "_log.err" in err and "the merged run is incomplete (1 of 2 shards)" in err
    merged = load_run(Path(out[0]))
    (problem,) = merged.manifest["incomplete"]
    assert problem["shard"] == "2/2" and problem["log"].endswith("_log.err")
    assert sorted(r.label for r in merged.records) == ["m0", "m1", "m2", "m3", "m4"]  # 3 + 1 + 1: none lost
    assert "Incomplete run" in Path(out[1]).read_text()


@pytest.mark.slow
def test_timing_groups_stay_in_one_shard_and_local_shards_never_share_the_machine(tmp_path, plugin_file, capsys):
    latency = {"batch_sizes": [1], "warmup": 1, "min_time_s": 0.05, "max_time_s": 0.2, "min_samples": 3, "rounds": 2,
               "input_size": [3, 16, 16]}
    suite = tiny_launch_suite(tmp_path, plugin_file, models=4, latency=latency)
    code, out, err = run_cli(capsys, "run", suite, "--launcher", "local", "--shards", 2, "--out", tmp_path / "r",
                             "--reports", tmp_path / "p", "--no-progress")
    assert code == 0, err
    merged = load_run(Path(out[0]))
    timing = merged.of_kind("latency")
    assert len(timing) == 4 * 2
    for label in {r.label for r in timing}:  # every round of a model: one shard, one process, one machine
        assert len({r.shard.index for r in timing if r.label == label}) == 1
    spans = [sorted(r.started_utc for r in merged.records if r.shard.index == i) for i in (0, 1)]
    assert spans[0][-1] <= spans[1][0] or spans[1][-1] <= spans[0][0]  # one shard after the other
    report = Path(out[1]).read_text()
    assert "| shard" in report and "1 of 2" in report and "2 of 2" in report and "## Latency" in report


@pytest.mark.slow
def test_train_gpus_2_trains_a_shard_in_two_gloo_processes(tmp_path, plugin_file, capsys, monkeypatch):
    """train.gpus under the local executor: two tasks per shard, torchrun's variables, DDP over gloo on the CPU
    (under SLURM the same code runs one task per GPU over NCCL; no GPU or SLURM here to run that)."""
    from helpers import plugin_model_name

    from harness.train.fake_cifar import write_fake_cifar

    data = tmp_path / "cifar"
    write_fake_cifar(data, "cifar10", n_train=256, n_test=64, seed=0)
    train = {"dataset": "cifar10", "download": False, "models": [plugin_model_name(plugin_file)], "epochs": 1,
             "batch_size": 32, "gpus": 2}
    suite = tiny_launch_suite(tmp_path, plugin_file, models=2, train=train)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    code, out, err = run_cli(capsys, "run", suite, "--launcher", "local", "--shards", 1, "--data-dir", data,
                             "--out", tmp_path / "r", "--reports", tmp_path / "p", "--no-progress")
    assert code == 0, err
    (trained,) = load_run(Path(out[0])).of_kind("train")
    assert trained.distributed.to_json() == {"world_size": 2, "backend": "gloo"} and len(trained.curve) == 1


BREAKS = """
from torch import nn
from harness import register_model


@register_model("NAME", input_size=(3, 8, 8))
def build(*, fail: bool = False) -> nn.Module:
    if fail:
        raise RuntimeError("the builder of the second model broke")
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten())
"""


@pytest.mark.slow
def test_a_shard_that_raises_shows_its_exception_type_and_message_in_the_merged_report(tmp_path, capsys):
    """A shard is a run request executed where it lands, not an argv list re-entering the CLI: what it raises (here
    --fail-fast's TaskFailed, naming the task) reaches the launcher and the merged report, not just an exit code."""
    name = f"breaks_{tmp_path.name[-6:]}".replace("-", "_")
    plugin = tmp_path / "breaks.py"
    plugin.write_text(BREAKS.replace("NAME", name))
    suite = tmp_path / "s.yaml"
    suite.write_text(json.dumps({"name": "launched", "imports": [str(plugin)], "device": "cpu",
                                 "models": [{"name": name, "label": "ok"},
                                            {"name": name, "label": "bad", "options": {"fail": True}}],
                                 "complexity": {"input_size": [3, 8, 8], "flop_crosscheck": False}}))
    code, out, err = run_cli(capsys, "run", suite, "--launcher", "local", "--shards", 2, "--fail-fast", "--out",
                             tmp_path / "r", "--reports", tmp_path / "p", "--no-progress")
    assert code == 1, err
    assert "shard 2/2 failed 2 times; last: " in err and "TaskFailed" in err
    assert "the builder of the second model broke" in err
    merged = load_run(Path(out[0]))
    (problem,) = merged.manifest["incomplete"]
    assert problem["shard"] == "2/2" and "TaskFailed" in problem["reason"] and "complexity:bad" in problem["reason"]
    text = Path(out[1]).read_text()
    assert "Incomplete run" in text and "TaskFailed" in text and "the builder of the second model broke" in text
