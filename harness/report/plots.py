"""Plots made for reading: labels that never overlap, confidence intervals as error bars, and the compute ratio
drawn as the reference on every overhead plot (so "+5% MACs vs +15% time" is visible at a glance).

Every function draws on an Axes it is given; ``figure`` and ``save`` open and write the PNG (matplotlib's Agg
backend, imported on first use so that importing the report does not).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from harness.results.records import LOOP_KINDS

# A figure of more panels is unreadable, and a run of thousands of timing tables would take minutes to draw: the
# report's plots show the first ones (``first_panels``) and say so.
MAX_PANELS = 6

BAR = "tab:blue"
REFERENCE = "tab:red"
SECONDARY = "tab:orange"


@dataclass(frozen=True)
class Interval:
    """A value with its 95% CI (``low``/``high`` equal to ``value`` when there is none)."""

    value: float
    low: float
    high: float

    @classmethod
    def of(cls, value: float | None, low: float | None = None, high: float | None = None) -> Interval | None:
        if value is None or not math.isfinite(value):
            return None
        low = value if low is None or not math.isfinite(low) else low
        high = value if high is None or not math.isfinite(high) else high
        return cls(value, low, high)


def time_ratio(row: Any) -> Interval | None:
    """A frame row's time ratio over its plain network (> 1: slower), with its CI: the latency ratio, or the
    inverted images/s ratio for throughput kinds."""
    r = Interval.of(row.get("ratio_plain"), row.get("ratio_plain_ci_low"), row.get("ratio_plain_ci_high"))
    if r is None or row["kind"] not in LOOP_KINDS:
        return r
    return Interval(1.0 / r.value, 1.0 / r.high, 1.0 / r.low)


T = TypeVar("T")


def first_panels(panels: Sequence[T], what: str) -> tuple[list[T], list[str]]:
    """The panels to draw (the first ``MAX_PANELS``), and the report's line when some are left out."""
    if len(panels) <= MAX_PANELS:
        return list(panels), []
    return list(panels[:MAX_PANELS]), [f"A figure of {len(panels)} panels is unreadable: the plot shows the first "
                                       f"{MAX_PANELS} of {len(panels)} {what}; every one is in the tables above.", ""]


def figure(panels: int, *, width: float = 5.5, height: float = 4.0,
           columns: int | None = None) -> tuple[Any, list[Any]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = columns or panels
    rows = math.ceil(panels / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[panels:]:
        ax.set_visible(False)
    return fig, flat[:panels]


def save(fig: Any, path: Path, *, layout: bool = True) -> Path:
    """Write ``fig`` as PNG; ``layout=False`` when labels were placed in pixels after an earlier tight layout."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    if layout:
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _errors(items: Sequence[Interval]) -> list[list[float]]:
    return [[i.value - i.low for i in items], [i.high - i.value for i in items]]


def bars_with_ci(ax: Any, labels: Sequence[str], values: Sequence[Interval], *, xlabel: str, title: str) -> None:
    """Horizontal bars, one per label, with the 95% CI as an error bar."""
    y = list(range(len(labels)))
    ax.barh(y, [v.value for v in values], xerr=_errors(values), color=BAR, ecolor="black", capsize=3)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=9)
    ax.grid(axis="x", alpha=0.3)


def overhead_bars(ax: Any, labels: Sequence[str], cost: Sequence[Interval], *, macs: Sequence[float | None],
                  activations: Sequence[float | None] = (), title: str, xlabel: str) -> None:
    """Time ratios (bars, CI error bars) with each model's MACs ratio as a red reference line across its bar and its
    activations ratio as an orange marker; 1.0 (the plain network) as a grey line."""
    y = list(range(len(labels)))
    ax.barh(y, [c.value - 1.0 for c in cost], left=1.0, xerr=_errors(cost), color=BAR, alpha=0.75, ecolor="black",
            capsize=3, label="measured time ratio (95% CI)")
    for i, ratio in enumerate(macs):
        if ratio is not None:
            ax.plot([ratio, ratio], [i - 0.42, i + 0.42], color=REFERENCE, linewidth=2.5,
                    label="MACs ratio" if i == next(j for j, m in enumerate(macs) if m is not None) else None)
    shown = [(i, a) for i, a in enumerate(activations) if a is not None]
    if shown:
        ax.scatter([a for _, a in shown], [i for i, _ in shown], marker="D", color=SECONDARY, zorder=4,
                   label="activations ratio")
    ax.axvline(1.0, color="grey", linewidth=1)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    _legend_below(ax)


def _legend_below(ax: Any) -> None:
    """The legend under the axes, so it never covers a bar or its error bar."""
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, frameon=False)


def grouped_bars(ax: Any, categories: Sequence[str], series: dict[str, Sequence[Interval | None]], *,
                 reference: Sequence[float | None] = (), reference_label: str = "MACs ratio", baseline: float = 0.0,
                 xlabel: str, title: str) -> None:
    """Horizontal bars: one group per category, one bar per series (CI error bars, missing ones left out); with
    ``reference``, a red line across each group at its value (e.g. the MACs ratio of an overhead plot)."""
    height = 0.8 / max(1, len(series))
    for k, (name, values) in enumerate(series.items()):
        rows = [(i, v) for i, v in enumerate(values) if v is not None]
        if rows:
            ax.barh([i - 0.4 + height * (k + 0.5) for i, _ in rows], [v.value - baseline for _, v in rows],
                    height=height, left=baseline, xerr=_errors([v for _, v in rows]), capsize=2, label=name,
                    ecolor="black")
    first = True
    for i, ratio in enumerate(reference):
        if ratio is not None:
            ax.plot([ratio, ratio], [i - 0.45, i + 0.45], color=REFERENCE, linewidth=2.5,
                    label=reference_label if first else None)
            first = False
    if baseline:
        ax.axvline(baseline, color="grey", linewidth=1)
    ax.set_yticks(range(len(categories)), categories)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    _legend_below(ax)


def mode_overheads(ax: Any, modes: Sequence[str], series: Mapping[str, Sequence[Interval | None]], *,
                   macs: Mapping[str, float | None], xlabel: str, title: str) -> None:
    """Time ratios ÷ the base network per mode (one group of bars per mode, one bar per model, CI error bars), with
    each model's MACs ratio as a red tick across each of its bars: the mode's overhead beside the compute that no
    mode changes."""
    height = 0.8 / max(1, len(series))
    for k, (name, values) in enumerate(series.items()):
        rows = [(i, v) for i, v in enumerate(values) if v is not None]
        y = [i - 0.4 + height * (k + 0.5) for i, _ in rows]
        if rows:
            ax.barh(y, [v.value - 1.0 for _, v in rows], height=height, left=1.0,
                    xerr=_errors([v for _, v in rows]), capsize=2, label=name, ecolor="black")
        ratio = macs.get(name)
        for at in y if ratio is not None else ():
            ax.plot([ratio, ratio], [at - height / 2, at + height / 2], color=REFERENCE, linewidth=2,
                    label="MACs ratio" if k == 0 and at == y[0] else None)
    ax.axvline(1.0, color="grey", linewidth=1)
    ax.set_yticks(range(len(modes)), modes)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # a run of one model has no overhead to draw
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)


# Where a label may go around its point, in pixels (x, y); tried in order, then farther out with a leader line.
_AROUND = ((8, 0), (-8, 0), (6, 11), (6, -11), (-6, 11), (-6, -11), (0, 14), (0, -14))
_FARTHER = (1.0, 2.0, 3.0, 4.5)


def _label_box(ax: Any, renderer: Any, xy: tuple[float, float], text: str, offset: tuple[float, float],
               fontsize: float) -> Any:
    dx, _ = offset
    probe = ax.annotate(text, xy=xy, xytext=offset, textcoords="offset pixels", fontsize=fontsize, va="center",
                        ha="left" if dx > 0 else "right" if dx < 0 else "center")
    box = probe.get_window_extent(renderer).expanded(1.0, 1.0).padded(1.0)
    probe.remove()
    return box


def place_labels(ax: Any, points: Sequence[tuple[float, float, str]], *, avoid: Sequence[tuple[float, float]] = (),
                 fontsize: float = 7.5, marker_px: float = 5.0) -> list[Any]:
    """Label each (x, y, text) point so that no label overlaps another label, any point or any ``avoid`` point.

    Each label tries the positions around its point (right, left, diagonals, above, below), then the same
    farther out with a thin leader line, and takes the first whose box clears every placed label, every point
    and the axes' edge. Offsets are in pixels, so lay the figure out first (``fig.tight_layout()``) and save it
    with ``save(..., layout=False)``. Returns the Text artists.
    """
    from matplotlib.transforms import Bbox

    if not points:
        return []
    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent()
    centres = [ax.transData.transform(xy) for xy in [*((x, y) for x, y, _ in points), *avoid]]
    taken = [Bbox.from_bounds(px - marker_px, py - marker_px, 2 * marker_px, 2 * marker_px) for px, py in centres]
    texts = []
    for x, y, text in sorted(points, key=lambda p: -p[1]):
        candidates = [(dx * far, dy * far) for far in _FARTHER for dx, dy in _AROUND]
        chosen = candidates[0]
        for offset in candidates:
            box = _label_box(ax, renderer, (x, y), text, offset, fontsize)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(box.overlaps(other) for other in taken):
                chosen = offset
                break
        taken.append(_label_box(ax, renderer, (x, y), text, chosen, fontsize))
        leader = {"arrowstyle": "-", "color": "grey", "linewidth": 0.6} if chosen not in _AROUND else None
        texts.append(ax.annotate(text, xy=(x, y), xytext=chosen, textcoords="offset pixels", fontsize=fontsize,
                                 va="center", ha="left" if chosen[0] > 0 else "right" if chosen[0] < 0 else "center",
                                 arrowprops=leader))
    return texts


def trend(ax: Any, x_labels: Sequence[str], series: dict[str, Sequence[Interval | None]], *,
          steps: dict[str, Sequence[int]], ylabel: str, title: str) -> None:
    """One line per series over the runs (CI error bars); a confirmed step is a ring around its point."""
    x = list(range(len(x_labels)))
    for name, points in series.items():
        xs = [i for i, p in zip(x, points, strict=True) if p is not None]
        values = [p for p in points if p is not None]
        line = ax.errorbar(xs, [v.value for v in values], yerr=_errors(values), marker="o", markersize=4, capsize=3,
                           label=name)
        marked = [i for i in steps.get(name, ()) if points[i] is not None]
        if marked:
            ax.scatter(marked, [p.value for i in marked if (p := points[i]) is not None], s=160, facecolors="none",
                       edgecolors=line[0].get_color(), linewidths=1.5, zorder=5)
    ax.set_xticks(x, x_labels, rotation=30, ha="right", fontsize=7)
    positive = [p.value for points in series.values() for p in points if p is not None and p.value > 0]
    if positive and max(positive) / min(positive) > 10:  # a step of 10× or more would flatten everything else
        ax.set_yscale("log")
        ylabel += " (log scale)"
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
