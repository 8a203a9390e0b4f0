"""Latency regression gate: compare a candidate benchmark set against a baseline.

A benchmark is a ``regression`` only when the change is both *significant* (two-sided Mann-Whitney U test,
p < alpha) and *large* (ratio of the gate's statistic beyond the threshold, with the bootstrap 95% CI of that
ratio excluding 1). This is the asv rule (significance plus a minimum effect): with thousands of samples a 0.5%
shift is significant yet irrelevant, and with a handful of noisy samples a 25% shift is large yet unproven
(reported as ``changed (not significant)``, which does not fail the gate).

The statistic is not the median. On a shared machine interference only ever adds time: other processes
preempt some iterations, and the share of preempted iterations changes from run to run, so medians of
identical runs differ by tens of percent; the fastest iterations are the undisturbed ones and hold still. The
gate therefore takes, in every round, the ``GATE_QUANTILE`` (5th percentile) of the samples and compares the
median of these over the rounds (a round in which the machine changed speed half-way is outvoted). The
Mann-Whitney test looks at the fastest quarter of each round for the same reason. The report's ms columns
still show plain medians. tests/bench/gate_error_rates.py measures what this buys (docs/ci_gate.md).

When both sides carry reference-workload samples (records of kind ``calibration`` interleaved in the same
rounds), each round's samples are first divided by the same low quantile of the reference samples of that
round, so a machine that is uniformly slower today does not look like a regression. Thresholds can be
calibrated per benchmark from repeated identical (A/A) runs with :func:`calibrate_thresholds` and stored with
:func:`write_thresholds`.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from scipy import stats as sps

from harness.baseline import BenchKey, BenchmarkSet, BenchSamples, write_thresholds
from harness.check_report import GATE_QUANTILE, CheckReport, CheckRow, Verdict
from harness.errors import ConfigError, IncomparableError

__all__ = [
    "CheckReport",
    "CheckRow",
    "Verdict",
    "calibrate_thresholds",
    "compare",
    "environment_fingerprint",
    "write_thresholds",
]

log = logging.getLogger(__name__)

MIN_SAMPLES = 5
# The statistic compared: a low quantile of the per-iteration samples (see the module docstring).
# The Mann-Whitney test looks at the fastest quarter of each round (at least MIN_TEST_SAMPLES per side): it asks
# the statistic's question, whether the undisturbed iterations got slower. On the whole distribution a busy
# neighbour's share of preempted iterations swamps a real shift (and makes an unchanged run "significant").
TEST_FRACTION = 0.25
MIN_TEST_SAMPLES = 20
_BOOTSTRAP_RESAMPLES = 2000
_BOOTSTRAP_SEED = 0  # the interval is a pure function of the samples: re-checking gives the same report
_BOOTSTRAP_CELLS = 2_000_000  # floats per resampling batch


# --- environment compatibility ------------------------------------------------------------------------

# Where the manifest environment (harness.environment.capture_environment) or a pytest-benchmark
# machine_info keeps each value; the first path that holds a scalar (or a list of names) wins.
_TORCH_PATHS = (("torch",), ("packages", "torch"), ("torch_version",))
_THREAD_PATHS = (("cpu", "torch_threads"), ("threads",), ("torch_threads",))
_GPU_PATHS = (("device", "description"), ("gpus",), ("gpu_name",), ("device_name",))
_CPU_PATHS = (("cpu", "model"), ("cpu", "brand_raw"), ("device", "description"), ("cpu_name",), ("processor",))


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool) or value is None or isinstance(value, dict):
        return None
    if isinstance(value, (str, int, float)):
        return str(value) or None
    if isinstance(value, list):
        names = [_scalar(v.get("name") if isinstance(v, dict) else v) for v in value]
        return ",".join(n for n in names if n) or None
    return None


def _lookup(env: dict[str, Any], paths: Sequence[tuple[str, ...]]) -> str | None:
    for path in paths:
        value: Any = env
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        found = _scalar(value)
        if found is not None:
            return found
    return None


def _joined(values: set[Any]) -> str | None:
    return ",".join(sorted(str(v) for v in values if v is not None)) or None


def environment_fingerprint(bset: BenchmarkSet) -> dict[str, str | None]:
    """Fields that must agree for latencies to be comparable; None means unknown (not checked)."""
    env = bset.environment
    devices = {k.device for k in bset.benchmarks if k.device} or {_lookup(env, [("device", "name")])}
    device_type = _joined({d.split(":")[0] for d in devices if d})
    torch_version = _lookup(env, _TORCH_PATHS)
    match = re.match(r"(\d+)\.(\d+)", torch_version or "")
    threads = _joined({s.threads for s in bset.benchmarks.values()}) or _lookup(env, _THREAD_PATHS)
    return {
        "device_type": device_type,
        "device_name": _lookup(env, _GPU_PATHS if "cuda" in (device_type or "") else _CPU_PATHS),
        "dtype": _joined({k.dtype for k in bset.benchmarks}),
        "torch": f"{match.group(1)}.{match.group(2)}" if match else torch_version,
        "threads": threads,
    }


def environment_mismatches(baseline: BenchmarkSet, candidate: BenchmarkSet) -> list[str]:
    """``"field: baseline vs candidate"`` for each known field that differs."""
    base, cand = environment_fingerprint(baseline), environment_fingerprint(candidate)
    return [
        f"{name}: {base[name]} vs {cand[name]}"
        for name in base
        if base[name] is not None and cand[name] is not None and base[name] != cand[name]
    ]


# --- per-benchmark comparison ---------------------------------------------------------------------------


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan


def _low(values: np.ndarray | Sequence[float], axis: int | None = None) -> Any:
    return np.quantile(values, GATE_QUANTILE, axis=axis)


def _split(samples: BenchSamples) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """The non-empty rounds and, when every one of them has reference samples, each round's reference samples."""
    aligned = len(samples.reference_rounds) == len(samples.rounds)
    rounds, refs = [], []
    for i, values in enumerate(samples.rounds):
        if not values:
            continue
        rounds.append(np.asarray(values, dtype=np.float64))
        ref = np.asarray(samples.reference_rounds[i] if aligned else (), dtype=np.float64)
        aligned = aligned and ref.size > 0 and float(_low(ref)) > 0.0
        refs.append(ref)
    return rounds, refs if aligned else None


def _normalise(rounds: list[np.ndarray], refs: list[np.ndarray]) -> list[np.ndarray]:
    """Each round's samples divided by the low quantile of the reference samples of the same round."""
    return [values / float(_low(ref)) for values, ref in zip(rounds, refs, strict=True)]


def _statistic(rounds: list[np.ndarray]) -> float:
    """What the gate compares: the median over rounds of each round's ``GATE_QUANTILE``."""
    return float(np.median([_low(values) for values in rounds]))


def _fastest(rounds: list[np.ndarray]) -> np.ndarray:
    """The fastest ``TEST_FRACTION`` of each round (a larger share when that leaves < MIN_TEST_SAMPLES), pooled."""
    total = sum(values.size for values in rounds)
    fraction = min(1.0, max(TEST_FRACTION, MIN_TEST_SAMPLES / total))
    return np.concatenate([np.sort(values)[: max(1, math.ceil(fraction * values.size))] for values in rounds])


def _resampled_low(values: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    out = np.empty(n)
    step = max(1, _BOOTSTRAP_CELLS // values.size)  # bounds the working array for long series
    for start in range(0, n, step):
        count = min(step, n - start)
        out[start:start + count] = _low(values[rng.integers(0, values.size, (count, values.size))], axis=1)
    return out


def _resampled_statistic(rounds: list[np.ndarray], refs: list[np.ndarray] | None, rng: np.random.Generator) -> Any:
    """Bootstrap replicates of :func:`_statistic`, resampling within each round (model and reference alike)."""
    per_round = []
    for i, values in enumerate(rounds):
        low = _resampled_low(values, _BOOTSTRAP_RESAMPLES, rng)
        per_round.append(low if refs is None else low / _resampled_low(refs[i], _BOOTSTRAP_RESAMPLES, rng))
    return np.median(np.stack(per_round, axis=1), axis=1)


def _ratio_ci(base: tuple[list[np.ndarray], list[np.ndarray] | None],
              cand: tuple[list[np.ndarray], list[np.ndarray] | None]) -> tuple[float, float]:
    """Percentile-bootstrap 95% CI of ``statistic(cand) / statistic(base)``, the two runs resampled independently."""
    rng = np.random.default_rng(_BOOTSTRAP_SEED)
    ratios = _resampled_statistic(*cand, rng) / _resampled_statistic(*base, rng)
    low, high = np.quantile(ratios, [0.025, 0.975])
    return float(low), float(high)


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
    key: BenchKey, base: BenchSamples, cand: BenchSamples, *, threshold_pct: float, alpha: float
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
    (b_rounds, b_refs), (c_rounds, c_refs) = _split(base), _split(cand)
    normalised = b_refs is not None and c_refs is not None
    b_xr = _normalise(b_rounds, b_refs) if normalised else b_rounds
    c_xr = _normalise(c_rounds, c_refs) if normalised else c_rounds
    ratio = _ratio(_statistic(c_xr), _statistic(b_xr))
    row = replace(row, raw_ratio=_ratio(_statistic(c_rounds), _statistic(b_rounds)),
                  normalised_ratio=ratio if normalised else None)
    b_x, c_x = np.concatenate(b_xr), np.concatenate(c_xr)
    if min(b_x.size, c_x.size) < MIN_SAMPLES:
        return replace(row, verdict=Verdict.INSUFFICIENT, note=f"need >= {MIN_SAMPLES} samples per side")
    if math.isnan(ratio):
        return replace(row, note="baseline statistic is 0; ratio undefined")
    ci_low, ci_high = _ratio_ci((b_rounds, b_refs if normalised else None), (c_rounds, c_refs if normalised else None))
    p = float(sps.mannwhitneyu(_fastest(c_xr), _fastest(b_xr), alternative="two-sided").pvalue)
    verdict = _verdict(ratio, (ci_low, ci_high), p, threshold_pct=threshold_pct, alpha=alpha)
    note = "" if normalised else "raw (no reference samples on both sides)"
    return replace(row, verdict=verdict, ci_low=ci_low, ci_high=ci_high, p_value=p, note=note)


def _missing(key: BenchKey, base: BenchSamples | None, cand: BenchSamples | None, threshold_pct: float) -> CheckRow:
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
    if not threshold_pct > 0:
        raise ConfigError(f"threshold_pct must be > 0 (got {threshold_pct}); e.g. --threshold 5")
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
    for key in sorted(set(baseline.benchmarks) | set(candidate.benchmarks), key=BenchKey.sort_key):
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
    )


# --- threshold calibration ------------------------------------------------------------------------------


def _centre(samples: BenchSamples, *, normalise: bool) -> float:
    rounds, refs = _split(samples)
    return _statistic(_normalise(rounds, refs) if normalise and refs is not None else rounds)


def calibrate_thresholds(
    runs: Sequence[BenchmarkSet], *, quantile: float = 0.99, floor_pct: float = 2.0, margin: float = 1.5
) -> dict[BenchKey, float]:
    """Per-benchmark thresholds (percent) from K >= 2 identical (A/A) runs.

    For every ordered pair of runs the ratio of the gate's statistic (median over rounds of each round's
    ``GATE_QUANTILE``, normalised when every run has reference samples) is taken; the ``quantile`` of
    ``|ratio - 1|`` is how far two runs of unchanged code drift apart, and the threshold is
    ``max(floor_pct, margin * that)``.
    """
    if len(runs) < 2:
        raise ConfigError(f"calibration needs at least 2 identical runs (got {len(runs)}); rerun the suite K times")
    if not (0.0 <= quantile <= 1.0 and floor_pct > 0 and margin > 0):
        raise ConfigError(
            f"calibration needs 0 <= quantile <= 1, floor_pct > 0 and margin > 0 "
            f"(got {quantile}, {floor_pct}, {margin})"
        )
    common = set.intersection(*(set(r.benchmarks) for r in runs))
    for key in set.union(*(set(r.benchmarks) for r in runs)) - common:
        log.warning("calibration: %s (%s) is not in every run; no threshold for it", key.label, key.model)
    thresholds: dict[BenchKey, float] = {}
    for key in sorted(common, key=BenchKey.sort_key):
        series = [r.benchmarks[key] for r in runs]
        if not all(s.has_raw for s in series):
            log.warning("calibration: %s has no raw samples in some run; skipped", key.label)
            continue
        normalise = all(_split(s)[1] is not None for s in series)
        centres = [_centre(s, normalise=normalise) for s in series]
        drift = [abs(_ratio(b, a) - 1.0) for a, b in itertools.permutations(centres, 2)]
        thresholds[key] = max(floor_pct, margin * float(np.quantile(drift, quantile)) * 100.0)
    return thresholds
