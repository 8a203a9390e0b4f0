"""Records as the runner writes them, built by hand for results / report tests (importable: tests/ is on
sys.path)."""

from __future__ import annotations

from harness.models.registry import canonical_options
from harness.results.records import check_new


def _checked(record: dict) -> dict:
    """``record``, checked as the writer checks every record (its kind's type, no undeclared field)."""
    check_new(record)
    return record

MANIFEST = {"run_id": "r1", "created_utc": "2026-01-01T00:00:00Z", "device": "cpu",
            "git": {"commit": "abc123", "dirty": False},
            "environment": {"cpu": {"model": "Test CPU", "torch_threads": 2}, "packages": {"torch": "2.9.0"}}}


def _model(name: str, label: str | None = None, **options) -> dict:
    return {"model": name, "label": label or name, "options": options,
            "canonical_options": canonical_options(name, options)}


def latency(label: str, name: str, samples: list[float], rnd: int = 0, *, check: bool = True, **options) -> dict:
    """A latency record; ``check=False`` for a hostile one (bad samples) that a reader must refuse."""
    return (_checked if check else dict)({
        "task_id": f"latency:{label}:r{rnd}", "kind": "latency", "status": "ok", **_model(name, label, **options),
            "batch_size": 1, "device": "cpu", "dtype": "fp32", "channels_last": False, "compile": None,
            "samples_ms": samples, "warmup_ms": [9.0], "round": rnd, "wall_s": sum(samples) / 1e3, "threads": 2,
            "peak_mem_bytes": 500 << 20, "iter_peak_mem_bytes": 10 << 20, "mem_method": "torch_profiler+rss"})


def complexity(name: str, macs: int, acts: int, label: str | None = None, **options) -> dict:
    return _checked({"task_id": f"complexity:{label or name}", "kind": "complexity", "status": "ok",
            **_model(name, label, **options), "params": 1000, "params_trainable": 1000, "macs": macs,
            "activations": acts, "input_size": [3, 224, 224],
            "stages": ["stem", "stages.0"],
            "modules": [["stem", 10, 1], ["stages.0", macs - 10, acts - 1], ["stages.0.0.conv2.paths.1", 5, 1]]})
