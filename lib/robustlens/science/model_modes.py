"""Running a model in eval mode for a while without losing its own train/eval flags."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from torch import nn


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode for the block; every submodule's own flag is restored afterwards.

    Restoring per submodule (not ``model.train(was_training)``) matters: a model may hold
    submodules in a different mode from its root, e.g. BatchNorm frozen while the rest trains.
    """
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, flag in flags:
            m.training = flag
