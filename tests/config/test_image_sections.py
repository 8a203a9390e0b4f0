"""The ``eval:`` and ``attention:`` sections: defaults, cross-section checks, expansion into tasks, --models."""

from __future__ import annotations

import pytest

from harness.config import parse_suite
from harness.errors import ConfigError
from harness.plan import AttentionSpec, EvalSpec, expand, replace_models

TRAIN = {"dataset": "cifar10", "models": ["sknet29", "senet29"], "width": 0.25, "seeds": [3, 4]}


def test_defaults_are_the_papers_protocol():
    suite = parse_suite({"name": "x", "models": ["sknet50"], "eval": {}, "attention": {}})
    assert suite.eval.preprocess == "paper" and suite.eval.dataset == "imagenet" and suite.eval.layout == "auto"
    assert suite.attention.scales == [1.0, 1.5, 2.0]  # [P] Fig. 3
    eval_task, attention_task = expand(suite, device="cpu")
    assert isinstance(eval_task.spec, EvalSpec) and eval_task.model.name == "sknet50"  # the suite's models
    assert isinstance(attention_task.spec, AttentionSpec) and attention_task.spec.scales == (1.0, 1.5, 2.0)
    assert eval_task.task_id.startswith("eval:sknet50:") and attention_task.task_id.startswith("attention:sknet50:")


def test_from_train_points_at_the_training_task_of_the_first_seed():
    suite = parse_suite({"name": "x", "models": ["sknet50"], "train": TRAIN,
                         "eval": {"dataset": "cifar10", "from_train": ["sknet29", "senet29"]},
                         "attention": {"dataset": "cifar10", "from_train": "sknet29", "train_seed": 4}})
    tasks = expand(suite, device="cpu")
    train = {(t.model.name, t.seed): t for t in tasks if t.kind == "train"}
    evals = [t for t in tasks if t.kind == "eval"]
    assert [t.model.name for t in evals] == ["sknet29", "senet29"]  # not the suite's models
    assert evals[0].spec.from_train == train[("sknet29", 3)].task_id
    assert evals[0].model.options == {"width": 0.25} and evals[0].task_id.endswith(":cifar10:trained-seed3")
    (attention,) = [t for t in tasks if t.kind == "attention"]
    assert attention.spec.from_train == train[("sknet29", 4)].task_id
    assert [t.kind for t in tasks][-3:] == ["eval", "eval", "attention"]  # after training


@pytest.mark.parametrize("sections, message", [
    ({"attention": {"from_train": "sknet29", "dataset": "cifar10"}},
     "attention.from_train needs a train section in the suite"),
    ({"train": TRAIN, "eval": {"from_train": "sknet26", "dataset": "cifar10"}},
     "eval.from_train: 'sknet26' is not a train model; train models: ['sknet29', 'senet29']"),
    ({"train": TRAIN, "eval": {"from_train": "sknet29"}},
     "eval.from_train evaluates models trained on cifar10; set eval.dataset: cifar10"),
    ({"train": TRAIN, "eval": {"from_train": "sknet29", "dataset": "cifar10", "train_seed": 0}},
     "eval.train_seed 0 is not one of train.seeds [3, 4]"),
    ({"train": {**TRAIN, "save_weights": False}, "eval": {"from_train": "sknet29", "dataset": "cifar10"}},
     "eval.from_train needs train.save_weights: true"),
])
def test_cross_section_mistakes_are_one_line(sections, message):
    with pytest.raises(ConfigError) as err:
        parse_suite({"name": "x", **sections}, source="s.yaml")
    assert str(err.value) == f"s.yaml: {message}"


def test_scales_and_layouts_are_checked():
    with pytest.raises(ConfigError, match="attention.scales.0': Input should be greater than or equal to 1"):
        parse_suite({"name": "x", "attention": {"scales": [0.5]}})
    with pytest.raises(ConfigError, match="scales must be distinct"):
        parse_suite({"name": "x", "attention": {"scales": [1.0, 1.0]}})
    with pytest.raises(ConfigError, match="eval.layout"):
        parse_suite({"name": "x", "eval": {"layout": "tar"}})


def test_models_flag_filters_the_eval_and_attention_lists():
    suite = parse_suite({"name": "x", "models": ["sknet50"], "eval": {"models": ["sknet50", "senet50"]},
                         "attention": {"models": ["sknet50", "timm:skresnext50_32x4d"]}})
    replaced = replace_models(suite, ["sknet50"])
    assert [m.name for m in replaced.eval.models] == ["sknet50"]
    assert [m.name for m in replaced.attention.models] == ["sknet50"]
