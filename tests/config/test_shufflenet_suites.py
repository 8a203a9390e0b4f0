"""The ShuffleNetV2 suites: they validate, name only registered models and options, and expand to the tasks
their comments promise (every attention model beside its plain counterpart; CIFAR stem for training)."""

from __future__ import annotations

from pathlib import Path

from harness.config import load_suite
from harness.models.registry import get_entry
from harness.plan import check_models, expand

SUITES = Path(__file__).resolve().parents[2] / "suites"
SIX = ["shufflenetv2_050", "shufflenetv2_050_se", "shufflenetv2_050_sk",
       "shufflenetv2_100", "shufflenetv2_100_se", "shufflenetv2_100_sk"]


def _suite(name: str):
    path = SUITES / f"{name}.yaml"
    suite = load_suite(path)
    check_models(suite, source=str(path))
    return suite


def test_paper_complexity_builds_the_six_table4_models():
    names = [m.name for m in _suite("paper_complexity").models]
    assert [n for n in names if n.startswith("shufflenet")] == SIX


def test_lightweight_cpu_times_each_attention_model_beside_its_plain_net():
    suite = _suite("lightweight_cpu")
    assert suite.device == "cpu" and [m.name for m in suite.models] == SIX
    tasks = expand(suite, device="cpu")
    kinds = {(m.kind, m.model.name if m.model else None, m.batch_size) for t in tasks for m in t.members or (t,)}
    for name in SIX:
        assert ("complexity", name, 1) in kinds
        assert {("latency", name, 1), ("latency", name, 8), ("throughput", name, 8)} <= kinds
        plain = get_entry(name).plain
        assert plain is None or plain in SIX
    assert {t.spec.mode.dtype for t in tasks if t.kind == "latency"} == {"fp32"}


def test_shufflenet_cifar_cpu_trains_the_05x_models_with_the_cifar_stem_on_the_cpu():
    suite = _suite("shufflenet_cifar_cpu")
    train = suite.train
    assert [m.name for m in train.models] == SIX[:3]
    assert all(m.options == {"stem": "cifar"} for m in train.models)
    assert train.run_on == ["cpu"] and len(train.seeds) >= 3
    assert train.weight_decay == 4e-5  # [P] §4.1, lightweight models
    tasks = expand(suite, device="cpu")
    assert len([t for t in tasks if t.kind == "train"]) == 3 * len(train.seeds)
