"""Faults survived: a run killed half-way loses nothing it finished and leaves nothing that looks
like a result; a corrupt cache entry is detected, said in one line and recomputed; a full disk
gives a clear error and leaves nothing half-written."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from _support import needs_fashion_mnist
from robustlens.science import cache, zoo
from robustlens.science.profiles import get_profile

TRAIN = [sys.executable, "-m", "robustlens", "train", "cnn", "pgd", "--profile", "smoke"]


def _wait_for(predicate, seconds: float, what: str) -> None:
    end = time.time() + seconds
    while time.time() < end:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def _results(folder: Path) -> list[Path]:
    """Entries a reader would take for results (temporary and quarantined folders start with .)."""
    return [d for d in folder.iterdir() if not d.name.startswith(".")] if folder.exists() else []


@needs_fashion_mnist
def test_a_training_run_killed_half_way_leaves_no_result_and_the_rerun_completes(tmp_path):
    env = {**os.environ, "ROBUSTLENS_CACHE": str(tmp_path / "cache")}
    progress = tmp_path / "progress.log"
    proc = subprocess.Popen(
        [*TRAIN, "--set", "train_size=4096"],
        env={**env, "ROBUSTLENS_PROGRESS": str(progress)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:  # half-way: once the training bar has moved
        _wait_for(lambda: progress.exists() and "%|" in progress.read_text(), 120, "training")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert _results(tmp_path / "cache" / "models") == []
    rerun = subprocess.run([*TRAIN, "--set", "train_size=4096"], env=env, capture_output=True)
    assert rerun.returncode == 0, rerun.stderr
    (entry,) = _results(tmp_path / "cache" / "models")
    assert (entry / "meta.json").is_file() and (entry / "model.pt").is_file()


NOTEBOOK = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
# Two models

```{code-cell} ipython3
:tags: [parameters]
profile = "smoke"
device = "cpu"
overrides = {}
```

```{code-cell} ipython3
import os, time
from pathlib import Path
from robustlens.science import zoo
from robustlens.science.profiles import get_profile
p = get_profile(profile, train_size=256, test_size=64)
zoo.get(p, "cnn", "standard", 0, device="cpu")
Path(os.environ["FAULT_FLAG"]).write_text("first model done")
time.sleep(float(os.environ.get("FAULT_SLEEP", "0")))  # the long rest of the chapter
zoo.get(p, "cnn", "standard", 1, device="cpu")
```
"""


@needs_fashion_mnist
def test_a_notebook_killed_half_way_is_not_installed_and_the_rerun_reuses_its_results(tmp_path):
    root = tmp_path / "repo"
    (root / "notebooks").mkdir(parents=True)
    (root / "notebooks" / "two.md").write_text(NOTEBOOK)
    (root / "book").mkdir()
    (root / "book" / "_toc.yml").write_text("format: jb-book\nroot: two\n")
    flag = tmp_path / "flag"
    env = {
        **os.environ,
        "ROBUSTLENS_CACHE": str(tmp_path / "cache"),
        "FAULT_FLAG": str(flag),
    }
    script = (
        "import sys; from pathlib import Path; from robustlens.book import runner; "
        "r = runner.run_all('smoke', device='cpu', root=Path(sys.argv[1]), log=print)[0]; "
        "print('COUNTS', r.computed, r.cached)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(root)],
        env={**env, "FAULT_SLEEP": "300"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the kernel is a child: kill the whole group, as a crash would
    )
    try:
        _wait_for(flag.exists, 180, "the first model")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    executed = root / "_build" / "executed" / "smoke" / "two.ipynb"
    assert not executed.exists()
    assert not (root / "_build" / "staging" / "two.ipynb").exists()
    assert len(_results(tmp_path / "cache" / "models")) == 1

    rerun = subprocess.run(
        [sys.executable, "-c", script, str(root)], env=env, capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr
    computed, cached = map(int, rerun.stdout.split("COUNTS")[1].split())
    assert cached >= 1 and executed.exists()  # the first model came from the cache
    assert len(_results(tmp_path / "cache" / "models")) == 2


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBUSTLENS_CACHE", str(tmp_path))
    monkeypatch.delenv("ROBUSTLENS_PROGRESS", raising=False)
    monkeypatch.setenv("TQDM_DISABLE", "1")  # progress bars would share standard error
    return tmp_path


@needs_fashion_mnist
def test_a_corrupt_checkpoint_and_a_corrupt_table_are_recomputed(tmp_cache, capsys):
    p = get_profile("smoke", train_size=256, test_size=64)
    first = zoo.get(p, "cnn", "standard", device="cpu")
    ok = zoo.correct(first.model, first.key, p, "pgd", 64, "cpu")
    ckpt = tmp_cache / "models" / first.key / "model.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:-10] + b"0123456789")
    (table,) = [
        f / "correct.npy"
        for f in (tmp_cache / "evals").iterdir()
        if json.loads((f / "meta.json").read_text())["spec"]["attack"] == "pgd"
    ]
    table.write_bytes(table.read_bytes()[:-1] + b"\x01")
    capsys.readouterr()

    again = zoo.get(p, "cnn", "standard", device="cpu")
    ok_again = zoo.correct(again.model, again.key, p, "pgd", 64, "cpu")
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 2 and all("recomputing" in line for line in said)
    assert "fails the checksum of model.pt" in said[0]
    assert "fails the checksum of correct.npy" in said[1]
    # The same spec retrains to the same weights, the same attack gives the same table.
    for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)
    np.testing.assert_array_equal(ok, ok_again)
    assert len(list((tmp_cache / "models").glob(".corrupt-*"))) == 1


def test_a_full_disk_is_a_clear_error_and_leaves_nothing(tmp_path):
    store = cache.Cache(tmp_path)

    def full(path):
        path.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(cache.CacheError, match="no space left on the device of .*nothing was kept"):
        store.put("models", "k", {"model.pt": full}, {})
    assert list((tmp_path / "models").iterdir()) == []
    assert not store.has("models", "k")


@needs_fashion_mnist
def test_a_full_disk_while_saving_a_model_is_one_line(tmp_path):
    env = {**os.environ, "ROBUSTLENS_CACHE": str(tmp_path / "cache"), "TQDM_DISABLE": "1"}
    # A sitecustomize that makes every torch.save fail as a full disk would.
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(
        "import errno, torch\n"
        "def _full(*a, **k):\n"
        "    raise OSError(errno.ENOSPC, 'No space left on device')\n"
        "torch.save = _full\n"
    )
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "site"), env.get("PYTHONPATH", "")])
    res = subprocess.run(
        [*TRAIN, "--set", "train_size=256"], env=env, capture_output=True, text=True
    )
    lines = res.stderr.strip().splitlines()
    assert res.returncode != 0 and len(lines) == 1 and "no space left" in lines[0], res.stderr
    assert _results(tmp_path / "cache" / "models") == []
