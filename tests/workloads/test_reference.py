"""The reference workload must never change: baselines taken with another one would no longer compare."""

from __future__ import annotations

import torch
from torch import nn

import harness
from harness.measure.params import count_params

# Pinned when the workload was made self-contained; a change here invalidates every frozen baseline.
PARAMS = 3 * 32 * 9 + 32 + 32 * 64 * 9 + 64 + 64 * 8 * 9 + 64 + 64 * 128 * 9 + 128 + 128 * 8 * 9 + 128 + 128 * 10 + 10


def _output() -> torch.Tensor:
    model = harness.create_model("reference_convnet").eval()
    x = torch.linspace(-1.0, 1.0, 2 * 3 * 32 * 32).reshape(2, 3, 32, 32)
    with torch.inference_mode():
        return model(x)


def test_structure_is_fixed():
    model = harness.create_model("reference_convnet")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0], c.groups) for c in convs] == [
        (3, 32, 1, 1), (32, 64, 2, 1), (64, 64, 1, 8), (64, 128, 2, 1), (128, 128, 1, 16)]
    assert count_params(model).params == PARAMS
    # self-contained: plain torch layers only, nothing that a model family's optimisation could change
    assert {type(m).__module__.split(".")[0] for m in model.modules()} == {"torch"}


def test_weights_do_not_depend_on_the_global_seed():
    torch.manual_seed(1)
    a = _output()
    torch.manual_seed(2)
    b = _output()
    assert torch.equal(a, b)


def test_output_is_pinned():
    out = _output()
    assert out.shape == (2, 10)
    expected = torch.tensor(PINNED)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


# The output on the fixed input above, recorded when the workload was made self-contained (torch 2.14, CPU).
PINNED = [
    [-0.267211, -0.481489, -0.471609, -0.654279, 0.178414, 0.015611, -0.845244, 0.134565, 0.098442, -0.279157],
    [-0.063703, 0.072836, -0.579606, -0.876763, 0.241286, 0.118873, -2.140658, 0.134755, 0.294798, -0.139999],
]
