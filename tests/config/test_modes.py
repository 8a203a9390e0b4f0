"""Modes as a dimension of a timing section: labels parsed, every model × mode in one group, ids stable for suites
without modes, one op-time task per mode, and what a suite may not say."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import load_suite, parse_suite
from harness.errors import ConfigError
from harness.measure.mode import EAGER, Mode, parse_mode
from harness.plan import expand
from harness.tasks.timing import build_key, group_request

SUITE = Path(__file__).resolve().parents[2] / "suites" / "modes_cpu.yaml"


@pytest.mark.parametrize(("text", "mode"), [
    ("fp32", Mode()), ("eager", Mode()), ("bf16", Mode(dtype="bf16")), ("channels_last", Mode(channels_last=True)),
    ("compile", Mode(compile="default")), ("compile:max-autotune", Mode(compile="max-autotune")),
    ("bf16+channels_last", Mode(dtype="bf16", channels_last=True)),
    ("fp32, channels_last, compile:default", Mode(channels_last=True, compile="default")),
])
def test_a_mode_is_read_from_its_label(text, mode):
    assert parse_mode(text) == mode
    assert parse_mode(mode.label) == mode  # the report's label reads back
    assert (mode.label == EAGER) == (mode == Mode())  # the baseline's label names eager fp32 alone


@pytest.mark.parametrize(("text", "message"), [
    ("fp33", "unknown part 'fp33'"), ("compile:fastest", "unknown torch.compile mode 'fastest'"),
    ("bf16+fp32", "sets its dtype twice"), ("", "is empty"), ("fp32++compile", "empty part"),
])
def test_a_bad_mode_label_says_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        parse_mode(text)


def _suite(**latency) -> dict:
    return {"name": "m", "models": ["resnext50", "sknet50"],
            "latency": {"batch_sizes": [1], **latency},
            "throughput": {"batch_sizes": [8], **latency}}


def test_every_model_in_every_mode_is_one_group_per_batch_size():
    tasks = expand(parse_suite(_suite(modes=["fp32", "channels_last", "compile", "bf16"])), device="cpu")
    groups = [t for t in tasks if t.members]
    assert [(g.kind, len(g.members)) for g in groups] == [("latency", 8), ("throughput", 8)]
    latency = groups[0]
    assert [(m.model.display, m.spec.mode.label) for m in latency.members[:4]] == [
        ("resnext50", "fp32"), ("resnext50", "fp32, channels_last"), ("resnext50", "fp32, compile:default"),
        ("resnext50", "bf16")]
    ids = [m.task_id for m in latency.members]
    assert len(set(ids)) == 8 and ids[1] == "latency:resnext50:da2e3922:bs1:fp32+channels_last:cpu:r0"
    # the worker builds a channels_last copy apart (its weights change in place); the other modes share one build
    request = group_request(latency)
    assert [m.mode for m in request.members] == [m.spec.mode for m in latency.members]
    assert len({build_key(m) for m in latency.members}) == 4  # 2 models × (contiguous, channels_last)
    # the device peak is measured in each dtype the modes use (utilisation)
    assert [t.task_id for t in tasks if t.kind == "peak"] == ["peak:peak fp32:f887836d:fp32:cpu",
                                                              "peak:peak bf16:f887836d:bf16:cpu"]


def test_a_section_without_modes_keeps_its_task_ids():
    plain = expand(parse_suite(_suite(dtype="bf16")), device="cpu")
    group = next(t for t in plain if t.kind == "latency")
    assert group.members[0].task_id == "latency:resnext50:da2e3922:bs1:bf16:cpu:r0"
    assert group.task_id.endswith(":bs1:bf16:cpu:r0")


def test_modes_per_device_and_none_for_a_device_plans_no_group():
    suite = parse_suite(_suite(modes={"cuda": ["fp32", "bf16+channels_last"]}))
    assert not [t for t in expand(suite, device="cpu") if t.members]
    cuda = [t for t in expand(suite, device="cuda") if t.members]
    assert [m.spec.mode.label for m in cuda[0].members] == ["fp32", "bf16, channels_last"] * 2


def test_op_time_profiles_each_mode_in_a_task_of_its_own():
    suite = parse_suite({"name": "m", "models": ["resnext50", "sknet50"],
                         "op_time": {"modes": ["fp32", "channels_last", "bf16", "compile"]}})
    tasks = [t for t in expand(suite, device="cpu") if t.kind == "op_time"]
    assert [t.spec.mode.label for t in tasks] == ["fp32", "fp32, channels_last", "bf16", "fp32, compile:default"]
    assert len({t.task_id for t in tasks}) == 4


@pytest.mark.parametrize(("suite", "message"), [
    (_suite(modes=["fp32", "fp32"]), "modes lists a mode twice"),
    (_suite(modes=[]), "modes is empty"),
    (_suite(modes=["bf16"], dtype="bf16"), "set either modes or dtype/channels_last/compile"),
    (_suite(modes=["fp32", "fastest"]), "key 'latency.modes.1': mode 'fastest': unknown part 'fastest'"),
    ({"name": "m", "models": ["resnext50"], "op_time": {"modes": ["fp32", "fp32"]}}, "modes lists a mode twice"),
    ({"name": "m", "models": ["resnext50"], "op_time": {"modes": ["fp32"], "dtype": "bf16"}},
     "set either modes or dtype/channels_last, not both"),
])
def test_what_a_modes_list_may_not_say_is_one_line(suite, message):
    with pytest.raises(ConfigError, match=message) as info:
        parse_suite(suite, source="s.yaml")
    assert "\n" not in str(info.value)


def test_the_shipped_modes_suite_plans_four_models_in_four_modes():
    tasks = expand(load_suite(SUITE), device="cpu")
    groups = [t for t in tasks if t.members]
    assert [(g.kind, g.batch_size, len(g.members)) for g in groups] == [("latency", 1, 16), ("throughput", 8, 16)]
    cuda = [t for t in expand(load_suite(SUITE), device="cuda") if t.members]
    assert [(g.kind, g.batch_size, len(g.members)) for g in cuda] == [("latency", 1, 12), ("throughput", 256, 12)]
