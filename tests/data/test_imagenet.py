"""ImageNet-val in both on-disk layouts, the evaluation preprocessing and the image-set entry point."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fake_images import colour, write_devkit, write_flat, write_image_folder, write_val_txt

from harness.data.imagenet import open_imagenet_val
from harness.data.preprocess import describe, paper_transform, timm_transform
from harness.data.sets import open_image_set
from harness.errors import DatasetError, DatasetUnavailable

LABELS = [0, 0, 1, 1, 2, 2]


def test_image_folder_classes_are_sorted_folder_names(tmp_path):
    write_image_folder(tmp_path / "val", [2, 0, 1, 0, 2, 1], [2, 0, 1, 0, 2, 1])
    val = open_imagenet_val(tmp_path)  # DIR/val is taken when present
    assert val.layout == "imagefolder" and val.root == tmp_path / "val"
    assert val.class_names == ("n00000000", "n00000001", "n00000002")
    image, label = val.dataset[0]
    assert label == 0 and image.getpixel((0, 0)) == pytest.approx(colour(0), abs=3)
    assert sorted(val.labels) == [0, 0, 1, 1, 2, 2]


def test_flat_layout_with_val_txt(tmp_path):
    names = write_flat(tmp_path, LABELS, LABELS)
    write_val_txt(tmp_path / "val.txt", names, [5, 5, 500, 500, 999, 999])
    val = open_imagenet_val(tmp_path)
    assert val.layout == "ilsvrc" and val.num_classes == 1000 and val.ground_truth == str(tmp_path / "val.txt")
    assert val.labels == (5, 5, 500, 500, 999, 999)


@pytest.mark.slow
def test_flat_layout_with_the_official_devkit_archive(tmp_path, monkeypatch):
    import torchvision.datasets.imagenet as tv_imagenet

    write_flat(tmp_path / "imgs", LABELS, LABELS)
    archive = write_devkit(tmp_path / "imgs" / "ILSVRC2012_devkit_t12.tar.gz", [7, 7, 42, 42, 999, 999])
    with pytest.raises(DatasetError, match="is not the official ILSVRC2012_devkit_t12.tar.gz"):
        open_imagenet_val(tmp_path / "imgs")  # torchvision checks the archive's md5
    monkeypatch.setattr(tv_imagenet, "_verify_archive", lambda *a: None)  # the rest of the parsing is torchvision's
    val = open_imagenet_val(tmp_path / "imgs")
    assert val.labels == (7, 7, 42, 42, 999, 999) and val.class_names[42] == "n00000042"
    assert not (archive.parent / "meta.bin").exists()  # nothing written into the user's data folder


@pytest.mark.slow  # builds a devkit archive: 5 s
def test_missing_ground_truth_is_one_line(tmp_path):
    write_flat(tmp_path, LABELS, LABELS)
    with pytest.raises(DatasetError) as err:
        open_imagenet_val(tmp_path)
    message = str(err.value)
    assert "\n" not in message and "no ground truth" in message and "val.txt" in message


@pytest.mark.parametrize("content, match", [
    ("ILSVRC2012_val_00000001.JPEG\n", r"val.txt:1: expected '<file> <label 0-999>'"),
    ("ILSVRC2012_val_00000001.JPEG 1000\n", r"val.txt:1: expected"),
    ("ILSVRC2012_val_00000001.JPEG 3\n", r"has no label for ILSVRC2012_val_00000002.JPEG"),
])
def test_bad_val_txt(tmp_path, content, match):
    write_flat(tmp_path, [0, 1], [0, 1])
    (tmp_path / "val.txt").write_text(content)
    with pytest.raises(DatasetError, match=match):
        open_imagenet_val(tmp_path)


def test_layouts_that_are_neither(tmp_path):
    with pytest.raises(DatasetUnavailable, match="not a folder; pass --data-dir"):
        open_imagenet_val(tmp_path / "absent")
    with pytest.raises(DatasetError, match="has no images"):
        open_imagenet_val(tmp_path)
    (tmp_path / "n00000001").mkdir()
    with pytest.raises(DatasetError, match="is not an ImageFolder layout"):
        open_imagenet_val(tmp_path)  # the one class folder holds no images
    with pytest.raises(DatasetError, match="has no ILSVRC2012_val_"):
        open_imagenet_val(tmp_path, layout="ilsvrc")


def test_paper_preprocessing_is_recorded_as_run():
    pre = describe(paper_transform(), name="paper")
    assert (pre.resize, pre.crop, pre.interpolation) == (256, [224, 224], "bilinear")
    assert pre.mean == (0.485, 0.456, 0.406) and pre.std == (0.229, 0.224, 0.225)


def test_timm_preprocessing_reads_the_weights_data_config():
    pre = describe(timm_transform("skresnext50_32x4d.ra_in1k"), name="timm")
    assert (pre.resize, pre.crop, pre.interpolation) == (256, [224, 224], "bicubic")  # crop_pct 0.875
    pre = describe(timm_transform("resnext50_32x4d.a1h_in1k"), name="timm")
    assert (pre.resize, pre.interpolation) == (235, "bicubic")  # crop_pct 0.95: 224 / 0.95


def test_image_set_preprocesses_and_draws_a_seeded_subset(tmp_path):
    labels = [k % 3 for k in range(12)]
    write_image_folder(tmp_path, labels, labels)
    full = open_image_set("imagenet", data_dir=tmp_path)
    x, y = full.dataset[0]
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32 and full.images == 12 and not full.subset_seed
    a = open_image_set("imagenet", data_dir=tmp_path, max_images=5, seed=1)
    b = open_image_set("imagenet", data_dir=tmp_path, max_images=5, seed=1)
    assert a.labels == b.labels and a.images == 5 and a.total_images == 12
    assert a.describe()["subset"] is True and a.describe()["subset_seed"] == 1
    assert open_image_set("imagenet", data_dir=tmp_path, max_images=50).describe()["subset"] is False


def test_cifar_test_split_uses_the_training_normalisation(tmp_path):
    from harness.train.fake_cifar import write_fake_cifar

    write_fake_cifar(tmp_path, "cifar10", n_train=20, n_test=30, seed=0)
    images = open_image_set("cifar10", data_dir=tmp_path)
    x, _ = images.dataset[0]
    assert x.shape == (3, 32, 32) and images.images == 30 and images.synthetic and images.num_classes == 10
    assert images.describe()["preprocess"]["name"] == "cifar"
    with pytest.raises(DatasetUnavailable):
        open_image_set("cifar10", data_dir=Path(tmp_path) / "none")
