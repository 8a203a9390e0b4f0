"""An image folder is untrusted: a symlink loop or a second link to a folder is refused (each image is counted
once), hidden folders are not classes, and an image that cannot be read is one line naming the file, with
DataLoader workers or without; end to end, the record's error message is that one line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from fake_images import PLUGIN, write_image_folder
from helpers import run_cli

from harness.data.imagenet import open_imagenet_val
from harness.errors import DatasetError, one_line
from harness.results import load_run

LABELS = [0, 0, 0, 1, 1, 1]


def _folder(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "val", LABELS, LABELS)


def test_a_symlink_loop_is_refused_not_counted_forty_times(tmp_path):
    root = _folder(tmp_path)
    os.symlink("..", root / "n00000000" / "loop")
    with pytest.raises(DatasetError, match=r"val/n00000000/loop and .*/val are one folder \(.*/val\) reached twice, "
                                           r"through a symlink loop or a second link; remove the link"):
        open_imagenet_val(root, layout="imagefolder")


def test_a_second_link_to_a_class_is_refused(tmp_path):
    root = _folder(tmp_path)
    os.symlink(root / "n00000001", root / "n00000000" / "again")
    with pytest.raises(DatasetError, match=r"val/n00000001 and .*val/n00000000/again are one folder"):
        open_imagenet_val(root, layout="imagefolder")


def test_symlinked_class_folders_elsewhere_are_followed(tmp_path):
    root = _folder(tmp_path)
    (root / "n00000001").rename(tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", root / "n00000001")
    val = open_imagenet_val(root, layout="imagefolder")
    assert val.labels == tuple(LABELS) and val.num_classes == 2


def test_hidden_folders_and_files_are_not_classes_or_images(tmp_path):
    root = _folder(tmp_path)
    hidden = root / ".ipynb_checkpoints"
    hidden.mkdir()
    os.link(root / "n00000000" / "img_000.JPEG", hidden / "img.JPEG")
    (root / "n00000001" / ".img_x.JPEG").write_bytes((root / "n00000001" / "img_003.JPEG").read_bytes())
    (root / "n00000001" / ".thumbs").mkdir()
    (root / "n00000001" / ".thumbs" / "t.JPEG").write_bytes(b"")
    val = open_imagenet_val(root, layout="imagefolder")
    assert val.class_names == ("n00000000", "n00000001") and val.labels == tuple(LABELS)


def test_the_order_is_torchvisions(tmp_path):
    from torchvision.datasets import ImageFolder

    root = _folder(tmp_path)
    (root / "n00000000" / "sub").mkdir()
    (root / "n00000000" / "sub" / "a.JPEG").write_bytes((root / "n00000000" / "img_000.JPEG").read_bytes())
    ours = open_imagenet_val(root, layout="imagefolder").dataset.paths
    theirs = ImageFolder(str(root)).samples
    assert [str(p) for p in ours] == [p for p, _ in theirs]


def _truncate(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[:300])
    return path


@pytest.mark.parametrize("workers", [0, 1])
def test_a_bad_image_is_one_line_naming_the_file(tmp_path, workers):
    root = _folder(tmp_path)
    bad = _truncate(root / "n00000001" / "img_004.JPEG")
    val = open_imagenet_val(root, layout="imagefolder", transform=lambda image: torch.zeros(1))

    loader = torch.utils.data.DataLoader(val.dataset, batch_size=6, num_workers=workers)
    with pytest.raises(DatasetError) as err:
        list(loader)
    message = one_line(str(err.value))
    assert f"{bad}: cannot read the image (OSError: " in message and "\n" not in message
    assert message.endswith("; replace or remove it")


@pytest.mark.slow  # a whole run with a DataLoader worker process: several seconds
def test_a_bad_image_in_a_run_is_an_error_record_of_one_line(tmp_path, capsys):
    root = _folder(tmp_path)
    bad = _truncate(root / "n00000000" / "img_001.JPEG")
    plugin = tmp_path / "colour_plugin.py"
    name = "colournet_bad_image"  # its own name: the registry refuses a second module registering "colournet"
    plugin.write_text(PLUGIN.replace('"colournet"', f'"{name}"'))
    suite = tmp_path / "suite.yaml"
    suite.write_text(json.dumps({"name": "bad_image", "imports": [str(plugin)], "device": "cpu", "eval": {
        "models": [{"name": name, "options": {"num_classes": 2}}], "data_dir": str(root), "workers": 1}}))
    code, out, err = run_cli(capsys, "run", suite, "--out", tmp_path / "r", "--reports", tmp_path / "p",
                             "--no-progress")
    assert code == 0 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    (record,) = load_run(Path(out[0])).records
    message = record.error.message
    assert record.status == "error" and "\n" not in message and f"{bad}: cannot read the image" in message
