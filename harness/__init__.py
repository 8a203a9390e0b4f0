"""harness: reproduce Selective Kernel Networks (CVPR 2019) against SENet and ResNeXt.

The public API is imported lazily (PEP 562), so ``import harness`` and ``python -m harness --help`` import
no torch; ``harness.create_model`` does, on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_API = {
    "HarnessError": "harness.errors",
    "register_model": "harness.models.registry",
    "create_model": "harness.models.registry",
    "list_models": "harness.models.registry",
    "load_suite": "harness.config",
    "load_run": "harness.results",
    "load_runs": "harness.results",
    "run_suite": "harness.runner",
    "RunOptions": "harness.runner",
}
__all__ = [
    "HarnessError",
    "RunOptions",
    "create_model",
    "list_models",
    "load_run",
    "load_runs",
    "load_suite",
    "register_model",
    "run_suite",
]

if TYPE_CHECKING:
    from harness.config import load_suite
    from harness.errors import HarnessError
    from harness.models.registry import create_model, list_models, register_model
    from harness.results import load_run, load_runs
    from harness.runner import RunOptions, run_suite


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
