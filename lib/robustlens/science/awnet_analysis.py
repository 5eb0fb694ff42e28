"""Looking inside a trained AW-Net: what its router says, which filters an input gets, what it costs.

Tables in, numbers out; the chapter draws them (:mod:`robustlens.book.awnet_figures`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from robustlens.science import awnet, filters, model_cost
from robustlens.science.model_modes import eval_mode


@dataclass
class RouterOutputs:
    """Per image: each varied conv's signals (N, C) and p(adversarial)."""

    units: list[str]
    signals: list[np.ndarray]
    p_adv: np.ndarray


@torch.no_grad()
def router_outputs(net: awnet.AWNet, x: torch.Tensor, batch_size: int = 256) -> RouterOutputs:
    """The router's signals and p(adversarial) for images ``x`` (eval mode, in batches)."""
    device = next(net.parameters()).device
    sig: list[list[torch.Tensor]] = []
    p: list[torch.Tensor] = []
    with eval_mode(net):
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].to(device)
            signals, _ = net.router(xb)
            sig.append([s.cpu() for s in signals])
            p.append(net.p_adv(xb).cpu())
    units = [f"conv {u.index + 1}" for u in awnet.unit_list(net) if u.signal_index is not None]
    per_unit = [torch.cat([b[k] for b in sig]).numpy() for k in range(len(units))]
    return RouterOutputs(units, per_unit, torch.cat(p).numpy())


def auc(negatives, positives) -> float:
    """Area under the ROC curve of a score that should be higher for ``positives``
    (Mann-Whitney: the chance a random positive outscores a random negative, ties counted half)."""
    neg, pos = np.asarray(negatives, float), np.asarray(positives, float)
    if len(neg) == 0 or len(pos) == 0:
        raise ValueError("auc needs at least one negative and one positive score")
    ranks = pd.Series(np.concatenate([neg, pos])).rank().to_numpy()
    u = ranks[len(neg) :].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(neg) * len(pos)))


def roc(negatives, positives) -> pd.DataFrame:
    """The ROC curve (false- and true-positive rate per threshold) of a detector score."""
    neg, pos = np.asarray(negatives, float), np.asarray(positives, float)
    thresholds = np.unique(np.concatenate([neg, pos, [np.inf]]))[::-1]
    return pd.DataFrame(
        {
            "threshold": thresholds,
            "fpr": [(neg >= t).mean() for t in thresholds],
            "tpr": [(pos >= t).mean() for t in thresholds],
        }
    )


def filter_shift(net: awnet.AWNet, x_a: torch.Tensor, x_b: torch.Tensor) -> pd.DataFrame:
    """How much the filters an input gets change between ``x_a[i]`` and ``x_b[i]``, per image
    and varied conv: ``||w * s(x_b) - w * s(x_a)|| / ||w * s(x_a)||`` over the conv's weights.

    With ``x_b`` the attacked versions of ``x_a`` this is how far an attack moves the filters;
    with ``x_b`` other clean images, how far the filters move between inputs anyway.
    """
    a, b = router_outputs(net, x_a), router_outputs(net, x_b)
    weights = [
        u.conv.conv.weight.detach().cpu()
        for u in awnet.unit_list(net)
        if u.signal_index is not None
    ]
    rows = []
    for unit, w, sa, sb in zip(a.units, weights, a.signals, b.signals):
        per_filter = w.flatten(1).pow(2).sum(1).numpy()  # ||w_o||^2 of each output filter
        diff = np.sqrt(((sb - sa) ** 2 * per_filter).sum(1))
        base = np.sqrt((sa**2 * per_filter).sum(1))
        rows += [(i, unit, d / n) for i, (d, n) in enumerate(zip(diff, base))]
    return pd.DataFrame(rows, columns=["image", "unit", "relative_change"])


def effective_filter_table(
    net: awnet.AWNet, x_clean: torch.Tensor, x_adv: torch.Tensor, variant: str = "gk"
) -> pd.DataFrame:
    """[GK]'s filter metrics and the weight statistics of the filters each image actually gets
    (``w * s``, per varied conv), for clean images and their adversarial versions.

    Tidy rows: ``image, kind (clean/adversarial), unit, metric, value``; image ``i`` of both
    kinds is the same test image, so clean and adversarial can be compared pairwise.
    """
    if x_clean.shape != x_adv.shape:
        raise ValueError("x_clean and x_adv must be the same images, clean and attacked")
    rows = []
    for kind, x in (("clean", x_clean), ("adversarial", x_adv)):
        with eval_mode(net):
            per_unit = awnet.effective_filters(net, x.to(next(net.parameters()).device))
        for unit, w in per_unit:
            values = filters.layer_metrics(list(w), variant)
            for image, vals in enumerate(values):
                rows += [(image, kind, unit, k, v) for k, v in vals.items()]
    return pd.DataFrame(rows, columns=["image", "kind", "unit", "metric", "value"])


def _best_seconds(fns: dict, repeats: int) -> dict:
    """Best-of-``repeats`` seconds of each function, the repeats interleaved (a, b, c, a, b, c,
    ...) so a slow spell of a shared machine hits every model alike and the ratios stay fair."""
    for fn in fns.values():
        fn()  # warm-up: first calls allocate
    best = dict.fromkeys(fns, np.inf)
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def cost_table(
    static: nn.Module,
    net: awnet.AWNet,
    input_shape: tuple[int, int, int],
    step_static,
    step_awnet,
    batch_size: int = 128,
    repeats: int = 3,
    device: str = "cpu",
    step_same_work=None,
) -> pd.DataFrame:
    """Parameters, forward FLOPs, and the best-of-``repeats`` forward and training-step seconds
    of the static model and its AW-Net twin, measured in the same run, with their ratios.

    ``step_static(model, x, y)`` / ``step_awnet(model, x, y)`` return a training loss (e.g.
    PGD-AT's and AW-Net's recipes); a step is that loss, its backward and nothing else. With
    ``step_same_work`` (:func:`robustlens.science.awnet_training.same_work_on`) a third column
    times the static model doing the AW-Net recipe's work, so the last column
    (``AW-Net / same work``) is what the dynamic architecture itself costs.
    """
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch_size, *input_shape, generator=g).to(device)
    y = torch.randint(0, 10, (batch_size,), generator=g).to(device)
    runs = [("static", static, step_static), ("AW-Net", net, step_awnet)]
    if step_same_work is not None:
        runs.append(("static, AW-Net's recipe", static, step_same_work))
    forwards, steps, rows = {}, {}, {}
    for name, model, step in runs:
        model = model.to(device)

        def forward(model=model):
            with torch.no_grad(), eval_mode(model):
                model(x)

        def train_step(model=model, step=step):
            model.train()
            model.zero_grad(set_to_none=True)
            step(model, x, y).backward()
            model.eval()

        forwards[name], steps[name] = forward, train_step
        rows[name] = {
            "parameters": model_cost.count_parameters(model),
            "forward MFLOPs per image": model_cost.forward_flops(model, input_shape) / 1e6,
        }
    forward_s, step_s = _best_seconds(forwards, repeats), _best_seconds(steps, repeats)
    for name in rows:
        rows[name]["forward (ms per batch)"] = 1e3 * forward_s[name]
        rows[name]["training step (ms per batch)"] = 1e3 * step_s[name]
    table = pd.DataFrame(rows)
    table["AW-Net / static"] = table["AW-Net"] / table["static"]
    if step_same_work is not None:
        same = table.pop("static, AW-Net's recipe")
        same.loc[["parameters", "forward MFLOPs per image", "forward (ms per batch)"]] = np.nan
        table.insert(2, "static, AW-Net's recipe", same)
        table["AW-Net / same work"] = table["AW-Net"] / same
    return table
