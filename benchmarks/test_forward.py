"""Forward-pass benchmarks of the registry's models with pytest-benchmark, on the CPU in fp32.

    pytest benchmarks/test_forward.py --benchmark-only --benchmark-json forward.json
    python -m harness gate check forward.json --baseline forward-before.json

Options (``benchmarks/conftest.py``): ``--models`` (default ``resnext50,senet50,sknet50``), ``--batch-size`` (1),
``--side`` (each model's own input size, 224 here), ``--threads`` (``auto``: the harness's rule). Every
pytest-benchmark option applies (``--benchmark-min-rounds``, ``--benchmark-max-time``, ``--benchmark-autosave
--benchmark-save-data``, ``--benchmark-compare`` …). About 10 s for the three default models on the 2-core
development machine at one thread (medians: ResNeXt-50 74–75 ms, SENet-50 80–82 ms, SKNet-50 90 ms).

The model is in ``eval()`` and every pass runs under ``torch.inference_mode()``, as the harness's own timer runs
it. ``extra_info`` carries what the regression gate reads from a pytest-benchmark file (batch size, device,
dtype, memory format, compile mode, threads; the values spelled as the harness's records spell them, so that
an export of a harness run, ``python -m harness export RUN --format pytest-benchmark``, speaks the same language)
and the input size.
"""

from __future__ import annotations

import pytest
import torch

from harness.models.registry import create_model


def test_forward(benchmark, model: str, side: int, batch_size: int, threads: int) -> None:
    torch.manual_seed(0)
    net = create_model(model).eval()
    x = torch.randn(batch_size, 3, side, side)
    benchmark.group = f"forward: batch {batch_size}, fp32, cpu"  # pytest-benchmark's tables: one per group
    benchmark.extra_info.update(
        model=model, batch_size=batch_size, device="cpu", dtype="fp32", channels_last=False, compile=None,
        threads=threads, input_size=[3, side, side],
    )
    with torch.inference_mode():
        out = benchmark(net, x)
    assert out.shape[0] == batch_size and bool(torch.isfinite(out).all())


if __name__ == "__main__":  # ``python benchmarks/test_forward.py [pytest options]``
    import sys

    sys.exit(pytest.main([__file__, "--benchmark-only", *sys.argv[1:]]))
