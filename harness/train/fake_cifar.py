"""A learnable synthetic CIFAR written in exactly torchvision's on-disk format (offline runs and tests).

Each class has its own colour and oriented stripes, so a small network learns it in a few epochs. The files
carry ``harness_synthetic`` in the meta pickle: ``load_cifar`` sets ``synthetic=True`` from it, and every
report table built on them says SYNTHETIC.
"""

from __future__ import annotations

import logging
import os
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import ConfigError
from harness.train.data import _CIFAR10_NAMES, SYNTHETIC_KEY, DatasetName, _Layout, _layout

log = logging.getLogger(__name__)


class _Py2Pickler(pickle._Pickler):
    """Pickles ``bytes`` as Python 2 ``str`` (BINSTRING), as the original CIFAR files do.

    That is what makes one file readable both ways: torchvision's ``encoding="latin1"`` turns the keys
    into ``"data"``/``"labels"``, and the ``encoding="bytes"`` recipe on the CIFAR page gives ``b"data"``.
    The pure-Python pickler is used because only it has an overridable dispatch table.
    """

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str


def _write_pickle(path: Path, obj: dict[bytes, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        _Py2Pickler(fh, protocol=2).dump(obj)
    os.replace(tmp, path)


def _class_styles(num_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per class: an RGB colour, a stripe angle and a stripe frequency, all well separated for 10 classes."""
    k = np.arange(num_classes)
    hue = (k * 0.618033988749895) % 1.0  # golden-ratio steps keep neighbouring classes' hues far apart
    rgb = np.clip(np.abs((hue[:, None] * 6 + np.array([0.0, 4.0, 2.0])) % 6 - 3) - 1, 0, 1)
    colour = 0.3 + 0.7 * rgb
    angle = np.pi * (k % 10) / 10
    freq = 2.0 + (k // 10) % 3
    return colour.astype(np.float32), angle.astype(np.float32), freq.astype(np.float32)


def _fake_images(labels: np.ndarray, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """N×3072 uint8: class colour × oriented stripes with a random phase and brightness, plus noise."""
    # Chunks bound the float32 working set (a 50k-image CIFAR-100 train file would need ~2 GB at once).
    parts = [_fake_chunk(labels[i : i + 2048], num_classes, rng) for i in range(0, len(labels), 2048)]
    return np.concatenate(parts) if parts else np.zeros((0, 3072), np.uint8)


def _fake_chunk(labels: np.ndarray, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    colour, angle, freq = _class_styles(num_classes)
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32)
    n = len(labels)
    proj = xx[None] * np.cos(angle[labels])[:, None, None] + yy[None] * np.sin(angle[labels])[:, None, None]
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1, 1)).astype(np.float32)
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * freq[labels][:, None, None] * proj / 32 + phase)
    brightness = rng.uniform(0.6, 1.0, size=(n, 1, 1, 1)).astype(np.float32)
    img = colour[labels][:, :, None, None] * (0.3 + 0.7 * stripes[:, None]) * brightness
    img += rng.normal(0, 0.08, size=img.shape).astype(np.float32)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8).reshape(n, 3072)


def _fake_batch(
    labels: np.ndarray,
    num_classes: int,
    rng: np.random.Generator,
    *,
    batch_label: str,
    label_key: str,
    first_index: int,
) -> dict[bytes, Any]:
    batch = {
        b"batch_label": batch_label.encode(),
        label_key.encode(): [int(v) for v in labels],
        b"data": _fake_images(labels, num_classes, rng),
        b"filenames": [f"synthetic_{first_index + i:06d}.png".encode() for i in range(len(labels))],
    }
    if num_classes == 100:
        batch[b"coarse_labels"] = [int(v) // 5 for v in labels]
    return batch


def write_fake_cifar(
    root: Path, name: DatasetName = "cifar10", *, n_train: int = 5000, n_test: int = 1000, seed: int = 0
) -> Path:
    """Write a learnable synthetic ``name`` under ``root`` in torchvision's format; return ``root``.

    ``load_cifar(name, data_dir=root)`` reads it back with ``synthetic=True``.
    """
    layout = _layout(name)
    if n_train < len(layout.train_files) or n_test < 1:
        raise ConfigError(f"write_fake_cifar needs n_train >= {len(layout.train_files)} and n_test >= 1")
    folder = Path(root) / layout.folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    k = layout.num_classes
    train_labels = rng.permutation(np.arange(n_train) % k)
    chunks = np.array_split(train_labels, len(layout.train_files))
    first = 0
    for i, (file, labels) in enumerate(zip(layout.train_files, chunks, strict=True)):
        label = f"training batch {i + 1} of {len(layout.train_files)}"
        batch = _fake_batch(labels, k, rng, batch_label=label, label_key=layout.label_key, first_index=first)
        _write_pickle(folder / file, batch)
        first += len(labels)
    test_labels = rng.permutation(np.arange(n_test) % k)
    test = _fake_batch(
        test_labels, k, rng, batch_label="testing batch 1 of 1", label_key=layout.label_key, first_index=first
    )
    _write_pickle(folder / layout.test_file, test)
    _write_pickle(folder / layout.meta_file, _fake_meta(layout, n_per_batch=len(chunks[0])))
    log.info("wrote synthetic %s (%d train, %d test) to %s", name, n_train, n_test, folder)
    return Path(root)


def _fake_meta(layout: _Layout, *, n_per_batch: int) -> dict[bytes, Any]:
    if layout.num_classes == 10:
        meta: dict[bytes, Any] = {
            b"num_cases_per_batch": n_per_batch,
            b"label_names": [n.encode() for n in _CIFAR10_NAMES],
            b"num_vis": 3072,
        }
    else:
        meta = {
            b"fine_label_names": [f"class_{i:02d}".encode() for i in range(100)],
            b"coarse_label_names": [f"superclass_{i:02d}".encode() for i in range(20)],
        }
    meta[SYNTHETIC_KEY.encode()] = True
    return meta


