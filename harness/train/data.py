"""CIFAR-10/100 in torchvision's on-disk format and a loader on the device.

``load_cifar`` reads the pickles itself (torchvision is used only to download) because torchvision's md5
check rejects the synthetic files that ``harness.train.fake_cifar`` writes for offline runs and tests. The
synthetic files are marked inside the format (``harness_synthetic`` in the meta pickle), so a result
trained on them can never be mistaken for a CIFAR number.

``DeviceLoader`` keeps the whole split as uint8 on the training device and does ResNeXt's augmentation
(PAPER.md §5: random 32×32 crop of the zero-padded 40×40 image, random horizontal flip) batch-wise with
tensor ops, so the same code runs on CPU and CUDA and the GPU is never starved by Python workers.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from harness.errors import ConfigError, DatasetUnavailable

log = logging.getLogger(__name__)

DatasetName = Literal["cifar10", "cifar100"]
SYNTHETIC_KEY = "harness_synthetic"
PAD_PX = 4  # ResNeXt's CIFAR crop: 32×32 out of the image zero-padded to 40×40
_IMAGE_SHAPE = (3, 32, 32)
_CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@dataclass(frozen=True)
class _Layout:
    folder: str
    train_files: tuple[str, ...]
    test_file: str
    meta_file: str
    label_key: str
    names_key: str
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


_LAYOUTS: dict[str, _Layout] = {
    "cifar10": _Layout(
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        "test_batch",
        "batches.meta",
        "labels",
        "label_names",
        10,
        (0.4914, 0.4822, 0.4465),
        (0.2470, 0.2435, 0.2616),
    ),
    "cifar100": _Layout(
        "cifar-100-python",
        ("train",),
        "test",
        "meta",
        "fine_labels",
        "fine_label_names",
        100,
        (0.5071, 0.4865, 0.4409),
        (0.2673, 0.2564, 0.2762),
    ),
}


@dataclass(frozen=True, eq=False)
class CifarData:
    """One CIFAR dataset in memory: images uint8 N×3×32×32 (CPU), labels int64."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    class_names: tuple[str, ...]
    root: Path
    synthetic: bool

    @property
    def mean(self) -> tuple[float, float, float]:
        return _LAYOUTS[self.name].mean

    @property
    def std(self) -> tuple[float, float, float]:
        return _LAYOUTS[self.name].std


def default_data_dir() -> Path:
    """``$HARNESS_DATA_DIR`` or ``~/.cache/harness/data``."""
    env = os.environ.get("HARNESS_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "harness" / "data"


def _layout(name: str) -> _Layout:
    if name not in _LAYOUTS:
        raise ConfigError(f"unknown dataset {name!r}; use one of {sorted(_LAYOUTS)}")
    return _LAYOUTS[name]


def load_cifar(name: DatasetName, *, data_dir: Path | None, download: bool = False) -> CifarData:
    """Load ``name`` from ``data_dir/<torchvision folder>``; download it first if allowed and absent."""
    layout = _layout(name)
    base = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    folder = base / layout.folder
    if _missing_files(folder, layout) and download:
        _download(name, base)
    missing = _missing_files(folder, layout)
    if missing:
        raise DatasetUnavailable(
            f"{name} not found under {folder} (missing {missing[0]}); download it with torchvision or pass "
            f"--data-dir DIR containing {layout.folder} (offline: python -m harness make-fake-cifar DIR)"
        )
    meta = _read_pickle(folder / layout.meta_file)
    train_x, train_y = _read_split(folder, layout.train_files, layout)
    test_x, test_y = _read_split(folder, (layout.test_file,), layout)
    synthetic = bool(meta.get(SYNTHETIC_KEY, False))
    if synthetic:
        log.warning("%s under %s is SYNTHETIC (written by write_fake_cifar), not the real dataset", name, folder)
    names = tuple(_as_str(n) for n in meta.get(layout.names_key, ()))
    return CifarData(
        name=name,
        train_x=train_x,
        train_y=train_y,
        test_x=test_x,
        test_y=test_y,
        num_classes=layout.num_classes,
        class_names=names,
        root=folder,
        synthetic=synthetic,
    )


def _missing_files(folder: Path, layout: _Layout) -> list[str]:
    wanted = (*layout.train_files, layout.test_file, layout.meta_file)
    return [f for f in wanted if not (folder / f).is_file()]


def _download(name: str, base: Path) -> None:
    # Imported here: torchvision is only needed to fetch the archive, and importing it costs ~1 s.
    from torchvision import datasets

    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    log.info("downloading %s into %s", name, base)
    try:
        cls(root=str(base), train=True, download=True)
    except (OSError, RuntimeError, ValueError) as exc:  # URLError is an OSError; md5 mismatch a RuntimeError
        reason = " ".join(str(exc).split())
        raise DatasetUnavailable(
            f"could not download {name} into {base} ({reason}); copy the extracted archive there or "
            f"pass --data-dir DIR (offline: python -m harness make-fake-cifar DIR)"
        ) from exc


def _read_pickle(path: Path) -> dict[str, Any]:
    """Read one CIFAR pickle; keys come back as str whether the file stores py2 str, bytes or py3 str."""
    try:
        with path.open("rb") as fh:
            obj = pickle.load(fh, encoding="bytes")
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, AttributeError) as exc:
        raise DatasetUnavailable(f"{path} is not a readable CIFAR pickle ({exc}); delete it and fetch again") from exc
    if not isinstance(obj, dict):
        raise DatasetUnavailable(f"{path} holds a {type(obj).__name__}, not a CIFAR dict; delete it and fetch again")
    return {_as_str(k): v for k, v in obj.items()}


def _as_str(value: str | bytes) -> str:
    return value.decode("latin1") if isinstance(value, bytes) else str(value)


def _read_split(folder: Path, files: tuple[str, ...], layout: _Layout) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for file in files:
        entry = _read_pickle(folder / file)
        data = np.asarray(entry.get("data"))
        labels = np.asarray(entry.get(layout.label_key, []), dtype=np.int64)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
            raise DatasetUnavailable(
                f"{folder / file} is not a CIFAR batch (data {data.dtype} {data.shape}, {len(labels)} labels); "
                "delete it and fetch again"
            )
        if len(labels) and (labels.min() < 0 or labels.max() >= layout.num_classes):
            raise DatasetUnavailable(f"{folder / file} has labels outside 0..{layout.num_classes - 1}")
        xs.append(data)
        ys.append(labels)
    images = np.concatenate(xs).reshape(-1, *_IMAGE_SHAPE)
    return torch.from_numpy(images), torch.from_numpy(np.concatenate(ys))


# --------------------------------------------------------------------------------------------------
# Loader on the device


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class DeviceLoader:
    """Batches of one split, kept on ``device`` as uint8 and augmented there.

    ``train=True``: every epoch a permutation from a CPU generator seeded by (seed, epoch), so the order
    and the crops are the same on every device and after a resume; per-image crop offsets and flips are
    drawn for the whole permutation before sharding, so each image's augmentation does not depend on
    ``world_size``. Each rank takes a strided, equal-sized shard and the last partial batch is dropped
    (fixed shapes suit cudnn.benchmark and torch.compile). ``train=False``: the split in order, no
    augmentation, every image exactly once over all ranks (shards may differ by one image).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        device: torch.device | str,
        train: bool,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        channels_last: bool = False,
        max_batches: int | None = None,
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4 or len(images) != len(labels):
            raise ConfigError(
                f"DeviceLoader wants uint8 N×C×H×W images and N labels, got "
                f"{images.dtype} {tuple(images.shape)} and {len(labels)} labels"
            )
        if batch_size < 1 or not 0 <= rank < world_size:
            raise ConfigError(f"DeviceLoader: bad batch_size={batch_size} or rank={rank}/{world_size}")
        self.device = torch.device(device)
        self.batch_size, self.train, self.seed = batch_size, train, seed
        self.rank, self.world_size, self.channels_last = rank, world_size, channels_last
        self.max_batches = max_batches
        self._num_images = len(images)
        self._hw = tuple(images.shape[2:])
        # Padded once up front so that a training batch is one gather, not a pad plus a gather.
        stored = F.pad(images, (PAD_PX,) * 4) if train else images
        self._images = stored.to(self.device).contiguous()
        self._labels = labels.to(self.device, torch.int64)
        std_t = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        mean_t = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self._scale = 1.0 / (255.0 * std_t)
        self._shift = -mean_t / std_t

    @classmethod
    def for_split(
        cls,
        data: CifarData,
        *,
        train: bool,
        batch_size: int,
        device: torch.device | str,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        channels_last: bool = False,
        max_batches: int | None = None,
    ) -> DeviceLoader:
        images, labels = (data.train_x, data.train_y) if train else (data.test_x, data.test_y)
        return cls(
            images,
            labels,
            batch_size=batch_size,
            device=device,
            train=train,
            mean=data.mean,
            std=data.std,
            seed=seed,
            rank=rank,
            world_size=world_size,
            channels_last=channels_last,
            max_batches=max_batches,
        )

    @property
    def samples_per_epoch(self) -> int:
        """Images this rank yields per epoch."""
        if self.train:
            return len(self) * self.batch_size
        return len(range(self.rank, self._num_images, self.world_size))

    def __len__(self) -> int:
        if self.train:
            batches = (self._num_images // self.world_size) // self.batch_size
        else:
            batches = -(-self.samples_per_epoch // self.batch_size)
        return batches if self.max_batches is None else min(batches, self.max_batches)

    def epoch(self, epoch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(images float32 normalised, labels int64)`` on the device for one epoch."""
        if not self.train:
            yield from self._eval_batches()
            return
        idx, offsets, flips = self._train_plan(epoch)
        for b in range(len(self)):
            sl = slice(b * self.batch_size, (b + 1) * self.batch_size)
            crops = crop_flip(self._images.index_select(0, idx[sl]), offsets[sl], flips[sl], out_hw=self._hw)
            yield self._normalise(crops), self._labels.index_select(0, idx[sl])

    def _train_plan(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % (2**63))
        n = self._num_images
        perm = torch.randperm(n, generator=gen)
        offsets = torch.randint(0, 2 * PAD_PX + 1, (n, 2), generator=gen)
        flips = torch.rand(n, generator=gen) < 0.5
        per_rank = n // self.world_size
        take = slice(self.rank, per_rank * self.world_size, self.world_size)
        # One host→device copy per epoch instead of one per batch.
        return (perm[take].to(self.device), offsets[take].to(self.device), flips[take].to(self.device))

    def _eval_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        idx = torch.arange(self.rank, self._num_images, self.world_size, device=self.device)
        for b in range(len(self)):
            sl = idx[b * self.batch_size : (b + 1) * self.batch_size]
            yield self._normalise(self._images.index_select(0, sl)), self._labels.index_select(0, sl)

    def _normalise(self, images: torch.Tensor) -> torch.Tensor:
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        return images.to(dtype=torch.float32, memory_format=fmt).mul_(self._scale).add_(self._shift)


def crop_flip(
    padded: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, *, out_hw: tuple[int, ...]
) -> torch.Tensor:
    """Crop ``out_hw`` from each padded image at ``offsets`` (row, col) and mirror it where ``flips``.

    One gather over flattened pixels: the flip is folded into the column index, so no per-image loop.
    """
    b, c, hp, wp = padded.shape
    h, w = out_hw
    ar_h = torch.arange(h, device=padded.device)
    ar_w = torch.arange(w, device=padded.device)
    rows = offsets[:, 0:1] + ar_h
    cols = offsets[:, 1:2] + torch.where(flips[:, None], w - 1 - ar_w, ar_w)
    flat = (rows[:, :, None] * wp + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
    return padded.reshape(b, c, hp * wp).gather(2, flat).view(b, c, h, w)


def measure_loader_throughput(loader: DeviceLoader, *, epochs: int = 1) -> float:
    """Images per second that ``loader`` alone delivers (augmentation included), synchronised on CUDA."""
    _synchronize(loader.device)
    start = time.perf_counter()
    images = 0
    for e in range(epochs):
        for x, _ in loader.epoch(e):
            images += len(x)
    _synchronize(loader.device)
    return images / (time.perf_counter() - start)

