"""Our ``sknet50`` vs timm's ``skresnext50_32x4d``: throughput side by side, interleaved rounds.

Same structure and parameter count (27,479,784); the question is what the SK unit's implementation costs
beyond its MACs. Each round times both models (order alternating) with whole-loop throughput; the result is
the median of the per-round ratios with its spread.

    python benchmarks/sk_speed.py --device cpu --batch 8 --rounds 7
    python benchmarks/sk_speed.py --device cuda --batch 256 --dtype bf16 --rounds 7
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

import timm
import torch

import harness
from harness.measure.mode import Mode
from harness.measure.params import count_params
from harness.measure.sampling import SampleWindow
from harness.measure.timer import prepare_benchmark


def _rate(prepared, window: SampleWindow) -> float:
    result = prepared.throughput(window)
    return result.samples_per_s


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
    prepared = {k: prepare_benchmark(m, input_shape=shape, batch_size=args.batch, device=args.device, mode=mode)
                for k, m in models.items()}
    for p in prepared.values():
        p.warmup(3)
    window = SampleWindow(min_time_s=args.seconds, max_time_s=args.seconds * 3, min_samples=3, max_samples=1000)
    ratios, rates = [], {"sknet50": [], "timm": []}
    for r in range(args.rounds):
        order = ["sknet50", "timm"] if r % 2 == 0 else ["timm", "sknet50"]
        got = {k: _rate(prepared[k], window) for k in order}
        for k, v in got.items():
            rates[k].append(v)
        ratios.append(got["sknet50"] / got["timm"])
        print(f"round {r + 1}: sknet50 {got['sknet50']:.2f} img/s, timm {got['timm']:.2f} img/s, "
              f"ratio {ratios[-1]:.3f}", file=sys.stderr)
    q = statistics.quantiles(ratios, n=4) if len(ratios) >= 2 else [ratios[0]] * 3
    summary = {"device": args.device, "batch": args.batch, "dtype": args.dtype, "rounds": args.rounds,
               "threads": torch.get_num_threads(), "median_ratio": statistics.median(ratios),
               "ratio_q1": q[0], "ratio_q3": q[2], "ratio_min": min(ratios), "ratio_max": max(ratios),
               "sknet50_img_s_median": statistics.median(rates["sknet50"]),
               "timm_img_s_median": statistics.median(rates["timm"]), "ratios": ratios}
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(summary, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
