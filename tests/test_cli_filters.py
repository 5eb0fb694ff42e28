"""`python -m robustlens filters MODEL`: a checkpoint, a zoo model, an offline RobustBench checkpoint,
the pyautoattack ResNet-18; bad input in one line with exit status 2."""

import os
import subprocess
import sys

import pandas as pd
import pytest
import torch

from _support import ROOT, needs_fashion_mnist
from robustlens.science import models


def run_cli(*args, env_extra=None):
    env = {**os.environ, "TQDM_DISABLE": "1", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "robustlens", "filters", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )


def read_table(path):
    table = pd.read_csv(path)
    assert list(table.columns[:7]) == [
        "model",
        "layer",
        "depth",
        "decile",
        "metric",
        "variant",
        "value",
    ]
    return table


def test_checkpoint_of_a_book_architecture(tmp_path):
    torch.manual_seed(0)
    model = models.build_model("resnet", 1, 10)
    with torch.no_grad():
        model.stem[0].weight[:8] = 0  # 8 of 16 first-layer filters exactly zero: sparse
    ckpt = tmp_path / "resnet.pt"
    torch.save({"state_dict": model.state_dict()}, ckpt)
    out = tmp_path / "t.csv"
    res = run_cli(str(ckpt), "--arch", "resnet", "-o", str(out))
    assert res.returncode == 0, res.stderr
    table = read_table(out)
    first = table[(table.layer == "stem.0") & (table.metric == "sparsity")]
    assert first["value"].item() == pytest.approx(0.5)
    assert set(table.variant) == {"gk"}
    assert table[table.metric == "sparsity"].shape[0] == 7  # the 3x3 convs of ResNet-8


def test_pyautoattack_resnet18_is_analysed_offline(tmp_path):
    out = tmp_path / "r18.csv"
    res = run_cli("pyautoattack/resnet18", "--variant", "raw", "-o", str(out))
    assert res.returncode == 0, res.stderr
    table = read_table(out)
    assert table.layer.nunique() == 20 and set(table.variant) == {"raw"}
    assert "20 conv layers" in res.stdout
    # A trained net, not random init: its first-layer filters are far from orthogonal noise.
    ortho = table[(table.metric == "orthogonality")].value
    assert 0.5 < ortho.mean() < 1.0


def test_parquet_without_pyarrow_is_refused_before_loading(tmp_path):
    import importlib.util

    if importlib.util.find_spec("pyarrow") or importlib.util.find_spec("fastparquet"):
        pytest.skip("a parquet engine is installed")
    res = run_cli("pyautoattack/resnet18", "-o", str(tmp_path / "r.parquet"))
    assert res.returncode == 2 and "pyarrow" in res.stderr


def test_offline_robustbench_checkpoint(tmp_path):
    from robustlens.outside.robustbench_registry import build_architecture

    model_id = "cifar10/Linf/Wong2020Fast"  # PreActResNet-18: small enough to write quickly
    model = build_architecture(model_id)
    target = tmp_path / "cifar10" / "Linf" / "Wong2020Fast.pt"
    target.parent.mkdir(parents=True)
    torch.save({"state_dict": model.state_dict()}, target)
    out = tmp_path / "w.csv"
    res = run_cli(model_id, "--robustbench-dir", str(tmp_path), "-o", str(out), "--fold-bn")
    assert res.returncode == 0, res.stderr
    table = read_table(out)
    conv_names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    assert table.layer.nunique() == len(conv_names)


@needs_fashion_mnist
def test_zoo_model(tmp_path):
    out = tmp_path / "z.csv"
    res = run_cli(
        "zoo:smoke/cnn/standard/seed0",
        "-o",
        str(out),
        env_extra={"ROBUSTLENS_CACHE": str(tmp_path / "c")},
    )
    assert res.returncode == 0, res.stderr
    assert read_table(out).layer.nunique() == 5


@pytest.mark.parametrize(
    "make, args, needle",
    [
        (
            lambda p: p.write_text("<!DOCTYPE html><html>quota exceeded</html>"),
            ["--arch", "resnet18"],
            "HTML page",
        ),
        (lambda p: p.write_bytes(b""), ["--arch", "cnn"], "empty"),
        (lambda p: p.write_bytes(b"\x00" * 10), [], "--arch"),
    ],
)
def test_bad_checkpoints_fail_in_one_line(tmp_path, make, args, needle):
    bad = tmp_path / "model.pt"
    make(bad)
    res = run_cli(str(bad), *args, "-o", str(tmp_path / "out.csv"))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], res.stderr
    assert not (tmp_path / "out.csv").exists()


def test_unknown_robustbench_id_and_offline_download(tmp_path):
    res = run_cli("cifar10/Linf/NoSuchModel2099", "--robustbench-dir", str(tmp_path))
    assert res.returncode == 2 and "not in RobustBench" in res.stderr
    # A real id whose checkpoint is absent: robustbench would download it; offline that must fail fast.
    env = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    res = run_cli(
        "cifar10/Linf/Carmon2019Unlabeled", "--robustbench-dir", str(tmp_path), env_extra=env
    )
    assert res.returncode == 2 and "download failed" in res.stderr.splitlines()[-1]
    assert not any(p.suffix == ".pt" for p in tmp_path.rglob("*"))


def test_unrecognised_model_argument():
    res = run_cli("not-a-model")
    assert res.returncode == 2 and "cannot tell what 'not-a-model' is" in res.stderr
