"""The SLURM path against a faked ``sbatch`` / ``srun`` / ``sacct`` / ``scancel`` on PATH: the submitted job array
(size, resources, the command each task runs), ``--no-wait`` output, and array tasks run as a node runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import comparable, run_cli, tiny_launch_suite

from harness.results import load_run
from harness.results.store import RunLock

submitit = pytest.importorskip("submitit")

JOB = "4242"


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch) -> Path:
    """sbatch keeps the script it was given and answers as SLURM does; the others do nothing."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scripts = tmp_path / "sbatch-scripts"
    scripts.mkdir()
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\ncp "$1" "{scripts}/$(ls {scripts} | wc -l).sh"\n'
                                    f'echo "Submitted batch job {JOB}"\n')
    for name in ("srun", "sacct", "scancel", "squeue"):
        (bin_dir / name).write_text("#!/bin/sh\nexit 0\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return scripts


def _submit(tmp_path, plugin_file, capsys, *extra) -> tuple[list[str], Path, Path]:
    suite = tiny_launch_suite(tmp_path, plugin_file, launcher={"partition": "gpu", "account": "proj", "time": "4:00:00",
                                                          "cpus_per_task": 8, "mem": "32G", "setup": ["module load x"]})
    code, out, err = run_cli(capsys, "run", suite, "--launcher", "slurm", "--shards", 3, "--no-wait", "--out",
                             tmp_path / "r", "--reports", tmp_path / "p", "--slurm", "gpus_per_node=2",
                             "--slurm", "qos=high", *extra)
    assert code == 0, err
    return out, Path(out[0]), suite


def test_the_job_array_and_the_command_of_each_task(tmp_path, plugin_file, fake_slurm, capsys):
    out, launch_dir, _ = _submit(tmp_path, plugin_file, capsys)
    assert out[1] == f"jobs: {JOB}_0 {JOB}_1 {JOB}_2"
    assert out[2].endswith(f"python -m harness merge {launch_dir} --out {tmp_path / 'r'} "
                           f"--reports {tmp_path / 'p'}")
    (script,) = fake_slurm.iterdir()  # one sbatch: the shards are one array
    flags = {line.split("=", 1)[0]: line.split("=", 1)[1] for line in script.read_text().splitlines()
             if line.startswith("#SBATCH --") and "=" in line}
    assert flags["#SBATCH --array"] == "0-2%3"
    assert flags["#SBATCH --partition"] == "gpu" and flags["#SBATCH --account"] == "proj"
    assert flags["#SBATCH --qos"] == "high" and flags["#SBATCH --time"] == "240"
    assert flags["#SBATCH --gpus-per-node"] == "2" and flags["#SBATCH --ntasks-per-node"] == "1"
    assert flags["#SBATCH --cpus-per-task"] == "8" and flags["#SBATCH --mem"] == "32G"
    assert flags["#SBATCH --job-name"] == "harness-launched" and flags["#SBATCH --signal"] == "USR2@120"
    text = script.read_text()
    assert "module load x" in text and f"-m submitit.core._submit {launch_dir / 'logs'}" in text
    assert "srun --unbuffered" in text
    for i in range(3):  # what each array task runs
        job = submitit.core.utils.DelayedSubmission.load(launch_dir / "logs" / f"{JOB}_{i}_submitted.pkl").function
        run = job.request.options  # a run request, not an argv list re-entering the CLI
        assert job.request.suite.name == "launched" and run.shard == (i, 3) and run.device == "cpu"
        assert run.out_root == launch_dir / f"shard-{i + 1}of3" and run.progress is False and run.resume is None
        assert run.argv == ["run", str(launch_dir / "suite.yaml"), "--shard", f"{i + 1}/3", "--device", "cpu",
                            "--out", str(launch_dir / f"shard-{i + 1}of3")]
        assert callable(job.checkpoint)
    state = json.loads((launch_dir / "launch.json").read_text())
    assert [s["attempts"][0]["job_id"] for s in state["shards"]] == [f"{JOB}_0", f"{JOB}_1", f"{JOB}_2"]
    # nothing ran yet: merging says so, one line, exit 2
    code, out, err = run_cli(capsys, "merge", launch_dir, "--out", tmp_path / "m", "--reports", tmp_path / "p")
    assert code == 2 and "no shard wrote a run dir yet" in err and len(err.strip().splitlines()) == 1


def _as_the_node(launch_dir: Path, index: int) -> subprocess.Popen:
    """Array task ``index`` as SLURM starts it on a node: srun's variables, then submitit's entry point."""
    env = {**os.environ, "SUBMITIT_EXECUTOR": "slurm", "SLURM_JOB_ID": str(5000 + index), "SLURM_ARRAY_JOB_ID": JOB,
           "SLURM_ARRAY_TASK_ID": str(index), "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0",
           "SLURM_NTASKS": "1", "SLURM_JOB_NUM_NODES": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-u", "-m", "submitit.core._submit", str(launch_dir / "logs")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_array_tasks_run_on_a_node_then_merge_the_launch_dir(tmp_path, plugin_file, fake_slurm, capsys):
    _, launch_dir, suite = _submit(tmp_path, plugin_file, capsys, "--device", "cpu")
    nodes = [_as_the_node(launch_dir, i) for i in (0, 2)]  # shard 2/3 never runs (e.g. cancelled)
    for node in nodes:
        assert node.wait(timeout=120) == 0, node.stderr.read()[-2000:]
    for i in (1, 3):
        done = json.loads((launch_dir / f"shard-{i}of3" / "done.json").read_text())
        assert "--shard" in done["argv"] and f"{i}/3" in done["argv"]
    shard_dir = next((launch_dir / "shard-1of3").glob("launched/*"))
    with RunLock(shard_dir, argv=["run", "still writing"]):  # a shard still running: merging waits for it
        refused = run_cli(capsys, "merge", launch_dir, "--out", tmp_path / "m", "--reports", tmp_path / "p")
    assert refused[0] == 2 and "is in use by process" in refused[2] and "still writing" in refused[2]
    code, out, err = run_cli(capsys, "merge", launch_dir, "--out", tmp_path / "m", "--reports", tmp_path / "p")
    assert code == 1 and "error: shard 2/3 not finished" in err
    merged = load_run(Path(out[0]))
    assert [p["shard"] for p in merged.manifest["incomplete"]] == ["2/3"]
    assert merged.manifest["launch"]["executor"] == "slurm"
    assert len(merged.records) == 4  # two models per shard
    assert "Incomplete run" in Path(out[1]).read_text() and "shard 2/3" in Path(out[1]).read_text()
    code, out, err = run_cli(capsys, "run", suite, "--out", tmp_path / "u", "--no-report", "--no-progress")
    unsharded = [r for r in load_run(Path(out[0])).records if r.label not in ("m1", "m4")]
    assert comparable(merged.records) == comparable(unsharded)


def test_a_refused_submission_is_one_line(tmp_path, plugin_file, fake_slurm, capsys):
    sbatch = fake_slurm.parent / "bin" / "sbatch"
    sbatch.write_text("#!/bin/sh\necho 'sbatch: error: invalid partition specified: nope' >&2\nexit 1\n")
    suite = tiny_launch_suite(tmp_path, plugin_file)
    code, out, err = run_cli(capsys, "run", suite, "--launcher", "slurm", "--shards", 2, "--out", tmp_path / "r",
                             "--slurm", "partition=nope")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "submitting shard(s) 1/2, 2/2 failed: sbatch: error: invalid partition specified: nope" in err


@pytest.mark.slow
def test_the_waiting_launcher_sees_array_tasks_end(tmp_path, plugin_file, fake_slurm, monkeypatch):
    """sbatch starts each array task in the background as a node would; the launcher waits for their results
    (array job ids, submitit's result files) and merges."""
    from harness.config import load_suite
    from harness.launch import LaunchOptions, finish, launch

    sbatch = fake_slurm.parent / "bin" / "sbatch"
    sbatch.write_text(f"""#!{sys.executable}
import os, re, subprocess, sys
script = open(sys.argv[1]).read()
last = int(re.search(r"--array=0-(\\d+)", script).group(1))
folder = script.split("submitit.core._submit ")[-1].split()[0]
for i in range(last + 1):
    env = {{**os.environ, "SUBMITIT_EXECUTOR": "slurm", "SLURM_JOB_ID": str(5000 + i), "SLURM_ARRAY_JOB_ID": "{JOB}",
           "SLURM_ARRAY_TASK_ID": str(i), "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0",
           "SLURM_NTASKS": "1", "SLURM_JOB_NUM_NODES": "1", "OMP_NUM_THREADS": "1"}}
    subprocess.Popen([sys.executable, "-u", "-m", "submitit.core._submit", folder], env=env,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
print("Submitted batch job {JOB}")
""")
    suite = load_suite(tiny_launch_suite(tmp_path, plugin_file))
    options = LaunchOptions(executor="slurm", shards=3, out_root=tmp_path / "r", device="cpu", progress=False,
                            poll_s=0.2)
    launched = launch(suite, options=options)
    assert launched.job_ids == [f"{JOB}_0", f"{JOB}_1", f"{JOB}_2"]
    state = json.loads((launched.launch_dir / "launch.json").read_text())
    assert [s["state"] for s in state["shards"]] == ["done"] * 3
    merged, problems = finish(launched.launch_dir, out_root=tmp_path / "r")
    assert problems == [] and len(load_run(merged).records) == 6


def test_ctrl_c_while_waiting_says_how_to_merge_what_the_shards_wrote(tmp_path, plugin_file, fake_slurm, capsys,
                                                                      monkeypatch):
    """The launcher's wait interrupted: the submitted jobs keep running, and the CLI prints the merge command (the
    exception that carries it is typed, harness.errors.Interrupted), then exits as Ctrl-C does."""
    from harness.launch import launcher

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(launcher, "_wait", interrupted)
    suite = tiny_launch_suite(tmp_path, plugin_file)
    code, _, err = run_cli(capsys, "run", suite, "--launcher", "slurm", "--shards", 2, "--out", tmp_path / "r",
                           "--reports", tmp_path / "p")
    (launch_dir,) = (tmp_path / "r").glob("*/launch-*")
    assert code == 130
    assert (f"stopped waiting; jobs already submitted to SLURM keep running. Merge what the shards wrote with: "
            f"python -m harness merge {launch_dir} --out {tmp_path / 'r'} --reports {tmp_path / 'p'}") in err
