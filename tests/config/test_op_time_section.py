"""The ``op_time`` suite section: strict keys, its defaults, and its expansion into ONE task per group."""

from __future__ import annotations

import pytest

from harness.config import load_suite, parse_suite
from harness.errors import ConfigError
from harness.measure.mode import Mode
from harness.plan import OpTimeSpec, expand, replace_models, shard_tasks


def _suite(**op_time):
    return parse_suite({"name": "x", "models": ["resnext50", "senet50", "sknet50"], "op_time": op_time})


def test_one_task_for_the_group_with_the_suites_models():
    tasks = expand(_suite(), device="cpu")
    assert [t.kind for t in tasks] == ["op_time"]
    task = tasks[0]
    assert isinstance(task.spec, OpTimeSpec) and task.model is None and task.batch_size == 1
    assert [m.name for m in task.spec.models] == ["resnext50", "senet50", "sknet50"]
    assert (task.spec.iterations, task.spec.warmup, task.spec.unprofiled_iterations) == (10, 2, 3)
    assert task.spec.mode == Mode() and task.spec.input_size is None
    assert task.label == "op time: resnext50, senet50, sknet50"
    assert task.task_id.startswith("op_time:resnext50+senet50+sknet50:") and task.task_id.endswith(":bs1:fp32:cpu")
    assert expand(_suite(), device="cpu")[0].task_id == task.task_id  # stable
    assert expand(_suite(batch_size=8), device="cpu")[0].task_id != task.task_id
    assert shard_tasks(tasks, (0, 2)) + shard_tasks(tasks, (1, 2)) == tasks  # the group stays in one shard


def test_section_models_and_models_flag():
    suite = _suite(models=["resnext50", "sknet50"], iterations=4, input_size=[3, 64, 64])
    spec = expand(suite, device="cuda")[0].spec
    assert [m.name for m in spec.models] == ["resnext50", "sknet50"] and spec.input_size == (3, 64, 64)
    narrowed = replace_models(suite, ["sknet50"])
    assert [m.name for m in narrowed.op_time.models] == ["sknet50"]


def test_unknown_and_bad_keys_are_one_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nmodels: [sknet50]\nop_time: {iteration: 3}\n")
    with pytest.raises(ConfigError, match=r"unknown key 'op_time.iteration'; did you mean 'iterations'\?"):
        load_suite(path)
    path.write_text("name: x\nmodels: [sknet50]\nop_time: {iterations: 0}\n")
    with pytest.raises(ConfigError, match=r"op_time.iterations"):
        load_suite(path)


@pytest.mark.parametrize("name", ["sknet_vs_senet", "lightweight_cpu"])
def test_shipped_suites_profile_their_groups(name):
    suite = load_suite(f"suites/{name}.yaml")
    tasks = [t for t in expand(suite, device="cpu") if t.kind == "op_time"]
    assert len(tasks) == 1 and tasks[0].batch_size == 1
