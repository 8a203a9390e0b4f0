"""CIFAR files (format, synthetic marker, errors) and the device loader (augmentation, order, sharding)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets.cifar as tv_cifar

from harness.errors import DatasetUnavailable
from harness.train.data import load_cifar
from harness.train.fake_cifar import write_fake_cifar
from harness.train.loader import PAD_PX, DeviceLoader, crop_flip, measure_loader_throughput

CIFAR10_BATCH_KEYS = {b"batch_label", b"labels", b"data", b"filenames"}
CIFAR100_BATCH_KEYS = {b"batch_label", b"fine_labels", b"coarse_labels", b"data", b"filenames"}


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    write_fake_cifar(root, "cifar10", n_train=250, n_test=60, seed=1)
    write_fake_cifar(root, "cifar100", n_train=300, n_test=100, seed=2)
    return root


def _raw(path: Path, encoding: str = "bytes") -> dict:
    with path.open("rb") as fh:
        return pickle.load(fh, encoding=encoding)


@pytest.fixture
def no_md5(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bypass torchvision's md5 check, which synthetic files cannot pass."""
    monkeypatch.setattr(tv_cifar.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *args, **kwargs: True)


def test_cifar10_files_have_the_original_keys(fake_root: Path) -> None:
    folder = fake_root / "cifar-10-batches-py"
    sizes = []
    for i in range(1, 6):
        batch = _raw(folder / f"data_batch_{i}")
        assert set(batch) == CIFAR10_BATCH_KEYS
        assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape[1] == 3072
        assert len(batch[b"labels"]) == len(batch[b"filenames"]) == len(batch[b"data"])
        sizes.append(len(batch[b"data"]))
    assert sum(sizes) == 250
    assert set(_raw(folder / "test_batch")) == CIFAR10_BATCH_KEYS
    meta = _raw(folder / "batches.meta")
    assert set(meta) == {b"num_cases_per_batch", b"label_names", b"num_vis", b"harness_synthetic"}
    assert meta[b"label_names"][0] == b"airplane" and meta[b"harness_synthetic"] is True
    # Python 2 str, as in the real files: latin1 readers (torchvision) get str keys.
    assert "labels" in _raw(folder / "test_batch", encoding="latin1")


def test_torchvision_reads_the_fake_cifar10(fake_root: Path, no_md5: None) -> None:
    data = load_cifar("cifar10", data_dir=fake_root)
    train = tv_cifar.CIFAR10(str(fake_root), train=True, download=False)
    test = tv_cifar.CIFAR10(str(fake_root), train=False, download=False)
    assert train.data.shape == (250, 32, 32, 3) and test.data.shape == (60, 32, 32, 3)
    assert train.targets == data.train_y.tolist() and test.targets == data.test_y.tolist()
    assert tuple(train.classes) == data.class_names
    assert np.array_equal(train.data.transpose(0, 3, 1, 2), data.train_x.numpy())


def test_torchvision_reads_the_fake_cifar100(fake_root: Path, no_md5: None) -> None:
    folder = fake_root / "cifar-100-python"
    assert set(_raw(folder / "train")) == CIFAR100_BATCH_KEYS
    assert set(_raw(folder / "meta")) == {b"fine_label_names", b"coarse_label_names", b"harness_synthetic"}
    data = load_cifar("cifar100", data_dir=fake_root)
    test = tv_cifar.CIFAR100(str(fake_root), train=False, download=False)
    assert test.targets == data.test_y.tolist() and len(test.classes) == 100 == data.num_classes
    assert data.train_x.shape == (300, 3, 32, 32) and data.train_y.dtype == torch.int64
    assert sorted(set(data.train_y.tolist())) == list(range(100))


def test_load_cifar_flags_synthetic_from_the_meta_file(fake_root: Path, tmp_path: Path) -> None:
    data = load_cifar("cifar10", data_dir=fake_root)
    assert data.synthetic and data.num_classes == 10 and data.root == fake_root / "cifar-10-batches-py"
    assert data.train_x.dtype == torch.uint8 and data.train_x.shape == (250, 3, 32, 32)
    # The same files without the marker read as real CIFAR.
    write_fake_cifar(tmp_path, "cifar10", n_train=10, n_test=5)
    meta_path = tmp_path / "cifar-10-batches-py" / "batches.meta"
    meta = _raw(meta_path)
    del meta[b"harness_synthetic"]
    meta_path.write_bytes(pickle.dumps(meta, protocol=2))
    assert load_cifar("cifar10", data_dir=tmp_path).synthetic is False


def test_missing_dataset_says_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailable) as err:
        load_cifar("cifar100", data_dir=tmp_path)
    message = str(err.value)
    assert "\n" not in message
    assert str(tmp_path / "cifar-100-python") in message
    assert "--data-dir" in message and "make-fake-cifar" in message


def test_default_data_dir_comes_from_the_environment(fake_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_DATA_DIR", str(fake_root))
    assert load_cifar("cifar10", data_dir=None).root == fake_root / "cifar-10-batches-py"


def test_corrupt_file_is_dataset_unavailable(tmp_path: Path) -> None:
    write_fake_cifar(tmp_path, "cifar10", n_train=10, n_test=5)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DatasetUnavailable, match="data_batch_3"):
        load_cifar("cifar10", data_dir=tmp_path)


def _identity_loader(images: torch.Tensor, labels: torch.Tensor, **kwargs) -> DeviceLoader:
    """Normalisation that leaves pixel values unchanged (std = 1/255, mean = 0) to compare content."""
    return DeviceLoader(images, labels, device="cpu", mean=(0.0,) * 3, std=(1 / 255,) * 3, **kwargs)


def _unique_images(n: int) -> torch.Tensor:
    """Random nonzero pixels: a crop matches exactly one (offset, flip) and padding (0) is recognisable."""
    g = torch.Generator().manual_seed(0)
    return torch.randint(1, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)


def test_crop_flip_matches_slicing() -> None:
    images = _unique_images(3)
    padded = torch.nn.functional.pad(images, (PAD_PX,) * 4)
    offsets = torch.tensor([[4, 4], [0, 8], [3, 1]])
    flips = torch.tensor([False, False, True])
    out = crop_flip(padded, offsets, flips, out_hw=(32, 32))
    assert torch.equal(out[0], images[0])  # centre crop, no flip: the original
    assert torch.equal(out[1], padded[1, :, 0:32, 8:40])
    assert torch.equal(out[2], padded[2, :, 3:35, 1:33].flip(-1))
    assert (out[1, :, :4, :] == 0).all() and (out[1, :, :, 28:] == 0).all()  # zero padding came in


def test_train_batches_are_shifted_by_at_most_4px_or_mirrored() -> None:
    images = _unique_images(40)
    loader = _identity_loader(images, torch.arange(40), batch_size=8, train=True, seed=3)
    padded = torch.nn.functional.pad(images, (PAD_PX,) * 4).float()
    seen_flip, seen_offsets = set(), set()
    for x, ids in loader.epoch(1):
        for img, i in zip(x, ids.tolist(), strict=True):
            matches = [
                (dy, dx, f)
                for dy in range(9)
                for dx in range(9)
                for f in (False, True)
                if torch.equal(img, _view(padded[i], dy, dx, f))
            ]
            assert len(matches) == 1, f"image {i} is not a ≤4 px shift (or mirror) of the original"
            seen_offsets.add(matches[0][:2])
            seen_flip.add(matches[0][2])
    assert seen_flip == {False, True} and len(seen_offsets) > 10


def _view(padded: torch.Tensor, dy: int, dx: int, flip: bool) -> torch.Tensor:
    crop = padded[:, dy : dy + 32, dx : dx + 32]
    return crop.flip(-1) if flip else crop


def test_train_order_is_seeded_per_epoch_and_drops_the_last_partial_batch() -> None:
    images = _unique_images(30)
    loader = _identity_loader(images, torch.arange(30), batch_size=8, train=True, seed=5)
    again = _identity_loader(images, torch.arange(30), batch_size=8, train=True, seed=5)
    ids_1 = [y for _, y in loader.epoch(1)]
    assert len(loader) == 3 and loader.samples_per_epoch == 24 and [len(y) for y in ids_1] == [8, 8, 8]
    assert all(torch.equal(a[0], b[0]) for a, b in zip(loader.epoch(1), again.epoch(1), strict=True))
    assert not torch.equal(torch.cat(ids_1), torch.cat([y for _, y in loader.epoch(2)]))
    assert len(set(torch.cat(ids_1).tolist())) == 24  # a permutation: no image twice in an epoch


def test_ranks_get_disjoint_equal_shards_with_the_same_augmentation() -> None:
    n = 50
    images = _unique_images(n)
    single = {
        int(i): x
        for xb, yb in _identity_loader(images, torch.arange(n), batch_size=5, train=True, seed=7).epoch(2)
        for x, i in zip(xb, yb, strict=True)
    }
    shards = []
    for rank in range(2):
        loader = _identity_loader(images, torch.arange(n), batch_size=5, train=True, seed=7, rank=rank, world_size=2)
        shard = {int(i): x for xb, yb in loader.epoch(2) for x, i in zip(xb, yb, strict=True)}
        assert len(shard) == loader.samples_per_epoch == 25
        # Crops are drawn for the whole permutation before sharding: world size does not change them.
        assert all(torch.equal(x, single[i]) for i, x in shard.items())
        shards.append(set(shard))
    assert not shards[0] & shards[1] and shards[0] | shards[1] == set(range(n))


def test_eval_batches_cover_every_image_once_in_order_unaugmented() -> None:
    images = _unique_images(21)
    loader = _identity_loader(images, torch.arange(21), batch_size=8, train=False)
    batches = list(loader.epoch())
    assert [len(y) for _, y in batches] == [8, 8, 5]
    assert torch.equal(torch.cat([x for x, _ in batches]), images.float())
    ranks = [
        _identity_loader(images, torch.arange(21), batch_size=4, train=False, rank=r, world_size=2) for r in range(2)
    ]
    ids = [torch.cat([y for _, y in loader.epoch()]).tolist() for loader in ranks]
    assert sorted(ids[0] + ids[1]) == list(range(21))


def test_normalisation_and_channels_last() -> None:
    images = torch.full((4, 3, 32, 32), 128, dtype=torch.uint8)
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    loader = DeviceLoader(
        images,
        torch.zeros(4, dtype=torch.int64),
        batch_size=4,
        device="cpu",
        train=False,
        mean=mean,
        std=std,
        channels_last=True,
    )
    ((x, y),) = loader.epoch()
    assert x.dtype == torch.float32 and x.is_contiguous(memory_format=torch.channels_last)
    expected = torch.tensor([(128 / 255 - m) / s for m, s in zip(mean, std, strict=True)])
    assert torch.allclose(x[0, :, 5, 5], expected, atol=1e-5)


def test_loader_throughput_is_measured(fake_root: Path) -> None:
    data = load_cifar("cifar10", data_dir=fake_root)
    loader = DeviceLoader.for_split(data, train=True, batch_size=50, device="cpu")
    assert measure_loader_throughput(loader) > 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batches_equal_cpu_batches() -> None:
    """Order and augmentation come from CPU generators: the device must not change what is trained on."""
    images = _unique_images(64)
    kwargs = dict(batch_size=16, train=True, seed=11, mean=(0.5,) * 3, std=(0.25,) * 3, channels_last=True)
    cpu = DeviceLoader(images, torch.arange(64), device="cpu", **kwargs)
    gpu = DeviceLoader(images, torch.arange(64), device="cuda", **kwargs)
    for (xc, yc), (xg, yg) in zip(cpu.epoch(3), gpu.epoch(3), strict=True):
        assert torch.equal(yc, yg.cpu()) and torch.allclose(xc, xg.cpu())
        assert xg.is_cuda and xg.is_contiguous(memory_format=torch.channels_last)


class _RunsCode:
    """Unpickling this calls os.system: what a crafted 'CIFAR' file downloaded from a mirror could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_pickle_cannot_run_code(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_fake_cifar(root, "cifar10", n_train=20, n_test=10, seed=0)
    marker = tmp_path / "pwned"
    batch = root / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(pickle.dumps({b"data": _RunsCode(marker), b"labels": []}, protocol=2))
    with pytest.raises(DatasetUnavailable, match=r"data_batch_1 .*forbidden global (posix|os)\.system"):
        load_cifar("cifar10", data_dir=root)
    assert not marker.exists()


def test_the_real_format_still_loads_under_the_restricted_unpickler(tmp_path: Path) -> None:
    """torchvision's own pickles (py2 str keys, numpy arrays) and ours load through the same gate."""
    root = tmp_path / "data"
    write_fake_cifar(root, "cifar10", n_train=20, n_test=10, seed=0)
    folder = root / "cifar-10-batches-py"
    # a batch as a Python 3 program would re-save it (protocol 2 bytes go through _codecs.encode)
    original = pickle.loads((folder / "data_batch_2").read_bytes(), encoding="bytes")
    (folder / "data_batch_2").write_bytes(pickle.dumps({k.decode(): v for k, v in original.items()}, protocol=2))
    data = load_cifar("cifar10", data_dir=root)
    assert data.train_x.dtype == torch.uint8 and len(data.train_x) == 20


def test_the_synthetic_warning_is_said_once_per_folder(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A run's train, eval and attention tasks each load the data: one warning on stderr, not one per task."""
    write_fake_cifar(tmp_path, "cifar10", n_train=10, n_test=5)
    with caplog.at_level("WARNING", logger="harness.train.data"):
        for _ in range(4):
            assert load_cifar("cifar10", data_dir=tmp_path).synthetic
    assert sum("SYNTHETIC" in r.getMessage() for r in caplog.records) == 1
