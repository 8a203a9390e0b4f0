"""The launcher's settings: the suite's `launcher:` section and --slurm, checked like every other section
(one line, exit 2); a missing submitit; the resources a shard asks for (train.gpus: one task per GPU)."""

from __future__ import annotations

import builtins
import json

import pytest
from helpers import run_cli, tiny_launch_suite

from harness.config import parse_suite
from harness.launch.launcher import shard_resources, slurm_parameters


def _one_line_exit_2(capsys, *argv) -> str:
    code, out, err = run_cli(capsys, *argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and not out, err
    return lines[0]


@pytest.mark.parametrize(("launcher", "says"), [
    ({"partiton": "gpu"}, "unknown key 'launcher.partiton'; did you mean 'partition'?"),
    ({"time": "4h"}, "key 'launcher.time': '4h' is not a SLURM time"),
    ({"mem": "lots"}, "key 'launcher.mem': 'lots' is not a memory size"),
    ({"shards": 0}, "key 'launcher.shards': Input should be greater than 0"),
    ({"gpus_per_node": -1}, "key 'launcher.gpus_per_node'"),
])
def test_a_bad_launcher_section_is_one_line(tmp_path, plugin_file, capsys, launcher, says):
    suite = tiny_launch_suite(tmp_path, plugin_file, launcher=launcher)
    assert says in _one_line_exit_2(capsys, "run", suite, "--launcher", "local", "--shards", "2", "--out", tmp_path)


def test_bad_slurm_options_and_flags_are_one_line(tmp_path, plugin_file, capsys):
    suite = tiny_launch_suite(tmp_path, plugin_file)
    run = ("run", suite, "--out", tmp_path / "r")
    assert "unknown key 'launcher.partiton'; did you mean 'partition'?" in _one_line_exit_2(
        capsys, *run, "--launcher", "local", "--shards", "2", "--slurm", "partiton=gpu")
    assert "--slurm 'time': write KEY=VALUE" in _one_line_exit_2(
        capsys, *run, "--launcher", "local", "--shards", "2", "--slurm", "time")
    assert "--launcher needs the number of shards" in _one_line_exit_2(capsys, *run, "--launcher", "local")
    assert "--shards, --no-wait needs --launcher slurm|local" in _one_line_exit_2(capsys, *run, "--shards", "2",
                                                                                "--no-wait")
    assert "--shard does not go with --launcher" in _one_line_exit_2(capsys, *run, "--launcher", "local",
                                                                     "--shards", "2", "--shard", "1/2")
    assert "--no-wait with --launcher local starts every shard at once, but at most 1" in _one_line_exit_2(
        capsys, *run, "--launcher", "local", "--shards", "2", "--no-wait", "--slurm", "array_parallelism=1")
    assert "no `srun` on PATH" in _one_line_exit_2(capsys, *run, "--launcher", "slurm", "--shards", "2",
                                                   "--slurm", "partition=gpu")
    assert not (tmp_path / "r").exists()  # refused before anything was written


def test_without_submitit_the_launcher_says_how_to_install_it(tmp_path, plugin_file, capsys, monkeypatch):
    real_import = builtins.__import__

    def no_submitit(name, *args, **kwargs):
        if name == "submitit" or name.startswith("submitit."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_submitit)
    suite = tiny_launch_suite(tmp_path, plugin_file)
    for kind in ("slurm", "local"):
        line = _one_line_exit_2(capsys, "run", suite, "--launcher", kind, "--shards", "3", "--out", tmp_path / "r")
        assert line == ("error: --launcher needs submitit, which is not installed; install it with "
                        'pip install -e ".[slurm]"')


def _suite(**sections) -> object:
    return parse_suite({"name": "s", "models": ["sknet50"], **sections})


def test_resources_one_task_per_gpu_for_multi_gpu_training():
    """What SLURM is asked for (cannot be run here: no SLURM, no GPU): train.gpus tasks and GPUs per shard."""
    train = {"models": ["sknet29"], "gpus": 4}
    params = slurm_parameters(_suite(train=train), device="auto")
    assert params["ntasks_per_node"] == 4 and params["gpus_per_node"] == 4 and params["time"] == 60
    assert shard_resources(_suite(train=train), device="cpu") == {"tasks": 4, "gpus": 0}  # 4 gloo processes
    assert shard_resources(_suite(), device="auto") == {"tasks": 1, "gpus": 1}
    assert "gpus_per_node" not in slurm_parameters(_suite(), device="cpu")
    with pytest.raises(Exception, match="train.gpus: 4 trains each shard on 4 GPUs, but launcher.gpus_per_node is 2"):
        shard_resources(_suite(train=train, launcher={"gpus_per_node": 2}), device="cuda")


def test_a_shard_of_several_tasks_exports_torchruns_variables(monkeypatch):
    """Under SLURM each task of a shard gets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_* (torchrun's contract)."""
    from harness.launch.shard import _export_distributed

    for name, value in {"SUBMITIT_EXECUTOR": "slurm", "SLURM_JOB_ID": "77", "SLURM_NTASKS": "4",
                        "SLURM_JOB_NUM_NODES": "1", "SLURM_NODEID": "0", "SLURM_PROCID": "3", "SLURM_LOCALID": "3",
                        "SLURM_JOB_NODELIST": "gpu[07]", "CUDA_VISIBLE_DEVICES": "0,1,2,3"}.items():
        monkeypatch.setenv(name, value)
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "LOCAL_WORLD_SIZE"):
        monkeypatch.setenv(name, "")  # recorded, so what the export sets is removed after the test
        monkeypatch.delenv(name)
    import os

    assert _export_distributed() == 3
    assert {k: os.environ[k] for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")} == {
        "RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "3", "MASTER_ADDR": "gpu07"}
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1,2,3"  # every GPU stays visible: the runner picks cuda:3
    assert int(os.environ["MASTER_PORT"]) > 0


def test_the_export_above_left_no_torchrun_variables_behind():
    import os

    assert not {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR"} & set(os.environ)


def test_launcher_section_round_trips_through_the_suite_snapshot():
    suite = _suite(launcher={"time": "1-00:00:00", "mem": 64, "setup": "module load cuda"})
    again = parse_suite(json.loads(json.dumps(suite.to_dict())))
    assert again == suite and again.launcher.time == 1440 and again.launcher.mem == "64G"
    assert again.launcher.setup == ["module load cuda"]


@pytest.mark.parametrize(("key", "value"), [
    ("partition", "gpu\ntouch /tmp/owned"), ("account", "proj;touch x"), ("qos", "high $(id)"),
    ("constraint", "a100\necho hi"), ("partition", "gpu`id`"), ("account", "-x"), ("qos", ""),
    ("constraint", "a100'"),
])
def test_a_launcher_value_outside_slurms_grammar_is_refused(tmp_path, plugin_file, capsys, key, value):
    """A suite is a shared file: no launcher value may become a line (or part of one) of the job script."""
    suite = tiny_launch_suite(tmp_path, plugin_file, launcher={key: value})
    line = _one_line_exit_2(capsys, "run", suite, "--launcher", "local", "--shards", "2", "--out", tmp_path / "r")
    assert f"key 'launcher.{key}'" in line and "SLURM" in line
    assert not (tmp_path / "r").exists()


def test_a_slurm_flag_with_a_newline_is_refused(tmp_path, plugin_file, capsys):
    suite = tiny_launch_suite(tmp_path, plugin_file)
    line = _one_line_exit_2(capsys, "run", suite, "--launcher", "local", "--shards", "2", "--out", tmp_path / "r",
                            "--slurm", "partition=gpu\ntouch owned")
    assert "launcher.partition" in line and "\n" not in line


@pytest.mark.parametrize("setup", [["module load x\ntouch owned"], ["ok", "a\rb"], ["nul\x00byte"]])
def test_a_setup_entry_is_one_shell_line(tmp_path, plugin_file, capsys, setup):
    """``setup`` is the one place a suite asks for shell by design; each entry is exactly one line of it."""
    suite = tiny_launch_suite(tmp_path, plugin_file, launcher={"setup": setup})
    line = _one_line_exit_2(capsys, "run", suite, "--launcher", "local", "--shards", "2", "--out", tmp_path / "r")
    assert "launcher.setup" in line and "one line" in line


@pytest.mark.parametrize(("key", "value"), [("partition", "gpu,gpu-long"), ("account", "proj_1.x"),
                                            ("qos", "high"), ("constraint", "[a100|h100]&ib*2")])
def test_slurms_own_forms_are_accepted(key, value):
    suite = parse_suite({"name": "s", "models": ["resnext50"], "launcher": {key: value}}, source="t")
    assert getattr(suite.launcher, key) == value


@pytest.mark.parametrize("count", ["0", "-2"])
def test_zero_or_negative_shards_are_refused(tmp_path, plugin_file, capsys, count):
    suite = tiny_launch_suite(tmp_path, plugin_file, launcher={"shards": 2})
    code, out, err = run_cli(capsys, "run", suite, "--launcher", "local", "--shards", count, "--out", tmp_path / "r")
    assert code == 2 and out == [] and err.strip() == f"error: --shards {count}: give at least 1"
    assert not (tmp_path / "r").exists()


def test_shards_are_lowered_to_what_the_suite_can_fill_and_local_shards_never_outnumber_the_cores(monkeypatch):
    from harness.launch import launcher

    suite = parse_suite({"name": "s", "models": ["resnext50", "senet50"], "complexity": {}}, source="t")
    assert launcher.fitting_shards(suite, 5, device="cpu") == 2 and launcher.fitting_shards(suite, 10**6,
                                                                                          device="cpu") == 2
    assert launcher.fitting_shards(suite, 1, device="cpu") == 1
    monkeypatch.setattr(launcher, "usable_cores", lambda: 2)
    assert launcher.local_parallelism(suite, 8) == 2  # a complexity-only suite: as many as the cores
    timed = parse_suite({"name": "s", "models": ["resnext50"], "latency": {}}, source="t")
    assert launcher.local_parallelism(timed, 8) == 1  # models timed: one at a time


@pytest.mark.slow
def test_a_launch_of_more_shards_than_the_suite_fills_says_so_and_launches_fewer(tmp_path, plugin_file, capsys):
    suite = tiny_launch_suite(tmp_path, plugin_file, models=2)
    code, out, err = run_cli(capsys, "run", suite, "--launcher", "local", "--shards", "1000000", "--out",
                             tmp_path / "r", "--reports", tmp_path / "p", "--no-progress")
    assert code == 0, err
    assert "--shards 1000000: the suite splits into at most 2 shard(s) (its models and timing groups); launching 2" \
        in err
    state = json.loads(next((tmp_path / "r" / "launched").glob("launch-*/launch.json")).read_text())
    assert len(state["shards"]) == 2
