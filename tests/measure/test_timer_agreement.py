"""Cross-check: the harness's latency median agrees with torch.utils.benchmark's on the same model.

Both timers measure one model (torchvision resnet18, random weights, batch 1, 3x64x64 input, CPU) in the
same process, in back-to-back pairs whose order alternates (harness, Timer, Timer, harness, ...) so slow
drifts hit both alike. The verdict is the median, over clean pairs, of each pair's harness median / Timer
median, which must be within 3% of 1 (pooled medians are printed too, for reading). A pair where either
side has fewer than 5 samples or spreads wider than 10% (IQR / median) was disturbed by another process
and is left out; if that leaves no majority of the pairs, the test skips and says the machine is too
noisy, rather than pass or fail on noise.

They differ by construction in one respect: the harness keeps one sample per iteration, while
``blocked_autorange`` times blocks of ``number_per_run`` iterations (grown by 10x until the timer overhead
is < 0.01% of a block) and keeps each block's mean. The median of block means sits between the median and
the mean of single iterations, so on a right-skewed series the Timer reads slightly higher.

The pytest-benchmark fixture runs the whole comparison once (``pedantic``, one round, one iteration) and
stores the pairs in ``extra_info``: its own calibration (iterations per round grown until a round dwarfs
the timer's precision, rounds until ``max_time``) would only repeat what both timers already do.

Run as a test: ``pytest -m slow tests/measure/test_timer_agreement.py``; as a script:
``python tests/measure/test_timer_agreement.py [--repeats 6] [--min-time 0.8] [--threads N]``.
"""

from __future__ import annotations

import argparse
import math
import statistics
from dataclasses import asdict, dataclass

import pytest
import torch
from torch import nn
from torch.utils import benchmark as torch_benchmark

from harness.measure.sampling import TimingConfig
from harness.measure.timer import measure_latency

INPUT_SHAPE = (3, 64, 64)
BATCH_SIZE = 1
TOLERANCE = 0.03
# A repeat whose samples spread wider than this (IQR / median) was disturbed by another process; the
# harness flags CV >= 10% as unstable for the same reason.
NOISY_RELATIVE_IQR = 0.10
# Fewer samples than this give no usable spread estimate, so such a repeat cannot be called clean.
MIN_PAIR_SAMPLES = 5


def _relative_iqr(values: tuple[float, ...]) -> float:
    if len(values) < 2:
        return math.inf
    quartiles = statistics.quantiles(values, n=4)
    return (quartiles[2] - quartiles[0]) / statistics.median(values)


@dataclass(frozen=True)
class Pair:
    """One repeat: the harness and the Timer run back to back on the same model (both in ms)."""

    harness_ms: tuple[float, ...]  # one per iteration
    timer_ms: tuple[float, ...]  # one per block: the block's mean iteration time
    timer_block: int  # iterations per block

    @property
    def ratio(self) -> float:
        return statistics.median(self.harness_ms) / statistics.median(self.timer_ms)

    @property
    def clean(self) -> bool:
        enough = min(len(self.harness_ms), len(self.timer_ms)) >= MIN_PAIR_SAMPLES
        spread = max(_relative_iqr(self.harness_ms), _relative_iqr(self.timer_ms))
        return enough and spread < NOISY_RELATIVE_IQR


@dataclass(frozen=True)
class Agreement:
    """All pairs of one comparison; the verdict pools the clean pairs only."""

    pairs: tuple[Pair, ...]
    threads: int

    @property
    def clean_pairs(self) -> tuple[Pair, ...]:
        return tuple(pair for pair in self.pairs if pair.clean)

    @property
    def judgeable(self) -> bool:
        return len(self.clean_pairs) * 2 > len(self.pairs)

    def _pooled(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        used = self.clean_pairs or self.pairs
        return (
            tuple(x for pair in used for x in pair.harness_ms),
            tuple(x for pair in used for x in pair.timer_ms),
        )

    @property
    def harness_median_ms(self) -> float:
        return statistics.median(self._pooled()[0])

    @property
    def timer_median_ms(self) -> float:
        return statistics.median(self._pooled()[1])

    @property
    def ratio(self) -> float:
        """Median over clean pairs of each pair's harness median / Timer median.

        Each pair's two sides ran seconds apart, so a pair's ratio cancels drift between pairs; pooling
        all samples first would not (a machine that drifts from 14 to 12 ms gives a bimodal pool whose
        median lands wherever the sample counts tip it)."""
        return statistics.median(pair.ratio for pair in self.clean_pairs or self.pairs)

    def describe(self) -> str:
        harness, timer = self._pooled()
        ratios = ", ".join(f"{pair.ratio:.4f}{'' if pair.clean else '*'}" for pair in self.pairs)
        return (
            f"pooled harness median {self.harness_median_ms:.4f} ms (n={len(harness)} iterations,"
            f" IQR/median {_relative_iqr(harness):.2%})"
            f" | pooled Timer median {self.timer_median_ms:.4f} ms"
            f" (n={len(timer)} blocks x {self.pairs[-1].timer_block},"
            f" IQR/median {_relative_iqr(timer):.2%}) | median per-pair ratio {self.ratio:.4f}"
            f" | clean repeats {len(self.clean_pairs)}/{len(self.pairs)}, per-repeat ratios {ratios}"
            f" (* = noisy) | threads {self.threads}"
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "ratio": self.ratio,
            "harness_median_ms": self.harness_median_ms,
            "timer_median_ms": self.timer_median_ms,
            "threads": self.threads,
            "pairs": [asdict(pair) for pair in self.pairs],
        }


def build_model() -> nn.Module:
    torch.manual_seed(0)
    try:
        from torchvision.models import resnet18
    except ImportError:  # the comparison only needs some convnet; keep it runnable without torchvision
        return nn.Sequential(
            nn.Conv2d(3, 64, 7, stride=2, padding=3),
            nn.ReLU(),
            nn.Conv2d(64, 128, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(128, 1000),
        ).eval()
    return resnet18(weights=None).eval()


def _time_with_harness(model: nn.Module, *, min_time_s: float) -> list[float]:
    config = TimingConfig(warmup=3, min_time_s=min_time_s, max_time_s=4 * min_time_s, min_samples=10)
    result = measure_latency(model, input_shape=INPUT_SHAPE, batch_size=BATCH_SIZE, device="cpu", config=config)
    return list(result.samples_ms)


def _time_with_torch_timer(model: nn.Module, *, min_time_s: float) -> torch_benchmark.Measurement:
    inputs = torch.randn((BATCH_SIZE, *INPUT_SHAPE), generator=torch.Generator().manual_seed(0))

    def step() -> None:
        with torch.inference_mode():
            model(inputs)

    # Timer defaults to one thread; the harness uses torch's current count, so pass it explicitly.
    timer = torch_benchmark.Timer(stmt="step()", globals={"step": step}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_time_s)


def compare(*, repeats: int = 6, min_time_s: float = 0.8, threads: int | None = None) -> Agreement:
    """Run ``repeats`` back-to-back pairs (alternating who goes first) on one model."""
    saved_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        model = build_model()
        pairs = tuple(_pair(model, min_time_s=min_time_s, harness_first=r % 2 == 0) for r in range(repeats))
        return Agreement(pairs=pairs, threads=torch.get_num_threads())
    finally:
        torch.set_num_threads(saved_threads)


def _pair(model: nn.Module, *, min_time_s: float, harness_first: bool) -> Pair:
    # Alternating the order keeps either timer from always running on a machine the other just warmed.
    if harness_first:
        ours = _time_with_harness(model, min_time_s=min_time_s)
        theirs = _time_with_torch_timer(model, min_time_s=min_time_s)
    else:
        theirs = _time_with_torch_timer(model, min_time_s=min_time_s)
        ours = _time_with_harness(model, min_time_s=min_time_s)
    return Pair(
        harness_ms=tuple(ours),
        timer_ms=tuple(t * 1e3 for t in theirs.times),
        timer_block=theirs.number_per_run,
    )


@pytest.mark.slow
def test_harness_median_agrees_with_torch_timer(benchmark) -> None:
    outcome = benchmark.pedantic(compare, rounds=1, iterations=1)
    benchmark.extra_info.update(outcome.to_dict())
    if not outcome.judgeable:
        # On a shared machine other processes can swamp a 3% comparison; say so rather than guess.
        pytest.skip(f"machine too noisy to compare timers: {outcome.describe()}")
    assert abs(outcome.ratio - 1.0) < TOLERANCE, outcome.describe()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--min-time", type=float, default=0.8, help="seconds per timer per repeat")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    outcome = compare(repeats=args.repeats, min_time_s=args.min_time, threads=args.threads)
    print(outcome.describe())
    if not outcome.judgeable:
        print("NOISY: fewer than half the repeats were clean; rerun on a quieter machine")
    elif abs(outcome.ratio - 1.0) < TOLERANCE:
        print(f"AGREE (tolerance {TOLERANCE:.0%})")
    else:
        print(f"DISAGREE (tolerance {TOLERANCE:.0%})")


if __name__ == "__main__":
    main()
