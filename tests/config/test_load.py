from __future__ import annotations

import pytest

from harness.config import load_suite, parse_suite
from harness.errors import ConfigError
from harness.plan import expand, replace_models


def _write(tmp_path, text):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


def test_shipped_suites_validate():
    for name in ("sknet_vs_senet", "paper_complexity", "cifar_short", "cifar_demo_cpu", "ci_latency",
                 "imagenet_claims"):
        suite = load_suite(f"suites/{name}.yaml")
        assert suite.name == name


def test_unknown_key_names_file_path_and_suggestion(tmp_path):
    path = _write(tmp_path, "name: x\nmodels: [sknet50]\nlatency:\n  batch_size: [1]\n")
    with pytest.raises(ConfigError) as err:
        load_suite(path)
    assert str(err.value) == f"{path}: unknown key 'latency.batch_size'; did you mean 'batch_sizes'?"


def test_unknown_top_level_key(tmp_path):
    path = _write(tmp_path, "name: x\nmodles: [sknet50]\n")
    with pytest.raises(ConfigError, match=r"unknown key 'modles'; did you mean 'models'\?"):
        load_suite(path)


def test_wrong_type_names_key_and_expectation(tmp_path):
    path = _write(tmp_path, "name: x\nmodels: [sknet50]\nlatency: {warmup: many}\n")
    with pytest.raises(ConfigError, match=r"key 'latency.warmup': Input should be a valid integer.*\"many\""):
        load_suite(path)


def test_bad_value_and_window(tmp_path):
    with pytest.raises(ConfigError, match=r"key 'train.dataset'.*'cifar10' or 'cifar100'"):
        parse_suite({"name": "x", "train": {"dataset": "mnist", "models": ["sknet29"]}})
    with pytest.raises(ConfigError, match=r"max_time_s .* must be ≥ min_time_s"):
        parse_suite({"name": "x", "latency": {"min_time_s": 2, "max_time_s": 1}})


def test_missing_file_invalid_yaml_and_schema(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_suite(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=r"s.yaml:\d+: invalid YAML"):
        load_suite(_write(tmp_path, "name: x\nmodels: [a\nlatency: {\n"))
    with pytest.raises(ConfigError, match="suite schema 2 is not supported"):
        parse_suite({"schema": 2, "name": "x"})


def test_duplicate_labels_rejected():
    with pytest.raises(ConfigError, match="appears twice"):
        parse_suite({"name": "x", "models": ["sknet50", "sknet50"]})


def test_expand_ids_are_stable_and_rounds_interleave():
    data = {"name": "x", "models": ["resnext50", {"name": "sknet50", "options": {"attention": False}}],
            "complexity": {}, "latency": {"batch_sizes": [1, 8], "rounds": 2, "reference": True}}
    a = expand(parse_suite(data), device="cpu")
    b = expand(parse_suite(data), device="cpu")
    assert [t.task_id for t in a] == [t.task_id for t in b]
    assert len({t.task_id for t in a}) == len(a)
    groups = [t for t in a if t.kind == "latency"]
    # one group per round and batch size; its members (the models and the reference) are timed together
    assert [(g.round, g.batch_size) for g in groups] == [(0, 1), (0, 8), (1, 1), (1, 8)]
    assert [(m.kind, m.round, m.batch_size, m.model.display) for m in groups[0].members] == [
        ("latency", 0, 1, "resnext50"), ("latency", 0, 1, "sknet50"), ("reference", 0, 1, "reference")]
    ids = [m.task_id for g in groups for m in g.members]
    assert len(set(ids)) == len(ids) == 12 and all(g.task_id not in ids for g in groups)


def test_batch_sizes_per_device():
    throughput = {"batch_sizes": {"cpu": [8], "cuda": [256]}}
    suite = parse_suite({"name": "x", "models": ["sknet50"], "throughput": throughput})
    assert [(t.kind, t.batch_size) for t in expand(suite, device="cpu")] == [("peak", None), ("throughput", 8)]
    assert [t.batch_size for t in expand(suite, device="cuda") if t.kind == "throughput"] == [256]


def test_train_tasks_get_width_and_seeds():
    suite = parse_suite({"name": "x", "train": {"models": ["sknet29"], "width": 0.25, "seeds": [0, 1]}})
    tasks = expand(suite, device="cpu")
    assert [t.seed for t in tasks] == [0, 1]
    assert tasks[0].model.options == {"width": 0.25}


def test_replace_models_with_patterns():
    suite = load_suite("suites/sknet_vs_senet.yaml")
    replaced = replace_models(suite, ["sknet5*", "resnext50"])
    assert [m.name for m in replaced.models] == ["sknet50", "resnext50"]
    with pytest.raises(ConfigError, match="matches no registered model"):
        replace_models(suite, ["zz*"])
