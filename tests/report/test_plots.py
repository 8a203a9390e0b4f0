"""Plots made for reading: labels never overlap each other or other points, error bars are the CIs given, and the
MACs ratio is drawn on overhead plots."""

from __future__ import annotations

import itertools

import pytest
from matplotlib.text import Text

from harness.report import plots


@pytest.fixture
def ax():
    fig, axes = plots.figure(1, width=6.5, height=5.0)
    yield axes[0]
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_labels_of_crowded_points_do_not_overlap(ax):
    # Table 2's points: senet50 and sknet50 sit 0.24 GMACs apart at equal params; the paper's points beside them
    points = [(4.259, 25.03, "resnext50"), (4.262, 27.56, "senet50"), (4.497, 27.48, "sknet50 = timm:skresnext50"),
              (8.013, 44.18, "resnext101"), (8.017, 48.96, "senet101"), (8.500, 48.74, "sknet101"),
              (2.609, 16.75, "sknet26"), (4.30, 27.0, "crowded-1"), (4.35, 27.2, "crowded-2")]
    for x, y, _ in points:
        ax.scatter(x, y)
    ax.margins(x=0.25, y=0.12)
    ax.figure.tight_layout()
    texts = plots.place_labels(ax, points, avoid=[(4.25, 27.7), (4.47, 27.5)])
    ax.figure.canvas.draw()  # annotations take their final positions when drawn
    renderer = ax.figure.canvas.get_renderer()
    boxes = [Text.get_window_extent(t, renderer) for t in texts]  # the text, without its leader line
    assert [t.get_text() for t in texts] == [p[2] for p in sorted(points, key=lambda p: -p[1])]
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b)
    centres = [ax.transData.transform((x, y)) for x, y, _ in points]
    for box, (px, py) in itertools.product(boxes, centres):
        assert not box.contains(px, py)
    frame = ax.get_window_extent()
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1 for b in boxes)


def test_bars_carry_the_ci_as_error_bars(ax):
    values = [plots.Interval(10.0, 9.0, 12.0), plots.Interval(5.0, 5.0, 5.0)]
    plots.bars_with_ci(ax, ["a", "b"], values, xlabel="ms", title="t")
    segments = ax.collections[0].get_segments()
    assert [tuple(s[:, 0]) for s in segments] == [(9.0, 12.0), (5.0, 5.0)]


def test_overhead_plot_draws_the_macs_ratio_across_each_bar(ax):
    cost = [plots.Interval(1.36, 1.29, 1.42), plots.Interval(1.11, 1.05, 1.14)]
    plots.overhead_bars(ax, ["sknet50", "senet50"], cost, macs=[1.056, 1.001], activations=[1.193, None],
                        title="t", xlabel="x")
    red = [line for line in ax.lines if line.get_color() == plots.REFERENCE]
    assert [tuple(line.get_xdata()) for line in red] == [(1.056, 1.056), (1.001, 1.001)]
    labels = {t.get_text() for t in ax.get_legend().get_texts()}
    assert labels == {"MACs ratio", "measured time ratio (95% CI)", "activations ratio"}
