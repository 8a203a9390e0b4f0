"""Training section: our short CIFAR runs beside [P] Table 5 — mean ± std over seeds, a 95% CI, the gaps
between models with Welch's t-test, the budget, training curves and accuracy vs. GMACs."""

from __future__ import annotations

import math
from collections import defaultdict
from itertools import combinations
from pathlib import Path

from harness.measure.stats import TEST_ALPHA as ALPHA
from harness.paper import all_rows
from harness.report.markdown import num, table
from harness.results import RunData
from harness.results.records import SkippedRecord, TrainRecord, TrainSettings
from harness.train.significance import compare, seed_summary

SYNTHETIC = "⚠ SYNTHETIC DATA (not CIFAR)"


def _paper_errors() -> dict[str, dict[str, float | None]]:
    """registry model → {"cifar10": err, "cifar100": err} from [P] Table 5."""
    out = {}
    for row in all_rows():
        if row.table == "P Table 5" and row.model:
            out[row.model] = {"cifar10": row.top1_err, "cifar100": row.top1_err_alt.get("CIFAR-100")}
    return out


def _budget(records: list[TrainRecord], run: RunData) -> str:
    cfg = records[0].config or TrainSettings()
    widths = sorted({str((r.options or {}).get("width", 1.0)) for r in records})
    return (f"Budget: {records[0].dataset}, {cfg.epochs} epochs ({cfg.schedule} schedule), width "
            f"{', '.join(widths)}, batch {cfg.batch_size}, lr {cfg.lr}, weight decay "
            f"{cfg.weight_decay}, AMP {cfg.amp_dtype or 'off'}, device {records[0].device}"
            + (f", at most {cfg.max_batches_per_epoch} batches per epoch" if cfg.max_batches_per_epoch else "")
            + ". The paper: 300 epochs at full width, mean of 10 runs.")


def _fmt_mean(values: list[float]) -> tuple[str, str]:
    s = seed_summary(values)
    if s.n < 2:
        return f"{s.mean:.2f} (n=1)", "–"
    # an error rate lives in [0, 100]; a t-interval from few seeds can reach past it
    return f"{s.mean:.2f} ± {s.std:.2f} (n={s.n})", f"{max(0.0, s.ci95_low):.2f}–{min(100.0, s.ci95_high):.2f}"


def _results_table(by_model: dict[str, list[TrainRecord]], dataset: str, synthetic: bool) -> list[str]:
    paper = _paper_errors()
    rows = []
    for label, recs in by_model.items():
        errs = [r.top1_err for r in recs]
        mean, ci = _fmt_mean(errs)
        ref = paper.get(recs[0].model, {}).get(dataset)
        speed = sum(e.img_per_s for r in recs for e in r.curve) / sum(len(r.curve) for r in recs)
        rows.append([label + (" ⚠" if synthetic else ""), num(ref), mean, ci,
                     num((recs[0].params or 0) / 1e6, 2), num((recs[0].macs or 0) / 1e9, 3),
                     num(sum(r.train_time_s for r in recs) / len(recs), 1), num(speed, 0)])
    return table(["model", f"paper err % ({dataset})", "ours err % (mean ± std)", "95% CI", "#P (M)", "GMACs",
                  "train s / run", "img/s"], rows)


def _pairs(by_model: dict[str, list[TrainRecord]], dataset: str) -> list[str]:
    paper = _paper_errors()
    rows = []
    for a, b in combinations(by_model, 2):
        ea = [r.top1_err for r in by_model[a]]
        eb = [r.top1_err for r in by_model[b]]
        c = compare(ea, eb, alpha=ALPHA)
        pa = paper.get(by_model[a][0].model, {}).get(dataset)
        pb = paper.get(by_model[b][0].model, {}).get(dataset)
        verdict = ("significant" if c.significant else "not significant at this budget")
        p = "–" if c.p_value is None or math.isnan(c.p_value) else f"{c.p_value:.3g}"
        rows.append([f"{a} − {b}", num(pa - pb if pa is not None and pb is not None else None),
                     f"{c.diff:+.2f}", p, verdict if c.p_value is not None else c.test_name])
    if not rows:
        return []
    return ["Gaps in top-1 error (percentage points; negative = the first model is better), Welch's t-test over "
            f"seeds at α = {ALPHA}:", "",
            *table(["pair", "paper gap", "our gap", "p", "verdict"], rows, align="lrrrl"), ""]


def section(run: RunData, assets: Path, stem: str) -> list[str]:
    records = run.of_type(TrainRecord)
    if not records:
        skipped = [r for r in run.of_type(SkippedRecord) if r.kind == "train"]
        if skipped:
            return ["## Training (CIFAR, [P] Table 5)", "", f"Skipped: {skipped[0].reason}", ""]
        return []
    by_model: dict[str, list[TrainRecord]] = defaultdict(list)
    for r in records:
        by_model[r.label].append(r)
    dataset = records[0].dataset
    synthetic = any(r.synthetic for r in records)
    title = "## Training (CIFAR, [P] Table 5)" + (f" — {SYNTHETIC}" if synthetic else "")
    lines = [title, ""]
    if synthetic:
        lines += [f"**{SYNTHETIC}: these runs used a generated dataset in CIFAR's file format, so the errors say "
                  "nothing about the paper's claims; they only show that the pipeline works.**", ""]
    lines += [_budget(records, run), "", *_results_table(by_model, dataset, synthetic), "", *_pairs(by_model, dataset)]
    plot = _plot(by_model, assets / f"{stem}_training.png", synthetic)
    if plot is not None:
        lines += [f"![training curves and accuracy vs GMACs]({plot.name})", ""]
    return lines


def _plot(by_model: dict[str, list[TrainRecord]], path: Path, synthetic: bool) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for label, recs in by_model.items():
        epochs = [e.epoch for e in recs[0].curve]
        acc = [sum(r.curve[i].test_acc for r in recs) / len(recs) * 100 for i in range(len(epochs))]
        ax1.plot(epochs, acc, marker="o", label=label)
        errs = [r.top1_err for r in recs]
        ax2.errorbar((recs[0].macs or 0) / 1e9, sum(errs) / len(errs),
                     yerr=seed_summary(errs).std if len(errs) > 1 else None, fmt="o", capsize=3, label=label)
    suffix = " — SYNTHETIC DATA" if synthetic else ""
    ax1.set(xlabel="epoch", ylabel="test accuracy % (mean over seeds)", title="Training curves" + suffix)
    ax2.set(xlabel="GMACs per image", ylabel="top-1 error % (± std)", title="Error vs. compute" + suffix)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
