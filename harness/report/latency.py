"""Latency and throughput sections: robust statistics from the raw samples, ratios to ResNeXt-50 beside
the paper's compute ratio, achieved GMAC/s against the measured device peak, and a throughput plot."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from harness.measure.mode import mode_label
from harness.measure.stats import Summary, summarize
from harness.report.complexity import match_rows
from harness.report.markdown import num, table
from harness.results import RunData

BASE_MODEL = "resnext50"


def _mode(r: dict[str, Any]) -> str:
    return mode_label(r.get("dtype", "fp32"), channels_last=r.get("channels_last"), compile=r.get("compile"))


def _group(records: list[dict[str, Any]]) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    """(batch, mode, device) → records of every model, all rounds."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[(r["batch_size"], _mode(r), r.get("device"))].append(r)
    return groups


def _by_model(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        out[r["label"]].append(r)
    return out


def _complexity(run: RunData) -> dict[str, dict[str, float | None]]:
    """label → measured GMACs and paper GMACs (for the compute ratio)."""
    out: dict[str, dict[str, float | None]] = {}
    for m in match_rows(run.of_kind("complexity")):
        if m.record is not None:
            entry = out.setdefault(m.record["label"], {"macs": m.record["macs"], "paper_gmacs": None})
            if entry["paper_gmacs"] is None and m.row.gmacs and m.row.table.startswith("P "):
                entry["paper_gmacs"] = m.row.gmacs
    for r in run.of_kind("complexity"):
        out.setdefault(r["label"], {"macs": r["macs"], "paper_gmacs": None})
    return out


def _base_label(labels: list[str], records: list[dict[str, Any]]) -> str:
    for r in records:
        if r["model"] == BASE_MODEL and not r.get("options"):
            return r["label"]
    return labels[0]


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b in (None, 0) else a / b


def _compute_ratios(label: str, base: str, cx: dict[str, dict[str, float | None]]) -> tuple[str, str]:
    mine, ref = cx.get(label, {}), cx.get(base, {})
    ours = _ratio(mine.get("macs"), ref.get("macs"))
    paper = _ratio(mine.get("paper_gmacs"), ref.get("paper_gmacs"))
    return num(paper, 3), num(ours, 3)


def _seconds(records: list[dict[str, Any]]) -> float:
    return sum(r.get("wall_s", 0.0) for r in records)


def latency_section(run: RunData) -> list[str]:
    records = run.of_kind("latency")
    if not records:
        return []
    cx = _complexity(run)
    lines = ["## Latency", "",
             "Per-iteration samples (`model.eval()`, `torch.inference_mode()`), warmup excluded, rounds pooled. "
             "CI: bootstrap 95% CI of the median. Ratio: p50 ÷ the ResNeXt-50 p50 of the same run; beside it the "
             "compute ratio (GMACs ÷ ResNeXt-50's) from the paper and from our count.", ""]
    unstable = []
    for (bs, mode, device), group in sorted(_group(records).items(), key=lambda kv: str(kv[0])):
        per_model = _by_model(group)
        stats = {label: summarize([x for r in recs for x in r["samples_ms"]]) for label, recs in per_model.items()}
        base = _base_label(list(per_model), group)
        rows = []
        for label, s in stats.items():
            paper_ratio, our_ratio = _compute_ratios(label, base, cx)
            flag = " ⚠" if s.unstable else ""
            unstable += [label] if s.unstable else []
            rounds = len(per_model[label])
            rows.append([label + flag, s.n, rounds, num(s.median), num(s.p90), num(s.p99),
                         f"{num(s.ci_low)}–{num(s.ci_high)}", f"{s.cv * 100:.1f}%",
                         num(_ratio(s.median, stats[base].median), 3), paper_ratio, our_ratio,
                         num(_seconds(per_model[label]), 1)])
        lines += [f"### batch {bs} · {mode} · {device}", "",
                  *table(["model", "n", "rounds", "p50 ms", "p90 ms", "p99 ms", "95% CI p50", "CV", "÷ ResNeXt-50",
                          "GMACs ratio (paper)", "GMACs ratio (ours)", "timed s"], rows), ""]
    if unstable:
        lines += [f"⚠ unstable (CV ≥ 10%): {', '.join(sorted(set(unstable)))} — the machine was noisy; "
                  "treat these medians with care or rerun with more rounds.", ""]
    return lines


def _pooled_rate(records: list[dict[str, Any]]) -> float:
    images = sum(r["images"] for r in records)
    seconds = sum(sum(r["loop_samples_s"]) for r in records)
    return images / seconds if seconds > 0 else 0.0


def _peak(run: RunData) -> dict[str, float]:
    return {r["dtype"]: r["peak_gmacs_per_s"] for r in run.of_kind("peak")}


def throughput_section(run: RunData, kind: str, title: str) -> tuple[list[str], dict[str, Any]]:
    records = run.of_kind(kind)
    if not records:
        return [], {}
    cx, peak = _complexity(run), _peak(run)
    lines = [f"## {title}", "",
             "Images per second over whole timed loops at a fixed batch (total images ÷ total loop time, rounds "
             "pooled), measured separately from latency. Achieved GMAC/s = our MACs per image × images/s; "
             "utilisation is against a large matmul timed on this device in the same dtype.", ""]
    plot_data: dict[str, Any] = {}
    unstable: set[str] = set()
    for (bs, mode, device), group in sorted(_group(records).items(), key=lambda kv: str(kv[0])):
        per_model = _by_model(group)
        rates = {label: _pooled_rate(recs) for label, recs in per_model.items()}
        base = _base_label(list(per_model), group)
        rows = []
        for label, rate in rates.items():
            loop_s = [s for r in per_model[label] for s in r["loop_samples_s"]]
            spread: Summary | None = summarize(loop_s) if len(loop_s) >= 2 else None
            if spread is not None and spread.unstable:
                unstable.add(label)
            macs = cx.get(label, {}).get("macs")
            achieved = macs * rate / 1e9 if macs and kind == "throughput" else None
            peak_val = peak.get(group[0].get("dtype", "fp32"))
            util = f"{achieved / peak_val * 100:.0f}%" if achieved and peak_val else "–"
            paper_ratio, _ = _compute_ratios(label, base, cx)
            rows.append([label + (" ⚠" if label in unstable else ""), num(rate, 1),
                         num(_ratio(rate, rates[base]), 3), paper_ratio, num(achieved, 1), util,
                         f"{spread.cv * 100:.1f}%" if spread else "–", len(loop_s),
                         num(_seconds(per_model[label]), 1)])
        lines += [f"### batch {bs} · {mode} · {device}", "",
                  *table(["model", "img/s", "÷ ResNeXt-50", "GMACs ratio (paper)", "GMAC/s", "of peak",
                          "loop CV", "loops", "timed s"], rows), ""]
        plot_data[f"batch {bs} · {mode} · {device}"] = rates
    if peak and kind == "throughput":
        lines += ["Device peak (matmul): " + ", ".join(f"{d}: {v:.1f} GMAC/s" for d, v in peak.items()), ""]
    lines += _sk_comparison(plot_data, unstable)
    return lines, plot_data


def _sk_comparison(plot_data: dict[str, Any], unstable: set[str]) -> list[str]:
    lines = []
    for key, rates in plot_data.items():
        ours, timm = rates.get("sknet50"), rates.get("timm:skresnext50_32x4d")
        if ours and timm:
            noisy = {"sknet50", "timm:skresnext50_32x4d"} & unstable
            caveat = (f" — but {', '.join(sorted(noisy))} was unstable in this run; "
                      "`benchmarks/sk_speed.py` measures the ratio over interleaved rounds") if noisy else ""
            lines.append(f"- {key}: our `sknet50` runs at **{ours / timm:.3f}×** the throughput of timm's "
                         f"`skresnext50_32x4d` (same structure, same parameter count){caveat}.")
    return lines + ([""] if lines else [])


def _plot(data: dict[str, dict[str, Any]], path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(kind, key, rates) for kind, groups in data.items() for key, rates in groups.items()]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, (kind, key, rates) in zip(axes[0], panels, strict=True):
        ax.barh(list(rates), list(rates.values()), color="tab:blue")
        ax.set_title(f"{kind}\n{key}", fontsize=9)
        ax.set_xlabel("images / s")
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def section(run: RunData, assets: Path, stem: str) -> list[str]:
    lines = latency_section(run)
    plots = {}
    for kind, title in (("throughput", "Throughput (inference)"), ("train_throughput", "Throughput (training step)")):
        part, data = throughput_section(run, kind, title)
        lines += part
        if data:
            plots[title] = data
    path = _plot(plots, assets / f"{stem}_throughput.png") if plots else None
    if path is not None:
        lines += [f"![throughput]({path.name})", ""]
    return lines
