"""Our ``sknet50`` vs timm's ``skresnext50_32x4d``: throughput timed together by the harness's engine.

Same structure and parameter count (27,479,784); the question is what the SK unit's implementation costs
beyond its MACs. Both models are timed by ``harness.measure.timer.measure_group`` (one whole loop of each per
cycle, the order alternating); the result is the median of the per-cycle ratios (our img/s ÷ timm's) with its
bootstrap 95% CI over cycles. ``--rounds`` is the minimum number of cycles.

    python benchmarks/sk_speed.py --device cpu --batch 8 --rounds 7
    python benchmarks/sk_speed.py --device cuda --batch 256 --dtype bf16 --rounds 7
"""

from __future__ import annotations

import argparse
import json
import sys

import timm
import torch

import harness
from harness.measure.mode import Mode
from harness.measure.params import count_params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per model per round")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--input-size", type=int, default=224, help="square input side (224: ImageNet)")
    parser.add_argument("--json", help="write the numbers here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models = {"sknet50": harness.create_model("sknet50"), "timm": timm.create_model("skresnext50_32x4d")}
    assert count_params(models["sknet50"]).params == count_params(models["timm"]).params
    mode = Mode(dtype=args.dtype)
    shape = (3, args.input_size, args.input_size)
    from harness.measure.sampling import TimingConfig
    from harness.measure.stats import paired_ratio
    from harness.measure.timer import measure_group

    config = TimingConfig(warmup=3, min_time_s=args.seconds * args.rounds, max_time_s=args.seconds * args.rounds * 3,
                          min_samples=args.rounds)
    # the harness's one engine: one whole loop of each model per cycle, the order alternating
    results = measure_group(models, input_shape=shape, batch_size=args.batch, device=args.device, mode=mode,
                            config=config, loops=True)
    ours, theirs = results["sknet50"], results["timm"]
    spi = {k: [s / (r.iters_per_loop * args.batch) for s in r.loop_samples_s] for k, r in results.items()}
    ratio = paired_ratio(spi["sknet50"], spi["timm"])  # timm's time per image ÷ ours = our img/s ÷ timm's
    summary = {"device": args.device, "batch": args.batch, "dtype": args.dtype, "cycles": ratio.cycles,
               "threads": torch.get_num_threads(), "median_ratio": ratio.value, "ci95": [ratio.low, ratio.high],
               "sknet50_img_s": ours.samples_per_s, "timm_img_s": theirs.samples_per_s,
               "ratios": [b / a for a, b in zip(spi["sknet50"], spi["timm"], strict=True)]}
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(summary, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
