"""The runner shows what a kernel trains or evaluates while the notebook runs."""

from __future__ import annotations

import os
import subprocess
import sys

from robustlens.book.run_progress import ProgressWatcher
from robustlens.science import progress_log

_KERNEL = """
import time
from robustlens.science import progress_log
progress_log.note("model 1 of 2: cnn/pgd/seed0")
progress_log.note(progress_log.COMPUTED + " train cnn/pgd/seed0")
for _ in progress_log.bar(range(5), desc="train cnn/pgd/seed0", mininterval=0):
    time.sleep(0.05)
progress_log.note(progress_log.FROM_CACHE + " model cnn/standard/seed0")
"""


def test_a_child_process_bars_and_notes_reach_the_terminal(tmp_path):
    path = tmp_path / "progress.log"
    lines = []
    with ProgressWatcher(path, "02_filter_zoo", lines.append, every=0, poll=0.05) as watcher:
        env = {**os.environ, progress_log.ENV: str(path), "TQDM_DISABLE": "1"}
        subprocess.run([sys.executable, "-c", _KERNEL], env=env, check=True)
    assert "  02_filter_zoo: model 1 of 2: cnn/pgd/seed0" in lines
    assert "  02_filter_zoo: computing train cnn/pgd/seed0" in lines
    assert any("train cnn/pgd/seed0" in line and "5/5" in line for line in lines), lines
    assert not any("from cache" in line for line in lines)  # counted, not shown
    assert (watcher.computed, watcher.cached) == (1, 1)
    assert not path.exists()


def test_without_the_runner_bars_go_to_the_terminal(monkeypatch, capsys):
    monkeypatch.delenv(progress_log.ENV, raising=False)
    progress_log.note("nobody is watching")  # no file, no error
    assert list(progress_log.bar(range(3), desc="x", disable=True)) == [0, 1, 2]


def test_the_watcher_collects_the_models_a_notebook_used(tmp_path):
    from robustlens.book.run_progress import ProgressWatcher

    path = tmp_path / "p.log"
    with ProgressWatcher(path, "ch", log=lambda *_: None, poll=0.05) as w:
        path.write_text(
            "\n@1 computing: train cnn/pgd/seed0 [0123456789abcdef0123]\n"
            "\n@2 from cache: model cnn/awnet vary=none/seed0 [fedcba98765432100000]\n"
            "\n@3 computing: pgd on cnn/pgd/seed0 (all images)\n"
        )
    assert w.models == {
        "cnn/pgd/seed0": "0123456789abcdef0123",
        "cnn/awnet vary=none/seed0": "fedcba98765432100000",
    }
    assert (w.computed, w.cached) == (2, 1)
