"""Where the latency gate's noise comes from on this machine, and what each way of timing leaves of it.

Every one of ``--runs`` separate processes (one intra-op thread) builds the plugin model ``gate_convnet``
(``benchmarks/gate_plugin.py``: 20 equal 3×3 conv layers, 16 channels, 32×32 input), a copy of it, one with 21
layers (+5% of the body's multiply-adds) and the fixed reference workload, and times ``--rounds`` rounds of
four protocols with the harness's own timer (``harness.measure.timer``), each round's statistic being the
gate's (5th percentile, one model's over another's):

- ``own round``: the model for one window, then the reference for one window (the reference in a task of its
  own, as runs before ``reference_samples_ms`` had it): model / reference.
- ``interleaved``: the model and the reference alternating iteration for iteration (what ``latency.reference:
  true`` times now): model / reference.
- ``in-process A/A``: the model and its copy alternating: copy / model (1.0 if nothing but the two models'
  identity mattered).
- ``in-process +5%``: the model and the 21-layer one alternating: 21 / 20 layers.

It prints, per protocol, the scatter of the per-round statistic within a run and of the run's median across
runs (SD of the log, so 0.03 is about 3%), and the mean. The across-runs scatter is what a same-job gate with
a few runs per side has to beat: a run-to-run scatter of s per side makes a 3-run-per-side comparison scatter
by about s·√(2/3).

    OMP_NUM_THREADS=1 python benchmarks/gate_noise_sources.py --runs 8 --out gate_noise_sources.json   # ~2 min
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTOCOLS = ("own round", "interleaved", "in-process A/A", "in-process +5%")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=8, help="separate processes")
    p.add_argument("--rounds", type=int, default=6, help="rounds per process")
    p.add_argument("--round-s", type=float, default=0.5, help="seconds per round and protocol")
    p.add_argument("--out", help="JSON with every round's statistic")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _worker(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    sys.path.insert(0, str(HERE))
    import gate_plugin

    from harness.gate.verdict import low
    from harness.measure.mode import Mode
    from harness.measure.sampling import SampleWindow
    from harness.measure.timer import group_window, prepare_benchmark, time_group
    from harness.workloads.reference import reference_convnet

    torch.set_num_threads(1)

    def bench(model: torch.nn.Module):
        b = prepare_benchmark(model, input_shape=(3, 32, 32), batch_size=1, device="cpu", mode=Mode())
        b.warmup(5)
        return b

    model = bench(gate_plugin.gate_convnet(channels=16, depth=20, cost=1.0))
    copy = bench(gate_plugin.gate_convnet(channels=16, depth=20, cost=1.0))
    slower = bench(gate_plugin.gate_convnet(channels=16, depth=21, cost=1.0))
    reference = bench(reference_convnet())
    half = SampleWindow(min_time_s=args.round_s / 2, max_time_s=2 * args.round_s, min_samples=10,
                        max_samples=100_000)

    def ratio(num: list[float], den: list[float]) -> float:
        return float(low(np.asarray(num)) / low(np.asarray(den)))

    def together(a, b, w) -> tuple[list[float], list[float]]:
        group = time_group([a, b], group_window(w, 2))  # the harness's one engine
        return list(group.members[0].samples_ms), list(group.members[1].samples_ms)

    out: dict[str, list[float]] = {name: [] for name in PROTOCOLS}
    for _ in range(args.rounds):
        m, r = model.sample(half), reference.sample(half)
        out["own round"].append(ratio(m, r))
        m, r = together(model, reference, half)
        out["interleaved"].append(ratio(m, r))
        m, c = together(model, copy, half)
        out["in-process A/A"].append(ratio(c, m))
        m, s = together(model, slower, half)
        out["in-process +5%"].append(ratio(s, m))
    print(json.dumps(out))


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    if args.worker:
        _worker(args)
        return
    import numpy as np

    runs = []
    for i in range(args.runs):
        command = [sys.executable, __file__, "--worker", "--rounds", str(args.rounds), "--round-s", str(args.round_s)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        runs.append(json.loads(done.stdout.splitlines()[-1]))
        print(f"run {i + 1}/{args.runs} done", file=sys.stderr, flush=True)
    print(f"| protocol ({args.runs} processes × {args.rounds} rounds) | within a run | across runs | mean |")
    print("|---|---|---|---|")
    summary = {}
    for name in PROTOCOLS:
        values = np.array([run[name] for run in runs])
        within = float(np.mean(np.std(np.log(values), axis=1)))
        across = float(np.std(np.log(np.median(values, axis=1))))
        summary[name] = {"within_sd_log": within, "across_sd_log": across, "mean": float(values.mean())}
        print(f"| {name} | {within:.3f} | {across:.3f} | {values.mean():.3f} |")
    if args.out:
        Path(args.out).write_text(json.dumps({"settings": vars(args), "summary": summary, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
