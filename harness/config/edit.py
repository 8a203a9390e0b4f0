"""Edits of a loaded suite that command-line flags make (the result is validated as a suite file would be)."""

from __future__ import annotations

from harness.config.load import parse_suite
from harness.config.schema import Suite

TIMING_SECTIONS = ("latency", "throughput")


def with_processes(suite: Suite, processes: int, *, source: str) -> Suite:
    """``suite`` with every timing section timed in ``processes`` worker processes (``run --processes``)."""
    data = suite.to_dict()
    for key in TIMING_SECTIONS:
        if data.get(key) is not None:
            data[key] = {**data[key], "processes": processes}
    return parse_suite(data, source=source)
