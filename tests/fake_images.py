"""Tiny ImageNet-val folders in both real layouts, and a model whose predictions on them are known.

Every image is one solid colour; class k has the colour ``colour(k)`` (a 10×10×10 grid, 25 levels apart).
``ColourNet`` scores each class by minus the squared distance between the image's mean (normalised) colour
and the class colour, so it predicts the class whose colour the image has. An image written with the colour
of another class than its label is a known top-1 mistake; that other class is far away in the grid, so the
label is not in the top 5 either.
"""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def colour(k: int) -> tuple[int, int, int]:
    return 13 + 25 * (k // 100 % 10), 13 + 25 * (k // 10 % 10), 13 + 25 * (k % 10)


def far_class(k: int) -> int:
    """A class whose colour is far from k's (top-5 of its colour never contains k)."""
    return 999 - k


class ColourNet(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        rgb = torch.tensor([colour(k) for k in range(num_classes)], dtype=torch.float32) / 255.0
        self.register_buffer("colours", (rgb - torch.tensor(MEAN)) / torch.tensor(STD))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean((2, 3))
        return -((mean[:, None, :] - self.colours[None]) ** 2).sum(-1)


PLUGIN = '''
from harness import register_model
from fake_images import ColourNet

@register_model("colournet", family="user", description="predicts the class of an image's colour")
def colournet(*, num_classes: int = 1000):
    return ColourNet(num_classes)
'''


def _save(path: Path, k: int, size: tuple[int, int] = (40, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour(k)).save(path, format="JPEG", quality=95)


def write_image_folder(root: Path, labels: list[int], content: list[int]) -> Path:
    """ImageFolder layout: ``root/n<label:08d>/img_<i>.JPEG``; image i shows the colour of ``content[i]``."""
    for i, (label, shows) in enumerate(zip(labels, content, strict=True)):
        _save(root / f"n{label:08d}" / f"img_{i:03d}.JPEG", shows)
    return root


def write_flat(root: Path, labels: list[int], content: list[int]) -> list[str]:
    """Flat ILSVRC2012 layout (no ground truth): ``ILSVRC2012_val_<i+1:08d>.JPEG``; returns the file names."""
    names = [f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(len(labels))]
    for name, shows in zip(names, content, strict=True):
        _save(root / name, shows)
    return names


def write_val_txt(path: Path, names: list[str], labels: list[int]) -> Path:
    path.write_text("".join(f"{n} {label}\n" for n, label in zip(names, labels, strict=True)))
    return path


def write_devkit(path: Path, labels: list[int], *, classes: int = 1000) -> Path:
    """An ``ILSVRC2012_devkit_t12.tar.gz`` in the official format: ``data/meta.mat`` (leaf synsets with ILSVRC ids
    in a shuffled order, plus one non-leaf) and ``data/ILSVRC2012_validation_ground_truth.txt`` (ILSVRC ids)."""
    import scipy.io

    rng = np.random.default_rng(0)
    ilsvrc_ids = rng.permutation(classes) + 1  # sorted-wnid class k has ILSVRC id ilsvrc_ids[k]
    fields = [("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("gloss", "O"), ("num_children", "O"),
              ("children", "O"), ("wordnet_height", "O"), ("num_train_images", "O")]
    rows = [(int(ilsvrc_ids[k]), f"n{k:08d}", f"class {k}", "", 0, np.array([]), 0, 1300) for k in range(classes)]
    rows.append((classes + 1, "n99999999", "entity", "", 2, np.array([1, 2]), 18, 0))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "ILSVRC2012_devkit_t12" / "data"
        data.mkdir(parents=True)
        scipy.io.savemat(data / "meta.mat", {"synsets": np.array(rows, dtype=fields)})
        (data / "ILSVRC2012_validation_ground_truth.txt").write_text("".join(f"{ilsvrc_ids[k]}\n" for k in labels))
        with tarfile.open(path, "w:gz") as tar:
            tar.add(data.parent, arcname="ILSVRC2012_devkit_t12")
    return path
