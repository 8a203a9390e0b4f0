"""Latency regression gate: compare a candidate benchmark set against a baseline.

A benchmark is a ``regression`` only when the change is both *significant* (two-sided Mann-Whitney U test,
p < alpha) and *large* (ratio of the gate's statistic beyond the threshold, with the bootstrap 95% CI of that
ratio excluding 1). This is the asv rule (significance plus a minimum effect): with
thousands of samples a 0.5%
shift is significant yet irrelevant, and with a handful of noisy samples a 25% shift is large yet unproven
(reported as ``changed (not significant)``, which does not fail the gate). The statistic (a low quantile per
round, optionally normalised by the reference workload of the same round) is ``harness.gate.statistic``;
``benchmarks/gate_error_rates.py`` measures what it buys.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace

import numpy as np
from scipy import stats as sps

from harness.errors import ConfigError, IncomparableError
from harness.gate.fingerprint import environment_mismatches
from harness.gate.samples import BenchmarkSet, BenchSamples
from harness.gate.statistic import fastest, normalise, ratio_ci, split, statistic
from harness.gate.verdicts import CheckReport, CheckRow, Verdict
from harness.results.summaries import BenchmarkKey

log = logging.getLogger(__name__)

MIN_SAMPLES = 5


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan


def _verdict(ratio: float, ci: tuple[float, float], p: float, *, threshold_pct: float, alpha: float) -> Verdict:
    limit = threshold_pct / 100.0
    significant = p < alpha
    if significant and ratio > 1.0 + limit and ci[0] > 1.0:
        return Verdict.REGRESSION
    if significant and ratio < 1.0 - limit and ci[1] < 1.0:
        return Verdict.IMPROVEMENT
    if abs(ratio - 1.0) > limit:
        return Verdict.CHANGED
    return Verdict.UNCHANGED


def _median_only(row: CheckRow) -> CheckRow:
    ratio = row.raw_ratio if row.raw_ratio is not None else math.nan
    change = (ratio - 1.0) * 100.0
    exceeds = "exceeds" if abs(change) > row.threshold_pct else "within"
    note = f"median only: {change:+.1f}% {exceeds} ±{row.threshold_pct:g}% (no significance test possible)"
    return replace(row, verdict=Verdict.NO_RAW, note=note)


def _compare_one(
    key: BenchmarkKey, base: BenchSamples, cand: BenchSamples, *, threshold_pct: float, alpha: float
) -> CheckRow:
    row = CheckRow(
        key=key,
        verdict=Verdict.UNCHANGED,
        threshold_pct=threshold_pct,
        baseline_median_ms=base.median_ms,
        candidate_median_ms=cand.median_ms,
        raw_ratio=_ratio(cand.median_ms, base.median_ms),
        n_baseline=base.n,
        n_candidate=cand.n,
    )
    if not (base.has_raw and cand.has_raw):
        return _median_only(row)
    yardstick_note = ""
    if base.yardstick != cand.yardstick:
        # an interleaved reference reads a different value than one timed in its own task: divide by the kind
        # both sides have, the reference tasks of the rounds (or by nothing, when a side lacks them)
        base, cand = base.with_round_yardstick(), cand.with_round_yardstick()
        yardstick_note = "reference timed differently on the two sides: normalised by the rounds' reference tasks"
    (b_rounds, b_refs), (c_rounds, c_refs) = split(base), split(cand)
    normalised = b_refs is not None and c_refs is not None
    b_xr = normalise(b_rounds, b_refs) if normalised else b_rounds
    c_xr = normalise(c_rounds, c_refs) if normalised else c_rounds
    ratio = _ratio(statistic(c_xr), statistic(b_xr))
    row = replace(row, raw_ratio=_ratio(statistic(c_rounds), statistic(b_rounds)),
                  normalised_ratio=ratio if normalised else None)
    b_x, c_x = np.concatenate(b_xr), np.concatenate(c_xr)
    if min(b_x.size, c_x.size) < MIN_SAMPLES:
        return replace(row, verdict=Verdict.INSUFFICIENT, note=f"need >= {MIN_SAMPLES} samples per side")
    if math.isnan(ratio):
        return replace(row, note="baseline statistic is 0; ratio undefined")
    ci_low, ci_high = ratio_ci((b_rounds, b_refs if normalised else None), (c_rounds, c_refs if normalised else None))
    p = float(sps.mannwhitneyu(fastest(c_xr), fastest(b_xr), alternative="two-sided").pvalue)
    verdict = _verdict(ratio, (ci_low, ci_high), p, threshold_pct=threshold_pct, alpha=alpha)
    note = "; ".join(filter(None, [yardstick_note if normalised else "",
                                   "" if normalised else "raw (no reference samples on both sides)"]))
    return replace(row, verdict=verdict, ci_low=ci_low, ci_high=ci_high, p_value=p, note=note)


def _missing(key: BenchmarkKey, base: BenchSamples | None, cand: BenchSamples | None, threshold_pct: float) -> CheckRow:
    return CheckRow(
        key=key,
        verdict=Verdict.MISSING,
        threshold_pct=threshold_pct,
        baseline_median_ms=None if base is None else base.median_ms,
        candidate_median_ms=None if cand is None else cand.median_ms,
        n_baseline=0 if base is None else base.n,
        n_candidate=0 if cand is None else cand.n,
        note="baseline only" if cand is None else "candidate only",
    )


def _validate(threshold_pct: float, alpha: float) -> None:
    # NaN fails every comparison and inf makes every change "within threshold": both would pass anything
    if not (math.isfinite(threshold_pct) and threshold_pct > 0):
        raise ConfigError(f"threshold_pct must be a finite number > 0 (got {threshold_pct}); e.g. --threshold 5")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1) (got {alpha}); e.g. --alpha 0.002")


def compare(
    baseline: BenchmarkSet,
    candidate: BenchmarkSet,
    *,
    threshold_pct: float = 5.0,
    alpha: float = 0.002,
    force: bool = False,
) -> CheckReport:
    """Compare every benchmark key of ``candidate`` with ``baseline``.

    Raises ``IncomparableError`` when the environments differ (device, dtype, torch major.minor, threads)
    unless ``force``, in which case the report lists the differences and compares anyway.
    """
    _validate(threshold_pct, alpha)
    mismatches = environment_mismatches(baseline, candidate)
    if mismatches and not force:
        raise IncomparableError(
            f"baseline {baseline.source or '(in memory)'} and candidate {candidate.source or '(in memory)'} "
            f"differ in {', '.join(m.split(':')[0] for m in mismatches)} ({'; '.join(mismatches)}); "
            "rerun the candidate in the baseline's environment or pass --force"
        )
    rows = []
    for key in sorted(set(baseline.benchmarks) | set(candidate.benchmarks), key=BenchmarkKey.sort_key):
        base, cand = baseline.benchmarks.get(key), candidate.benchmarks.get(key)
        threshold = base.threshold_pct if base is not None and base.threshold_pct is not None else threshold_pct
        if base is None or cand is None:
            rows.append(_missing(key, base, cand, threshold))
        else:
            rows.append(_compare_one(key, base, cand, threshold_pct=threshold, alpha=alpha))
    return CheckReport(
        rows=tuple(rows),
        threshold_pct=threshold_pct,
        alpha=alpha,
        env_mismatches=tuple(mismatches),
        baseline_source=baseline.source,
        candidate_source=candidate.source,
        failed=tuple(f"baseline: {f}" for f in baseline.failed) + tuple(f"candidate: {f}" for f in candidate.failed),
    )
