"""Accuracy section: each evaluated model's top-1 / top-5 error beside [P] Table 2 (ImageNet, single 224 crop)
or Table 5 (CIFAR) and, for timm weights, the number timm publishes for exactly those weights ([T]).

The 95% interval of an error rate is Wilson's score interval over the images evaluated. Models evaluated on
the same images are compared pairwise with McNemar's exact test on the images only one of them gets right
(the paper's claims are orderings: SKNet-50 < SENet-50 < ResNeXt-50 in top-1 error).
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import Any

from scipy import stats

from harness.fileio import canonical_json
from harness.measure.stats import TEST_ALPHA as ALPHA
from harness.paper import all_rows
from harness.paper.pretrained import published
from harness.report.markdown import BAD, OK, num, table
from harness.results import RunData
from harness.results.records import EvalRecord, Preprocess, SkippedRecord, WeightsInfo

SYNTHETIC = "⚠ SYNTHETIC DATA"
_IMAGENET_TABLES = ("P Table 2", "P Fig. 2", "P Table 3", "P Table 6", "P Table 7")


def wilson(errors: int, images: int) -> tuple[float, float]:
    """95% Wilson score interval of an error rate, in percent."""
    ci = stats.binomtest(errors, images).proportion_ci(confidence_level=0.95, method="wilson")
    return 100.0 * ci.low, 100.0 * ci.high


def _paper_model(record: EvalRecord) -> str:
    from harness.models.timm_keys import TIMM_EQUIVALENTS

    model = record.model
    if model.startswith("timm:"):
        ours = {v: k for k, v in TIMM_EQUIVALENTS.items()}
        return ours.get(model[len("timm:"):], model)
    return model


def paper_error(record: EvalRecord) -> tuple[float | None, str]:
    """The paper's top-1 error for this network on this data set, and where it is printed."""
    from harness.errors import HarnessError
    from harness.models.registry import canonical_options

    model, dataset = _paper_model(record), record.dataset
    for row in all_rows():
        if row.model != model:
            continue
        if dataset in ("cifar10", "cifar100") and row.table == "P Table 5":  # by name: short runs use other widths
            err = row.top1_err if dataset == "cifar10" else row.top1_err_alt.get("CIFAR-100")
            return err, f"{row.source}, full width"
        if dataset == "imagenet" and row.table in _IMAGENET_TABLES and row.top1_err is not None:
            try:
                same = canonical_options(model, row.options) == (
                    record.canonical_options if model == record.model else canonical_options(model, {}))
            except HarnessError:
                same = False
            if same:
                return row.top1_err, row.source
    return None, ""


def weights_label(w: WeightsInfo | None) -> str:
    if not w:
        return "none (random init)"
    if w.source == "train":
        return f"trained in this run ({(w.train_task or '?').rsplit(':', 1)[-1]})"
    if w.source == "timm":
        return f"timm {w.ref}"
    return Path(w.ref).name + (" (timm → ours)" if w.converted_from_timm else "")


def _published(record: EvalRecord) -> tuple[Any, Any]:
    """timm's published top-1 error for these weights at this crop, and whether it lies in our 95% interval
    (judged only when we used timm's preprocessing, as the published number did)."""
    w = record.weights or WeightsInfo(source="", ref="")
    preprocess = record.preprocess or Preprocess()
    crop = preprocess.crop
    img = crop[0] if isinstance(crop, list) else crop
    row = published(w.ref, img=img) if w.source == "timm" and img else None
    if row is None:
        return None, None
    if preprocess.name != "timm":
        return row.top1_err, "– (other preprocessing)"  # timm's number is for its own data config
    low, high = wilson(record.images - record.top1_correct, record.images)
    return row.top1_err, OK if low <= row.top1_err <= high else BAD


def _row(record: EvalRecord) -> list[Any]:
    low, high = wilson(record.images - record.top1_correct, record.images)
    paper, source = paper_error(record)
    pub, consistent = _published(record)
    images = f"{record.images:,}" + (f" of {record.dataset_images:,}" if record.subset else "")
    return [record.label, weights_label(record.weights), f"{record.dataset} ({record.layout})", images,
            num(record.top1_err), f"{low:.2f}–{high:.2f}", num(record.top5_err),
            num(paper) + (f" ({source})" if source else ""),
            num(pub), consistent]


def _preprocess_rows(records: list[EvalRecord]) -> list[list[Any]]:
    rows = []
    for r in records:
        p = r.preprocess or Preprocess()
        mean = "/".join(f"{v:.4g}" for v in p.mean or [])
        std = "/".join(f"{v:.4g}" for v in p.std or [])
        crop = "×".join(str(c) for c in p.crop) if isinstance(p.crop, list) else p.crop
        rows.append([r.label, p.name, p.resize, crop, p.interpolation, mean, std, p.source or None])
    return rows


def _same_images(a: EvalRecord, b: EvalRecord) -> bool:
    return (a.dataset, a.data_root, a.images, a.subset_seed, a.layout) == (b.dataset, b.data_root, b.images,
                                                                           b.subset_seed, b.layout)


def _pairs(records: list[EvalRecord]) -> list[str]:
    from harness.measure.accuracy import unpack_hits

    rows = []
    for a, b in combinations(records, 2):
        if not (_same_images(a, b) and a.top1_hits and b.top1_hits):
            continue
        ha, hb = unpack_hits(a.top1_hits, a.images), unpack_hits(b.top1_hits, b.images)
        only_a, only_b = int((ha & ~hb).sum()), int((~ha & hb).sum())
        p = stats.binomtest(only_a, only_a + only_b).pvalue if only_a + only_b else 1.0
        pa, pb = paper_error(a)[0], paper_error(b)[0]
        gap = num(pa - pb) if pa is not None and pb is not None else None
        verdict = "significant" if p < ALPHA else "not significant on these images"
        rows.append([f"{a.label} − {b.label}", gap, f"{a.top1_err - b.top1_err:+.2f}", only_a, only_b,
                     f"{p:.3g}", verdict])
    if not rows:
        return []
    return [f"Gaps in top-1 error on the same images (percentage points; negative = the first is better), McNemar's "
            f"exact test on the images only one of the two gets right, α = {ALPHA}:", "",
            *table(["pair", "paper gap", "our gap", "only first right", "only second right", "p", "verdict"], rows,
                   align="lrrrrrl"), ""]


def _notes(records: list[EvalRecord]) -> list[str]:
    notes = []
    if any(r.dataset == "imagenet" for r in records):
        notes.append("ImageNet: the paper's numbers are single-crop errors on all 50,000 validation images, means of "
                     "3 runs ([P] §4.1); \"published for these weights\" is timm's results table for the same weights "
                     "and crop ([T]).")
    if any(r.dataset != "imagenet" for r in records):
        notes.append("CIFAR: the paper's numbers are full-width 300-epoch runs, not this run's training budget.")
    return [" ".join(notes), ""]


def section(run: RunData, assets: Path, stem: str) -> list[str]:
    records = sorted(run.of_type(EvalRecord), key=lambda r: canonical_json([r.dataset, r.label]))
    if not records:
        skipped = [r for r in run.of_type(SkippedRecord) if r.kind == "eval"]
        return ["## Accuracy (ImageNet-val / CIFAR test, [P] Table 2)", "", f"Skipped: {skipped[0].reason}",
                ""] if skipped else []
    synthetic = any(r.synthetic for r in records)
    lines = ["## Accuracy (ImageNet-val / CIFAR test, [P] Table 2)" + (f" — {SYNTHETIC}" if synthetic else ""), ""]
    if synthetic:
        lines += [f"**{SYNTHETIC}: evaluated on generated images in CIFAR's file format; the errors show that the "
                  "pipeline works and say nothing about the paper's claims.**", ""]
    lines += [*table(["model", "weights", "data (layout)", "images", "top-1 err %", "95% CI (Wilson)", "top-5 err %",
                      "paper top-1 err %", "published for these weights", "in our CI"],
                     [_row(r) for r in records], align="lllrrrrlrc"), "", *_notes(records),
              "Preprocessing as run:", "",
              *table(["model", "preprocess", "resize", "crop", "interpolation", "mean", "std", "from"],
                     _preprocess_rows(records), align="llrrllll"), "", *_pairs(records)]
    return lines
