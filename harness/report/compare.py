"""``python -m harness compare RUN_DIR…``: the same benchmarks lined up across runs and machines.

Benchmarks are matched by the regression gate's key without the device (model, label, options, batch size,
dtype, memory format, compile mode, kind), so a CPU run and a GPU run of the same suite line up where their batch
sizes agree. Each run's latency / throughput is shown with its 95% CI and its ratio to the first run that
has the benchmark; the point of the paper — each attention variant's time overhead over its plain network beside
its MACs overhead — gets a table of its own, one column per run, so where "+5% compute" holds shows at a glance.
Environments that differ are listed in the header, not refused; complexity that differs between runs (same model,
different params / MACs / activations: a different fvcore, a changed model) is flagged as a reproducibility problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import ConfigError, ResultsError
from harness.fileio import require_folder_name, under_root, write_text_atomic
from harness.report import plots
from harness.report.markdown import frame_table, num, with_ci
from harness.results import MANIFEST, RunData, load_runs
from harness.results import summaries as S
from harness.results.frames import environment_columns
from harness.results.records import LOOP_KINDS

KIND_TITLES = {"latency": "Latency", "throughput": "Throughput (inference)",
               "train_throughput": "Throughput (training step)"}
ENV_ROWS = (("run", "run_id"), ("suite", "suite"), ("created (UTC)", "created_utc"), ("git commit", "git_commit"),
            ("device", "run_device"), ("CPU", "cpu_model"), ("GPU", "gpu_name"), ("torch", "torch"),
            ("CUDA", "cuda"), ("torch threads", "torch_threads"), ("fvcore", "fvcore"))
COUNT_FIELDS = ("params", "macs", "activations")


def match_key(fields: dict[str, Any]) -> tuple[Any, ...]:
    """The benchmark key of a frame row, without the device: a CPU and a GPU run of one suite line up."""
    return S.BenchmarkKey.from_fields(fields).without("device")


@dataclass(frozen=True)
class Entry:
    """One benchmark of one run: its pooled samples and its frame row (statistics, ratios to its plain network)."""

    run: int
    bench: S.Benchmark
    row: pd.Series


def _entries(run: RunData, index: int, kind: str) -> dict[tuple[Any, ...], Entry]:
    rows = {match_key(r.to_dict()): r for _, r in run.frame(kind).iterrows()}
    return {b.key.without("device"): Entry(index, b, rows[b.key.without("device")]) for b in S.benchmarks(run, kind)}


def _commit(env: dict[str, Any]) -> str:
    commit = (env.get("git_commit") or "unknown")[:12]
    return commit + (" (dirty)" if env.get("git_dirty") else "")


def header(runs: list[RunData], names: list[str]) -> list[str]:
    envs = [environment_columns(r.typed_manifest) for r in runs]
    rows = []
    for title, field in ENV_ROWS:
        values = [_commit(e) if field == "git_commit" else e.get(field) for e in envs]
        differs = len({str(v) for v in values}) > 1 and field not in ("run_id", "created_utc", "git_commit")
        rows.append({"": f"**{title}** ⚠" if differs else title, **dict(zip(names, values, strict=True))})
    return ["## Runs", "", *frame_table(pd.DataFrame(rows), align="l" * (len(names) + 1)), "",
            "⚠ marks what differs between the runs. Differences are shown, not refused: a ratio between runs then "
            "measures the machines and software as much as the code.", ""]


def complexity_check(runs: list[RunData], names: list[str]) -> list[str]:
    frames = [r.frame("complexity") for r in runs]
    by_model: dict[tuple[str, str], dict[int, pd.Series]] = {}
    for i, f in enumerate(frames):
        for _, row in f.iterrows():
            by_model.setdefault((row["label"], row["input_size"]), {})[i] = row
    problems = []
    for (label, size), rows in by_model.items():
        for field in COUNT_FIELDS:
            values = {i: r[field] for i, r in rows.items() if r[field] is not None and r[field] == r[field]}
            if len(set(values.values())) > 1:
                problems.append({"model": label, "input": size, "count": field,
                                 **{names[i]: values.get(i) for i in range(len(runs))},
                                 "counter": ", ".join(sorted({f"{r['counter']} {r['counter_version']}"
                                                              for r in rows.values()}))})
    shared = sum(1 for rows in by_model.values() if len(rows) > 1)
    lines = ["## Complexity", ""]
    if not by_model:
        return lines + ["No run holds an ok complexity record: parameters and MACs were not compared.", ""]
    if not problems and not shared:
        return lines + ["No model's complexity was measured by more than one run: nothing to check.", ""]
    if not problems:
        return lines + [f"✓ Parameters, MACs and activations are identical in every run for all {shared} models that "
                        "more than one run measured.", ""]
    return lines + ["⚠ **Reproducibility problem**: the same model has different counts in different runs (a "
                    "different counter version, or a changed model). Timing ratios of these models are not "
                    "comparable until it is explained.", "", *frame_table(pd.DataFrame(problems)), ""]


def _matched(runs: list[RunData], kind: str) -> dict[tuple[Any, ...], dict[int, Entry]]:
    out: dict[tuple[Any, ...], dict[int, Entry]] = {}
    for i, run in enumerate(runs):
        for key, entry in _entries(run, i, kind).items():
            out.setdefault(key, {})[i] = entry
    return out


def _measure(kind: str, row: pd.Series) -> str:
    if kind in LOOP_KINDS:
        return with_ci(row["img_s"], row["img_s_ci_low"], row["img_s_ci_high"], digits=1)
    return with_ci(row["p50_ms"], row["ci_low_ms"], row["ci_high_ms"], digits=2)


def _group_title(kind: str, entry: Entry) -> str:
    return f"{KIND_TITLES[kind]} · batch {entry.bench.batch_size} · {entry.bench.mode}"


def timing_tables(runs: list[RunData], names: list[str], kind: str) -> tuple[list[str], dict[str, Any]]:
    """One table per batch · mode: every benchmark in every run that has it, ratios to the first such run."""
    matched = _matched(runs, kind)
    grouped: dict[str, list[dict[int, Entry]]] = {}
    for entries in matched.values():
        first = entries[min(entries)]
        grouped.setdefault(_group_title(kind, first), []).append(entries)
    lines, plot_data = [], {}
    unit = "img/s (95% CI)" if kind in LOOP_KINDS else "p50 ms (95% CI)"
    for title, benches in grouped.items():
        rows = []
        for entries in benches:
            first = entries[min(entries)]
            for i, e in sorted(entries.items()):
                ratio = S.Ratio(1.0, 1.0, 1.0) if e is first else S.ratio(first.bench, e.bench)
                cost = plots.time_ratio(e.row)
                rows.append({"model": e.bench.label, "run": names[i], "device": e.bench.device,
                             "threads": e.row["threads"], unit: _measure(kind, e.row),
                             "÷ first run": with_ci(ratio.value, ratio.low, ratio.high) if ratio else None,
                             "plain": e.row["plain"],
                             "time ÷ plain (95% CI)": with_ci(cost.value, cost.low, cost.high) if cost else None,
                             "MACs ÷ plain": num(e.row["macs_ratio_plain"], 3)
                             if e.row["macs_ratio_plain"] == e.row["macs_ratio_plain"] else None})
        lines += [f"### {title}", "", *frame_table(pd.DataFrame(rows), align="lllrrrlrr"), ""]
        plot_data[title] = benches
    return lines, plot_data


def overhead_table(runs: list[RunData], names: list[str], plot_data: dict[str, Any]) -> list[str]:
    """Per group: each variant's time ratio over its plain network in every run, beside its MACs ratio."""
    lines = []
    for title, benches in plot_data.items():
        rows = []
        for entries in benches:
            first = entries[min(entries)]
            if first.row["plain"] is None or first.row["plain"] != first.row["plain"]:
                continue
            row = {"model": first.bench.label, "plain": first.row["plain"],
                   "MACs ÷ plain": num(first.row["macs_ratio_plain"], 3),
                   "activations ÷ plain": num(first.row["activations_ratio_plain"], 3)
                   if first.row["activations_ratio_plain"] == first.row["activations_ratio_plain"]
                   and first.row["activations_ratio_plain"] is not None else None}
            for i, name in enumerate(names):
                cost = plots.time_ratio(entries[i].row) if i in entries else None
                row[f"{name} time ÷ plain"] = with_ci(cost.value, cost.low, cost.high) if cost else None
            rows.append(row)
        if rows:
            lines += [f"### {title}", "", *frame_table(pd.DataFrame(rows), align="ll" + "r" * (len(rows[0]) - 2)), ""]
    if not lines:
        return []
    return ["## Overhead over the plain network, per run", "",
            "Time per inference (latency) or per image (throughput) of each attention variant ÷ its plain network's "
            "in the same run, with a bootstrap 95% CI, beside the compute ratio (the same in every run: complexity "
            "is checked above). Where the time ratio sits near the MACs ratio the paper's \"+5% compute\" holds in "
            "time too.", "", *lines]


def _interval(kind: str, row: pd.Series) -> plots.Interval | None:
    if kind in LOOP_KINDS:
        return plots.Interval.of(row["img_s"], row["img_s_ci_low"], row["img_s_ci_high"])
    return plots.Interval.of(row["p50_ms"], row["ci_low_ms"], row["ci_high_ms"])


# What tells runs apart in a legend, when it differs between them.
_DISTINCT = (("run_device", "{}"), ("gpu_name", "{}"), ("cpu_model", "{}"), ("torch", "torch {}"),
             ("torch_threads", "{} threads"))


def legend_names(runs: list[RunData], names: list[str]) -> list[str]:
    """``#1 (1 threads)``: each run's name with the environment fields that differ between the runs."""
    envs = [environment_columns(r.typed_manifest) for r in runs]
    differing = [(f, fmt) for f, fmt in _DISTINCT if len({str(e.get(f)) for e in envs}) > 1]
    out = []
    for name, env in zip(names, envs, strict=True):
        detail = ", ".join(fmt.format(env.get(f)) for f, fmt in differing)
        out.append(f"{name} ({detail})" if detail else name)
    return out


def _plot(names: list[str], plot_data: dict[str, Any], path: Path) -> Path | None:
    """``names``: the legend's name of each run."""
    panels: list[dict[str, Any]] = []
    for title, benches in plot_data.items():
        kind = benches[0][min(benches[0])].bench.kind
        labels = [entries[min(entries)].bench.label for entries in benches]
        series = {n: [_interval(kind, e[i].row) if i in e else None for e in benches] for i, n in enumerate(names)}
        unit = "images / s" if kind in LOOP_KINDS else "p50 latency, ms"
        panels.append({"title": title, "categories": labels, "series": series, "xlabel": f"{unit} (95% CI)"})
        variants = [e for e in benches if e[min(e)].row["plain"] == e[min(e)].row["plain"] and e[min(e)].row["plain"]]
        if variants:
            cost = {n: [plots.time_ratio(e[i].row) if i in e else None for e in variants] for i, n in enumerate(names)}
            panels.append({"title": f"{title}: time ÷ plain", "categories": [e[min(e)].bench.label for e in variants],
                           "series": cost, "reference": [e[min(e)].row["macs_ratio_plain"] for e in variants],
                           "baseline": 1.0, "xlabel": "time ÷ plain network (95% CI); red: MACs ratio"})
    if not panels:
        return None
    rows = max(len(p["categories"]) for p in panels)
    fig, axes = plots.figure(len(panels), width=6.0, height=0.35 * rows * len(names) + 1.8, columns=2)
    for ax, panel in zip(axes, panels, strict=True):
        plots.grouped_bars(ax, **panel)
    return plots.save(fig, path)


def _or(value: str | None, default: str) -> str:
    return default if value is None else value


def default_path(runs: list[RunData], reports_root: Path) -> Path:
    """``reports/compare/<suite>/<run>_vs_<run>.md``; the names come from the manifests, untrusted: each must be
    a plain folder name, and the path must lie under ``reports_root``."""
    ids = [require_folder_name(_or(r.typed_manifest.run_id, r.path.resolve().name),
                               where=f"{r.path / MANIFEST}: run_id") for r in runs]
    suite = require_folder_name(_or(runs[0].typed_manifest.suite_name, "runs"),
                                where=f"{runs[0].path / MANIFEST}: suite_name")
    stem = "_vs_".join(ids) if len(ids) <= 3 else f"{ids[0]}_vs_{len(ids) - 1}_runs"
    return under_root(reports_root, Path(reports_root) / "compare" / suite / f"{stem}.md", what="the comparison")


def render_compare(run_dirs: list[Path], *, out: Path | None = None, reports_root: Path = Path("reports")) -> Path:
    """Write the comparison of ``run_dirs`` (markdown + PNG next to it); returns the markdown's path."""
    if len(run_dirs) < 2:
        raise ConfigError("compare needs at least two run dirs (results/<suite>/<run_id>)")
    runs = list(load_runs(run_dirs))
    if not any(r.of_kind("complexity", *KIND_TITLES) for r in runs):
        raise ResultsError(f"compare: none of the {len(runs)} runs holds an ok complexity, latency or throughput "
                           "record; nothing to compare (`python -m harness report RUN_DIR` lists each run's problems)")
    names = [f"#{i + 1}" for i in range(len(runs))]
    out = Path(out) if out is not None else default_path(runs, reports_root)
    lines = [f"# Comparison of {len(runs)} runs", "", *header(runs, names), *complexity_check(runs, names)]
    timing, plot_data = [], {}
    for kind in KIND_TITLES:
        part, data = timing_tables(runs, names, kind)
        timing += part
        plot_data.update(data)
    if timing:
        lines += ["## Latency and throughput", "",
                  "Matched across runs by model, options, batch size, dtype, memory format and compile mode (the "
                  "gate's key without the device). Each value with its 95% CI (a p50: two order statistics of its "
                  "samples; images/s: a bootstrap over loops); \"÷ first run\": the ratio to the first run that has "
                  "the benchmark (ratio of medians, or of images/s), with its bootstrap CI. Images/s without an "
                  "interval had fewer than 3 loops to resample.", "",
                  *timing]
    lines += overhead_table(runs, names, plot_data)
    out.parent.mkdir(parents=True, exist_ok=True)
    path = _plot(legend_names(runs, names), plot_data, out.parent / f"{out.stem}.png")
    if path is not None:
        lines += [f"![runs compared]({path.name})", ""]
    write_text_atomic(out, "\n".join(lines).rstrip() + "\n")
    return out
