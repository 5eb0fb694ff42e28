"""How far training moved a model's conv weights from their initialisation.

A verdict about "robust filters" is only about training if the filters were trained. Because a
model is its spec (:mod:`robustlens.science.seeding`), its exact initial weights can be rebuilt and
compared with the trained ones, layer by layer:

* ``rel_change`` = ||W - W0||_F / ||W0||_F, the distance travelled relative to the start;
* ``std_ratio`` = std(W) / std(W0);
* ``excess_kurtosis`` of W: PyTorch's uniform initialisation has -1.2; trained conv filters are
  peaked and heavy-tailed (kurtosis well above 0).

A model counts as trained when the median layer has travelled at least
:data:`TRAINED_REL_CHANGE` of its initial norm. The threshold sits between what we measured for
the plain CNN on Fashion-MNIST (seed 0, SGD as in :mod:`robustlens.science.training`): 0.39 (standard)
and 0.40 (PGD-AT) after 3 epochs on 6,000 images, whose excess kurtosis stays near the uniform
-1.2 (-0.86), and 0.88 after 2 epochs on all 60,000 images, whose filters have left the uniform
shape (kurtosis -0.18). Every chapter prints each model's value.
"""

from __future__ import annotations

import pandas as pd
from torch import nn

from robustlens.science import filters

#: Median over conv layers of ``||W - W0|| / ||W0||`` from which a model counts as trained.
TRAINED_REL_CHANGE = 0.5


def distance_from_init(model: nn.Module, initial: nn.Module, input_shape) -> pd.DataFrame:
    """One row per conv layer (forward order): ``layer, depth, rel_change, std_ratio, excess_kurtosis``."""
    now = filters.extract_convs(model, input_shape)
    start = {r.name: r for r in filters.extract_convs(initial, input_shape)}
    rows = []
    for r in now:
        if r.name not in start or start[r.name].weight.shape != r.weight.shape:
            raise ValueError(
                f"layer {r.name} of the trained model has no initial counterpart of the same "
                "shape: pass the model's own initialisation (zoo.initial_model)"
            )
        w, w0 = r.weight.detach().double().cpu(), start[r.name].weight.detach().double().cpu()
        centred = w - w.mean()
        var = centred.pow(2).mean()
        rows.append(
            {
                "layer": r.name,
                "depth": r.conv_depth,
                "rel_change": float((w - w0).norm() / w0.norm().clamp_min(1e-30)),
                "std_ratio": float(w.std() / w0.std().clamp_min(1e-30)),
                "excess_kurtosis": float(centred.pow(4).mean() / var.pow(2).clamp_min(1e-60) - 3),
            }
        )
    return pd.DataFrame(
        rows, columns=["layer", "depth", "rel_change", "std_ratio", "excess_kurtosis"]
    )


def summary(model: nn.Module, initial: nn.Module, input_shape) -> dict:
    """Median over layers of each measure (whether that counts as trained is decided by
    :func:`robustlens.book.claims.trained`)."""
    table = distance_from_init(model, initial, input_shape)
    med = table[["rel_change", "std_ratio", "excess_kurtosis"]].median()
    return {
        "median_rel_change": float(med.rel_change),
        "median_std_ratio": float(med.std_ratio),
        "median_excess_kurtosis": float(med.excess_kurtosis),
    }
