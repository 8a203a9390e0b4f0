"""``make-fake-cifar``: a small synthetic dataset in torchvision's CIFAR format, for offline runs and tests."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_fake_cifar(args: argparse.Namespace) -> int:
    from harness.train.fake_cifar import write_fake_cifar

    print(write_fake_cifar(Path(args.dir), args.dataset, n_train=args.n_train, n_test=args.n_test, seed=args.seed))
    return 0


def register(sub: argparse._SubParsersAction, *, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("make-fake-cifar", parents=parents,
                       help="write a small synthetic dataset in torchvision's CIFAR format")
    p.add_argument("dir")
    p.add_argument("--dataset", choices=["cifar10", "cifar100"], default="cifar10")
    p.add_argument("--n-train", type=int, default=2000)
    p.add_argument("--n-test", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_fake_cifar)
