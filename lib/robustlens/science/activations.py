"""How much an attack changes a model's first-stage feature maps (chapter 03's activation check).

[GK] argue that robust models' first layers are built so that small input perturbations change
their activations less; these functions measure that on a model of the zoo.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from robustlens.science import filters
from robustlens.science.model_modes import eval_mode


def first_stage_outputs(
    model: nn.Module, x: torch.Tensor, input_shape: Sequence[int]
) -> dict[str, torch.Tensor]:
    """Feature maps of the model's first conv stage for inputs ``x``: ``conv``, ``bn`` and ``relu``.

    ``conv`` is the first conv layer's output (forward order, :func:`robustlens.science.filters.extract_convs`),
    ``bn`` the output of the eval-mode BatchNorm that directly follows it, ``relu`` that after a
    ReLU.  This is the book's conv -> BN -> ReLU order; a ``ValueError`` says so if the model's
    first conv is not followed by a BatchNorm and an ``nn.ReLU`` module.
    """
    rec = filters.extract_convs(model, input_shape, fold_bn=True)[0]
    modules = dict(model.named_modules())
    if rec.folded_bn is None:
        raise ValueError(f"the first conv {rec.name!r} is not directly followed by a BatchNorm")
    names = list(modules)
    after = names[names.index(rec.folded_bn) + 1 :]
    relu = next((n for n in after if isinstance(modules[n], nn.ReLU)), None)
    if relu is None:
        raise ValueError(f"no nn.ReLU module follows {rec.folded_bn!r}")
    out: dict[str, torch.Tensor] = {}

    def keep(key):
        return lambda mod, args, res: out.__setitem__(key, res.detach().clone())

    handles = [
        modules[rec.name].register_forward_hook(keep("conv")),
        modules[rec.folded_bn].register_forward_hook(keep("bn")),
        modules[relu].register_forward_hook(keep("relu")),
    ]
    try:
        with eval_mode(model), torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return out


def activation_change(
    clean: Mapping[str, torch.Tensor], adv: Mapping[str, torch.Tensor]
) -> dict[str, float]:
    """Per stage: ``mean |a(x_adv) - a(x)| / mean |a(x)|`` over all images, channels and
    positions."""
    return {
        k: float((adv[k] - clean[k]).abs().mean() / clean[k].abs().mean().clamp_min(1e-12))
        for k in clean
    }


def activation_change_per_image(
    clean: Mapping[str, torch.Tensor], adv: Mapping[str, torch.Tensor]
) -> dict[str, np.ndarray]:
    """Per stage and image: ``mean |a(x_adv) - a(x)| / mean |a(x)|`` over that image's channels
    and positions
    (the replicates a permutation test of "changes less" needs)."""
    out = {}
    for k in clean:
        num = (adv[k] - clean[k]).abs().flatten(1).mean(1)
        den = clean[k].abs().flatten(1).mean(1).clamp_min(1e-12)
        out[k] = (num / den).cpu().numpy()
    return out
