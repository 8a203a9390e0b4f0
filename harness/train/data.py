"""CIFAR-10/100 in torchvision's on-disk format.

``load_cifar`` reads the pickles itself (torchvision is used only to download) because torchvision's md5
check rejects the synthetic files that ``harness.train.fake_cifar`` writes for offline runs and tests. The
synthetic files are marked inside the format (``harness_synthetic`` in the meta pickle), so a result
trained on them can never be mistaken for a CIFAR number. ``harness.train.loader`` feeds the images to a model.
"""

from __future__ import annotations

import logging
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.errors import ConfigError, DatasetUnavailable
from harness.train.config import DatasetName

log = logging.getLogger(__name__)

SYNTHETIC_KEY = "harness_synthetic"
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


_SAID_SYNTHETIC: set[str] = set()


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
    if synthetic and str(folder) not in _SAID_SYNTHETIC:  # once per folder and process, not once per task
        _SAID_SYNTHETIC.add(str(folder))
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


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles only what CIFAR files hold (dicts, lists, bytes/str, numbers, numpy arrays): a pickle is a
    program, and a crafted "CIFAR" file from a mirror or a shared disk must not be able to run code."""

    ALLOWED = frozenset({
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),  # as pickled by numpy 1 (the original files)
        ("numpy._core.multiarray", "_reconstruct"),  # numpy 2
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
    })

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"forbidden global {module}.{name} (CIFAR files hold only data)")
        return super().find_class(module, name)


def _read_pickle(path: Path) -> dict[str, Any]:
    """Read one CIFAR pickle; keys come back as str whether the file stores py2 str, bytes or py3 str."""
    try:
        with path.open("rb") as fh:
            obj = _CifarUnpickler(fh, encoding="bytes").load()
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
