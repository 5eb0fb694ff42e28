"""RobustBench facts table, the offline checkpoint loader and the checkpoint helpers.

Nothing here touches the network: an autouse fixture points every HTTP(S) proxy at a closed local
port, so a download attempt fails at once, deterministically, with or without internet.
"""

from __future__ import annotations

import importlib.util
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from robustlens.outside import checkpoints as ck
from robustlens.outside import robustbench_registry as rr
from robustlens.outside import robustbench_zoo as rz
from robustlens.outside.robustbench_compat import import_robustbench

CARMON = "cifar10/Linf/Carmon2019Unlabeled"  # WideResNet-28-10 (sub_block1), checkpoint {'state_dict': {'module.*'}}
HTML = (
    b"<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head>"
    b"<body>Google Drive can't scan this file for viruses.</body></html>\n"
)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # discard port: connection refused
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def carmon():
    """A random-weight Carmon2019Unlabeled model and its checkpoint bytes in the upstream layout."""
    model = rr.build_architecture(CARMON)
    state = {"state_dict": OrderedDict(("module." + k, v) for k, v in model.state_dict().items())}
    return model, state


def _model_dir(tmp_path: Path) -> tuple[Path, Path]:
    model_dir = tmp_path / "models"
    target = model_dir / "cifar10" / "Linf" / "Carmon2019Unlabeled.pt"
    target.parent.mkdir(parents=True)
    return model_dir, target


# ----------------------------------------------------------------------------- facts table


def test_gk_table_facts():
    df = rz.gk_pairs()
    assert len(df) == 71 and df["model_id"].is_unique
    assert df["dataset"].value_counts().to_dict() == {"cifar10": 49, "cifar100": 17, "imagenet": 5}
    assert (df["threat_model"] == "Linf").all()
    for col in ("clean_acc", "autoattack_acc", "gk_clean_acc", "gk_robust_acc", "normal_clean_acc"):
        assert df[col].notna().all() and df[col].between(0, 100).all(), col
    assert (df["autoattack_acc"] < df["clean_acc"]).all()
    assert (df["gk_robust_acc"] < df["gk_clean_acc"]).all()
    assert (df["model_id"] == df["dataset"] + "/Linf/" + df["name"]).all()
    row = df.set_index("model_id").loc[CARMON]
    assert (row["architecture"], row["clean_acc"], row["autoattack_acc"]) == (
        "WideResNet-28-10",
        89.69,
        59.53,
    )
    assert row["normal_arch_from"] == CARMON and row["normal_architecture"] == "WideResNet-28-10"


def test_gk_table_ids_are_in_robustbench_registry():
    df = rz.gk_pairs()
    for model_id in df["model_id"]:
        dataset, threat, name = rr.parse_model_id(model_id)
        assert name in rr.registered_names(dataset, threat), model_id
    normal = df.loc[~df["normal_arch_from"].str.startswith("timm/"), "normal_arch_from"]
    for model_id in normal:
        dataset, threat, name = rr.parse_model_id(model_id)
        assert name in rr.registered_names(dataset, threat), model_id
    # a normal counterpart always has the robust model's architecture
    assert (df["normal_architecture"] == df["architecture"]).all()


# ----------------------------------------------------------------------------- load_robustbench


def test_load_robustbench_roundtrip_offline(tmp_path, carmon):
    model, state = carmon
    model_dir, target = _model_dir(tmp_path)
    torch.save(state, target)
    assert rz.checkpoint_paths(CARMON, model_dir) == [target]
    loaded = rz.load_robustbench(CARMON, model_dir)
    assert type(loaded) is type(model) and not loaded.training
    expected, got = model.state_dict(), loaded.state_dict()
    assert list(expected) == list(got)
    assert all(torch.equal(expected[k], got[k]) for k in expected)


def test_load_robustbench_html_saved_as_pt(tmp_path):
    model_dir, target = _model_dir(tmp_path)
    target.write_bytes(HTML)
    with pytest.raises(rr.RobustBenchError, match=r"HTML page.*failed download") as info:
        rz.load_robustbench(CARMON, model_dir)
    assert str(target) in str(info.value) and "\n" not in str(info.value)


def test_load_robustbench_truncated(tmp_path, carmon):
    _, state = carmon
    model_dir, target = _model_dir(tmp_path)
    torch.save(state, target)
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 3])
    with pytest.raises(rr.RobustBenchError, match=r"truncated"):
        rz.load_robustbench(CARMON, model_dir)
    target.write_bytes(b"")
    with pytest.raises(rr.RobustBenchError, match=r"empty"):
        rz.load_robustbench(CARMON, model_dir)


def test_load_robustbench_wrong_checkpoint(tmp_path):
    model_dir, target = _model_dir(tmp_path)
    torch.save({"state_dict": nn.Linear(3, 2).state_dict()}, target)
    with pytest.raises(rr.RobustBenchError, match=r"does not fit"):
        rz.load_robustbench(CARMON, model_dir)


@pytest.mark.parametrize(
    "bad, pattern",
    [
        (
            "cifar10/Linf/Carmon2019Unlabelled",
            r"not in RobustBench.*did you mean Carmon2019Unlabeled",
        ),
        ("cifar10/Linf/NoSuchModel2099", r"not in RobustBench"),
        ("mnist/Linf/Carmon2019Unlabeled", r"unknown dataset"),
        ("Carmon2019Unlabeled", r"dataset/threat/name"),
    ],
)
def test_load_robustbench_unknown_id(tmp_path, bad, pattern):
    with pytest.raises(rr.RobustBenchError, match=pattern):
        rz.load_robustbench(bad, tmp_path)


def test_load_robustbench_missing_offline_fails_fast_and_clean(tmp_path):
    model_dir = tmp_path / "models"
    start = time.monotonic()
    with pytest.raises(
        rr.RobustBenchError,
        match=r"not there and the download failed \(offline\?.*put the checkpoint there",
    ):
        rz.load_robustbench(CARMON, model_dir)
    assert time.monotonic() - start < 15
    leftovers = [p for p in model_dir.rglob("*") if p.is_file() or p.name.endswith(".download")]
    assert leftovers == []
    with pytest.raises(rr.RobustBenchError, match=r"download=False"):
        rz.load_robustbench(CARMON, model_dir, download=False)


FAKE_DOWNLOAD = r"""
import os, sys
mode, out = os.environ["FAKE_MODE"], sys.argv[2]
if mode == "html":
    open(out, "wb").write(os.environ["FAKE_HTML"].encode())
elif mode == "interrupted":
    open(out, "wb").write(b"PK\x03\x04" + b"\0" * 1000)
    sys.exit(1)
else:
    open(out, "wb").write(open(os.environ["FAKE_SOURCE"], "rb").read())
"""


def test_download_is_validated_and_atomic(tmp_path, monkeypatch, carmon):
    """The download step with a stand-in for gdown: bad or partial downloads leave nothing behind."""
    _, state = carmon
    source = tmp_path / "source.pt"
    torch.save(state, source)
    monkeypatch.setattr(rz, "_DOWNLOAD_CHILD", FAKE_DOWNLOAD)
    monkeypatch.setenv("FAKE_HTML", HTML.decode())
    monkeypatch.setenv("FAKE_SOURCE", str(source))
    model_dir = tmp_path / "models"
    folder = model_dir / "cifar10" / "Linf"
    monkeypatch.setenv("FAKE_MODE", "html")
    with pytest.raises(
        rr.RobustBenchError,
        match=r"download from Google Drive failed: the downloaded file is an HTML",
    ):
        rz.load_robustbench(CARMON, model_dir)
    assert list(folder.iterdir()) == []
    monkeypatch.setenv("FAKE_MODE", "interrupted")
    with pytest.raises(rr.RobustBenchError, match=r"download failed"):
        rz.load_robustbench(CARMON, model_dir)
    assert list(folder.iterdir()) == []
    monkeypatch.setenv("FAKE_MODE", "ok")
    model = rz.load_robustbench(CARMON, model_dir)
    assert [p.name for p in folder.iterdir()] == ["Carmon2019Unlabeled.pt"]
    assert torch.equal(model.fc.weight, state["state_dict"]["module.fc.weight"])


def test_robustbench_imports_with_autoattack_alias():
    rb = import_robustbench()
    import autoattack  # provided by pyautoattack under robustbench's expected name

    assert hasattr(autoattack, "AutoAttack") and callable(rb.load_model)


# ----------------------------------------------------------------------------- load_checkpoint


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)


@pytest.mark.parametrize(
    "wrap", ["plain", "state_dict", "model", "dataparallel", "nested", "legacy"]
)
def test_load_checkpoint_wrappers(tmp_path, wrap):
    net = Tiny()
    sd = net.state_dict()
    dp = OrderedDict(("module." + k, v) for k, v in sd.items())
    obj = {
        "plain": sd,
        "state_dict": {"state_dict": sd, "epoch": 3},
        "model": {"model": sd},
        "dataparallel": dp,
        "nested": {"state_dict": dp, "optimizer": {}},
        "legacy": sd,
    }[wrap]
    path = tmp_path / "ckpt.pt"
    torch.save(obj, path, _use_new_zipfile_serialization=(wrap != "legacy"))
    got = ck.load_checkpoint(path)
    assert list(got) == list(sd) and all(torch.equal(got[k], sd[k]) for k in sd)
    model = ck.load_checkpoint(path, arch=Tiny)
    assert isinstance(model, Tiny) and not model.training
    assert torch.equal(model.fc.weight, net.fc.weight)


def test_load_checkpoint_errors(tmp_path):
    path = tmp_path / "bad.pt"
    path.write_bytes(b"")
    with pytest.raises(ck.CheckpointError, match=r"bad\.pt is empty"):
        ck.load_checkpoint(path)
    path.write_bytes(HTML)
    with pytest.raises(ck.CheckpointError, match=r"HTML page"):
        ck.load_checkpoint(path)
    with pytest.raises(ck.CheckpointError, match=r"does not exist"):
        ck.load_checkpoint(tmp_path / "absent.pt")
    torch.save(Tiny().state_dict(), path, _use_new_zipfile_serialization=False)
    path.write_bytes(path.read_bytes()[:-40])  # legacy format, cut short
    with pytest.raises(ck.CheckpointError, match=r"truncated or corrupt"):
        ck.load_checkpoint(path)
    torch.save({"model": Tiny()}, path)  # a pickled module: weights_only refuses it
    with pytest.raises(ck.CheckpointError, match=r"Python objects besides tensors"):
        ck.load_checkpoint(path)
    torch.save(nn.Linear(4, 3).state_dict(), path)
    with pytest.raises(ck.CheckpointError, match=r"does not fit Tiny: missing"):
        ck.load_checkpoint(path, arch=Tiny)
    torch.save({"epoch": 3, "lr": 0.1}, path)
    with pytest.raises(ck.CheckpointError, match=r"holds no state dict"):
        ck.load_checkpoint(path)


def test_load_checkpoint_into_robustbench_architecture(tmp_path):
    arch = rr.build_architecture("cifar10/Linf/Wong2020Fast")  # PreActResNet-18
    path = tmp_path / "wong.pt"
    torch.save(
        {"state_dict": OrderedDict(("module." + k, v) for k, v in arch.state_dict().items())}, path
    )
    model = ck.load_checkpoint(path, arch="cifar10/Linf/Wong2020Fast")
    assert type(model) is type(arch)
    assert all(
        torch.equal(a, b) for a, b in zip(arch.state_dict().values(), model.state_dict().values())
    )


# ----------------------------------------------------------------------------- pyautoattack's ResNet-18


def _foolbox_cifar10_samples():
    """The 20 CIFAR-10 test images foolbox ships (if foolbox is installed), as (x in [0,1], labels)."""
    spec = importlib.util.find_spec("foolbox")
    if spec is None or not spec.submodule_search_locations:
        return None
    from PIL import Image

    files = sorted((Path(list(spec.submodule_search_locations)[0]) / "data").glob("cifar10_*.png"))
    if len(files) != 20:
        return None
    x = torch.stack(
        [
            torch.from_numpy(
                np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) / 255.0
            ).permute(2, 0, 1)
            for f in files
        ]
    )
    y = torch.tensor([int(f.stem.rsplit("_", 1)[1]) for f in files])
    return x, y


def test_pyautoattack_resnet18_loads_strictly_and_classifies():
    path = ck.pyautoattack_resnet18_path()
    assert path.name == "model_test.pt" and ck.sniff_checkpoint(path) == "legacy"
    model = ck.load_pyautoattack_resnet18()
    assert not model.training
    assert sum(p.numel() for p in model.parameters()) == 11_173_962
    # strict: the state dict and the architecture have exactly the same keys
    assert set(model.state_dict()) == set(ck.load_checkpoint(path))
    with torch.no_grad():
        logits = model(torch.rand(2, 3, 32, 32))
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()
    samples = _foolbox_cifar10_samples()
    if samples is None:
        pytest.skip(
            "foolbox (with its 20 CIFAR-10 sample images) is not installed: accuracy not checked"
        )
    x, y = samples
    with torch.no_grad():
        correct = (model(x).argmax(1) == y).sum().item()
    assert correct >= 17, f"{correct}/20 correct"
