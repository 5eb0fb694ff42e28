"""Bad input, one table: every kind is refused by the command line in one line that names the
fix, with a non-zero exit status, before any long compute, and without writing a result.

The README's "Bad input" table lists the same cases.
"""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
import time

import pytest
import torch

from _support import ROOT
from robustlens.science import models


def _truncated_fashion_mnist(root):
    d = root / "data" / "fashion-mnist"
    d.mkdir(parents=True)
    for name, n, shape in (
        ("train-images-idx3-ubyte.gz", 60000, (28, 28)),
        ("train-labels-idx1-ubyte.gz", 60000, ()),
        ("t10k-images-idx3-ubyte.gz", 10000, (28, 28)),
        ("t10k-labels-idx1-ubyte.gz", 10000, ()),
    ):
        header = struct.pack(">HBB", 0, 8, 1 + len(shape)) + struct.pack(
            f">{1 + len(shape)}I", n, *shape
        )
        with gzip.open(d / name, "wb") as fh:
            fh.write(header + bytes(100))  # far fewer bytes than the header promises
    return {"ROBUSTLENS_DATA": str(root / "data")}


def _html_as_pt(root):
    (root / "model.pt").write_text("<!DOCTYPE html><html><body>Google Drive</body></html>")
    return {}


def _cnn_checkpoint(root):
    torch.save(models.build_model("cnn", 1, 10, seed=0).state_dict(), root / "cnn.pt")
    return {}


def _empty_data(root):
    (root / "data").mkdir()
    return {"ROBUSTLENS_DATA": str(root / "data")}


def _cache_is_a_file(root):
    (root / "cache-file").write_text("not a folder")
    return {"ROBUSTLENS_CACHE": str(root / "cache-file")}


def _offline(root):
    # An unreachable proxy: every download fails at once, as on a machine without internet.
    return {
        k: "http://127.0.0.1:9" for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")
    } | {"no_proxy": ""}


#: (name, command-line arguments, set-up, the text the one line must hold)
CASES = [
    (
        "unknown profile",
        ["run", "--profile", "gpu"],
        None,
        "unknown profile 'gpu': choose one of smoke, cpu, cpu4, paper",
    ),
    (
        "eps out of range",
        ["train", "cnn", "standard", "--profile", "smoke", "--set", "eps=1.5"],
        None,
        "eps=1.5 is impossible for inputs in [0, 1]",
    ),
    (
        "zero epochs",
        ["train", "cnn", "standard", "--profile", "smoke", "--set", "epochs=0"],
        None,
        "epochs=0: train for at least 1 epoch",
    ),
    (
        "negative epochs",
        ["train", "cnn", "pgd", "--profile", "smoke", "--set", "epochs=-3"],
        None,
        "epochs=-3: train for at least 1 epoch",
    ),
    (
        "unknown architecture",
        ["train", "alexnet", "standard", "--profile", "smoke"],
        None,
        "unknown architecture 'alexnet'",
    ),
    (
        "unknown architecture for the AW-Net builder",
        ["train", "alexnet", "awnet", "--profile", "smoke"],
        None,
        "unknown architecture 'alexnet'",
    ),
    (
        "AW-Net teacher not in the zoo",
        ["train", "cnn", "awnet", "--profile", "smoke", "--param", "teacher=madry"],
        None,
        "teacher='madry': choose one of pgd, trades, fast",
    ),
    (
        "AW-Net signal range not positive",
        ["train", "cnn", "awnet", "--profile", "smoke", "--param", "signal_range=-1,2"],
        None,
        "signal_range=(-1, 2): a signal scales filters, so it needs 0 <= low < 1 < high",
    ),
    ("unknown zoo id", ["filters", "zoo:smoke/cnn/madry"], None, "unknown training method 'madry'"),
    ("malformed zoo id", ["filters", "zoo:smoke"], None, "cannot tell what 'zoo:smoke' is"),
    (
        "malformed RobustBench id",
        ["filters", "cifar10/Linf"],
        None,
        "cannot tell what 'cifar10/Linf' is",
    ),
    (
        "unknown RobustBench id",
        ["filters", "cifar10/Linf/Nobody2099Robust"],
        None,
        "Nobody2099Robust",
    ),
    (
        "missing data set",
        ["train", "cnn", "standard", "--profile", "paper"],
        _empty_data,
        "fetch-data cifar10",
    ),
    (
        "truncated IDX file",
        ["train", "cnn", "standard", "--profile", "smoke"],
        _truncated_fashion_mnist,
        "train-images-idx3-ubyte.gz",
    ),
    (
        "HTML saved as a .pt",
        ["filters", "{tmp}/model.pt", "--arch", "cnn"],
        _html_as_pt,
        "model.pt",
    ),
    (
        "checkpoint of the wrong architecture",
        ["filters", "{tmp}/cnn.pt", "--arch", "resnet"],
        _cnn_checkpoint,
        "cnn.pt",
    ),
    (
        "parameter of the wrong type (papermill)",
        ["run", "--profile", "smoke", "-p", "epochs=abc"],
        None,
        "parameter epochs='abc' is not a int",
    ),
    (
        "unknown parameter (papermill)",
        ["run", "--profile", "smoke", "-p", "epsilon=0.1"],
        None,
        "unknown parameter 'epsilon'",
    ),
    (
        "repeated seeds",
        ["run", "--profile", "smoke", "-p", "seeds=0,0"],
        None,
        "seeds=(0, 0) repeats [0]: give distinct seeds",
    ),
    (
        "result cache that is a file",
        ["train", "cnn", "standard", "--profile", "smoke"],
        _cache_is_a_file,
        "is a file: point ROBUSTLENS_CACHE at a folder",
    ),
    (
        "result cache that is a file (notebooks)",
        ["run", "--profile", "smoke"],
        _cache_is_a_file,
        "is a file: point ROBUSTLENS_CACHE at a folder",
    ),
    (
        "CUDA asked for on a machine without it",
        ["run", "--profile", "smoke", "--device", "cuda"],
        None,
        "no CUDA GPU is visible",
    ),
    (
        "download while offline",
        ["fetch-data", "cifar10", "--root", "{tmp}/cifar"],
        _offline,
        "without internet, copy torchvision's cifar-10-batches-py folder there",
    ),
]


@pytest.mark.parametrize("name, args, setup, needle", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_in_one_line_and_writes_nothing(tmp_path, name, args, setup, needle):
    work, cache = tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    env = {**os.environ, "ROBUSTLENS_CACHE": str(cache)}
    env.update(setup(tmp_path) if setup else {})
    if "--device" in args and "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    executed = ROOT / "_build" / "executed"
    executed_before = sorted(executed.rglob("*.ipynb")) if executed.exists() else []
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", "robustlens", *[a.format(tmp=tmp_path) for a in args]],
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
        timeout=120,
    )
    seconds = time.perf_counter() - t0
    lines = res.stderr.strip().splitlines()
    assert res.returncode != 0, f"{name}: exit status 0"
    assert len(lines) == 1 and lines[0].startswith("error: "), f"{name}: {res.stderr!r}"
    assert needle in lines[0], f"{name}: {lines[0]!r}"
    assert seconds < 60, f"{name}: refused only after {seconds:.0f} s"
    # Nothing written: not in the cache, not beside the command, not among the results.
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert [p for p in after if p not in before and p.parts[0] != "cifar"] == []
    assert not (tmp_path / "cifar").exists() or not any((tmp_path / "cifar").rglob("*.py*"))
    assert (sorted(executed.rglob("*.ipynb")) if executed.exists() else []) == executed_before
