"""Data-parallel training on 2 CPU processes (gloo) gives one agreed, single-run-shaped result."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from harness.errors import ConfigError
from harness.results.records import DistributedInfo, TrainRecord
from harness.train import distributed as hdist
from harness.train.config import TrainConfig
from harness.train.data import load_cifar
from harness.train.fake_cifar import write_fake_cifar
from harness.train.loop import train

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = dict(epochs=1, batch_size=16, lr=0.05, schedule="cosine", max_batches_per_epoch=3, eval_batch_size=64)


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    )


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fake_cifar(tmp_path_factory.mktemp("cifar"), "cifar10", n_train=200, n_test=100, seed=0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, data_root: str, out_dir: str) -> None:
    # A forked child must not enter OpenMP regions the parent's thread pool owned; one thread avoids them.
    torch.set_num_threads(1)
    ctx = hdist.init_process(rank=rank, world_size=world_size, init_method=f"tcp://127.0.0.1:{port}", timeout_s=60)
    try:
        data = load_cifar("cifar10", data_dir=Path(data_root))
        ckpt = Path(out_dir) / "ck.pt"
        result = train(tiny_net(), data, TrainConfig(**CONFIG), device="cpu", dist=ctx, checkpoint_path=ckpt)
        (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps(result.to_record()))
    finally:
        hdist.shutdown()


def _check(records: list[dict], single: dict) -> None:
    for record in records:
        assert set(record) == set(single) and record["epochs"] == single["epochs"] == 1
        (epoch,) = record["curve"]
        assert set(epoch) == set(single["curve"][0])
        assert math.isfinite(epoch["train_loss"]) and 0.0 <= epoch["test_acc"] <= 1.0
    # Every rank reports the same all-reduced metrics (timings are max-reduced, so equal too).
    assert records[0] == records[1]


def test_two_process_gloo_run_agrees_and_matches_single_shape(data_root: Path, tmp_path: Path) -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = train(tiny_net(), load_cifar("cifar10", data_dir=data_root), TrainConfig(**CONFIG), device="cpu")
    finally:
        torch.set_num_threads(before)
    # fork: a spawned child would re-import torch, several seconds on a small box.
    mp.start_processes(_worker, args=(2, _free_port(), str(data_root), str(tmp_path)), nprocs=2, start_method="fork")
    records = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    _check(records, single.to_record())
    # The global batch is 2×16 per step, the test set is split over ranks but counted once.
    assert records[0]["curve"][0]["img_per_s"] == pytest.approx(3 * 32 / records[0]["curve"][0]["train_wall_s"])
    state = torch.load(tmp_path / "ck.pt", weights_only=True)
    assert state["epoch"] == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt", "rank0.json", "rank1.json"]


TORCHRUN_SCRIPT = """
import json, sys
from pathlib import Path
import torch
from torch import nn
from harness.train import distributed as hdist
from harness.train.data import load_cifar
from harness.train.config import TrainConfig
from harness.train.loop import train

torch.set_num_threads(1)
ctx = hdist.init_from_env(device_type="cpu")
assert ctx is not None and ctx.world_size == 2 and ctx.backend == "gloo"
torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
result = train(model, load_cifar("cifar10", data_dir=Path(sys.argv[1])), TrainConfig(**json.loads(sys.argv[3])),
               device="cpu", dist=ctx)
Path(sys.argv[2], f"rank{ctx.rank}.json").write_text(json.dumps(result.to_record()))
hdist.shutdown()
"""


@pytest.mark.slow
def test_torchrun_two_processes(data_root: Path, tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(TORCHRUN_SCRIPT))
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "OMP_NUM_THREADS": "1",
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(script),
        str(data_root),
        str(tmp_path),
        json.dumps(CONFIG),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = train(tiny_net(), load_cifar("cifar10", data_dir=data_root), TrainConfig(**CONFIG), device="cpu")
    _check([json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)], single.to_record())


def test_init_from_env_without_torchrun_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert hdist.init_from_env() is None
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert hdist.init_from_env() is None  # a world of one takes the plain path


def test_init_from_env_rejects_partial_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(ConfigError, match="RANK"):
        hdist.init_from_env()
    monkeypatch.setenv("RANK", "zero")
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(ConfigError, match="RANK='zero'"):
        hdist.init_from_env()


def test_context_roles(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    writer = hdist.DistContext(rank=0, world_size=2, local_rank=0, backend="gloo")
    other = hdist.DistContext(rank=1, world_size=2, local_rank=1, backend="nccl")
    assert writer.is_writer and not other.is_writer
    assert writer.device("cpu") == torch.device("cpu") and other.device("cuda") == torch.device("cuda", 1)
    assert hdist.all_reduce([1, 2.5], op="sum", ctx=None) == [1.0, 2.5]


def test_a_world_of_one_takes_the_plain_path_unless_forced(monkeypatch):
    for name, value in {"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": str(_free_port())}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(hdist.FORCE_ENV, raising=False)
    assert not hdist.wanted() and hdist.init_from_env(device_type="cpu") is None
    monkeypatch.setenv(hdist.FORCE_ENV, "always")  # how the GPU acceptance run exercises NCCL on one GPU
    assert hdist.wanted()
    ctx = hdist.init_from_env(device_type="cpu")
    try:
        assert (ctx.rank, ctx.world_size, ctx.backend, ctx.is_writer) == (0, 1, "gloo", True)
        assert hdist.all_reduce([2.0, 3.0], op="sum", ctx=ctx) == [2.0, 3.0]
    finally:
        hdist.shutdown()


# ------------------------------------------------------------------ which GPU a rank takes (faked device counts)


@pytest.mark.parametrize(("local_rank", "visible", "index"), [(0, 4, 0), (3, 4, 3), (1, 1, 0), (5, 1, 0)])
def test_a_rank_takes_its_local_rank_or_the_one_gpu_the_cluster_bound_to_it(local_rank, visible, index):
    assert hdist.cuda_index(local_rank, visible) == index


def test_more_ranks_than_visible_gpus_is_one_line_saying_what_was_visible(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    with pytest.raises(ConfigError) as info:
        hdist.cuda_index(2, 2)
    message = str(info.value)
    assert "\n" not in message and "LOCAL_RANK=2" in message and "2 GPU" in message
    assert "CUDA_VISIBLE_DEVICES=0,1" in message and "--gpus-per-task=1" in message
    with pytest.raises(ConfigError, match="no GPU"):
        hdist.cuda_index(0, 0)


def test_the_context_device_follows_the_visible_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # SLURM --gpus-per-task=1: one GPU, LOCAL_RANK 1
    bound = hdist.DistContext(rank=1, world_size=2, local_rank=1, backend="nccl")
    assert bound.device("cuda") == torch.device("cuda", 0) and bound.device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)  # all of the node's GPUs visible
    assert bound.device("cuda") == torch.device("cuda", 1)


# ------------------------------------------------------------------ the process group: joined, left on every exit


def _torchrun_env(monkeypatch, *, force: bool = True) -> None:
    for name, value in {"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": str(_free_port())}.items():
        monkeypatch.setenv(name, value)
    if force:
        monkeypatch.setenv(hdist.FORCE_ENV, "always")


def test_process_group_is_left_on_a_normal_end_and_on_an_interrupt(monkeypatch):
    _torchrun_env(monkeypatch)
    with hdist.process_group(device_type="cpu") as ctx:
        assert ctx is not None and ctx.owned and torch.distributed.is_initialized()
    assert not torch.distributed.is_initialized()
    with pytest.raises(KeyboardInterrupt), hdist.process_group(device_type="cpu"):  # Ctrl-C, SIGTERM
        raise KeyboardInterrupt
    assert not torch.distributed.is_initialized()
    with pytest.raises(RuntimeError), hdist.process_group(device_type="cpu"):
        raise RuntimeError("a task failed")
    assert not torch.distributed.is_initialized()


def test_a_process_group_the_user_created_is_left_to_the_user(monkeypatch):
    _torchrun_env(monkeypatch)
    torch.distributed.init_process_group(backend="gloo")
    try:
        with hdist.process_group(device_type="cpu") as ctx:
            assert ctx is not None and not ctx.owned
        assert torch.distributed.is_initialized()
    finally:
        hdist.shutdown()


def test_without_torchrun_there_is_no_group_to_leave(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    with hdist.process_group(device_type="cpu") as ctx:
        assert ctx is None


# ------------------------------------------------------------------ a whole run under torchrun's variables (gloo)


def _run_worker(rank: int, port: int, suite_path: str, data_root: str, out_dir: str,
                resume: str | None = None) -> None:
    """One rank of ``harness run`` as torchrun starts it; says which tasks it ran while the group existed."""
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    os.environ.pop(hdist.FORCE_ENV, None)
    from harness import runner
    from harness.config import load_suite
    from harness.models.plugins import import_plugins
    from harness.tasks.timing import MemberFailed

    seen: list[list] = []
    real_run_task = runner.run_task

    def run_task(task, **kwargs):
        seen.append([task.kind, torch.distributed.is_initialized()])
        return real_run_task(task, **kwargs)

    def time_groups(groups, **kwargs):  # what rank 0 would time: only whether the group still exists matters here
        seen.append(["timing", torch.distributed.is_initialized()])
        return {g.task_id: [(MemberFailed(RuntimeError("not timed in this test")), 0.0)] * len(g.members)
                for g in groups}

    runner.run_task, runner._time_groups = run_task, time_groups
    suite_file = Path(suite_path)
    import_plugins([str(suite_file.parent / "my_plugin.py")])
    from harness.errors import HarnessError

    error = run_dir = None
    try:
        run_dir = runner.run_suite(load_suite(suite_file), options=runner.RunOptions(
            out_root=Path(out_dir) / "r", device="cpu", data_dir=data_root, progress=False, threads=1,
            resume=None if resume is None else Path(resume)))
    except HarnessError as exc:
        error = str(exc)
    outcome = {"seen": seen, "run_dir": None if run_dir is None else str(run_dir),
               "group_after": torch.distributed.is_initialized()}
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(outcome if error is None else {**outcome, "error": error}))


def _two_ranks(tmp_path: Path, *args) -> tuple[dict, dict]:
    procs = mp.start_processes(_run_worker, args=(_free_port(), *args), nprocs=2, start_method="fork", join=False)
    deadline = time.monotonic() + 120
    while not procs.join(timeout=1):
        if time.monotonic() > deadline:  # a rank blocked in a collective: fail instead of hanging the suite
            for p in procs.processes:
                p.kill()
            pytest.fail("a rank did not end within 120 s")
    assert [p.exitcode for p in procs.processes] == [0, 0]
    return tuple(json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))


def test_under_torchrun_the_ranks_train_together_then_rank_0_alone_times(data_root, tmp_path, plugin_file):
    """No rank waits in a collective while rank 0 does single-process work, and the group is destroyed."""
    from helpers import plugin_model_name

    from harness.results import load_run

    name = plugin_model_name(plugin_file)
    suite = {"name": "dist_run", "imports": [str(plugin_file)], "models": [name],
             "complexity": {"input_size": [3, 16, 16], "flop_crosscheck": False},
             "latency": {"batch_sizes": [1], "warmup": 1, "min_time_s": 0.01, "processes": 1},
             "train": {"dataset": "cifar10", "download": False, "models": [name], "epochs": 1, "seeds": [0],
                       "batch_size": 16, "max_batches_per_epoch": 2, "save_weights": False}}
    suite_path = tmp_path / "suite.yaml"
    suite_path.write_text(json.dumps(suite))
    rank0, rank1 = _two_ranks(tmp_path, str(suite_path), str(data_root), str(tmp_path))
    assert rank1 == {"seen": [["train", True]], "run_dir": None, "group_after": False}  # rank 1 timed nothing
    assert rank0["seen"][0] == ["train", True] and not rank0["group_after"]
    assert sorted(kind for kind, in_group in rank0["seen"][1:] if not in_group) == ["complexity", "timing"]
    records = load_run(Path(rank0["run_dir"])).records
    (trained,) = [r for r in records if r.kind == "train"]
    assert isinstance(trained, TrainRecord) and trained.distributed == DistributedInfo(world_size=2, backend="gloo")
    assert {r.kind: r.status for r in records}["complexity"] == "ok"


def _interrupted_run(tmp_path: Path, plugin_file: Path, monkeypatch) -> None:
    from helpers import plugin_model_name

    from harness import runner
    from harness.config import parse_suite

    def interrupted(task, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C, or SIGTERM as the CLI turns it into one, inside a training task

    monkeypatch.setattr(runner, "run_task", interrupted)
    name = plugin_model_name(plugin_file)
    suite = parse_suite({"name": "dist_stop", "imports": [str(plugin_file)], "models": [name],
                         "train": {"dataset": "cifar10", "models": [name], "epochs": 1, "seeds": [0]}},
                        source="test")
    with pytest.raises(KeyboardInterrupt):
        runner.run_suite(suite, options=runner.RunOptions(out_root=tmp_path / "r", device="cpu", progress=False,
                                                          threads=1))


def test_a_stopped_distributed_run_destroys_the_group_it_created(tmp_path, plugin_file, monkeypatch):
    _torchrun_env(monkeypatch)
    _interrupted_run(tmp_path, plugin_file, monkeypatch)
    assert not torch.distributed.is_initialized()


def test_a_run_leaves_the_group_its_caller_created(tmp_path, plugin_file, monkeypatch):
    _torchrun_env(monkeypatch)
    torch.distributed.init_process_group(backend="gloo")
    try:
        _interrupted_run(tmp_path, plugin_file, monkeypatch)
        assert torch.distributed.is_initialized()
    finally:
        hdist.shutdown()


def test_when_rank_0_cannot_start_the_run_the_other_ranks_stop_too(data_root, tmp_path, plugin_file):
    """A refused resume on rank 0 ends every rank with one line, none waits for a training that never comes."""
    from helpers import plugin_model_name, write_run

    name = plugin_model_name(plugin_file)
    suite_path = tmp_path / "suite.yaml"
    suite_path.write_text(json.dumps({"name": "dist_run", "imports": [str(plugin_file)], "models": [name],
                                      "train": {"dataset": "cifar10", "download": False, "models": [name],
                                                "epochs": 1, "seeds": [0], "batch_size": 16}}))
    other = write_run(tmp_path / "other" / "dist_run" / "run1", [], manifest={"suite": {"name": "another"}})
    rank0, rank1 = _two_ranks(tmp_path, str(suite_path), str(data_root), str(tmp_path), str(other))
    assert "the suite differs" in rank0["error"] and rank0["seen"] == []
    assert rank1["error"] == "rank 0 did not start the run (its error says why); this rank stops"
    assert rank1["seen"] == [] and not rank0["group_after"] and not rank1["group_after"]
