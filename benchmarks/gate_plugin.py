"""A plugin model for the latency gate's tests and error-rate script: a conv stack of known, scalable cost.

``gate_convnet`` is ``depth`` identical 3×3 convolutions (``channels`` → ``channels`` at the input's resolution,
each followed by ReLU) behind a small stem and ahead of a global-pool + linear head. All body layers cost
the same, so the body's multiply-adds scale exactly with the number of layers: at the defaults
(``depth=10``) a cost factor of 1.2 builds 12 layers and 1.5 builds 15 — a real 1.2× / 1.5× compute change
of the body (the stem and head add under 2% of the MACs), not a sleep.

The cost factor is the builder option ``cost``. The gate compares benchmarks whose key (model, label,
*options*, batch, device, dtype, …) is equal on both sides, as in CI where the suite stays the same and the
code changes. So the tests keep the suite's options fixed and inject the "code change" through the
environment variable ``HARNESS_GATE_PLUGIN_COST``, which ``cost`` reads when it is not set explicitly.

Register it with ``--import benchmarks/gate_plugin.py`` or ``imports: [benchmarks/gate_plugin.py]``.
"""

from __future__ import annotations

import os

from torch import nn

from harness import register_model
from harness.errors import ConfigError

NAME = "gate_convnet"
COST_ENV = "HARNESS_GATE_PLUGIN_COST"
# The cost when neither the option nor the environment variable sets one. The same-job gate's tests and error
# rates copy this file into two "checkouts" with different values here: a code change, as in a pull request.
DEFAULT_COST = 1.0


def _cost_factor(cost: float | None) -> float:
    raw = os.environ.get(COST_ENV, DEFAULT_COST) if cost is None else cost
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{COST_ENV}={raw!r}: expected a number such as 1.2") from None
    if not value > 0:
        raise ConfigError(f"gate_convnet cost factor must be > 0, got {value}")
    return value


@register_model(NAME, family="user", description="conv stack whose cost scales with depth × cost (gate tests)",
                input_size=(3, 32, 32))
def gate_convnet(*, channels: int = 32, depth: int = 10, cost: float | None = None,
                 num_classes: int = 10) -> nn.Module:
    """``round(depth × cost)`` equal 3×3 conv layers; ``cost`` None reads $HARNESS_GATE_PLUGIN_COST, else
    ``DEFAULT_COST``."""
    layers_n = max(1, round(depth * _cost_factor(cost)))
    layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1), nn.ReLU()]
    for _ in range(layers_n):
        layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU()]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
    return nn.Sequential(*layers)
