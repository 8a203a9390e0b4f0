"""The accuracy and attention sections on hand-written records: paper and published numbers beside ours, Wilson
intervals, McNemar pairs, the claim verdicts and the SYNTHETIC labels. Nothing is measured here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import write_run

from harness.measure.accuracy import Accuracy
from harness.models.registry import canonical_options
from harness.report import render
from harness.report.eval import wilson

PAPER_PRE = {"name": "paper", "resize": 256, "crop": [224, 224], "interpolation": "bilinear",
             "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "source": ""}
TIMM_PRE = {**PAPER_PRE, "name": "timm", "interpolation": "bicubic", "source": "skresnext50_32x4d.ra_in1k"}


def _eval(name: str, hits: list[bool], *, label: str | None = None, weights: dict | None = None,
          preprocess: dict = PAPER_PRE, **extra) -> dict:
    acc = Accuracy(len(hits), sum(hits), sum(hits), 5, tuple(hits))
    return {"task_id": f"eval:{label or name}", "kind": "eval", "status": "ok", "model": name,
            "label": label or name, "options": {}, "canonical_options": canonical_options(name, {}),
            "dataset": "imagenet", "data_root": "/data/val", "layout": "imagefolder", "ground_truth": None,
            "images": acc.images, "dataset_images": acc.images, "subset": False, "subset_seed": None,
            "num_classes": 1000, "synthetic": False, "preprocess": preprocess, "weights": weights,
            "top1_err": acc.top1_err, "top5_err": acc.topk_err, "top1_correct": acc.top1_correct,
            "top5_correct": acc.topk_correct, "topk": 5, "top1_hits": acc.hits_hex(), **extra}


def _line(text: str, first_cell: str) -> list[str]:
    line = next(x for x in text.splitlines() if x.startswith(f"| {first_cell} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def _render(tmp_path: Path, records: list[dict]) -> str:
    run_dir = write_run(tmp_path / "results" / "s" / "r1", records)
    return render(run_dir, reports_root=tmp_path / "reports").read_text()


TIMM_SK = {"source": "timm", "ref": "skresnext50_32x4d.ra_in1k", "format": "timm-pretrained",
           "converted_from_timm": True, "tensors": 528, "sha256": None}


def test_accuracy_rows_put_paper_and_published_numbers_beside_ours(tmp_path):
    n = 1000
    sk_hits = [i % 5 != 0 for i in range(n)]  # 20% error
    rx_hits = [i % 5 != 0 and i % 7 != 0 for i in range(n)]  # a superset of SK's mistakes
    records = [_eval("sknet50", sk_hits, label="sk timm-pre", weights=TIMM_SK, preprocess=TIMM_PRE),
               _eval("resnext50", rx_hits, label="rx")]
    text = _render(tmp_path, records)
    low, high = wilson(200, 1000)
    sk = _line(text, "sk timm-pre")
    assert sk[1] == "timm skresnext50_32x4d.ra_in1k" and sk[3] == "1,000" and sk[4] == "20.00"
    assert sk[5] == f"{low:.2f}–{high:.2f}" and sk[7] == "20.79 ([P] Table 2)"
    assert sk[8] == "19.83" and sk[9] == "✓"  # 19.832 lies in 17.6–22.6
    rx = _line(text, "rx")
    assert rx[1] == "none (random init)" and rx[7] == "22.23 ([P] Table 2)" and rx[8] == "–"
    assert "| rx | paper | 256 | 224×224 | bilinear | 0.485/0.456/0.406 | 0.229/0.224/0.225 | – |" in text
    pair = _line(text, "rx − sk timm-pre")
    only_rx, only_sk = 0, sum(1 for i in range(n) if i % 5 != 0 and i % 7 == 0)
    assert pair[1] == "1.44" and pair[3:5] == [str(only_rx), str(only_sk)] and pair[-1] == "significant"
    assert float(pair[2]) == pytest.approx(100 * only_sk / n)


def test_published_numbers_are_judged_only_with_the_same_preprocessing(tmp_path):
    record = _eval("sknet50", [True] * 50 + [False] * 50, weights=TIMM_SK)  # paper preprocessing, 50% error
    row = _line(_render(tmp_path, [record]), "sknet50")
    assert row[8] == "19.83" and row[9] == "– (other preprocessing)"
    timm_row = _line(_render(tmp_path / "b", [{**record, "preprocess": TIMM_PRE}]), "sknet50")
    assert timm_row[9] == "✗"


def test_timm_models_and_cifar_checkpoints_find_their_paper_rows(tmp_path):
    timm_sk = {**_eval("timm:skresnext50_32x4d", [True, False]), "canonical_options": {}}
    cifar = {**_eval("sknet29", [True] * 3 + [False]), "dataset": "cifar10", "layout": "cifar", "synthetic": True,
             "weights": {"source": "train", "train_task": "train:sknet29:ab:cifar10:seed0",
                         "ref": "weights/x.pt", "format": "harness-checkpoint"}}
    text = _render(tmp_path, [timm_sk, cifar])
    assert _line(text, "timm:skresnext50_32x4d")[7] == "20.79 ([P] Table 2)"
    row = _line(text, "sknet29")
    assert row[1] == "trained in this run (seed0)" and row[7] == "3.47 ([P] Table 5, full width)"
    assert "Accuracy (ImageNet-val / CIFAR test, [P] Table 2) — ⚠ SYNTHETIC DATA" in text


def _attention_records(*, rise: dict[str, float], synthetic=False, weights=TIMM_SK) -> list[dict]:
    """An SKNet-50-shaped run: 16 units, 3 scales, 20 images of 4 classes; difference rises by rise[unit]."""
    units = [f"SK_{s}_{b}" for s, n in ((2, 3), (3, 4), (4, 6), (5, 3)) for b in range(1, n + 1)]
    labels = [i % 4 for i in range(20)]
    rng = np.random.default_rng(0)
    base = {"kind": "attention", "status": "ok", "model": "sknet50", "label": "sk", "options": {},
            "dataset": "imagenet", "synthetic": synthetic, "weights": weights}
    task = {**base, "task_id": "attention:sk", "unit": None, "units": units, "scales": [1.0, 1.5, 2.0],
            "labels": labels, "images": 20, "dataset_images": 20, "subset": False, "layout": "imagefolder",
            "top1_err_by_scale": {"1": 20.0, "1.5": 25.0, "2": 40.0}}
    records = [task]
    for unit in units:
        start = rng.normal(-0.05, 0.01, 20)
        for k, scale in enumerate((1.0, 1.5, 2.0)):
            diff = start + k * rise.get(unit, 0.0) + rng.normal(0, 1e-4, 20) * (unit not in rise)
            means = [float(np.mean(diff[[i for i in range(20) if labels[i] == c]])) for c in range(4)]
            large = [0.45 + 0.01 * k] * 64
            records.append({**base, "task_id": f"attention:sk:{unit}:x{scale:g}", "parent_task": "attention:sk",
                            "unit": unit, "scale": scale, "branch_receptive": [3, 5], "large_branch": 1,
                            "small_branch": 0, "channel_mean": [[1 - v for v in large], large],
                            "image_diff": diff.tolist(), "class_mean_diff": means, "class_counts": [5] * 4})
    return records


def test_attention_claim_verdicts_and_plots(tmp_path):
    records = _attention_records(rise={"SK_2_3": 0.01, "SK_3_4": 0.02})  # SK_5_3: noise only
    text = _render(tmp_path, records)
    assert "| tasks | 1 ok, 0 error, 0 skipped |" in text  # the unit records are parts of the task
    low = _line(text, "SK_2_3 (low)")
    assert low[1] == "SK_2_3" and low[3] == "100% of 4" and low[4] == "100%" and low[-1] == "reproduced"
    assert _line(text, "SK_3_4 (mid)")[-1] == "reproduced"
    assert _line(text, "SK_5_3 (last)")[-1] == "reproduced: no consistent rise"
    mean_row = _line(text, "SK_3_4")
    assert mean_row[-1] == "≈ −0.05 → −0.02"  # the paper's Fig. 3 reading beside ours
    assert "1.0×: 20.00%, 1.5×: 25.00%, 2.0×: 40.00%" in text
    assets = sorted(p.name for p in (tmp_path / "reports" / "s").glob("*.png"))
    assert assets == ["r1_attention_sk_fig3.png", "r1_attention_sk_fig4.png"]
    assert "SYNTHETIC" not in text


def test_attention_without_a_rise_is_not_reproduced_and_untrained_nets_are_flagged(tmp_path):
    records = _attention_records(rise={"SK_5_3": 0.02}, synthetic=True, weights=None)
    text = _render(tmp_path, records)
    assert _line(text, "SK_2_3 (low)")[-1] == "not reproduced"
    assert _line(text, "SK_5_3 (last)")[-1].startswith("not reproduced: a consistent rise")
    assert "randomly initialised network" in text and "Figs. 3–4) — ⚠ SYNTHETIC DATA" in text


def test_skipped_sections_say_why_in_one_line(tmp_path):
    skipped = [{"task_id": k, "kind": k, "status": "skipped", "model": "sknet50", "label": "sk",
                "reason": "ImageNet validation images not found: /x is not a folder"} for k in ("eval", "attention")]
    text = _render(tmp_path, skipped)
    assert text.count("Skipped: ImageNet validation images not found") == 2
