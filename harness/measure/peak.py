"""The device's achievable multiply-add rate: a large matmul timed in a given dtype.

It is the denominator of "utilisation" in the throughput report (achieved GMAC/s of a model ÷ this).
"""

from __future__ import annotations

import logging
import time

import torch

from harness.measure.device import DTYPES, check_mode, synchronize
from harness.measure.mode import DEFAULT_DTYPE, Dtype, Mode

log = logging.getLogger(__name__)
_SEED = 0


def _window(a: torch.Tensor, b: torch.Tensor, dev: torch.device, seconds: float) -> tuple[int, float]:
    """Matmuls for at least ``seconds`` (at least one); (calls, elapsed seconds)."""
    calls = 0
    start = time.perf_counter()
    while calls == 0 or time.perf_counter() - start < seconds:
        torch.mm(a, b)
        calls += 1
        # On CUDA the host must wait for the queue, or elapsed time would count only launches.
        synchronize(dev)
    return calls, time.perf_counter() - start


def measure_peak_gmacs(
    device: torch.device | str, *, dtype: Dtype = DEFAULT_DTYPE, size: int | None = None, min_time_s: float = 0.5
) -> float:
    """Achieved GMAC/s of an ``size``x``size`` matmul in ``dtype`` (MACs = size**3). It follows the current
    TF32 flags, so measure it under the same ``harness.environment.backend_flags`` as the models."""
    dev = torch.device(device)
    check_mode(Mode(dtype=dtype), dev)
    # 512 on CPU keeps a bf16 run (emulated on CPUs without bf16 units) near one second in total.
    n = size or (8192 if dev.type == "cuda" else 512)
    generator = torch.Generator().manual_seed(_SEED)
    a = torch.randn((n, n), generator=generator).to(device=dev, dtype=DTYPES[dtype])
    b = torch.randn((n, n), generator=generator).to(device=dev, dtype=DTYPES[dtype])
    with torch.inference_mode():
        torch.mm(a, b)  # first call picks kernels and allocates; not timed
        synchronize(dev)
        _window(a, b, dev, min_time_s / 2)  # ramp-up: a GPU raises its clocks under load over tens of ms
        # the best of three windows: the peak the device reaches, not one window's average with a clock dip
        calls, elapsed_s = max((_window(a, b, dev, min_time_s / 3) for _ in range(3)), key=lambda w: w[0] / w[1])
    gmacs = calls * n**3 / elapsed_s / 1e9
    log.debug("peak %s %s: %.1f GMAC/s (n=%d, %d calls)", dev, dtype, gmacs, n, calls)
    return gmacs
