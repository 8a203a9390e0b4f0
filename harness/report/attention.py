"""Attention-vs-scale section ([P] §4.4, Figs. 3–4): per model, Fig. 3- and Fig. 4-style plots and the claim.

The claim ([P] Fig. 4): from 1.0× to 1.5× the larger kernel gains attention in the low and middle SK units
(SK_2_3, SK_3_4) for essentially all classes, and shows no such pattern in the last unit (SK_5_3). For other
nets the roles are the last unit of the first, second and last SK stage. Verdicts and thresholds are in
``harness.analysis.scale_claims``; the paper's plot readings (``harness.paper.figures``) are shown beside
our numbers for orientation only.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from harness.analysis.scale_claims import (
    CHANNEL_GROUP,
    ESSENTIALLY_ALL,
    channel_groups,
    claim_units,
    scale_rise,
    stage_last_units,
    verdict,
)
from harness.paper.figures import FIG3_MEAN_DIFF, FIG4_CLAIMS
from harness.report.eval import SYNTHETIC, weights_label
from harness.report.markdown import table
from harness.results import RunData
from harness.results.records import AttentionRecord, SkippedRecord

TITLE = "## Attention vs. object scale ([P] §4.4, Figs. 3–4)"


def _x(scale: float) -> str:
    return f"{scale:.1f}×" if float(scale * 10).is_integer() else f"{scale:g}×"


def _compared_scales(scales: list[float]) -> tuple[float, float] | None:
    """[P] Fig. 4 compares 1.0× with 1.5×; otherwise the smallest scale with the next one."""
    if 1.0 in scales and 1.5 in scales:
        return 1.0, 1.5
    ordered = sorted(scales)
    return (ordered[0], ordered[1]) if len(ordered) > 1 else None


Units = dict[tuple[str, float], AttentionRecord]


def _units_of(run: RunData, task: AttentionRecord) -> Units:
    return {(r.unit, r.scale or 0.0): r for r in run.of_type(AttentionRecord)
            if r.unit is not None and r.parent_task == task.task_id}


def _mean_table(task: AttentionRecord, units: Units) -> list[str]:
    rows = []
    imagenet = task.dataset == "imagenet"
    for name in stage_last_units(task.units or []):
        cells = []
        for s in task.scales or []:
            diff = np.asarray(units[(name, s)].image_diff)
            cells.append(f"{diff.mean():+.3f} ± {diff.std():.3f}")
        rows.append([name, *cells, FIG3_MEAN_DIFF.get(name) if imagenet else None])
    headers = ["unit", *(_x(s) for s in task.scales or []), "[P] Fig. 3 (1.0× → 2.0×, read from the plot)"]
    return ["Mean attention difference (larger − smaller kernel), mean ± std over images, last unit of each stage:",
            "", *table(headers, rows, align="l" + "r" * (len(headers) - 1)), ""]


def _claim_table(task: AttentionRecord, units: Units) -> list[str]:
    pair = _compared_scales(task.scales or [])
    if pair is None:
        return ["The claim needs two scales (e.g. 1.0 and 1.5); this run has one.", ""]
    low, high = pair
    claims = {c.role: c for c in FIG4_CLAIMS}
    rows = []
    for role, name in claim_units(task.units or []).items():
        a, b = units[(name, low)], units[(name, high)]
        rise = scale_rise(name, low, high, a.image_diff or [], b.image_diff or [], a.class_mean_diff or [],
                          b.class_mean_diff or [])
        claim = claims[role]
        p = "–" if rise.p_value is None else f"{rise.p_value:.3g}"
        rows.append([f"{name} ({role})", claim.paper_unit, claim.reading, f"{rise.share_classes:.0%} of {rise.classes}",
                     f"{rise.share_images:.0%}", f"{rise.mean_low:+.4f} → {rise.mean_high:+.4f}", p,
                     verdict(rise, expect_rise=claim.expect_rise)])
    return [f"Claim ([P] Fig. 4): does the larger kernel's attention rise from {_x(low)} to {_x(high)}? A rise "
            f"counts as reproduced when the one-sided Wilcoxon signed-rank test over images gives p < 0.05 and at "
            f"least {ESSENTIALLY_ALL:.0%} of classes rise (\"essentially all\").", "",
            *table(["our unit", "paper unit", "paper", "classes rising", "images rising", "mean difference", "p",
                    "verdict"], rows, align="llllrrrl"), ""]


def _model_block(run: RunData, task: AttentionRecord, assets: Path, stem: str) -> list[str]:
    units = _units_of(run, task)
    errs = ", ".join(f"{_x(float(s))}: {e:.2f}%" for s, e in (task.top1_err_by_scale or {}).items())
    images = f"{task.images:,}" + (f" of {task.dataset_images:,}" if task.subset else "")
    lines = [f"### {task.label}", "",
             f"Weights: {weights_label(task.weights)}; {task.dataset} ({task.layout}), {images} images, "
             f"{len(task.units or [])} SK units; top-1 error at each scale: {errs}.", ""]
    if not task.weights:
        lines += ["**No weights were loaded: this is the attention of a randomly initialised network, so the "
                  "verdicts below say nothing about the paper.**", ""]
    lines += _mean_table(task, units) + _claim_table(task, units)
    for kind, plot in (("fig3", _plot_fig3), ("fig4", _plot_fig4)):
        path = assets / f"{stem}_attention_{re.sub(r'[^A-Za-z0-9_.-]+', '_', str(task.label))}_{kind}.png"
        if plot(task, units, path) is not None:
            lines += [f"![{kind} {task.label}]({path.name})", ""]
    return lines


def section(run: RunData, assets: Path, stem: str) -> list[str]:
    tasks = [r for r in run.of_type(AttentionRecord) if r.unit is None]
    if not tasks:
        skipped = [r for r in run.of_type(SkippedRecord) if r.kind == "attention"]
        return [TITLE, "", f"Skipped: {skipped[0].reason}", ""] if skipped else []
    synthetic = any(t.synthetic for t in tasks)
    lines = [TITLE + (f" — {SYNTHETIC}" if synthetic else ""), ""]
    if synthetic:
        lines += [f"**{SYNTHETIC}: generated images in CIFAR's file format. The plots show the analysis working end to "
                  "end, not the paper's finding.**", ""]
    lines += [f"Scale s: centre crop of 1/s of the preprocessed image, resized back. Attention difference: mean "
              f"attention of the larger-receptive-field branch minus the smaller one, over channels. Fig. 3 (left) "
              f"averages {CHANNEL_GROUP} successive channels, as the paper does.", ""]
    for task in tasks:
        lines += _model_block(run, task, assets, stem)
    return lines


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _suffix(task: AttentionRecord) -> str:
    return " — SYNTHETIC DATA" if task.synthetic else ""


def _plot_fig3(task: AttentionRecord, units: Units, path: Path) -> Path:
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    names, scales = task.units or [], task.scales or []
    mid = claim_units(names).get("mid") or names[0]
    for s in scales:
        record = units[(mid, s)]
        groups = channel_groups((record.channel_mean or [])[record.large_branch or 0])
        left.plot(range(1, len(groups) + 1), groups, marker="o", label=_x(s))
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set(xlabel=f"channel group ({CHANNEL_GROUP} channels each)", ylabel="attention of the larger kernel",
             title=f"{mid}: larger-kernel attention per channel{_suffix(task)}")
    lasts = stage_last_units(names)
    for i, name in enumerate(lasts):
        diffs = [np.asarray(units[(name, s)].image_diff) for s in scales]
        dodge = (i - (len(lasts) - 1) / 2) * 0.015  # side by side, so the std bars do not hide each other
        right.errorbar([s + dodge for s in scales], [d.mean() for d in diffs], yerr=[d.std() for d in diffs],
                       marker="o", capsize=3, label=name)
    right.set(xlabel="object scale", ylabel="mean attention difference (large − small)",
              title=f"Mean attention difference ± std{_suffix(task)}")
    return _save(fig, (left, right), path)


def _plot_fig4(task: AttentionRecord, units: Units, path: Path) -> Path | None:
    pair = _compared_scales(task.scales or [])
    roles = claim_units(task.units or [])
    if pair is None or not roles:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(roles), figsize=(5 * len(roles), 3.8), squeeze=False)
    for ax, (role, name) in zip(axes[0], roles.items(), strict=True):
        for s in pair:
            means = units[(name, s)].class_mean_diff or []
            ax.plot(range(len(means)), [np.nan if m is None else m for m in means], lw=0.8, label=_x(s),
                    marker="o" if len(means) <= 50 else None, markersize=3)
        ax.set(xlabel="class index", ylabel="class-mean attention difference", title=f"{name} ({role}){_suffix(task)}")
    return _save(fig, axes[0], path)


def _save(fig: Any, axes: Any, path: Path) -> Path:
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    fig.clf()
    _pyplot().close(fig)
    return path
