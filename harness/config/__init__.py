"""Suites: the schema (``schema``: sections that extend the measurement and training configs) and reading them
(``load``)."""

from harness.config.load import apply_overrides, load_suite, parse_suite
from harness.config.schema import (
    ComplexitySection,
    ModelSpec,
    Suite,
    TimingSection,
    TrainSection,
)

__all__ = [
    "ComplexitySection",
    "ModelSpec",
    "Suite",
    "TimingSection",
    "TrainSection",
    "apply_overrides",
    "load_suite",
    "parse_suite",
]
