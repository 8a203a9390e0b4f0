"""``python -m harness history results/<suite>/``: every run of a suite in time order, a trend table and plot per
benchmark, and change points — a step of more than the regression gate's threshold that persists over every
later run.

Runs are ordered by their creation time (the manifest's ``created_utc``; the table shows each run's commit).
Runs of different machines (device, CPU / GPU model, thread count) get separate trends: a step between machines
is not a change of the code. Benchmarks are matched as in ``compare`` (the gate's key without the device).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import ConfigError, ResultsError
from harness.fileio import require_folder_name, under_root, write_text_atomic
from harness.report import plots
from harness.report.markdown import frame_table, num
from harness.results import MANIFEST, RunData, load_runs
from harness.results import summaries as S
from harness.results.frames import environment_columns
from harness.results.records import LOOP_KINDS

METRICS = {"p50": ("latency",), "img_s": LOOP_KINDS}
UNITS = {"p50": "p50 latency, ms", "img_s": "images / s"}


# A step history calls a change is one the frozen-baseline gate would: the same threshold as
# ``harness.gate.THRESHOLD_PCT`` (a test keeps them equal; the report does not import the gate).
CHANGE_THRESHOLD_PCT = 5.0


@dataclass(frozen=True)
class Step:
    index: int  # position in the series
    change: float  # value ÷ the level before it − 1
    held: int  # consecutive later runs that stayed beyond the threshold on the same side (0: the last run)

    @property
    def confirmed(self) -> bool:
        return self.held > 0


def _beyond(value: float, level: float, limit: float, sign: float) -> bool:
    return (value / level - 1.0) * sign > limit


def change_points(values: list[float | None], threshold_pct: float) -> list[Step]:
    """Steps of more than ``threshold_pct`` from the current level (the median of the values since the last step)
    that persist: the next run stays beyond the threshold on the same side. A value beyond the threshold that the
    next run does not confirm is an outlier (left out of the level); a step in the last run is unconfirmed."""
    limit = threshold_pct / 100.0
    known = [(i, v) for i, v in enumerate(values) if v is not None]
    steps: list[Step] = []
    segment = [v for _, v in known[:1]]
    for pos, (i, value) in enumerate(known[1:], start=1):
        level = statistics.median(segment)
        change = value / level - 1.0
        if abs(change) <= limit:
            segment.append(value)
            continue
        sign = 1.0 if change > 0 else -1.0
        later = [v for _, v in known[pos + 1:]]
        held = next((k for k, v in enumerate(later) if not _beyond(v, level, limit, sign)), len(later))
        if held or not later:
            steps.append(Step(i, change, held))
            segment = [value]
    return steps


def _machine(run: RunData) -> str:
    env = environment_columns(run.typed_manifest)
    name = env["gpu_name"] if env["run_device"] == "cuda" else env["cpu_model"]
    return f"{env['run_device'] or '?'} · {name or '?'} · {env['torch_threads'] or '?'} threads"


def suite_runs(suite_dir: Path) -> list[RunData]:
    """Every run dir under ``suite_dir``, ordered by creation time (then run id)."""
    dirs = sorted(p for p in Path(suite_dir).iterdir() if (p / MANIFEST).is_file()) if Path(suite_dir).is_dir() else []
    if not dirs:
        raise ConfigError(f"{suite_dir}: no run dirs (…/<run_id>/{MANIFEST}); pass a suite's folder like "
                          "results/sknet_vs_senet/")
    runs = list(load_runs(dirs))
    return sorted(runs, key=lambda r: (r.typed_manifest.created_utc or "", r.path.name))


def _value(metric: str, bench: S.Benchmark) -> plots.Interval | None:
    if metric == "img_s":
        ci = S.img_per_s_ci(bench)
        return plots.Interval.of(bench.img_per_s, *(ci or (None, None)))
    s = bench.summary
    return plots.Interval.of(s.median, s.ci_low, s.ci_high) if s else None


def _series(runs: list[RunData], metric: str) -> dict[str, dict[str, list[plots.Interval | None]]]:
    """group title → benchmark label → value per run (None where the run lacks it)."""
    out: dict[str, dict[tuple[Any, ...], tuple[str, list[plots.Interval | None]]]] = {}
    for i, run in enumerate(runs):
        for kind in METRICS[metric]:
            for bench in S.benchmarks(run, kind):
                title = f"{kind} · batch {bench.batch_size} · {bench.mode}"
                label, values = out.setdefault(title, {}).setdefault(
                    bench.key.without("device"), (bench.label, [None] * len(runs)))
                values[i] = _value(metric, bench)
    return {title: dict(series.values()) for title, series in out.items()}


def _x_label(number: int, run: RunData) -> str:
    env = environment_columns(run.typed_manifest)
    when = str(env["created_utc"] or "")[5:16].replace("T", " ")
    return f"#{number} {when} {(env['git_commit'] or '')[:7]}".strip()


def _run_rows(runs: list[RunData], numbers: list[int]) -> list[dict[str, Any]]:
    rows = []
    for number, run in zip(numbers, runs, strict=True):
        env = environment_columns(run.typed_manifest)
        commit = (env["git_commit"] or "unknown")[:10] + ("+" if env["git_dirty"] else "")
        rows.append({"#": number, "run": env["run_id"], "created (UTC)": env["created_utc"], "commit": commit,
                     "torch": env["torch"]})
    return rows


def _cell(point: plots.Interval | None, step: Step | None, digits: int) -> str | None:
    if point is None:
        return None
    if step is None:
        return num(point.value, digits)
    mark = "▲" if step.change > 0 else "▼"
    return f"{num(point.value, digits)} {mark}{step.change * 100:+.1f}%{'' if step.confirmed else '?'}"


def _group(title: str, series: dict[str, list[plots.Interval | None]], runs: list[RunData], numbers: list[int],
           metric: str, threshold_pct: float) -> tuple[list[str], dict[str, list[int]]]:
    steps = {label: change_points([p.value if p else None for p in points], threshold_pct)
             for label, points in series.items()}
    rows = _run_rows(runs, numbers)
    digits = 1 if metric == "img_s" else 2
    for label, points in series.items():
        at = {s.index: s for s in steps[label]}
        for i, row in enumerate(rows):
            row[label] = _cell(points[i], at.get(i), digits)
    lines = [f"#### {title}", "", *frame_table(pd.DataFrame(rows), align="rllll" + "r" * len(series)), ""]
    for label, found in steps.items():
        for s in found:
            run = runs[s.index]
            later = len(runs) - s.index - 1
            holds = (f"held over {s.held} later run(s)" + (" (all)" if s.held == later else "")
                     if s.confirmed else "the last run: not yet confirmed")
            lines.append(f"- {label}: {s.change * 100:+.1f}% at #{numbers[s.index]} ({run.path.name}), {holds}.")
    return lines + ([""] if any(steps.values()) else []), {k: [s.index for s in v if s.confirmed]
                                                             for k, v in steps.items()}


def render_history(suite_dir: Path, *, metric: str = "p50", threshold_pct: float | None = None,
                   out: Path | None = None, reports_root: Path = Path("reports")) -> Path:
    """Write the history of every run under ``suite_dir`` (markdown + PNG next to it); returns the path."""
    if metric not in METRICS:
        raise ConfigError(f"--metric {metric!r}: choose {' or '.join(METRICS)}")
    source = "the regression gate's threshold" if threshold_pct is None else "--threshold"
    threshold_pct = CHANGE_THRESHOLD_PCT if threshold_pct is None else threshold_pct
    if not (math.isfinite(threshold_pct) and threshold_pct > 0):  # inf would hide every change point
        raise ConfigError(f"--threshold must be a finite number > 0 (got {threshold_pct}); e.g. --threshold 5")
    runs = suite_runs(suite_dir)
    if not any(r.of_kind(*METRICS[metric]) for r in runs):
        raise ResultsError(f"{suite_dir}: none of its {len(runs)} runs holds an ok {' or '.join(METRICS[metric])} "
                           f"record; nothing to show for --metric {metric}")
    name = runs[0].typed_manifest.suite_name
    suite = require_folder_name(Path(suite_dir).resolve().name if name is None else name,
                                where=f"{runs[0].path / MANIFEST}: suite_name")
    out = Path(out) if out is not None else under_root(
        reports_root, Path(reports_root) / suite / f"history-{metric}.md", what="the history")
    machines: dict[str, list[RunData]] = {}
    for run in runs:
        machines.setdefault(_machine(run), []).append(run)
    lines = [f"# {suite}: history of {UNITS[metric]}", "",
             f"{len(runs)} runs in creation order. A change point (▲ up / ▼ down: for latency up is slower, for "
             f"images/s up is faster) is a step of more than {threshold_pct:g}% ({source}) "
             "from the level before it (the median since the previous change point) that persists: the next run "
             "stays beyond the threshold on the same side (a single run beyond it is an outlier, not a change). `?` "
             "marks a step in the last run, which no later run can confirm yet. Each machine has its own trend.", ""]
    panels: list[dict[str, Any]] = []
    for machine, mine in machines.items():
        lines += [f"## {machine}", ""]
        numbers = [runs.index(r) + 1 for r in mine]
        for title, series in _series(mine, metric).items():
            part, steps = _group(title, series, mine, numbers, metric, threshold_pct)
            lines += part
            labels = [_x_label(n, r) for n, r in zip(numbers, mine, strict=True)]
            panels.append({"x_labels": labels, "series": series, "steps": steps, "ylabel": UNITS[metric],
                           "title": f"{machine}\n{title}"})
    if panels:
        fig, axes = plots.figure(len(panels), width=6.5, height=4.2, columns=min(2, len(panels)))
        for ax, panel in zip(axes, panels, strict=True):
            plots.trend(ax, **panel)
        path = plots.save(fig, out.parent / f"{out.stem}.png")
        lines += [f"![history]({path.name})", ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, "\n".join(lines).rstrip() + "\n")
    return out
