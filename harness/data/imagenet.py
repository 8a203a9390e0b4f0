"""ImageNet validation images on disk, in the two layouts they come in.

- ``imagefolder``: torchvision's ``ImageFolder`` layout, one sub-folder per class (``val/n01440764/*.JPEG``).
  Classes are the sorted folder names, so the 1000 WordNet ids get the indices 0…999 that timm and
  torchvision weights use. Hidden folders and files (``.ipynb_checkpoints/``) are skipped, never a class; a
  folder reached twice through symlinks (a loop) is refused, so each image counts once.
- ``ilsvrc``: the flat folder of the ILSVRC2012 archive (``ILSVRC2012_val_00000001.JPEG`` …) plus a ground
  truth: the official ``ILSVRC2012_devkit_t12.tar.gz`` (parsed by torchvision, md5-checked), torchvision's
  ``meta.bin`` parsed from it, or a text file of ``<file> <label>`` lines with 0-based labels in sorted-wnid
  order (Caffe's ``val.txt``). The flat layout always has the 1000 ILSVRC2012 classes.

``layout: auto`` takes ``DIR/val`` when present, then the flat layout if ILSVRC2012_val_*.JPEG files are there,
else the folder layout. A missing folder is
``DatasetUnavailable`` (the tasks are skipped); a folder in neither layout, or flat images without ground
truth, is a one-line ``DatasetError``.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from harness.errors import DatasetError, DatasetUnavailable

log = logging.getLogger(__name__)

ILSVRC_CLASSES = 1000
DEVKIT = "ILSVRC2012_devkit_t12.tar.gz"
META_BIN = "meta.bin"  # torchvision's parsed devkit
VAL_TXT = "val.txt"
_FLAT = re.compile(r"^ILSVRC2012_val_(\d{8})\.JPEG$", re.IGNORECASE)
_HOW = ("ImageFolder: DIR/<wnid>/*.JPEG; or flat: DIR/ILSVRC2012_val_*.JPEG with ILSVRC2012_devkit_t12.tar.gz, "
        "meta.bin or val.txt beside it")


@dataclass(frozen=True)
class ImageNetVal:
    """A labelled image folder: a torch ``Dataset`` of (image, label) and what describes it."""

    dataset: Dataset
    labels: tuple[int, ...]
    class_names: tuple[str, ...]
    root: Path
    layout: str
    ground_truth: str | None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def open_imagenet_val(root: Path, *, layout: str = "auto", ground_truth: str | None = None,
                      transform: Any = None) -> ImageNetVal:
    """The labelled images under ``root`` in ``layout`` (auto | imagefolder | ilsvrc)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetUnavailable(f"ImageNet validation images not found: {root} is not a folder; pass --data-dir "
                                 f"DIR ({_HOW})")
    if layout == "auto" and (root / "val").is_dir():
        root = root / "val"
    found = layout if layout != "auto" else detect_layout(root)
    if found == "imagefolder":
        return _image_folder(root, transform)
    if found == "ilsvrc":
        return _flat(root, ground_truth, transform)
    raise DatasetError(f"unknown ImageNet layout {layout!r}; use auto, imagefolder or ilsvrc")


def detect_layout(root: Path) -> str:
    """``ilsvrc`` when the folder holds ILSVRC2012_val_*.JPEG files (sub-folders, e.g. an extracted devkit, are
    then ignored), ``imagefolder`` when it holds sub-folders only."""
    entries = list(root.iterdir())
    if any(p.is_file() and _FLAT.match(p.name) for p in entries):
        return "ilsvrc"
    if any(p.is_dir() and not p.name.startswith(".") for p in entries):
        return "imagefolder"
    raise DatasetError(f"{root} has no images; expected an ImageNet-val layout ({_HOW})")


def _image_folder(root: Path, transform: Any) -> ImageNetVal:
    """torchvision's ``ImageFolder`` listing (sorted class folders, then every image below each, in sorted walk
    order), except that hidden entries (``.ipynb_checkpoints/``, ``.DS_Store``) are skipped, as a clean tree
    would not have them, and a symlinked folder that leads to a folder already listed (a loop such as
    ``n01/loop -> ..``, or a second link to one class) is refused: each image must be counted once."""
    try:
        entries = sorted(root.iterdir(), key=lambda p: p.name)
        classes = [p.name for p in entries if p.is_dir() and not p.name.startswith(".")]
        hidden = [p.name for p in entries if p.is_dir() and p.name.startswith(".")]
        if hidden:
            log.info("%s: hidden folders are not classes, skipped: %s", root, ", ".join(hidden))
        seen = {root.resolve(): root}
        paths: list[Path] = []
        labels: list[int] = []
        empty = []
        for label, name in enumerate(classes):
            found = _images_under(root / name, seen)
            empty += [] if found else [name]
            paths += found
            labels += [label] * len(found)
    except OSError as exc:
        raise DatasetError(f"{root} cannot be listed ({exc.strerror or exc}: {exc.filename}); expected "
                           "DIR/<class>/<image>") from None
    if not classes or empty:
        what = f"class folders without images: {', '.join(empty[:3])}" if empty else "no class folders"
        raise DatasetError(f"{root} is not an ImageFolder layout ({what}); expected DIR/<class>/<image> (set layout: "
                           "ilsvrc for the flat ILSVRC2012 folder)")
    return ImageNetVal(_ListedImages(paths, labels, transform), tuple(labels), tuple(classes), root, "imagefolder",
                       None)


def _images_under(folder: Path, seen: dict[Path, Path]) -> list[Path]:
    """Image files below ``folder`` in torchvision's order (folders by path, files by name), hidden ones skipped;
    a folder reached twice (through a symlink) is a one-line ``DatasetError``."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension

    by_folder: dict[str, list[Path]] = {}
    stack = [folder]
    while stack:
        here = stack.pop()
        real = here.resolve()
        if real in seen:
            first = f" and {seen[real]}" if seen[real] != here else ""
            raise DatasetError(f"{here}{first} are one folder ({real}) reached twice, through a symlink loop or a "
                               "second link; remove the link so that each image is counted once")
        seen[real] = here
        files = by_folder.setdefault(str(here), [])
        with os.scandir(here) as scan:
            for entry in scan:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir():
                    stack.append(Path(entry.path))
                elif entry.is_file() and has_file_allowed_extension(entry.name, IMG_EXTENSIONS):
                    files.append(Path(entry.path))
    return [path for key in sorted(by_folder) for path in sorted(by_folder[key], key=lambda p: p.name)]


class _ListedImages(Dataset):
    """(image, label) of listed files, read like torchvision's folders (PIL, RGB). An image that cannot be read is
    a one-line ``DatasetError`` naming the file (in a DataLoader worker too: the message carries it across)."""

    def __init__(self, paths: list[Path], labels: list[int], transform: Any) -> None:
        self.paths, self.labels, self.transform = paths, labels, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        from torchvision.datasets.folder import default_loader

        path = self.paths[index]
        try:
            image = default_loader(str(path))
        except Exception as exc:  # noqa: BLE001 - PIL raises OSError, ValueError, SyntaxError, DecompressionBombError
            reason = " ".join(str(exc).split())[:160]
            raise DatasetError(f"{path}: cannot read the image ({type(exc).__name__}: {reason}); replace or remove "
                               "it") from None
        return (self.transform(image) if self.transform is not None else image), self.labels[index]


def _flat(root: Path, ground_truth: str | None, transform: Any) -> ImageNetVal:
    images = sorted(p for p in root.iterdir() if p.is_file() and _FLAT.match(p.name))
    if not images:
        raise DatasetError(f"{root} has no ILSVRC2012_val_*.JPEG files; expected the flat layout ({_HOW})")
    source = Path(ground_truth).expanduser() if ground_truth else _find_ground_truth(root)
    if not source.is_file():
        raise DatasetError(f"ground truth {source} not found; point ground_truth at {DEVKIT}, {META_BIN} or a "
                           f"{VAL_TXT}-style file")
    by_name, class_names = _read_ground_truth(source)
    labels = []
    for path in images:
        label = by_name(path.name)
        if label is None:
            raise DatasetError(f"{source} has no label for {path.name}; is it the ILSVRC2012 validation ground truth?")
        labels.append(label)
    return ImageNetVal(_ListedImages(images, labels, transform), tuple(labels), class_names, root, "ilsvrc",
                       str(source))


def _find_ground_truth(root: Path) -> Path:
    for folder in (root, root.parent):
        for name in (DEVKIT, META_BIN, VAL_TXT):
            if (folder / name).is_file():
                return folder / name
    raise DatasetError(f"{root} holds flat ILSVRC2012_val_*.JPEG images but no ground truth: put {DEVKIT}, "
                       f"{META_BIN} or {VAL_TXT} beside them (or in the parent folder), or set ground_truth: FILE")


def _read_ground_truth(source: Path):
    """(file name → label or None, class names) from a devkit archive, torchvision's meta.bin or a val.txt."""
    if source.name.endswith(".tar.gz"):
        return _from_wnids(*_parse_devkit(source))
    if source.name == META_BIN:
        from torchvision.datasets.imagenet import load_meta_file

        return _from_wnids(*load_meta_file(str(source.parent)))
    return _from_text(source)


def _parse_devkit(archive: Path) -> tuple[dict[str, Any], list[str]]:
    from torchvision.datasets.imagenet import load_meta_file, parse_devkit_archive

    # torchvision writes meta.bin beside the archive: do it in a temporary folder, not in the user's data
    with tempfile.TemporaryDirectory() as tmp:
        os.symlink(archive.resolve(), Path(tmp) / archive.name)
        try:
            parse_devkit_archive(tmp, archive.name)
        except (RuntimeError, OSError, KeyError, ValueError) as exc:
            raise DatasetError(f"{archive} is not the official {DEVKIT} ({' '.join(str(exc).split())[:160]})") from None
        return load_meta_file(tmp)


def _from_wnids(wnid_to_classes: dict[str, Any], val_wnids: list[str]):
    wnids = sorted(wnid_to_classes)
    index = {w: i for i, w in enumerate(wnids)}

    def label(name: str) -> int | None:
        number = int(_FLAT.match(name).group(1))
        return index[val_wnids[number - 1]] if 1 <= number <= len(val_wnids) else None

    return label, tuple(wnids)


def _from_text(source: Path):
    labels: dict[str, int] = {}
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) >= ILSVRC_CLASSES:
            raise DatasetError(f"{source}:{number}: expected '<file> <label 0-{ILSVRC_CLASSES - 1}>', got {line!r}")
        labels[Path(parts[0]).name] = int(parts[1])
    if not labels:
        raise DatasetError(f"{source} holds no '<file> <label>' lines")
    return labels.get, tuple(str(i) for i in range(ILSVRC_CLASSES))
