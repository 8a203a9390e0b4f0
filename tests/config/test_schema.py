"""One source of defaults: every suite setting that is also a parameter of the measurement or training code
takes that code's default, so a suite and a notebook run the same protocol."""

from __future__ import annotations

import dataclasses

import pytest

from harness.config import parse_suite
from harness.config.schema import TimingSection, TrainSection, default_of
from harness.measure.mode import Mode
from harness.measure.sampling import TimingConfig
from harness.plan import expand
from harness.train.config import TrainConfig

PAIRS = [(TimingSection, TimingConfig), (TimingSection, Mode), (TrainSection, TrainConfig)]


@pytest.mark.parametrize(("section", "dataclass"), PAIRS, ids=lambda c: c.__name__)
def test_shared_fields_have_the_dataclass_default(section, dataclass):
    shared = [f for f in dataclasses.fields(dataclass) if f.name in section.model_fields]
    assert shared, "the pair shares no field; the test would prove nothing"
    for field in shared:
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            continue  # required in the dataclass (TrainConfig.epochs): the suite's default is its own
        assert section.model_fields[field.name].default == default_of(dataclass, field.name), field.name


def test_a_minimal_suite_runs_the_library_protocol():
    suite = parse_suite({"name": "x", "models": ["sknet29"], "latency": {},
                         "train": {"models": ["sknet29"]}})
    tasks = expand(suite, device="cpu")
    latency = next(t for t in tasks if t.kind == "latency").spec
    assert latency.timing == TimingConfig() and latency.mode == Mode()
    train = next(t for t in tasks if t.kind == "train").spec.config
    assert dataclasses.replace(train, epochs=1) == TrainConfig(epochs=1, seed=0)
    assert train.schedule == "step"  # ResNeXt's recipe ([RX] Appendix A), in the suite and the library alike


def test_default_of_refuses_a_field_without_default():
    with pytest.raises(TypeError, match="TrainConfig.epochs has no default"):
        default_of(TrainConfig, "epochs")
