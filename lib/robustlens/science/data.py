"""Fashion-MNIST (IDX ``.gz``) and CIFAR-10 (torchvision's ``cifar-10-batches-py``) as tensors in [0, 1].

Nothing here downloads unless asked (:func:`fetch_fashion_mnist`, :func:`fetch_cifar10`), so a
missing file is reported with the command that fixes it instead of a surprise network call.
"""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import struct
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from robustlens.science.cache import file_digest
from robustlens.science.profiles import Profile


class DataError(RuntimeError):
    """A data file is missing, truncated or corrupt; the message names the file and the fix."""


FASHION_MNIST_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_URL = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"
)
# MD5 of the official .gz files (the same values torchvision checks).
FASHION_MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CIFAR10_DIRNAME = "cifar-10-batches-py"
IMAGE_SHAPES = {"fashion-mnist": (1, 28, 28), "cifar10": (3, 32, 32)}  # (channels, height, width)

FIX_FMNIST = (
    "run `make data` (installs the Debian package dataset-fashion-mnist, or downloads the "
    "official files and checks their MD5)"
)


@dataclass
class Split:
    """Images (float32, ``(n, c, h, w)``, in [0, 1]) and their int64 labels."""

    images: torch.Tensor  # float32, (n, c, h, w), in [0, 1]
    labels: torch.Tensor  # int64, (n,)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, n: int | None, seed: int = 0) -> "Split":
        """A class-stratified-by-chance random subset of ``n`` images (all if ``n`` is None)."""
        if n is None or n >= len(self):
            return self
        idx = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]
        return Split(self.images[idx], self.labels[idx])


@dataclass
class Dataset:
    """A data set's training and test :class:`Split` and its class names."""

    name: str
    train: Split
    test: Split
    classes: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])


# ----------------------------------------------------------------------------- Fashion-MNIST


def data_root() -> Path:
    return Path(os.environ.get("ROBUSTLENS_DATA", Path.home() / ".cache" / "robustlens" / "data"))


def _fashion_mnist_dirs() -> list[Path]:
    return [data_root() / "fashion-mnist", FASHION_MNIST_DEBIAN_DIR]


def find_fashion_mnist() -> Path | None:
    for d in _fashion_mnist_dirs():
        if all((d / f).is_file() for f in FASHION_MNIST_FILES):
            return d
    return None


def read_idx(path: Path) -> np.ndarray:
    """Read one gzipped IDX file (unsigned-byte data), checking its header against its length."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} is missing: {FIX_FMNIST}")
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(
            f"{path} is not a readable .gz file ({exc}): delete it and {FIX_FMNIST}"
        ) from None
    if len(raw) < 4:
        raise DataError(f"{path} is truncated (no IDX header): delete it and {FIX_FMNIST}")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08 or ndim not in (1, 3):
        raise DataError(
            f"{path} is not an unsigned-byte IDX file (magic {raw[:4].hex()}): "
            f"delete it and {FIX_FMNIST}"
        )
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if len(raw) != expected:
        raise DataError(
            f"{path} holds {len(raw)} bytes but its header promises {expected} "
            f"(truncated or corrupt): delete it and {FIX_FMNIST}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _split_from_idx(images_path: Path, labels_path: Path) -> Split:
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(
            f"{images_path} and {labels_path} do not match ({images.shape} images, "
            f"{labels.shape} labels): delete them and {FIX_FMNIST}"
        )
    if labels.max(initial=0) > 9:
        raise DataError(f"{labels_path} has labels outside 0..9: delete it and {FIX_FMNIST}")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return Split(x, torch.from_numpy(labels.astype(np.int64)))


def load_fashion_mnist(directory: Path | None = None) -> Dataset:
    directory = Path(directory) if directory is not None else find_fashion_mnist()
    if directory is None:
        looked = ", ".join(str(d) for d in _fashion_mnist_dirs())
        raise DataError(f"Fashion-MNIST not found (looked in {looked}): {FIX_FMNIST}")
    train = _split_from_idx(
        directory / "train-images-idx3-ubyte.gz", directory / "train-labels-idx1-ubyte.gz"
    )
    test = _split_from_idx(
        directory / "t10k-images-idx3-ubyte.gz", directory / "t10k-labels-idx1-ubyte.gz"
    )
    return Dataset("fashion-mnist", train, test, FASHION_MNIST_CLASSES)


def _download_verified(url: str, dest: Path, md5: str) -> None:
    """Download to a temporary file beside ``dest``, check the MD5, then rename into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
            shutil.copyfileobj(resp, out)
        got = file_digest(Path(tmp), "md5")
        if got != md5:
            raise DataError(
                f"{url} downloaded with MD5 {got}, expected {md5}: the file is corrupt "
                "or was changed upstream; try again later"
            )
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def fetch_fashion_mnist(use_apt: bool = True, log=print) -> Path:
    """Make Fashion-MNIST available: already present, else the Debian package, else download."""
    found = find_fashion_mnist()
    if found is not None:
        log(f"Fashion-MNIST: using {found}")
        return found
    errors = []
    if use_apt and shutil.which("apt-get"):
        prefix = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
        if prefix is None:
            errors.append("apt-get needs root and sudo is not available")
        else:
            log("Fashion-MNIST: installing the Debian package dataset-fashion-mnist")
            # A fresh machine has no package lists yet, so update first.
            for args in (["update", "-q"], ["install", "-y", "-q", "dataset-fashion-mnist"]):
                res = subprocess.run([*prefix, "apt-get", *args], capture_output=True, text=True)
            if res.returncode == 0 and find_fashion_mnist() is not None:
                return find_fashion_mnist()
            tail = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
            errors.append(f"apt-get failed ({tail[0]})")
    target = data_root() / "fashion-mnist"
    log(f"Fashion-MNIST: downloading the official files into {target}")
    try:
        for name, md5 in FASHION_MNIST_FILES.items():
            if not (target / name).is_file():
                _download_verified(FASHION_MNIST_URL + name, target / name, md5)
        return target
    except (OSError, DataError) as exc:
        errors.append(f"download failed ({exc})")
    raise DataError(
        "Fashion-MNIST could not be obtained: install the Debian package dataset-fashion-mnist "
        f"(apt-get install dataset-fashion-mnist) or download the official files from "
        f"{FASHION_MNIST_URL} into {target}; tried: " + "; ".join(errors)
    )


# ----------------------------------------------------------------------------- CIFAR-10


def _fix_cifar(root: Path) -> str:
    return (
        f"run `python -m robustlens fetch-data cifar10 --root {root}` (needs internet) or put "
        f"torchvision's {CIFAR10_DIRNAME} folder there"
    )


def _read_cifar_batch(path: Path, root: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path} is missing: {_fix_cifar(root)}")
    try:
        with open(path, "rb") as fh:
            # torchvision's on-disk format is a pickle; it is read only from the user's own data folder.
            entry = pickle.load(fh, encoding="latin1")
        data = np.asarray(entry["data"], dtype=np.uint8)
        labels = np.asarray(entry.get("labels", entry.get("fine_labels")), dtype=np.int64)
    except Exception as exc:  # any unpickling failure means the same thing to the user
        raise DataError(
            f"{path} is truncated or corrupt ({type(exc).__name__}): delete it and "
            f"{_fix_cifar(root)}"
        ) from None
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise DataError(
            f"{path} does not hold CIFAR-10 rows of 3072 bytes with labels: delete it and "
            f"{_fix_cifar(root)}"
        )
    return data, labels


def load_cifar10(root: Path | None = None) -> Dataset:
    root = Path(root) if root is not None else data_root()
    folder = root / CIFAR10_DIRNAME
    if not folder.is_dir():
        raise DataError(f"CIFAR-10 not found at {folder}: {_fix_cifar(root)}")

    def split(names):
        parts = [_read_cifar_batch(folder / n, root) for n in names]
        data = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        x = torch.from_numpy(data.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0)
        return Split(x, torch.from_numpy(labels))

    train = split([f"data_batch_{i}" for i in range(1, 6)])
    test = split(["test_batch"])
    return Dataset("cifar10", train, test, CIFAR10_CLASSES)


def fetch_cifar10(root: Path | None = None) -> Path:
    """Download CIFAR-10 through torchvision (which checks the archive's MD5)."""
    root = Path(root) if root is not None else data_root()
    import torchvision

    try:
        torchvision.datasets.CIFAR10(str(root), train=True, download=True)
    except Exception as exc:
        raise DataError(
            f"CIFAR-10 download into {root} failed ({type(exc).__name__}: {exc}); without "
            f"internet, copy torchvision's {CIFAR10_DIRNAME} folder there"
        ) from None
    return root / CIFAR10_DIRNAME


# ----------------------------------------------------------------------------- by profile

_FULL: dict[tuple, Dataset] = {}


def load_dataset(name: str, root: Path | None = None) -> Dataset:
    """A whole data set, read once per process."""
    key = (name, str(root or data_root()))
    if key not in _FULL:
        if name == "fashion-mnist":
            _FULL[key] = load_fashion_mnist(root)
        elif name == "cifar10":
            _FULL[key] = load_cifar10(root)
        else:
            raise DataError(f"unknown dataset {name!r}: choose fashion-mnist or cifar10")
    return _FULL[key]


_CACHE: dict[tuple, Split] = {}
# One fixed permutation per split: every subset size is a prefix of it, so a 2,000-image
# evaluation set is contained in every larger one.
TRAIN_SUBSET_SEED, TEST_SUBSET_SEED = 1234, 4321


def training_split(profile: Profile) -> Split:
    """The profile's training images, cut to ``train_size`` (the same subset for every seed)."""
    key = (profile.dataset, profile.train_size, str(data_root()))
    if key not in _CACHE:
        _CACHE[key] = load_dataset(profile.dataset).train.subset(
            profile.train_size, seed=TRAIN_SUBSET_SEED
        )
    return _CACHE[key]


def evaluation_split(dataset: str, n: int | None) -> Split:
    """The first ``n`` images of the test set's fixed permutation (all of them if ``n`` is None)."""
    return load_dataset(dataset).test.subset(n, seed=TEST_SUBSET_SEED)
