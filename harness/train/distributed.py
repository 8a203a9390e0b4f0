"""Data-parallel training across processes: who am I, wrap the model, agree on metrics.

Launch with ``torchrun --nproc_per_node N ...``; ``init_from_env`` reads the variables torchrun sets and
joins the process group (NCCL for CUDA, gloo for CPU); ``process_group`` does the same and leaves the group
again on every exit (normal end, exception, Ctrl-C / SIGTERM) when it was the one that created it.
``train(..., dist=ctx)`` then wraps the model in DistributedDataParallel, gives each rank its own shard of every
epoch and all-reduces the epoch metrics, so every rank returns the same numbers; only rank 0 (``is_writer``)
writes checkpoints and records.

Which GPU a rank trains on (``cuda_index``): ``cuda:LOCAL_RANK`` where the node's GPUs are all visible, and the
one visible GPU where the cluster binds one GPU per task (SLURM ``--gpus-per-task=1``, ``CUDA_VISIBLE_DEVICES``
of one entry, LOCAL_RANK then any number).
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.distributed as torch_dist
from torch import nn

from harness.errors import ConfigError

log = logging.getLogger(__name__)

_ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class DistContext:
    """This process's place in the process group."""

    rank: int
    world_size: int
    local_rank: int
    backend: str
    owned: bool = field(default=False, compare=False)  # the harness created the group, so it destroys it

    @property
    def is_writer(self) -> bool:
        """Rank 0 alone writes files, so N processes never race on one checkpoint or record file."""
        return self.rank == 0

    def device(self, device_type: str) -> torch.device:
        """The device this rank trains on: its own GPU under NCCL (``cuda_index``), the CPU under gloo."""
        if device_type != "cuda":
            return torch.device("cpu")
        return torch.device("cuda", cuda_index(self.local_rank, torch.cuda.device_count()))


def cuda_index(local_rank: int, visible: int) -> int:
    """The GPU of the rank with ``local_rank`` among the ``visible`` ones: its own where the node's GPUs are all
    visible, the only one where the cluster bound one GPU to each task; a ``ConfigError`` otherwise."""
    if 0 <= local_rank < visible:
        return local_rank
    if visible == 1:
        return 0
    shown = os.environ.get("CUDA_VISIBLE_DEVICES")
    where = f"CUDA_VISIBLE_DEVICES={shown}" if shown is not None else "CUDA_VISIBLE_DEVICES unset"
    if visible == 0:
        raise ConfigError(f"LOCAL_RANK={local_rank} asks for a GPU but this process sees no GPU ({where}); give each "
                          "task a GPU (SLURM --gpus-per-task=1) or run on the CPU with --device cpu")
    raise ConfigError(f"LOCAL_RANK={local_rank} but this process sees {visible} GPUs ({where}); start at most "
                      f"{visible} processes per node (torchrun --nproc_per_node {visible}), or bind one GPU per task "
                      "(SLURM --gpus-per-task=1)")


def _env_int(name: str) -> int:
    raw = os.environ[name]
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not an integer; launch with torchrun") from None


FORCE_ENV = "HARNESS_DISTRIBUTED"  # "always": join a process group even in a world of one (tests the NCCL path)


def wanted() -> bool:
    """Launched by torchrun with more than one process, or forced with HARNESS_DISTRIBUTED=always."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        world = 2  # init_from_env says what is wrong with it
    return "WORLD_SIZE" in os.environ and (world > 1 or os.environ.get(FORCE_ENV) == "always")


def init_from_env(*, device_type: str | None = None) -> DistContext | None:
    """Join the process group described by torchrun's variables; ``None`` when not launched that way.

    ``device_type`` ("cuda" or "cpu") picks the backend; by default CUDA if available. A world of one
    process returns ``None`` too, so a single-process torchrun run takes the plain code path, unless
    ``HARNESS_DISTRIBUTED=always`` asks for the distributed path anyway (DDP over a one-rank NCCL group: how
    the GPU acceptance run exercises NCCL on one GPU).
    """
    if "WORLD_SIZE" not in os.environ:
        return None
    missing = [v for v in _ENV_VARS if v not in os.environ]
    if missing:
        raise ConfigError(f"WORLD_SIZE is set but {', '.join(missing)} is not; launch with torchrun")
    rank, world_size, local_rank = (_env_int(v) for v in _ENV_VARS)
    if world_size <= 1 and os.environ.get(FORCE_ENV) != "always":
        return None
    if device_type is None:
        device_type = "cuda" if torch.cuda.is_available() else "cpu"
    backend = "nccl" if device_type == "cuda" else "gloo"
    if backend == "nccl":
        # Before init: NCCL binds each process's communicator to the current device.
        torch.cuda.set_device(cuda_index(local_rank, torch.cuda.device_count()))
    owned = not torch_dist.is_initialized()
    if owned:
        torch_dist.init_process_group(backend=backend)
    ctx = DistContext(rank=rank, world_size=world_size, local_rank=local_rank, backend=backend, owned=owned)
    log.info("joined process group: rank %d of %d (%s)", ctx.rank, ctx.world_size, backend)
    return ctx


def init_process(
    *,
    rank: int,
    world_size: int,
    init_method: str,
    backend: str = "gloo",
    local_rank: int | None = None,
    timeout_s: float | None = None,
) -> DistContext:
    """Join a process group without torchrun (e.g. ``torch.multiprocessing`` workers in tests).

    ``timeout_s`` bounds how long a collective waits for a dead peer (torch's default is many minutes).
    """
    timeout = None if timeout_s is None else datetime.timedelta(seconds=timeout_s)
    torch_dist.init_process_group(
        backend=backend, init_method=init_method, rank=rank, world_size=world_size, timeout=timeout
    )
    return DistContext(
        rank=rank, world_size=world_size, local_rank=rank if local_rank is None else local_rank, backend=backend
    )


@contextmanager
def process_group(*, device_type: str | None = None) -> Iterator[DistContext | None]:
    """``init_from_env`` for the ``with`` block; the group is destroyed when the block ends, however it ends, if
    this call created it (a group the caller created before is left to the caller)."""
    ctx = init_from_env(device_type=device_type)
    try:
        yield ctx
    finally:
        leave(ctx)


def leave(ctx: DistContext | None) -> None:
    """Destroy the group ``ctx`` joined, if the harness created it; a no-op the second time."""
    if ctx is not None and ctx.owned and torch_dist.is_initialized():
        torch_dist.destroy_process_group()
        log.info("left the process group: rank %d of %d", ctx.rank, ctx.world_size)


def shutdown() -> None:
    """Leave the process group, if one was joined."""
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def wrap_model(model: nn.Module, ctx: DistContext, *, device: torch.device) -> nn.Module:
    """DistributedDataParallel around ``model``, which must already be on ``device``."""
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def _comm_device(ctx: DistContext) -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if ctx.backend == "nccl" else torch.device("cpu")


def all_reduce(values: Sequence[float], *, op: Literal["sum", "max"], ctx: DistContext | None) -> list[float]:
    """Reduce a few Python numbers over all ranks (float64, so image counts stay exact)."""
    if ctx is None:
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=_comm_device(ctx))
    torch_dist.all_reduce(t, op=torch_dist.ReduceOp.SUM if op == "sum" else torch_dist.ReduceOp.MAX)
    return t.tolist()


@torch.no_grad()
def broadcast_buffers(module: nn.Module, ctx: DistContext | None) -> None:
    """Copy rank 0's buffers (BatchNorm running stats) to every rank.

    DDP syncs buffers at the start of each forward, so after the last step every rank holds stats
    updated by its own last batch; evaluating without this would give each rank a slightly different model.
    """
    if ctx is None:
        return
    for buf in module.buffers():
        torch_dist.broadcast(buf, src=0)
