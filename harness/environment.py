"""The machine a run is on: what it is (CPU, GPUs, clocks, software versions, git state of the harness) as a
JSON-serialisable dict for the run manifest, which device a run uses, and the backend flags that change kernel
choice (cudnn.benchmark, TF32), read for records and set per task.

Every probe is best effort: a missing package, file or tool gives ``None`` for that field, never an
exception, because a run must not fail for lack of provenance detail.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from harness.errors import ConfigError
from harness.measure.load import usable_cores

log = logging.getLogger(__name__)

_PACKAGES = ("torch", "torchvision", "timm", "fvcore", "numpy", "scipy")
_NVIDIA_SMI_TIMEOUT_S = 10.0
# Clocks are recorded because a GPU at base clock and one boosting differ by tens of percent.
_NVIDIA_SMI_FIELDS = (
    "index",
    "name",
    "driver_version",
    "pci.bus_id",
    "clocks.sm",
    "clocks.mem",
    "clocks.max.sm",
    "clocks.max.mem",
    "power.limit",
    "persistence_mode",
    "temperature.gpu",
)


def _package_version(name: str) -> str | None:
    # Read from metadata rather than importing: importing timm or fvcore is slow and has side effects.
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _cpuinfo_lines() -> list[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return handle.read().splitlines()
    except OSError:
        return []


def _cpu_model(lines: list[str]) -> str | None:
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return platform.processor() or None


def _physical_cores(lines: list[str]) -> int | None:
    """Distinct (socket, core) pairs from /proc/cpuinfo; None where it does not say."""
    cores: set[tuple[str, str]] = set()
    socket_id = core_id = None
    for line in [*lines, ""]:
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "physical id":
            socket_id = value
        elif key == "core id":
            core_id = value
        elif not key and socket_id is not None and core_id is not None:
            cores.add((socket_id, core_id))
            socket_id = core_id = None
    return len(cores) or None


def _cpu_info() -> dict[str, Any]:
    lines = _cpuinfo_lines()
    return {
        "model": _cpu_model(lines),
        "logical_cores": os.cpu_count(),
        "physical_cores": _physical_cores(lines),
        "usable_cores": usable_cores(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
    }


def _cudnn_version() -> int | None:
    try:
        return torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    except RuntimeError:
        return None


def _torch_gpus(*, cuda: bool, smi: list[dict[str, str]] | None) -> list[dict[str, Any]]:
    """The GPUs as torch sees them; for a run that does not use CUDA, as nvidia-smi names them (torch's device
    queries would create a CUDA context, hundreds of MB on every GPU node running a CPU job)."""
    if not cuda:
        return [{"index": int(row["index"]), "name": row["name"]}
                for row in smi or () if row.get("index", "").isdigit()]
    if not torch.cuda.is_available():
        return []
    gpus = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        gpus.append(
            {
                "index": index,
                "name": props.name,
                "capability": f"{props.major}.{props.minor}",
                "total_memory_bytes": int(props.total_memory),
                "multiprocessors": int(props.multi_processor_count),
            }
        )
    return gpus


def _nvidia_smi() -> list[dict[str, str]] | None:
    """One dict per GPU from nvidia-smi, or None if the tool is absent or fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    command = [exe, f"--query-gpu={','.join(_NVIDIA_SMI_FIELDS)}", "--format=csv,noheader,nounits"]
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=_NVIDIA_SMI_TIMEOUT_S, check=True
        )
    except (OSError, subprocess.SubprocessError) as err:
        log.warning("nvidia-smi failed, GPU clocks not recorded: %s", err)
        return None
    rows = []
    for line in completed.stdout.strip().splitlines():
        values = [value.strip() for value in line.split(",")]
        if len(values) == len(_NVIDIA_SMI_FIELDS):
            rows.append(dict(zip(_NVIDIA_SMI_FIELDS, values, strict=True)))
    return rows


def _device_info(device: str | None) -> dict[str, Any] | None:
    if device is None:
        return None
    try:
        dev = torch.device(device)
    except RuntimeError:
        return {"name": device, "description": None}
    if dev.type == "cuda" and torch.cuda.is_available():
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        if index < torch.cuda.device_count():
            return {"name": str(dev), "description": torch.cuda.get_device_name(index)}
    if dev.type == "cpu":
        return {"name": "cpu", "description": _cpu_model(_cpuinfo_lines())}
    return {"name": str(dev), "description": None}


def capture_environment(device: str | None = None) -> dict[str, Any]:
    """Versions, CPU, GPUs, clocks and backend flags of this process; ``device`` adds that device's name. A CPU
    device creates no CUDA context (GPU names then come from nvidia-smi)."""
    cuda = device is None or str(device).startswith("cuda")
    smi = _nvidia_smi()
    return {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hostname": socket.gethostname(),
        "packages": {name: _package_version(name) for name in _PACKAGES},
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": _cudnn_version() if cuda else None,
        "cuda_available": torch.cuda.is_available(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "cpu": _cpu_info(),
        "gpus": _torch_gpus(cuda=cuda, smi=smi),
        "nvidia_smi": smi,
        "backend_flags": current_backend_flags(),
        "device": _device_info(device),
    }


def fingerprint(environment: dict[str, Any]) -> dict[str, Any]:
    """What in an environment changes measured results: torch version, CPU and GPU models, thread count."""
    cpu: dict[str, Any] = environment["cpu"] if isinstance(environment.get("cpu"), dict) else {}
    gpus: list[Any] = environment["gpus"] if isinstance(environment.get("gpus"), list) else []
    return {
        "torch": environment.get("torch"),
        "CPU": cpu.get("model"),
        "torch threads": cpu.get("torch_threads"),
        "GPUs": [g.get("name") for g in gpus if isinstance(g, dict)],
    }


def resolve_device(requested: str) -> str:
    """``auto`` → cuda when available, else cpu; an explicit ``cuda`` or ``cuda:N`` without CUDA, or ``cuda:N``
    past the GPUs this process sees, is a ``ConfigError``."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {requested!r} requested but CUDA is not available here; use --device cpu or auto")
    _, sep, index = requested.partition(":")
    if sep:
        visible = torch.cuda.device_count()
        if int(index) >= visible:
            shown = os.environ.get("CUDA_VISIBLE_DEVICES")
            where = f"CUDA_VISIBLE_DEVICES={shown}" if shown is not None else "CUDA_VISIBLE_DEVICES unset"
            raise ConfigError(f"--device {requested}: this process sees {visible} GPUs ({where}); use cuda:0 to "
                              f"cuda:{visible - 1}, counted among the visible ones")
    return requested


def git_state(cwd: Path | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the working tree the harness runs from (None outside git).

    Read-only: ``--no-optional-locks`` keeps ``git status`` from refreshing and rewriting a stale index (and
    from taking ``index.lock``, which would break a git command the user runs at the same time).
    """

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "--no-optional-locks", *args], cwd=cwd, capture_output=True, text=True,
                                 timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


# ------------------------------------------------------------------------------------- backend flags


def current_backend_flags() -> dict[str, bool]:
    """The cuDNN / TF32 switches that change kernel choice, for the record."""
    tf32_matmul = bool(torch.backends.cuda.matmul.allow_tf32)
    tf32_cudnn = bool(torch.backends.cudnn.allow_tf32)
    return {
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        # torch's default is mixed (cuDNN on, matmul off), so the single flag is true only when both are.
        "tf32": tf32_matmul and tf32_cudnn,
        "tf32_matmul": tf32_matmul,
        "tf32_cudnn": tf32_cudnn,
    }


@contextmanager
def backend_flags(*, cudnn_benchmark: bool, tf32: bool | None) -> Iterator[None]:
    """Set cudnn.benchmark and both TF32 switches (``tf32=None``: leave them as they are) for the ``with`` block,
    then restore them."""
    saved = (
        torch.backends.cudnn.benchmark,
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
    )
    torch.backends.cudnn.benchmark = cudnn_benchmark
    if tf32 is not None:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
    try:
        yield
    finally:
        (
            torch.backends.cudnn.benchmark,
            torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.allow_tf32,
        ) = saved
