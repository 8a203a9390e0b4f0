"""The gate's verdict: one statistic, its test and interval, and the rule that calls a change a regression.

**The statistic.** In every round the ``GATE_QUANTILE`` (5th percentile) of the per-iteration samples, divided by
the same quantile of the reference samples of that round when both sides have them (``harness.gate.sets``), and
the median of these over the rounds. Why a low quantile and not the median: on a shared machine interference only
ever adds time. Other processes preempt some iterations, and the share of preempted iterations changes from run to
run, so medians of identical runs differ by tens of percent; the fastest iterations are the undisturbed ones and
hold still. A round in which the machine changed speed half-way is outvoted by the median over rounds. The
Mann-Whitney test looks at the fastest quarter of each round for the same reason.

**The rule.** A benchmark is a ``regression`` only when the change is both *significant* (two-sided Mann-Whitney
U test, p < ``ALPHA``) and *large* (ratio of the statistic beyond the threshold, with the bootstrap 95% CI of that
ratio excluding 1). This is the asv rule (significance plus a minimum effect): with thousands of samples a 0.5%
shift is significant yet irrelevant, and with a handful of noisy samples a 25% shift is large yet unproven
(reported as ``changed (not significant)``, which does not fail the gate). ``benchmarks/gate_error_rates.py``
and ``benchmarks/ab_error_rates.py`` measure what it buys (docs/gate.md).

**Comparable environments.** ``compare`` refuses sets whose device type and name (CPU or GPU model), dtype,
torch major.minor or thread count differ, or
that one side records and the other does not, and a merged run timed on several machines (unless forced).

The verdicts (``CheckRow`` per benchmark, ``CheckReport`` for all) are shown by ``harness.gate.render``.
"""

from __future__ import annotations

import enum
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import stats as sps
from scipy.special import gammaln

from harness.errors import ConfigError, IncomparableError
from harness.gate import ALPHA, MAX_THRESHOLD_PCT, THRESHOLD_PCT
from harness.gate.sets import BenchmarkSet, BenchSamples
from harness.measure.stats import bootstrap_ci
from harness.results.summaries import BenchmarkKey

log = logging.getLogger(__name__)


# --- the statistic -------------------------------------------------------------------------------------------

GATE_QUANTILE = 0.05
# The Mann-Whitney test looks at the fastest quarter of each round (at least MIN_TEST_SAMPLES per side): it
# asks the statistic's question, whether the undisturbed iterations got slower. On the whole distribution a
# busy neighbour's share of preempted iterations swamps a real shift (and makes an unchanged run "significant").
TEST_FRACTION = 0.25
MIN_TEST_SAMPLES = 20

Split = tuple[list[np.ndarray], list[np.ndarray] | None]


def low(values: np.ndarray, axis: int | None = None, *, size: int | None = None) -> np.ndarray | float:
    """The ``GATE_QUANTILE`` of ``values``; with ``size``, its expected value over subsamples of ``size`` values.

    A sample quantile depends on the sample count (the 5th percentile of 3 samples is about their minimum, which
    lies far above the 5th percentile of 60), so two sides with different counts per round would differ by the
    counts alone. ``size`` (the smallest round of the comparison) puts every round on the same footing: the
    expected ``np.quantile`` of ``size`` values drawn without replacement, an exact L-estimator (weights below);
    with ``size`` equal to the count it is ``np.quantile`` itself.
    """
    if size is None:
        quantile: np.ndarray | float = np.quantile(values, GATE_QUANTILE, axis=axis)
        return quantile
    values = np.asarray(values)
    weights = _subsample_quantile_weights(values.shape[-1 if axis is None else axis], size)
    if axis is None:
        return float(np.sort(values, axis=None) @ weights)
    weighted: np.ndarray = np.moveaxis(np.sort(values, axis=axis), axis, -1) @ weights
    return weighted


def _subsample_quantile_weights(n: int, size: int) -> np.ndarray:
    """Weights on the sorted ``n`` values whose sum is the expected linear-interpolation ``GATE_QUANTILE`` of a
    random subsample of ``size`` of them: the i-th smallest value is the subsample's k-th smallest with the
    hypergeometric probability C(i-1, k-1) C(n-i, size-k) / C(n, size)."""
    size = min(size, n)
    h = (size - 1) * GATE_QUANTILE
    j = math.floor(h)
    i = np.arange(1, n + 1)

    def order_stat(k: int) -> np.ndarray:
        log_p = (gammaln(i) - gammaln(k) - gammaln(i - k + 1) + gammaln(n - i + 1) - gammaln(size - k + 1)
                 - gammaln(n - i - size + k + 1) - (gammaln(n + 1) - gammaln(size + 1) - gammaln(n - size + 1)))
        valid = (i >= k) & (n - i >= size - k)
        return np.where(valid, np.exp(np.where(valid, log_p, 0.0)), 0.0)

    lower = order_stat(j + 1)
    return lower if h == j else (1 - (h - j)) * lower + (h - j) * order_stat(min(j + 2, size))


def common_size(*sides: Split) -> int:
    """The smallest round (samples or reference samples) of the sides compared: every round's quantile is taken
    as if it had this many samples (``low``)."""
    return min(a.size for rounds, refs in sides for a in [*rounds, *(refs or [])])


def split(samples: BenchSamples) -> Split:
    """The non-empty rounds and, when every one of them has reference samples, each round's reference samples."""
    aligned = len(samples.reference_rounds) == len(samples.rounds)
    rounds, refs = [], []
    for i, values in enumerate(samples.rounds):
        if not values:
            continue
        rounds.append(np.asarray(values, dtype=np.float64))
        ref = np.asarray(samples.reference_rounds[i] if aligned else (), dtype=np.float64)
        aligned = aligned and ref.size > 0 and float(low(ref)) > 0.0
        refs.append(ref)
    return rounds, refs if aligned else None


def normalise(rounds: list[np.ndarray], refs: list[np.ndarray], *, size: int | None = None) -> list[np.ndarray]:
    """Each round's samples divided by the low quantile of the reference samples of the same round."""
    return [values / float(low(ref, size=size)) for values, ref in zip(rounds, refs, strict=True)]


def statistic(rounds: list[np.ndarray], *, size: int | None = None) -> float:
    """What the gate compares: the median over rounds of each round's ``GATE_QUANTILE`` (of ``size`` samples)."""
    return float(np.median([low(values, size=size) for values in rounds]))


def centre(samples: BenchSamples, *, normalised: bool) -> float:
    """The statistic of one benchmark, normalised when asked and possible."""
    rounds, refs = split(samples)
    return statistic(normalise(rounds, refs) if normalised and refs is not None else rounds)


def test_fraction(*sides: list[np.ndarray]) -> float:
    """The share of each round the test looks at, the same on both sides (``TEST_FRACTION``, or a larger share
    when the side with fewer samples would keep < MIN_TEST_SAMPLES): with different shares the side with fewer
    samples would be tested on slower iterations, a difference made by the counts alone."""
    total = min(sum(values.size for values in rounds) for rounds in sides)
    return min(1.0, max(TEST_FRACTION, MIN_TEST_SAMPLES / total))


def fastest(rounds: list[np.ndarray], fraction: float = TEST_FRACTION) -> np.ndarray:
    """The fastest ``fraction`` of each round, pooled."""
    return np.concatenate([np.sort(values)[: max(1, math.ceil(fraction * values.size))] for values in rounds])


def _per_round(rounds: list[np.ndarray], refs: list[np.ndarray] | None) -> list[tuple[np.ndarray, np.ndarray | None]]:
    return [(values, None if refs is None else refs[i]) for i, values in enumerate(rounds)]


def ratio_ci(base: Split, cand: Split, *, size: int | None = None) -> tuple[float, float]:
    """Percentile-bootstrap 95% CI of ``statistic(cand) / statistic(base)``.

    Every round (and every reference round) is resampled on its own, so the interval reflects the spread
    within rounds while the median over rounds is kept as in the statistic. A round of one sample has nothing
    to resample and enters as a constant.
    """
    sides = [_per_round(*base), _per_round(*cand)]
    arrays = [a for side in sides for pair in side for a in pair if a is not None and a.size > 1]
    if not arrays:
        value = _side_statistic(sides[1], {}, size=size) / _side_statistic(sides[0], {}, size=size)
        return value, value
    index = {id(a): i for i, a in enumerate(arrays)}

    def ratio(*resampled: np.ndarray, axis: int = -1) -> np.ndarray:
        lookup = {key: resampled[i] for key, i in index.items()}
        out: np.ndarray = (_side_statistic(sides[1], lookup, axis=axis, size=size)
                           / _side_statistic(sides[0], lookup, axis=axis, size=size))
        return out

    return bootstrap_ci(arrays, ratio)


def _side_statistic(pairs: list[tuple[np.ndarray, np.ndarray | None]], resampled: dict[int, np.ndarray],
                    *, axis: int = -1, size: int | None = None) -> np.ndarray:
    """The statistic of one side, on resampled arrays where given (constants elsewhere), vectorised on ``axis``."""
    per_round = []
    for values, ref in pairs:
        value = low(resampled.get(id(values), values), axis=axis, size=size)
        if ref is not None:
            value = value / low(resampled.get(id(ref), ref), axis=axis, size=size)
        per_round.append(value)
    median: np.ndarray = np.median(np.stack(np.broadcast_arrays(*per_round), axis=0), axis=0)
    return median


# --- comparable environments ------------------------------------------------------------------------------

# Where the manifest environment (``harness.environment.capture_environment``) or a pytest-benchmark
# machine_info keeps each value; the first path that holds a scalar (or a list of names) wins.
_TORCH_PATHS = (("torch",), ("packages", "torch"), ("torch_version",))
_THREAD_PATHS = (("cpu", "torch_threads"), ("threads",), ("torch_threads",))
_GPU_PATHS = (("device", "description"), ("gpus",), ("gpu_name",), ("device_name",))
_CPU_PATHS = (("cpu", "brand_raw"), ("cpu", "model"), ("device", "description"), ("cpu_name",), ("processor",))


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
    devices: set[str | None] = {k.device for k in bset.benchmarks if k.device} or {_lookup(env, [("device", "name")])}
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
    """``"field: baseline vs candidate"`` for each field that differs, or that one side records and the other does
    not (a baseline with its environment stripped cannot show it was timed on the candidate's machine); and a side
    whose shards were timed on more than one machine."""
    base, cand = environment_fingerprint(baseline), environment_fingerprint(candidate)
    # one side silent: only when both measured something (a side with no benchmark is judged "missing" anyway)
    one_sided = bool(baseline.benchmarks) and bool(candidate.benchmarks)
    out = [f"{name}: {base[name] or 'unknown'} vs {cand[name] or 'unknown'}" for name in base
           if base[name] != cand[name] and ((base[name] is not None and cand[name] is not None) or one_sided)]
    for side, bset in (("baseline", baseline), ("candidate", candidate)):
        if len(bset.machines) > 1:
            out.append(f"machines: the {side}'s shards were timed on {len(bset.machines)} machines "
                       f"({' / '.join(bset.machines)})")
    return out


# --- verdicts -------------------------------------------------------------------------------------------------


class Verdict(str, enum.Enum):
    REGRESSION = "regression"
    IMPROVEMENT = "improvement"
    CHANGED = "changed (not significant)"
    UNCHANGED = "unchanged"
    MISSING = "missing"
    INSUFFICIENT = "insufficient samples"
    NO_RAW = "no raw samples"
    UNDEFINED = "ratio undefined"


# Verdicts that judge nothing: a report holding one of them cannot pass (exit 2, "could not judge"). A benchmark
# without raw samples on a side (a pytest-benchmark file without `data`, emptied rounds) has no test behind it, and
# a ratio that is not a finite number (a zero or infinite statistic) is no measurement.
UNJUDGED = frozenset({Verdict.MISSING, Verdict.INSUFFICIENT, Verdict.NO_RAW, Verdict.UNDEFINED})


@dataclass(frozen=True)
class CheckRow:
    """Outcome for one benchmark key. Ratios are candidate / baseline (> 1: candidate slower).

    With raw samples the ratios compare the gate's statistic (median over rounds of each round's
    ``GATE_QUANTILE``), whose raw values are ``*_stat_ms`` (what the tables show: the numbers judged);
    ``*_median_ms`` are plain medians.
    """

    key: BenchmarkKey
    verdict: Verdict
    threshold_pct: float
    baseline_median_ms: float | None = None
    candidate_median_ms: float | None = None
    raw_ratio: float | None = None
    normalised_ratio: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    n_baseline: int = 0
    n_candidate: int = 0
    note: str = ""
    baseline_stat_ms: float | None = None
    candidate_stat_ms: float | None = None


@dataclass(frozen=True)
class CheckReport:
    """Result of :func:`compare`; ``exit_code`` is 1 when any benchmark regressed,
    2 when the gate could not judge (``unjudged``), else 0."""

    rows: tuple[CheckRow, ...]
    threshold_pct: float
    alpha: float
    env_mismatches: tuple[str, ...] = ()
    baseline_source: str = ""
    candidate_source: str = ""
    notes: tuple[str, ...] = ()  # lines shown under the header (how the two sides were measured, noise check)
    failed: tuple[str, ...] = ()  # timed tasks of either side that ended in an error
    contended: tuple[str, ...] = ()  # timings of either side made under contention (not judged unless forced)

    @property
    def unjudged(self) -> list[str]:
        """Why the gate could not judge (empty when it could): a side with nothing measured, a benchmark on one
        side only or with too few samples, a timed task that failed. What was not measured must not pass."""
        reasons = []
        if not self.rows:
            reasons.append("no benchmark was measured on either side")
        reasons += [f"{r.key.label} ({r.key.mode}, batch {r.key.batch_size}): {r.verdict.value}"
                    + (f", {r.note}" if r.note else "") for r in self.rows if r.verdict in UNJUDGED]
        return reasons + list(self.failed) + list(self.contended)

    @property
    def exit_code(self) -> int:
        """1: a regression (and nothing else); 2: could not judge (see ``unjudged``); 0: pass. A timing made under
        contention is never a regression: it cannot be judged (a busy machine must not fail a build)."""
        if self.contended:
            return 2
        if any(r.verdict is Verdict.REGRESSION for r in self.rows):
            return 1
        return 2 if self.unjudged else 0

    def counts(self) -> dict[str, int]:
        """Rows per verdict, in the order of :class:`Verdict` (regressions first)."""
        return {v.value: n for v in Verdict if (n := sum(r.verdict is v for r in self.rows))}


# --- the comparison -------------------------------------------------------------------------------------------


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
    (b_rounds, b_refs), (c_rounds, c_refs) = split(base), split(cand)
    normalised = b_refs is not None and c_refs is not None
    b_split, c_split = (b_rounds, b_refs if normalised else None), (c_rounds, c_refs if normalised else None)
    size = common_size(b_split, c_split)  # every round's quantile as if of this many samples: counts cannot bias it
    b_xr = normalise(b_rounds, b_refs, size=size) if b_refs is not None and normalised else b_rounds
    c_xr = normalise(c_rounds, c_refs, size=size) if c_refs is not None and normalised else c_rounds
    ratio = _ratio(statistic(c_xr, size=size), statistic(b_xr, size=size))
    b_stat, c_stat = statistic(b_rounds, size=size), statistic(c_rounds, size=size)
    row = replace(row, raw_ratio=_ratio(c_stat, b_stat), normalised_ratio=ratio if normalised else None,
                  baseline_stat_ms=b_stat, candidate_stat_ms=c_stat)
    b_x, c_x = np.concatenate(b_xr), np.concatenate(c_xr)
    if min(b_x.size, c_x.size) < MIN_SAMPLES:
        return replace(row, verdict=Verdict.INSUFFICIENT, note=f"need >= {MIN_SAMPLES} samples per side")
    if not math.isfinite(ratio):
        return replace(row, verdict=Verdict.UNDEFINED, note="the ratio of the statistics is not a finite number")
    ci_low, ci_high = ratio_ci(b_split, c_split, size=size)
    if not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return replace(row, verdict=Verdict.UNDEFINED, note="the ratio's interval is not finite")
    fraction = test_fraction(b_xr, c_xr)
    p = float(sps.mannwhitneyu(fastest(c_xr, fraction), fastest(b_xr, fraction), alternative="two-sided").pvalue)
    if math.isnan(p):
        return replace(row, verdict=Verdict.UNDEFINED, note="the test's p-value is not a number")
    verdict = _verdict(ratio, (ci_low, ci_high), p, threshold_pct=threshold_pct, alpha=alpha)
    note = "" if normalised else "raw (no reference samples on both sides)"
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


def check_options(threshold_pct: float, alpha: float) -> None:
    """The threshold and alpha, checked before anything is measured (``gate ab`` calls it first)."""
    # NaN fails every comparison and a huge threshold makes every change "within threshold": both pass anything
    if not (math.isfinite(threshold_pct) and 0 < threshold_pct <= MAX_THRESHOLD_PCT):
        raise ConfigError(f"--threshold {threshold_pct:g}: give a percentage in (0, {MAX_THRESHOLD_PCT:g}] (a larger "
                          f"one would pass a {1 + MAX_THRESHOLD_PCT / 100:g}x slowdown); e.g. --threshold "
                          f"{THRESHOLD_PCT:g}")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1) (got {alpha}); e.g. --alpha {ALPHA:g}")


def compare(
    baseline: BenchmarkSet,
    candidate: BenchmarkSet,
    *,
    threshold_pct: float = THRESHOLD_PCT,
    alpha: float = ALPHA,
    force: bool = False,
) -> CheckReport:
    """Compare every benchmark key of ``candidate`` with ``baseline``.

    Raises ``IncomparableError`` when the environments differ (device, dtype, torch major.minor, threads)
    unless ``force``, in which case the report lists the differences and compares anyway.
    """
    check_options(threshold_pct, alpha)
    mismatches = environment_mismatches(baseline, candidate)
    if mismatches and not force:
        raise IncomparableError(
            f"cannot judge: baseline {baseline.source or '(in memory)'} and candidate "
            f"{candidate.source or '(in memory)'} differ in {', '.join(m.split(':')[0] for m in mismatches)} "
            f"({'; '.join(mismatches)}); rerun the candidate in the baseline's environment or pass --force"
        )
    rows = []
    for key in sorted(set(baseline.benchmarks) | set(candidate.benchmarks), key=BenchmarkKey.sort_key):
        base, cand = baseline.benchmarks.get(key), candidate.benchmarks.get(key)
        if base is None or cand is None:
            rows.append(_missing(key, base, cand, threshold_pct))
        else:
            rows.append(_compare_one(key, base, cand, threshold_pct=threshold_pct, alpha=alpha))
    return CheckReport(
        rows=tuple(rows),
        threshold_pct=threshold_pct,
        alpha=alpha,
        env_mismatches=tuple(mismatches),
        baseline_source=baseline.source,
        candidate_source=candidate.source,
        failed=tuple(f"baseline: {f}" for f in baseline.failed) + tuple(f"candidate: {f}" for f in candidate.failed),
        # a busy machine is no regression of the code: a contended timing is not judged (it can be, with --force)
        contended=() if force else _contention(baseline, candidate),
    )


def _contention(baseline: BenchmarkSet, candidate: BenchmarkSet) -> tuple[str, ...]:
    lines = [f"baseline: {c}" for c in baseline.contended] + [f"candidate: {c}" for c in candidate.contended]
    if len(lines) > 3:  # say how many, not every process
        lines = [*lines[:2], f"… {len(lines) - 2} more timed under contention"]
    if lines:
        lines.append("rerun on a quiet machine (or --wait-quiet 300), or pass --force to judge it anyway")
    return tuple(lines)
