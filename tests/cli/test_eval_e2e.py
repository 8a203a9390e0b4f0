"""``eval:`` and ``attention:`` end to end through the CLI, offline, on image sets the tests generate.

A model whose predictions are known (``fake_images.ColourNet``) makes the top-1 error an exact number in both
ImageNet-val layouts; bad data, bad weights and class-count mismatches are one line, and the run goes on.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_images import PLUGIN, write_flat, write_image_folder, write_val_txt
from helpers import run_cli

from harness.results import load_run

FOLDER_LABELS = [0] * 4 + [1] * 4 + [2] * 4
FOLDER_CONTENT = [0, 0, 0, 2] + [1, 1, 1, 1] + [2, 2, 0, 2]  # two images show another class's colour


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("plugin") / "colour_plugin.py"
    path.write_text(PLUGIN)
    return path


def _suite(tmp_path: Path, plugin: Path, **sections) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(json.dumps({"name": "eval_e2e", "imports": [str(plugin)], "device": "cpu", **sections}))
    return path


def _run(capsys, tmp_path: Path, suite: Path, *extra) -> tuple[int, list[str], str]:
    return run_cli(capsys, "run", suite, "--out", tmp_path / "r", "--reports", tmp_path / "p", "--no-progress", *extra)


def _records(out: list[str], kind: str) -> list[dict]:
    return [r for r in load_run(Path(out[0])).records if r.kind == kind]


def test_top1_error_is_exact_in_the_imagefolder_layout(tmp_path, plugin, capsys):
    write_image_folder(tmp_path / "val", FOLDER_LABELS, FOLDER_CONTENT)
    suite = _suite(tmp_path, plugin, eval={"models": [{"name": "colournet", "options": {"num_classes": 3}}],
                                           "data_dir": str(tmp_path / "val"), "batch_size": 5, "workers": 0})
    code, out, err = _run(capsys, tmp_path, suite)
    assert code == 0, err
    (record,) = _records(out, "eval")
    assert record.status == "ok" and record.layout == "imagefolder" and record.images == 12
    assert (record.top1_correct, record.top5_correct, record.topk) == (10, 12, 3)
    assert record.top1_err == pytest.approx(100 * 2 / 12) and record.top5_err == 0.0
    assert record.preprocess.resize == 256 and record.preprocess.crop == [224, 224]
    assert record.weights is None and record.subset is False
    report = Path(out[1]).read_text()
    assert "| colournet | none (random init) | imagenet (imagefolder) | 12 | 16.67 | 4.70–44.80 | 0.00 |" in report


def test_top1_and_top5_error_are_exact_in_the_flat_ilsvrc_layout(tmp_path, plugin, capsys):
    labels, content = [0, 0, 500, 500, 999, 999], [0, 999, 500, 500, 999, 0]
    names = write_flat(tmp_path / "flat", labels, content)
    write_val_txt(tmp_path / "flat" / "val.txt", names, labels)
    suite = _suite(tmp_path, plugin, eval={"models": ["colournet"], "data_dir": str(tmp_path / "flat"),
                                           "layout": "ilsvrc", "max_images": 4, "workers": 0})
    code, out, _ = _run(capsys, tmp_path, suite)
    (record,) = _records(out, "eval")
    assert record.layout == "ilsvrc" and record.num_classes == 1000 and record.ground_truth.endswith("val.txt")
    assert record.images == 4 and record.dataset_images == 6 and record.subset is True
    assert record.top1_correct == record.top5_correct  # the wrong ones are far from their label's colour
    assert "4 of 6" in Path(out[1]).read_text()


def test_bad_data_and_class_mismatch_are_error_records_and_the_run_goes_on(tmp_path, plugin, capsys):
    write_image_folder(tmp_path / "val", FOLDER_LABELS, FOLDER_CONTENT)
    three = {"name": "colournet", "label": "three", "options": {"num_classes": 3}}
    suite = _suite(tmp_path, plugin, eval={"models": ["colournet", three], "data_dir": str(tmp_path / "val"),
                                           "workers": 0},
                   attention={"models": ["colournet"], "data_dir": str(tmp_path / "val"), "workers": 0})
    code, out, err = _run(capsys, tmp_path, suite)
    assert code == 0
    by_label = {(r.kind, r.label): r for r in load_run(Path(out[0])).records}
    wrong = by_label[("eval", "colournet")]
    assert wrong.status == "error" and wrong.error.type == "DatasetError"
    assert wrong.error.message.startswith("the model outputs (1000,) logits per image but the data set has 3")
    assert by_label[("eval", "three")].status == "ok"
    flat = by_label[("attention", "colournet")]
    assert flat.status == "error" and "has no SK units" in flat.error.message  # before any image is read
    report = Path(out[1]).read_text()
    assert "## Errors and skipped tasks" in report and "DatasetError: the model outputs (1000,)" in report


def test_flat_images_without_ground_truth_are_one_line(tmp_path, plugin, capsys):
    write_flat(tmp_path / "flat", [0, 1], [0, 1])
    suite = _suite(tmp_path, plugin, eval={"models": ["colournet"], "data_dir": str(tmp_path / "flat"), "workers": 0})
    _, out, _ = _run(capsys, tmp_path, suite)
    (record,) = _records(out, "eval")
    assert record.status == "error" and "no ground truth" in record.error.message
    assert "\n" not in record.error.message


def test_absent_data_skips_with_one_line(tmp_path, plugin, capsys):
    suite = _suite(tmp_path, plugin, eval={"models": ["colournet", {"name": "colournet", "label": "b"}]})
    code, out, err = _run(capsys, tmp_path, suite, "--data-dir", tmp_path / "nowhere")
    assert code == 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "ImageNet validation images not found" in lines[0] and "--data-dir" in lines[0]
    assert {r.status for r in _records(out, "eval")} == {"skipped"}
    assert "Skipped: ImageNet validation images not found" in Path(out[1]).read_text()


def test_a_missing_weights_file_is_exit_2_before_anything_runs(tmp_path, plugin, capsys):
    suite = _suite(tmp_path, plugin, eval={"models": [{"name": "sknet50", "options": {"weights": "nope.pt"}}]})
    code, out, err = _run(capsys, tmp_path, suite)
    assert code == 2 and out == [] and not (tmp_path / "r").exists()
    assert err.strip().splitlines() == [
        f"error: {suite}: key 'eval.models[0]': weights file 'nope.pt' not found; pass an existing file or "
        "'timm:<model>[.<tag>]'"]


def test_unloadable_weights_are_error_records(tmp_path, plugin, capsys, monkeypatch):
    import huggingface_hub.constants as hf

    monkeypatch.setattr(hf, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    (tmp_path / "junk.pt").write_bytes(b"junk")
    write_image_folder(tmp_path / "val", FOLDER_LABELS, FOLDER_CONTENT)
    suite = _suite(tmp_path, plugin, eval={"models": [
        {"name": "colournet", "options": {"weights": str(tmp_path / "junk.pt")}},
        {"name": "timm:resnet18", "options": {"pretrained": True}}], "data_dir": str(tmp_path / "val")})
    code, out, _ = _run(capsys, tmp_path, suite)
    assert code == 0
    junk, timm_rec = sorted(_records(out, "eval"), key=lambda r: r.label)
    assert junk.status == "error" and "junk.pt: not a readable weights file" in junk.error.message
    assert timm_rec.status == "error" and timm_rec.error.type == "WeightsError"
    assert "resnet18.a1_in1k cannot be had here" in timm_rec.error.message
    assert "pass weights: resnet18.a1_in1k.pth" in timm_rec.error.message


TINY_SK = {"cardinality": 1, "groups": 1, "L": 4}  # sknet29 small enough to train a few steps on a CPU


@pytest.mark.slow
def test_attention_and_eval_on_the_sknet29_trained_in_the_same_suite(tmp_path, plugin, capsys):
    from harness.train.fake_cifar import write_fake_cifar

    write_fake_cifar(tmp_path / "cifar", "cifar10", n_train=64, n_test=24, seed=0)
    sections = {
        "train": {"dataset": "cifar10", "download": False, "models": [{"name": "sknet29", "options": TINY_SK}],
                  "width": 0.0625, "epochs": 1, "batch_size": 16, "max_batches_per_epoch": 2},
        "eval": {"dataset": "cifar10", "from_train": "sknet29"},
        "attention": {"dataset": "cifar10", "from_train": "sknet29", "scales": [1.0, 1.5], "batch_size": 10},
    }
    code, out, err = _run(capsys, tmp_path, _suite(tmp_path, plugin, **sections), "--data-dir", tmp_path / "cifar")
    assert code == 0, err
    run = load_run(Path(out[0]))
    (train,) = [r for r in run.records if r.kind == "train"]
    (evaluation,) = [r for r in run.records if r.kind == "eval"]
    assert evaluation.status == "ok" and evaluation.synthetic and evaluation.images == 24
    assert evaluation.weights.source == "train" and evaluation.weights.ref == train.weights_path
    assert evaluation.top1_err == pytest.approx(train.top1_err)  # the same weights on the same test set
    attention = [r for r in run.records if r.kind == "attention"]
    (task,) = [r for r in attention if r.unit is None]
    units = [r for r in attention if r.unit is not None]
    assert len(units) == 9 * 2 and task.units[0] == "SK_2_1" and len(task.labels) == 24
    for record in units:
        assert record.parent_task == task.task_id and len(record.image_diff) == 24
        for per_channel in zip(*record.channel_mean, strict=True):  # each channel's branches sum to 1
            assert sum(per_channel) == pytest.approx(1.0, abs=1e-6)
    report = Path(out[1]).read_text()
    assert "Attention vs. object scale" in report and "SYNTHETIC" in report and "| SK_3_3 (mid) | SK_3_4 |" in report
    assert report.count("_attention_sknet29_fig") == 2 and "tasks | 3 ok, 0 error, 0 skipped" in report

    # the saved weights file works as weights: in a later suite, with the same attention
    options = {**TINY_SK, "width": 0.0625, "weights": str(Path(out[0]) / train.weights_path)}
    again = {"attention": {"dataset": "cifar10", "models": [{"name": "sknet29", "options": options}],
                           "scales": [1.0, 1.5], "batch_size": 10}}
    code, out2, _ = _run(capsys, tmp_path, _suite(tmp_path, plugin, **again), "--data-dir", tmp_path / "cifar")
    later = {(r.unit, r.scale): r.image_diff for r in _records(out2, "attention") if r.unit}
    assert later.keys() == {(r.unit, r.scale) for r in units}
    for r in units:
        assert later[(r.unit, r.scale)] == pytest.approx(r.image_diff, abs=1e-6)


def test_from_train_without_trained_weights_is_skipped_with_the_reason(tmp_path, plugin, capsys):
    from harness.train.fake_cifar import write_fake_cifar

    write_fake_cifar(tmp_path / "cifar", "cifar10", n_train=16, n_test=8, seed=0)
    sections = {"train": {"dataset": "cifar10", "download": False, "models": ["sknet29"], "run_on": ["cuda"]},
                "attention": {"dataset": "cifar10", "from_train": "sknet29"}}
    code, out, _ = _run(capsys, tmp_path, _suite(tmp_path, plugin, **sections), "--data-dir", tmp_path / "cifar",
                        "--device", "cpu")
    (record,) = _records(out, "attention")
    assert record.status == "skipped" and record.reason.startswith("no trained weights of sknet29 in this run")


def test_attention_on_a_training_weights_file_offline(tmp_path, plugin, capsys):
    """What the demo suite does after training, from a file in the training task's format."""
    from harness import create_model
    from harness.train.checkpoint import save_checkpoint
    from harness.train.fake_cifar import write_fake_cifar

    write_fake_cifar(tmp_path / "cifar", "cifar10", n_train=16, n_test=20, seed=0)
    options = {**TINY_SK, "width": 0.0625}
    save_checkpoint(tmp_path / "w.pt", {"model": create_model("sknet29", **options).state_dict(), "config": {}})
    model = {"name": "sknet29", "options": {**options, "weights": str(tmp_path / "w.pt")}}
    sections = {"attention": {"dataset": "cifar10", "models": [model], "scales": [1.0, 1.5, 2.0], "batch_size": 10},
                "eval": {"dataset": "cifar10", "models": [model]}}
    code, out, err = _run(capsys, tmp_path, _suite(tmp_path, plugin, **sections), "--data-dir", tmp_path / "cifar")
    assert code == 0, err
    records = _records(out, "attention")
    (task,) = [r for r in records if r.unit is None]
    assert task.status == "ok" and task.weights.format == "harness-checkpoint"
    assert task.scales == [1.0, 1.5, 2.0] and set(task.top1_err_by_scale) == {"1", "1.5", "2"}
    units = [r for r in records if r.unit is not None]
    assert sorted({(r.unit, r.scale) for r in units}) == sorted(
        (f"SK_{s}_{b}", x) for s in (2, 3, 4) for b in (1, 2, 3) for x in (1.0, 1.5, 2.0))
    for record in units:
        for per_channel in zip(*record.channel_mean, strict=True):  # each channel's branches sum to 1
            assert sum(per_channel) == pytest.approx(1.0, abs=1e-6)
    report = Path(out[1]).read_text()
    assert "tasks | 2 ok, 0 error, 0 skipped" in report and "| SK_4_3 (last) | SK_5_3 |" in report
    assert report.count("_attention_sknet29_fig") == 2 and "SYNTHETIC" in report


@pytest.mark.slow
def test_imagenet_claims_shaped_suite_offline_ours_and_timms_sk_agree(tmp_path, plugin, capsys):
    """imagenet_claims' sections on a generated flat ILSVRC folder, with one random timm SK-ResNeXt-50 state dict
    loaded into our sknet50 (converted) and into timm's model: the same errors and the same attention."""
    import timm
    import torch

    labels = [0, 1, 2, 3, 4, 5]
    names = write_flat(tmp_path / "val", labels, labels)
    write_val_txt(tmp_path / "val" / "val.txt", names, labels)
    torch.save(timm.create_model("skresnext50_32x4d").state_dict(), tmp_path / "sk.pth")
    models = [{"name": "sknet50", "options": {"weights": str(tmp_path / "sk.pth")}},
              {"name": "timm:skresnext50_32x4d", "options": {"weights": str(tmp_path / "sk.pth")}}]
    sections = {"eval": {"models": models, "preprocess": "timm", "workers": 0},
                "attention": {"models": models, "preprocess": "timm", "scales": [1.0, 1.5], "workers": 0}}
    code, out, err = _run(capsys, tmp_path, _suite(tmp_path, plugin, **sections), "--data-dir", tmp_path / "val")
    assert code == 0, err
    ours, theirs = sorted(_records(out, "eval"), key=lambda r: r.model)
    assert ours.weights.converted_from_timm and not theirs.weights.converted_from_timm
    assert ours.preprocess.interpolation == "bicubic"
    assert ours.preprocess.source == "skresnext50_32x4d.ra_in1k"  # the timm equivalent's data config
    assert ours.top1_hits == theirs.top1_hits
    units = [r for r in _records(out, "attention") if r.unit]
    ours_units = {(r.unit, r.scale): r for r in units if r.model == "sknet50"}
    timm_units = {(r.unit, r.scale): r for r in units if r.model == "timm:skresnext50_32x4d"}
    assert len(ours_units) == 16 * 2 and ours_units.keys() == timm_units.keys()
    for key, record in ours_units.items():
        assert record.image_diff == pytest.approx(timm_units[key].image_diff, abs=1e-5)
