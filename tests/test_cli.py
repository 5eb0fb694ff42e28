"""The command line: bad input ends in one line and exit status 2, and writes nothing."""

import os
import subprocess
import sys

import pytest

from _support import ROOT


def run_cli(*args, env_extra=None, cwd=ROOT):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "robustlens", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def test_bad_profile_exits_2_in_one_line_and_writes_nothing(tmp_path):
    before = set((ROOT / "book").iterdir())
    res = run_cli("run", "--profile", "bogus", env_extra={"ROBUSTLENS_CACHE": str(tmp_path)})
    assert res.returncode == 2
    assert (
        res.stderr.strip()
        == "error: unknown profile 'bogus': choose one of smoke, cpu, cpu4, paper"
    )
    assert not (ROOT / "_build" / "executed" / "bogus").exists()
    assert set((ROOT / "book").iterdir()) == before
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "args, needle",
    [
        (
            ["train", "cnn", "standard", "--profile", "smoke", "--set", "eps=-0.1"],
            "eps=-0.1 is impossible",
        ),
        (["train", "cnn", "standard", "--profile", "smoke", "--set", "epochs=0"], "epochs=0"),
        (["train", "alexnet", "standard", "--profile", "smoke"], "unknown architecture 'alexnet'"),
        (
            ["train", "cnn", "standard", "--profile", "smoke", "--device", "tpu"],
            "unknown device 'tpu'",
        ),
    ],
)
def test_bad_training_parameters_exit_2(tmp_path, args, needle):
    res = run_cli(*args, env_extra={"ROBUSTLENS_CACHE": str(tmp_path)})
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0]
    assert not any(tmp_path.iterdir())


def test_unknown_notebook_name_is_refused(tmp_path):
    res = run_cli(
        "run",
        "--profile",
        "smoke",
        "no_such_chapter",
        env_extra={"ROBUSTLENS_CACHE": str(tmp_path)},
    )
    assert res.returncode == 2 and "unknown notebook(s) no_such_chapter" in res.stderr
