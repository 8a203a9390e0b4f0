"""Sections are the library's configs: a suite's timing and training settings are ``TimingConfig``, ``Mode`` and
``TrainRecipe`` fields, so a suite and a notebook run the same protocol and refuse the same values."""

from __future__ import annotations

import pytest

from harness.config import parse_suite
from harness.errors import ConfigError
from harness.measure.mode import Mode
from harness.measure.sampling import TimingConfig
from harness.plan import expand
from harness.train.config import TrainConfig


def test_a_minimal_suite_runs_the_library_protocol():
    suite = parse_suite({"name": "x", "models": ["sknet29"], "latency": {}, "op_time": {},
                         "train": {"models": ["sknet29"]}})
    tasks = expand(suite, device="cpu")
    latency = next(t for t in tasks if t.kind == "latency").spec
    assert latency.timing == TimingConfig() and latency.mode == Mode()
    assert next(t for t in tasks if t.kind == "op_time").spec.mode == Mode()
    train = next(t for t in tasks if t.kind == "train").spec.config
    assert train == TrainConfig(epochs=5, seed=0)  # the suite's short runs, otherwise the library's recipe
    assert train.schedule == "step"  # ResNeXt's recipe ([RX] Appendix A), in the suite and the library alike


def test_each_seed_trains_the_sections_recipe():
    suite = parse_suite({"name": "x", "train": {"models": ["sknet29"], "seeds": [0, 7], "epochs": 2, "lr": 0.05,
                                                "schedule": "cosine", "warmup_epochs": 1}})
    configs = [t.spec.config for t in expand(suite, device="cpu") if t.kind == "train"]
    assert configs == [TrainConfig(epochs=2, lr=0.05, schedule="cosine", warmup_epochs=1, seed=seed)
                       for seed in (0, 7)]


def test_a_timing_section_plans_its_mode_and_window():
    suite = parse_suite({"name": "x", "models": ["sknet29"], "throughput": {
        "warmup": 1, "min_time_s": 0.5, "max_time_s": 2, "min_samples": 4, "dtype": "bf16", "channels_last": True}})
    spec = next(t for t in expand(suite, device="cpu") if t.kind == "throughput").spec
    assert spec.timing == TimingConfig(warmup=1, min_time_s=0.5, max_time_s=2.0, min_samples=4)
    assert spec.mode == Mode(dtype="bf16", channels_last=True)


@pytest.mark.parametrize(("section", "message"), [
    # the checks across fields are the library's, made when the suite is read (not when it is planned)
    ({"latency": {"min_samples": 20_000}}, "key 'latency': min_samples (20000) must be ≤ max_samples"),
    ({"train": {"models": ["sknet29"], "epochs": 3, "warmup_epochs": 3}},
     "key 'train': warmup_epochs (3) must be < epochs (3)"),
    # the cap on samples and op time's compile mode are the library's alone
    ({"latency": {"max_samples": 5}}, "unknown key 'latency.max_samples'; did you mean 'min_samples'?"),
    ({"op_time": {"compile": "default"}}, "unknown key 'op_time.compile'; valid keys: dtype, channels_last,"),
])
def test_sections_refuse_what_the_library_refuses_when_read(section, message):
    with pytest.raises(ConfigError) as err:
        parse_suite({"name": "x", "models": ["sknet29"], **section})
    assert str(err.value).startswith(f"<suite>: {message}"), err.value
