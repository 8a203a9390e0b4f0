"""Does the harness's training loop cost throughput? harness ``train()`` vs a minimal plain-PyTorch loop.

Both sides train the same model (same initial weights), on the same data held on the device, with the
same batch size and SGD settings, for the same number of warm steps (each side runs one untimed round of
steps first). Rounds are interleaved and alternate which side goes first, so drift of the machine (clocks,
other processes) hits both alike. The harness side includes what a real run pays: on-device crop+flip
augmentation, the lr schedule, the periodic finite-loss check. The plain side draws un-augmented batches.

Prints per-round img/s, the median ratio harness/plain (goal >= 0.97) with its spread, and the loader's own
img/s next to the train-step img/s (the loader must not be the bottleneck).

    python benchmarks/train_step.py                       # CPU, small CNN, batch 32
    python benchmarks/train_step.py --device cuda --model sknet29 --batch-size 128 --steps 50 --repeats 7
"""

from __future__ import annotations

import argparse
import copy
import logging
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from harness.train.config import TrainConfig
from harness.train.data import CifarData, load_cifar
from harness.train.fake_cifar import write_fake_cifar
from harness.train.loader import DeviceLoader, measure_loader_throughput
from harness.train.loop import train


def small_cnn() -> nn.Module:
    def block(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    return nn.Sequential(
        block(3, 32),
        block(32, 64),
        nn.MaxPool2d(2),
        block(64, 128),
        nn.MaxPool2d(2),
        block(128, 128),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(128, 10),
    )


def build_model(name: str, width: float) -> nn.Module:
    torch.manual_seed(0)
    if name == "cnn":
        return small_cnn()
    import harness

    return harness.create_model(name, width=width)


def plain_loop(
    model: nn.Module, data: CifarData, *, device: torch.device, batch_size: int, steps: int, config: TrainConfig
) -> float:
    """The loop everyone writes: index a batch, normalise, forward, backward, step. Returns warm img/s."""
    x_all = data.train_x.to(device)
    y_all = data.train_y.to(device)
    mean = torch.tensor(data.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(data.std, device=device).view(1, 3, 1, 1)
    model = model.to(device).train()
    opt = torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov,
        weight_decay=config.weight_decay,
    )
    criterion = nn.CrossEntropyLoss()
    seconds = 0.0
    for timed in (False, True):
        perm = torch.randperm(len(x_all), device=device)
        sync(device)
        start = time.perf_counter()
        for i in range(steps):
            idx = perm[i * batch_size : (i + 1) * batch_size]
            x = (x_all[idx].float() / 255 - mean) / std
            loss = criterion(model(x), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sync(device)
        seconds = time.perf_counter() - start if timed else 0.0
    return steps * batch_size / seconds


def harness_loop(model: nn.Module, data: CifarData, *, device: torch.device, config: TrainConfig) -> float:
    """train() for two epochs of ``max_batches_per_epoch`` steps; epoch 2 is the warm one."""
    result = train(model, data, config, device=device)
    return result.history[-1].img_per_s


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="cnn", help="a registry name (e.g. sknet29), or cnn: a small built-in CNN")
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=8, help="timed steps per round and side")
    p.add_argument("--repeats", type=int, default=5, help="interleaved rounds")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    p.add_argument("--data-dir", type=Path, default=None, help="real CIFAR-10 here; default: synthetic")
    return p.parse_args()


def load_data(data_dir: Path | None, n_train: int) -> CifarData:
    if data_dir is not None:
        return load_cifar("cifar10", data_dir=data_dir)
    root = write_fake_cifar(Path(tempfile.mkdtemp(prefix="bench_cifar_")), n_train=n_train, n_test=64)
    return load_cifar("cifar10", data_dir=root)


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    data = load_data(args.data_dir, n_train=max(2 * args.steps * args.batch_size, 512))
    config = TrainConfig(
        epochs=2,
        batch_size=args.batch_size,
        lr=0.05,
        schedule="cosine",
        max_batches_per_epoch=args.steps,
        eval_batch_size=64,
    )
    init = build_model(args.model, args.width)
    rows = []
    for r in range(args.repeats):
        order = ("harness", "plain") if r % 2 == 0 else ("plain", "harness")
        row = {}
        for side in order:
            model = copy.deepcopy(init)
            if side == "harness":
                row[side] = harness_loop(model, data, device=device, config=config)
            else:
                row[side] = plain_loop(
                    model, data, device=device, batch_size=args.batch_size, steps=args.steps, config=config
                )
        rows.append(row)
        print(
            f"round {r}: harness {row['harness']:9.1f} img/s   plain {row['plain']:9.1f} img/s   "
            f"ratio {row['harness'] / row['plain']:.3f}"
        )
    report(rows, args, data, device)


def report(rows: list[dict[str, float]], args: argparse.Namespace, data: CifarData, device: torch.device) -> None:
    ratios = sorted(row["harness"] / row["plain"] for row in rows)
    med = statistics.median(ratios)
    q = statistics.quantiles(ratios, n=4) if len(ratios) >= 2 else [med, med, med]
    loader = DeviceLoader.for_split(data, train=True, batch_size=args.batch_size, device=device)
    loader_ips = measure_loader_throughput(loader, epochs=2)
    step_ips = statistics.median(row["harness"] for row in rows)
    model_label = args.model if args.model == "cnn" else f"{args.model} (width {args.width})"
    print(
        f"\nmodel {model_label}, device {device}, batch {args.batch_size}, "
        f"{args.steps} timed steps x {args.repeats} rounds, threads {torch.get_num_threads()}"
    )
    print(f"median img/s: harness {step_ips:.1f}, plain {statistics.median(r['plain'] for r in rows):.1f}")
    print(
        f"ratio harness/plain: median {med:.3f} (goal >= 0.97), IQR {q[0]:.3f}..{q[2]:.3f}, "
        f"min..max {ratios[0]:.3f}..{ratios[-1]:.3f}"
    )
    print(
        f"loader alone: {loader_ips:.0f} img/s = {loader_ips / step_ips:.0f}x the train step "
        f"({'not' if loader_ips > 10 * step_ips else 'POSSIBLY'} the bottleneck)"
    )


if __name__ == "__main__":
    main()
