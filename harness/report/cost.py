"""Memory and "where the extra cost goes": every attention variant against its plain counterpart (SKNet-50 and
SENet-50 against ResNeXt-50, a ShuffleNetV2 + SE/SK against the plain ShuffleNetV2 …) — MACs, activations
(feature-map elements written), parameters, measured time and memory side by side, per stage and per block part,
so a reader can see whether SK's extra time tracks its +5% MACs ([P] §3.2) or the extra feature maps its second
branch writes and its select step reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from harness.report import plots
from harness.report.latency import groups, machines, rows_of, timing_frame
from harness.report.markdown import frame_table, mb, num, with_ci
from harness.results import RunData

TIMED = (("latency", "latency"), ("throughput", "time / image"), ("train_throughput", "train step time / image"))


def _present(value: Any) -> bool:
    return value is not None and value == value


def _timing(run: RunData) -> list[tuple[str, str, pd.DataFrame]]:
    """(measure, group heading, rows) for every timed group of the run."""
    out = []
    for kind, measure in TIMED:
        for heading, rows in groups(timing_frame(run, kind), machines(run)):
            out.append((measure, heading, rows))
    return out


def _by_label(timing: list[tuple[str, str, pd.DataFrame]]) -> list[tuple[str, str, dict[str, dict[str, Any]]]]:
    """(measure, group heading, label → its row) for every timed group: a variant's row is one lookup, where a
    filter of the group's rows per variant and group costs a pandas query each."""
    columns = ["kind", "ratio_plain", "ratio_plain_ci_low", "ratio_plain_ci_high"]  # what ``plots.time_ratio`` reads
    out = []
    for measure, heading, rows in timing:
        by_label: dict[str, dict[str, Any]] = {}
        for label, *values in zip(rows["label"], *(rows[c] for c in columns), strict=True):
            by_label.setdefault(label, dict(zip(columns, values, strict=True)))
        out.append((measure, heading, by_label))
    return out


def _pct(ratio: float | None) -> str:
    return "–" if ratio is None or not _present(ratio) else f"{(ratio - 1) * 100:+.1f}%"


# ------------------------------------------------------------------------------------------------ memory


def memory_section(run: RunData) -> list[str]:
    blocks = []
    for _, heading, rows in _timing(run):
        if not rows["iter_peak_mem_bytes"].map(_present).any():
            continue
        method = rows["mem_method"].dropna().iloc[0] if rows["mem_method"].notna().any() else "–"
        cells = pd.DataFrame([{
            "model": r["label"], "iteration peak MiB": mb(r["iter_peak_mem_bytes"]),
            f"÷ {r['base']}": num(r["iter_peak_mem_ratio_base"], 3)
            if _present(r["iter_peak_mem_ratio_base"]) else None,
            "plain": r["plain"],
            "÷ plain": num(r["iter_peak_mem_ratio_plain"], 3) if _present(r["iter_peak_mem_ratio_plain"]) else None,
            "process RSS peak MiB" if "rss" in method else "allocator peak MiB": mb(r["peak_mem_bytes"]),
        } for r in rows_of(rows)])
        what = {"latency": "latency task", "throughput": "throughput task", "train_throughput": "training step"}
        blocks += [f"### {what.get(rows['kind'].iloc[0], rows['kind'].iloc[0])} · {heading}", "",
                   *frame_table(cells, align="lrrlrr"), ""]
    if not blocks:
        return []
    return ["## Memory", "",
            "**Iteration peak**: the most memory one iteration (a forward pass, or a training step) allocates above "
            "what was held when it began — activations and temporaries, the part that grows with the batch. On CUDA "
            "the caching allocator's `max_memory_allocated` minus what was allocated before the timed loop (the "
            "last column: the allocator peak itself, weights included). On CPU one extra, untimed iteration runs "
            "under the torch profiler's memory accounting (every allocation and free of torch's CPU allocator; "
            "not backend-internal scratch memory); the last column is the whole process's RSS, sampled every "
            "millisecond meanwhile (Python, torch and the weights included).", "", *blocks]


# ------------------------------------------------------------------------------------- overhead summary


def _families(cx: pd.DataFrame) -> dict[str, list[pd.Series]]:
    """plain label → the complexity rows of its variants, in run order."""
    out: dict[str, list[pd.Series]] = {}
    for _, row in cx.iterrows():
        if _present(row["plain"]):
            out.setdefault(row["plain"], []).append(row)
    return out


def _cost(by_label: dict[str, dict[str, Any]], label: str) -> plots.Interval | None:
    row = by_label.get(label)
    return plots.time_ratio(row) if row is not None else None


def _overhead_table(variants: list[pd.Series], timing: list[tuple[str, str, dict[str, dict[str, Any]]]]) -> list[str]:
    rows = []
    for v in variants:
        row = {"model": v["label"], "#P ÷ plain": num(v["params_ratio_plain"], 3),
               "MACs ÷ plain": num(v["macs_ratio_plain"], 3),
               "activations ÷ plain": num(v["activations_ratio_plain"], 3)
               if _present(v["activations_ratio_plain"]) else None}
        for measure, heading, by_label in timing:
            cost = _cost(by_label, v["label"])
            row[f"{measure} ÷ plain ({heading})"] = with_ci(cost.value, cost.low, cost.high) if cost else None
        rows.append(row)
    return frame_table(pd.DataFrame(rows).dropna(axis="columns", how="all"))


def _relation(cost: plots.Interval, ratio: float) -> str:
    return "above" if cost.low > ratio else "below" if cost.high < ratio else "consistent with"


def _verdict(v: pd.Series, timing: list[tuple[str, str, dict[str, dict[str, Any]]]]) -> list[str]:
    macs, acts = v["macs_ratio_plain"], v["activations_ratio_plain"]
    lines = []
    for measure, heading, by_label in timing:
        cost = _cost(by_label, v["label"])
        if cost is None:
            continue
        where = f"{_relation(cost, macs)} the MACs ratio"
        if _present(acts) and abs(acts - macs) >= 0.02:  # otherwise the two say the same
            where += f" and {_relation(cost, acts)} the activations ratio"
        versus = f"MACs {_pct(macs)}" + (f", activations {_pct(acts)}" if _present(acts) else "")
        ci = f"95% CI {_pct(cost.low)} to {_pct(cost.high)}" if cost.low < cost.high else \
            "no CI: fewer than 3 samples"
        lines.append(f"- {v['label']} ({heading}): {measure} {_pct(cost.value)} ({ci}) vs {versus}: {where}.")
    return lines


# --------------------------------------------------------------------------------- per stage and per part


def _stage_table(modules: pd.DataFrame, plain: str, variants: list[str]) -> list[str]:
    """The plain network's MACs and activations per stage, and what each variant adds there (its share of the
    variant's whole extra)."""
    stages = modules[modules["is_stage"]].set_index(["label", "module"])[["macs", "activations"]]
    extra = {v: stages.loc[v].sum() - stages.loc[plain].sum() for v in variants}
    rows = []
    for name, base in stages.loc[plain].iterrows():
        cell = {"stage": name, f"{plain} MMACs": num(base["macs"] / 1e6, 1),
                f"{plain} activations (M)": num(base["activations"] / 1e6, 2)}
        for v in variants:
            delta = stages.loc[(v, name)] - base
            for col, title, digits in (("macs", "ΔMMACs", 1), ("activations", "Δ activations (M)", 2)):
                share = f" ({delta[col] / extra[v][col] * 100:.0f}%)" if extra[v][col] else ""
                cell[f"{v} {title}"] = f"{delta[col] / 1e6:+.{digits}f}{share}" if delta[col] else "0"
        rows.append(cell)
    return frame_table(pd.DataFrame(rows))


def _part_table(modules: pd.DataFrame, labels: list[str]) -> list[str]:
    """MACs and activations of each block part, summed over all blocks, for every network."""
    parts = modules[modules["part"].map(bool)]
    sums = parts.groupby(["part", "label"], sort=False)[["macs", "activations"]].sum()
    rows = []
    for part in dict.fromkeys(parts["part"]):
        cell: dict[str, Any] = {"part": part}
        for label in labels:
            has = (part, label) in sums.index
            cell[f"{label} MMACs"] = num(sums.loc[(part, label), "macs"] / 1e6, 1) if has else None
            cell[f"{label} activations (M)"] = num(sums.loc[(part, label), "activations"] / 1e6, 2) if has else None
        rows.append(cell)
    return frame_table(pd.DataFrame(rows))


def _breakdown(run: RunData, plain: str, variants: list[str]) -> list[str]:
    modules = run.frame("modules")
    labels = [plain, *variants]
    modules = modules[modules["label"].isin(labels)]
    stage_sets = {label: tuple(modules.loc[(modules["label"] == label) & modules["is_stage"], "module"])
                  for label in labels}
    if not stage_sets.get(plain) or any(s != stage_sets[plain] for s in stage_sets.values()):
        return []  # no breakdown recorded, or networks whose stages are not the same modules
    return ["Per stage: the plain network's counts and what each variant adds (its share of the variant's whole "
            "extra in brackets).", "", *_stage_table(modules, plain, variants), "",
            "Per block part, summed over all blocks, in millions (`conv2` is the 3×3 grouped conv, or the whole SK "
            "unit: its `paths` — the branches — and its `fc_reduce` / `fc_select` attention layers; `post` is the SE "
            "unit):", "", *_part_table(modules, labels), ""]


def _panels(families: dict[str, list[pd.Series]],
            timing: list[tuple[str, str, dict[str, dict[str, Any]]]]) -> list[tuple[Any, ...]]:
    """(title, xlabel, variants, their time ratios) for every plain network × timed group with something to draw."""
    panels = []
    for plain, variants in families.items():
        for measure, heading, by_label in timing:
            shown = []
            for v in variants:
                cost = _cost(by_label, v["label"])
                if cost is not None:
                    shown.append((v, cost))
            if shown:
                panels.append((f"{measure} ÷ {plain} · {heading}", f"{measure} ÷ {plain}", shown))
    return panels


def _plot(panels: list[tuple[Any, ...]], path: Path) -> Path:
    fig, axes = plots.figure(len(panels), width=5.5, height=0.6 * max(len(p[2]) for p in panels) + 2.0,
                             columns=min(3, len(panels)))
    for ax, (title, xlabel, shown) in zip(axes, panels, strict=True):
        plots.overhead_bars(ax, [v["label"] for v, _ in shown], [c for _, c in shown],
                            macs=[v["macs_ratio_plain"] for v, _ in shown],
                            activations=[v["activations_ratio_plain"] if _present(v["activations_ratio_plain"])
                                         else None for v, _ in shown], title=title, xlabel=xlabel)
    return plots.save(fig, path)


def cost_section(run: RunData, assets: Path, stem: str) -> list[str]:
    cx = run.frame("complexity")
    families = _families(cx)
    if not families:
        return []
    timing = _by_label(_timing(run))
    lines = ["## Where the extra cost goes", "",
             "Each attention variant against its plain counterpart (the network it adds SE or SK to): parameters, "
             "multiply-adds (fvcore), activations (elements written by conv and linear layers, fvcore) and the "
             "measured time, with the latency table's 95% CIs. MACs do not count the time a layer spends reading and "
             "writing its feature maps; SK's second branch writes a full-size map in every block and its select step "
             "reads both, so its extra time may follow its activations rather than its MACs.", ""]
    for plain, variants in families.items():
        names = " / ".join(v["label"] for v in variants) if len(variants) <= 3 else f"{len(variants)} variants"
        lines += [f"### {names} over {plain}", "",
                  *_overhead_table(variants, timing), ""]
        verdicts = [line for v in variants for line in _verdict(v, timing)]
        lines += [*verdicts, ""] if verdicts else []
        lines += _breakdown(run, plain, [v["label"] for v in variants])
    panels = _panels(families, timing)
    if panels:
        shown, note = plots.first_panels(panels, "plain networks' timing tables")
        path = _plot(shown, assets / f"{stem}_overhead.png")
        lines += [f"![time overhead vs MACs and activations overhead]({path.name})", "", *note]
    return lines


def section(run: RunData, assets: Path, stem: str) -> list[str]:
    return memory_section(run) + cost_section(run, assets, stem)
