"""What [P] §4.4 and Figs. 3–4 show about attention vs. object scale, as data for the report.

The paper published these only as plots (no tables), so the numbers are readings by eye from the figures of
the paper and of the authors' release (``figures/cls_attention_diff.jpg``): approximate, for orientation,
never for ✓/✗ verdicts. The verdicts test the *claims* (``harness.analysis.scale_claims``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScaleClaim:
    """[P] Fig. 4's reading for one role of SK unit (the last unit of an early, middle or last stage)."""

    role: str  # low | mid | last
    paper_unit: str
    expect_rise: bool  # the large kernel's attention rises from 1.0× to 1.5×
    reading: str
    fig4_range: str  # class-mean difference range read from the plot


FIG4_CLAIMS: tuple[ScaleClaim, ...] = (
    ScaleClaim("low", "SK_2_3", True, "1.5× above 1.0× for essentially all 1,000 classes", "≈ −0.08 … −0.03"),
    ScaleClaim("mid", "SK_3_4", True, "1.5× above 1.0× for essentially all 1,000 classes",
               "1.0×: ≈ −0.06 … −0.02; 1.5×: ≈ −0.04 … −0.01"),
    ScaleClaim("last", "SK_5_3", False, "no consistent pattern (\"scale is partially encoded in the feature "
               "vector\")", "≈ −0.1 … +0.22, curves overlap"),
)

# [P] Fig. 3 (right): mean attention difference over all validation images, from 1.0× to 2.0×, read from the plot.
FIG3_MEAN_DIFF: dict[str, str] = {
    "SK_2_3": "≈ −0.07 → −0.06",
    "SK_3_4": "≈ −0.05 → −0.02",
    "SK_4_6": "≈ +0.03 → +0.05",
    "SK_5_3": "≈ +0.07 … +0.08, std ≈ 0.25",
}
# [P] Fig. 3 (left): 5×5 attention per channel group (16 channels) in SK_3_4, range over the plot.
FIG3_SK_3_4_LARGE_ATTENTION = (0.39, 0.54)

# [P] Fig. 3 enlarges the central object 1.0×, 1.5× and 2.0× (Fig. 4: 1.0× and 1.5×).
PAPER_SCALES: tuple[float, ...] = (1.0, 1.5, 2.0)
