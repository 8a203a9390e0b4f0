"""Which environment a benchmark set was measured in, as far as it matters for comparing latencies: device
type and name (CPU or GPU model), dtype, torch major.minor and thread count. ``compare`` refuses sets whose
known fields differ (unless forced); an unknown field (None) is not checked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from harness.gate.samples import BenchmarkSet

# Where the manifest environment (``harness.environment.capture_environment``) or a pytest-benchmark
# machine_info keeps each value; the first path that holds a scalar (or a list of names) wins.
_TORCH_PATHS = (("torch",), ("packages", "torch"), ("torch_version",))
_THREAD_PATHS = (("cpu", "torch_threads"), ("threads",), ("torch_threads",))
_GPU_PATHS = (("device", "description"), ("gpus",), ("gpu_name",), ("device_name",))
_CPU_PATHS = (("cpu", "model"), ("cpu", "brand_raw"), ("device", "description"), ("cpu_name",), ("processor",))


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool) or value is None or isinstance(value, dict):
        return None
    if isinstance(value, (str, int, float)):
        return str(value) or None
    if isinstance(value, list):
        names = [_scalar(v.get("name") if isinstance(v, dict) else v) for v in value]
        return ",".join(n for n in names if n) or None
    return None


def _lookup(env: dict[str, Any], paths: Sequence[tuple[str, ...]]) -> str | None:
    for path in paths:
        value: Any = env
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        found = _scalar(value)
        if found is not None:
            return found
    return None


def _joined(values: set[Any]) -> str | None:
    return ",".join(sorted(str(v) for v in values if v is not None)) or None


def environment_fingerprint(bset: BenchmarkSet) -> dict[str, str | None]:
    """Fields that must agree for latencies to be comparable; None means unknown (not checked)."""
    env = bset.environment
    devices = {k.device for k in bset.benchmarks if k.device} or {_lookup(env, [("device", "name")])}
    device_type = _joined({d.split(":")[0] for d in devices if d})
    torch_version = _lookup(env, _TORCH_PATHS)
    match = re.match(r"(\d+)\.(\d+)", torch_version or "")
    threads = _joined({s.threads for s in bset.benchmarks.values()}) or _lookup(env, _THREAD_PATHS)
    return {
        "device_type": device_type,
        "device_name": _lookup(env, _GPU_PATHS if "cuda" in (device_type or "") else _CPU_PATHS),
        "dtype": _joined({k.dtype for k in bset.benchmarks}),
        "torch": f"{match.group(1)}.{match.group(2)}" if match else torch_version,
        "threads": threads,
    }


def environment_mismatches(baseline: BenchmarkSet, candidate: BenchmarkSet) -> list[str]:
    """``"field: baseline vs candidate"`` for each known field that differs."""
    base, cand = environment_fingerprint(baseline), environment_fingerprint(candidate)
    return [
        f"{name}: {base[name]} vs {cand[name]}"
        for name in base
        if base[name] is not None and cand[name] is not None and base[name] != cand[name]
    ]
