"""The training loop: learns, is deterministic, resumes exactly, fails loudly, writes contract records."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.utils.deterministic
from pydantic import ValidationError
from torch import nn

from harness.errors import ConfigError, MeasurementError
from harness.train.config import EpochResult, TrainConfig
from harness.train.data import CifarData, load_cifar
from harness.train.fake_cifar import write_fake_cifar
from harness.train.loop import train
from harness.train.schedule import lr_at

# docs/CONTRACTS.md, kind-specific fields of train_epoch and train records.
TRAIN_EPOCH_FIELDS = {"epoch", "train_loss", "test_acc", "lr", "img_per_s", "wall_s", "seed", "dataset", "synthetic"}
TRAIN_FIELDS = {"dataset", "synthetic", "epochs", "top1_err", "train_time_s", "curve"}


def tiny_net(seed: int = 0, num_classes: int = 10) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, num_classes),
    )


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny convs gain nothing from threads, and on a busy 2-core box OpenMP spinning makes them ~10× slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> CifarData:
    root = write_fake_cifar(tmp_path_factory.mktemp("cifar"), "cifar10", n_train=512, n_test=200, seed=0)
    return load_cifar("cifar10", data_dir=root)


def quick(**overrides: object) -> TrainConfig:
    base: dict[str, object] = dict(epochs=1, batch_size=32, lr=0.05, schedule="cosine", max_batches_per_epoch=4)
    base.update(overrides)
    return TrainConfig(**base)  # type: ignore[arg-type]


def metrics(history: tuple[EpochResult, ...] | list[EpochResult]) -> list[tuple[int, float, float, float]]:
    """What a seed determines (timings excluded)."""
    return [(e.epoch, e.train_loss, e.test_acc, e.lr) for e in history]


def test_learns_well_above_chance(data: CifarData) -> None:
    result = train(tiny_net(), data, TrainConfig(epochs=3, batch_size=32, lr=0.05, schedule="cosine"), device="cpu")
    assert [e.epoch for e in result.history] == [1, 2, 3]
    assert result.history[-1].test_acc > 0.5  # chance is 0.1
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert result.top1_err == pytest.approx(100 * (1 - result.history[-1].test_acc))


def test_same_seed_gives_identical_metrics(data: CifarData) -> None:
    a = train(tiny_net(), data, quick(epochs=2), device="cpu")
    b = train(tiny_net(), data, quick(epochs=2), device="cpu")
    assert metrics(a.history) == metrics(b.history)
    c = train(tiny_net(), data, quick(epochs=2, seed=1), device="cpu")
    assert metrics(c.history) != metrics(a.history)


class Killed(Exception):
    """Stands in for the process dying after an epoch's record was written."""


def test_kill_and_resume_equals_an_unbroken_run(data: CifarData, tmp_path: Path) -> None:
    config = quick(epochs=3, max_batches_per_epoch=3)
    unbroken = train(tiny_net(), data, config, device="cpu")
    ckpt = tmp_path / "run.pt"

    def die_at_epoch_2(result: EpochResult) -> None:
        if result.epoch == 2:
            raise Killed

    with pytest.raises(Killed):
        train(tiny_net(), data, config, device="cpu", checkpoint_path=ckpt, on_epoch=die_at_epoch_2)
    seen: list[int] = []
    # A fresh model with other weights: everything must come from the checkpoint (saved after epoch 1).
    resumed = train(
        tiny_net(seed=99),
        data,
        config,
        device="cpu",
        checkpoint_path=ckpt,
        resume=True,
        on_epoch=lambda r: seen.append(r.epoch),
    )
    assert seen == [2, 3]
    assert metrics(resumed.history) == metrics(unbroken.history)
    assert resumed.epochs == 3 and len(resumed.history) == 3


def test_resume_extends_a_shorter_run_without_repeating_epochs(data: CifarData, tmp_path: Path) -> None:
    two = train(tiny_net(), data, quick(epochs=2), device="cpu")
    ckpt = tmp_path / "ck.pt"
    first: list[int] = []
    train(
        tiny_net(), data, quick(epochs=1), device="cpu", checkpoint_path=ckpt, on_epoch=lambda r: first.append(r.epoch)
    )
    later: list[int] = []
    resumed = train(
        tiny_net(),
        data,
        quick(epochs=2),
        device="cpu",
        checkpoint_path=ckpt,
        resume=True,
        on_epoch=lambda r: later.append(r.epoch),
    )
    assert first == [1] and later == [2]
    assert [e.epoch for e in resumed.history] == [1, 2] == [e.epoch for e in two.history]
    assert resumed.train_time_s == pytest.approx(sum(e.train_wall_s for e in resumed.history))
    # Already complete: nothing is trained again.
    again: list[int] = []
    done = train(
        tiny_net(),
        data,
        quick(epochs=2),
        device="cpu",
        checkpoint_path=ckpt,
        resume=True,
        on_epoch=lambda r: again.append(r.epoch),
    )
    assert again == [] and metrics(done.history) == metrics(resumed.history)


def test_checkpoint_is_weights_only_and_atomic(data: CifarData, tmp_path: Path) -> None:
    ckpt = tmp_path / "sub" / "ck.pt"
    train(tiny_net(), data, quick(), device="cpu", checkpoint_path=ckpt)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert {"model", "optimizer", "scheduler", "epoch", "history", "rng"} <= set(state)
    assert state["epoch"] == 1 and len(state["history"]) == 1
    assert [p.name for p in ckpt.parent.iterdir()] == ["ck.pt"]  # no temp file left behind


def test_resume_without_checkpoint_starts_fresh(data: CifarData, tmp_path: Path) -> None:
    result = train(tiny_net(), data, quick(), device="cpu", checkpoint_path=tmp_path / "none.pt", resume=True)
    assert [e.epoch for e in result.history] == [1]


def test_resume_with_another_config_is_refused(data: CifarData, tmp_path: Path) -> None:
    ckpt = tmp_path / "ck.pt"
    train(tiny_net(), data, quick(), device="cpu", checkpoint_path=ckpt)
    with pytest.raises(ConfigError, match="lr=0.05"):
        train(tiny_net(), data, quick(epochs=2, lr=0.2), device="cpu", checkpoint_path=ckpt, resume=True)


class NaNAfter(nn.Module):
    """Finite outputs for the first ``good_steps`` training steps, then NaN."""

    def __init__(self, good_steps: int) -> None:
        super().__init__()
        self.net = tiny_net()
        self.good_steps = good_steps
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += self.training  # evaluation passes do not count
        out = self.net(x)
        return out * math.nan if self.calls > self.good_steps else out


def test_non_finite_loss_raises_with_epoch_and_step(data: CifarData) -> None:
    with pytest.raises(MeasurementError, match=r"non-finite loss at epoch 2 step 2 "):
        train(NaNAfter(good_steps=5), data, quick(epochs=2), device="cpu")


def test_fp16_on_cpu_is_refused_bf16_runs(data: CifarData) -> None:
    with pytest.raises(MeasurementError, match="fp16"):
        train(tiny_net(), data, quick(amp_dtype="fp16"), device="cpu")
    result = train(tiny_net(), data, quick(amp_dtype="bf16", max_batches_per_epoch=1, eval_batch_size=64), device="cpu")
    assert math.isfinite(result.history[0].train_loss)


def test_channels_last_trains(data: CifarData) -> None:
    result = train(tiny_net(), data, quick(channels_last=True, max_batches_per_epoch=2), device="cpu")
    assert math.isfinite(result.history[0].train_loss) and 0.0 <= result.history[0].test_acc <= 1.0


def test_records_carry_the_contract_fields(data: CifarData) -> None:
    result = train(tiny_net(), data, quick(), device="cpu")
    record = result.to_record()
    assert TRAIN_FIELDS <= set(record)
    assert record["synthetic"] is True and record["dataset"] == "cifar10" and record["epochs"] == 1
    (epoch,) = record["curve"]
    assert TRAIN_EPOCH_FIELDS <= set(epoch)
    assert epoch["epoch"] == 1 and epoch["seed"] == 0 and epoch["img_per_s"] > 0
    assert epoch["wall_s"] >= epoch["train_wall_s"] > 0
    assert epoch["img_per_s"] == pytest.approx(4 * 32 / epoch["train_wall_s"])
    assert EpochResult.from_record(epoch) == result.history[0]


def test_deterministic_flag_is_restored(data: CifarData) -> None:
    before = torch.are_deterministic_algorithms_enabled()
    fill = torch.utils.deterministic.fill_uninitialized_memory
    train(tiny_net(), data, quick(max_batches_per_epoch=1), device="cpu")
    assert torch.are_deterministic_algorithms_enabled() == before
    assert torch.utils.deterministic.fill_uninitialized_memory == fill


def test_step_schedule_is_resnext_and_cosine_decays() -> None:
    step = TrainConfig(epochs=4, lr=0.1, schedule="step")
    lrs = [lr_at(step, step=s, steps_per_epoch=10) for s in range(40)]
    assert lrs[:20] == [0.1] * 20  # epochs 0-1
    assert lrs[20:30] == pytest.approx([0.01] * 10) and lrs[30:] == pytest.approx([0.001] * 10)
    cos = TrainConfig(epochs=2, lr=0.1, schedule="cosine", warmup_epochs=1)
    assert lr_at(cos, step=0, steps_per_epoch=10) == pytest.approx(0.01)  # warmup: 1/10 of lr
    assert lr_at(cos, step=9, steps_per_epoch=10) == pytest.approx(0.1)
    assert lr_at(cos, step=10, steps_per_epoch=10) == pytest.approx(0.1)
    assert lr_at(cos, step=15, steps_per_epoch=10) == pytest.approx(0.05)


@pytest.mark.parametrize(
    "bad",
    [
        dict(epochs=0),
        dict(schedule="linear"),
        dict(amp_dtype="fp8"),
        dict(warmup_epochs=3),
        dict(max_batches_per_epoch=0),
    ],
)
def test_a_bad_config_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="TrainConfig"):
        TrainConfig(**{"epochs": 3, **bad})  # type: ignore[arg-type]


def test_no_full_batch_is_a_config_error(data: CifarData) -> None:
    with pytest.raises(ConfigError, match="lower batch_size"):
        train(tiny_net(), data, quick(batch_size=1024), device="cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("amp_dtype", [None, "bf16", "fp16"])
def test_trains_on_cuda(data: CifarData, amp_dtype: str | None) -> None:
    result = train(tiny_net(), data, quick(amp_dtype=amp_dtype, channels_last=True), device="cuda")
    epoch = result.history[0]
    assert math.isfinite(epoch.train_loss) and 0.0 <= epoch.test_acc <= 1.0 and epoch.img_per_s > 0


@pytest.mark.parametrize("wanted", [True, False])
def test_training_runs_with_the_recipes_cudnn_benchmark_and_restores_it(data: CifarData, wanted: bool) -> None:
    """Fixed-shape training picks its cuDNN kernels once (cudnn.benchmark, as timm's train.py sets it); the recipe
    says so (``cudnn_benchmark``, recorded with the config) and the flag is put back afterwards."""
    before = torch.backends.cudnn.benchmark
    seen = []
    train(tiny_net(), data, quick(cudnn_benchmark=wanted), device="cpu",
          on_epoch=lambda epoch: seen.append(torch.backends.cudnn.benchmark))
    assert seen == [wanted] and torch.backends.cudnn.benchmark == before
    assert TrainConfig(epochs=1).cudnn_benchmark is True
