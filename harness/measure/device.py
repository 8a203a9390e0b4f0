"""How a model runs on a device: dtypes, the mode (autocast dtype, memory format, compile), host/device
synchronisation, error translation, and one SGD training step.

Both the timing protocol (``harness.measure.timer``) and the CIFAR training loop (``harness.train.loop``)
run through here, so a train step timed for throughput is the same code as a train step that trains.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from harness.errors import MeasurementError
from harness.measure.mode import COMPILE_MODES, DTYPE_NAMES, Mode

__all__ = ["COMPILE_MODES", "DTYPES", "Mode", "ModeUnsupported", "TrainStep", "autocast", "check_mode", "synchronize"]

DTYPES: dict[str, torch.dtype] = dict(zip(DTYPE_NAMES, (torch.float32, torch.bfloat16, torch.float16), strict=True))


class ModeUnsupported(MeasurementError):
    """The device cannot run the mode (or only emulates it): the model × mode is skipped with this reason."""


def check_mode(mode: Mode, device: torch.device | str) -> None:
    """Raise ``ModeUnsupported`` if ``mode`` cannot run on ``device`` (``MeasurementError`` for a bad device).

    bf16 is timed only where the device computes it natively; where it would be emulated (a CPU without AVX512-BF16
    or AMX, a GPU before compute capability 8.0) the mode is skipped, not timed: an emulated bf16 is slower than
    fp32 by the emulation, and its ratio would say nothing about bf16 (the reason is recorded instead).
    """
    dev = torch.device(device)  # dtype and compile mode are known ones: Mode refuses others
    if dev.type == "cpu":
        if mode.dtype == "fp16":
            raise ModeUnsupported("fp16 autocast is not supported on CPU; use dtype bf16 or fp32")
        if mode.dtype == "bf16" and not native_bf16_cpu():
            raise ModeUnsupported("bf16 is only emulated on this CPU (no AVX512-BF16 or AMX, as oneDNN reports); its "
                                  "timings would be the emulation's, not bf16's")
        if mode.compile is not None and not cpp_compiler():
            raise ModeUnsupported("torch.compile on the CPU needs a C++ compiler (Inductor builds its kernels with "
                                  f"one); none of {', '.join(_cpp_candidates())} found: install one (e.g. apt "
                                  "install g++) or set CXX, or time this mode on CUDA")
        return
    if dev.type != "cuda":
        raise MeasurementError(f"unsupported device {str(dev)!r}; use 'cpu' or 'cuda[:N]'")
    if not torch.cuda.is_available():
        raise MeasurementError(f"device {str(dev)!r} requested but CUDA is not available on this machine")
    if mode.dtype == "bf16" and not native_bf16(dev):
        raise ModeUnsupported(f"bf16 is only emulated on {torch.cuda.get_device_name(dev)} (no bf16 tensor cores: "
                              "compute capability below 8.0); its timings would not be bf16's; use fp16 or fp32")


def native_bf16_cpu() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), as oneDNN, which runs the convolutions, says."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN: no native bf16 kernels either
        return False


def _cpp_candidates() -> list[str]:
    from torch._inductor import config

    cxx = config.cpp.cxx if isinstance(config.cpp.cxx, tuple) else (config.cpp.cxx,)
    return list(dict.fromkeys(c for c in (os.environ.get("CXX"), *cxx) if c))


def cpp_compiler() -> str | None:
    """The C++ compiler Inductor would build CPU kernels with ($CXX, else its configured ``cpp.cxx``), if any."""
    return next((path for name in _cpp_candidates() if (path := shutil.which(name))), None)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` itself (not the current device) computes bf16 natively: compute capability 8.0 (Ampere) or
    newer. ``torch.cuda.is_bf16_supported()`` also says yes where bf16 is emulated (V100, T4), and asks the current
    device."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    major, _ = torch.cuda.get_device_capability(index)
    return major >= 8


def synchronize(device: torch.device | str) -> None:
    """Wait for the device's queue (a no-op on CPU): the host clock then covers the device's work."""
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def autocast(device: torch.device | str, dtype: str | torch.dtype | None) -> contextlib.AbstractContextManager[Any]:
    """``torch.autocast`` to ``dtype``, or nothing for fp32 / None."""
    if isinstance(dtype, str):
        dtype = DTYPES[dtype]
    if dtype is None or dtype is torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def oom_error(batch_size: int, device: torch.device | str) -> MeasurementError:
    return MeasurementError(f"out of memory at batch size {batch_size} on {device}; lower the batch size in the suite")


def _compile_error_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = []
    with contextlib.suppress(ImportError, AttributeError):
        from torch._dynamo.exc import TorchDynamoException

        types.append(TorchDynamoException)
    with contextlib.suppress(ImportError, AttributeError):
        from torch._inductor.exc import InductorError

        types.append(InductorError)
    return tuple(types)


@contextlib.contextmanager
def translating_errors(*, batch_size: int, device: torch.device, compile_mode: str | None) -> Iterator[None]:
    """An OOM or a torch.compile failure becomes a one-line ``MeasurementError``; nothing else is relabelled."""
    try:
        yield
    except torch.OutOfMemoryError as err:
        raise oom_error(batch_size, device) from err
    except _compile_error_types() as err:
        if compile_mode is None:
            raise
        first_line = str(err).splitlines()[0] if str(err) else ""
        raise MeasurementError(
            f"torch.compile(mode={compile_mode!r}) failed on {device}: {type(err).__name__}: {first_line}"
        ) from err


Targets = torch.Tensor | Callable[[torch.Tensor], torch.Tensor]


class TrainStep:
    """One training step: autocast forward and loss, zero_grad, backward (loss-scaled in fp16), optimizer step.

    fp16 needs loss scaling to train (and to be timed realistically); bf16 has fp32's range and does not. The
    forward and the loss run under autocast, the backward outside it, as torch recommends.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, *, device: torch.device | str,
                 amp_dtype: str | None, criterion: nn.Module | None = None) -> None:
        self.model = model
        self.optimizer = optimizer
        self.device = torch.device(device)
        self.amp_dtype = amp_dtype
        self.criterion = criterion if criterion is not None else nn.CrossEntropyLoss()
        self.scaler = torch.amp.GradScaler(self.device.type) if amp_dtype == "fp16" else None

    def __call__(self, inputs: torch.Tensor, targets: Targets) -> torch.Tensor:
        """``targets`` are labels, or a function of the logits that gives them (class count unknown before)."""
        with autocast(self.device, self.amp_dtype):
            logits = self.model(inputs)
            labels = targets(logits) if callable(targets) else targets
            loss = self.criterion(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        return loss
