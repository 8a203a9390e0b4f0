"""Batches of CIFAR on the training device, augmented there.

``DeviceLoader`` keeps the whole split as uint8 on the training device and does ResNeXt's augmentation
([RX] Appendix A: random 32×32 crop of the zero-padded 40×40 image, random horizontal flip) batch-wise with
tensor ops, so the same code runs on CPU and CUDA and the GPU is never starved by Python workers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from harness.errors import ConfigError
from harness.measure.device import synchronize
from harness.train.data import CifarData

PAD_PX = 4  # ResNeXt's CIFAR crop: 32×32 out of the image zero-padded to 40×40


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
    synchronize(loader.device)
    start = time.perf_counter()
    images = 0
    for e in range(epochs):
        for x, _ in loader.epoch(e):
            images += len(x)
    synchronize(loader.device)
    return images / (time.perf_counter() - start)

