import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from robustlens.science import data
from robustlens.science.data import DataError


def write_idx(path, array: np.ndarray, gz=True):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return raw


def make_fashion_dir(tmp_path, n_train=6, n_test=4):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte.gz": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": (np.arange(n_test) + 3) % 10,
    }
    for name, arr in arrays.items():
        write_idx(tmp_path / name, arr)
    return arrays


def test_fashion_mnist_idx_round_trip(tmp_path):
    arrays = make_fashion_dir(tmp_path)
    ds = data.load_fashion_mnist(tmp_path)
    assert ds.train.images.shape == (6, 1, 28, 28) and ds.test.images.shape == (4, 1, 28, 28)
    assert ds.train.images.dtype == torch.float32
    assert 0.0 <= ds.train.images.min() and ds.train.images.max() <= 1.0
    expected = torch.from_numpy(arrays["train-images-idx3-ubyte.gz"][2].astype(np.float32) / 255)
    assert torch.equal(ds.train.images[2, 0], expected)
    assert ds.test.labels.tolist() == [3, 4, 5, 6]


def test_truncated_idx_names_the_file_and_the_fix(tmp_path):
    make_fashion_dir(tmp_path)
    target = tmp_path / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(target.read_bytes())
    target.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(DataError) as info:
        data.load_fashion_mnist(tmp_path)
    msg = str(info.value)
    assert str(target) in msg and "truncated" in msg and "make data" in msg


def test_cut_gzip_stream_and_garbage_are_reported(tmp_path):
    make_fashion_dir(tmp_path)
    target = tmp_path / "t10k-labels-idx1-ubyte.gz"
    target.write_bytes(target.read_bytes()[:20])
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz"):
        data.load_fashion_mnist(tmp_path)
    target.write_bytes(b"<html>not a dataset</html>")
    with pytest.raises(DataError, match="not a readable .gz file"):
        data.load_fashion_mnist(tmp_path)


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "FASHION_MNIST_DEBIAN_DIR", tmp_path / "nowhere")
    monkeypatch.setenv("ROBUSTLENS_DATA", str(tmp_path / "empty"))
    with pytest.raises(DataError, match="Fashion-MNIST not found.*make data"):
        data.load_fashion_mnist()


def write_cifar(root, n_per_batch=3):
    folder = root / data.CIFAR10_DIRNAME
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        entry = {
            "batch_label": name,
            "labels": list(rng.integers(0, 10, n_per_batch)),
            "data": rng.integers(0, 256, (n_per_batch, 3072)).astype(np.uint8),
            "filenames": [f"{name}_{j}.png" for j in range(n_per_batch)],
        }
        with open(folder / name, "wb") as fh:
            pickle.dump(entry, fh, protocol=2)
        batches[name] = entry
    return batches


def test_cifar10_batches_load_channels_first(tmp_path):
    batches = write_cifar(tmp_path)
    ds = data.load_cifar10(tmp_path)
    assert ds.train.images.shape == (15, 3, 32, 32) and ds.test.images.shape == (3, 3, 32, 32)
    row = batches["data_batch_2"]["data"][1]
    # torchvision's layout: 1024 red, then 1024 green, then 1024 blue bytes per image.
    assert ds.train.images[4, 1, 0, 5] == pytest.approx(row[1024 + 5] / 255)
    assert ds.test.labels.tolist() == [int(v) for v in batches["test_batch"]["labels"]]


def test_corrupt_cifar_batch_is_reported(tmp_path):
    write_cifar(tmp_path)
    bad = tmp_path / data.CIFAR10_DIRNAME / "data_batch_3"
    bad.write_bytes(bad.read_bytes()[:50])
    with pytest.raises(DataError, match="data_batch_3 is truncated or corrupt"):
        data.load_cifar10(tmp_path)


def test_missing_cifar_does_not_download(tmp_path, monkeypatch):
    def no_network(*a, **k):
        raise AssertionError("load_cifar10 must not touch the network")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    with pytest.raises(DataError, match="CIFAR-10 not found.*fetch-data cifar10"):
        data.load_cifar10(tmp_path)


def test_subset_is_deterministic_and_sized(tmp_path):
    make_fashion_dir(tmp_path, n_train=50)
    ds = data.load_fashion_mnist(tmp_path)
    a, b = ds.train.subset(20, seed=3), ds.train.subset(20, seed=3)
    assert len(a) == 20 and torch.equal(a.labels, b.labels)
    assert ds.train.subset(None) is ds.train
