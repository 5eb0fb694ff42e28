"""L-infinity attacks (thin wrappers over torchattacks) and batched robust-accuracy evaluation.

torchattacks puts the model in eval mode while it crafts an example and restores the mode
afterwards, so the same calls serve adversarial training and evaluation.
"""

from __future__ import annotations

import torch
import torchattacks
from torch import nn

from robustlens.science import progress_log


def check_eps(eps: float) -> None:
    if not (0.0 < eps < 1.0):
        raise ValueError(f"eps={eps} is impossible for inputs in [0, 1]: use 0 < eps < 1")


def pgd(model: nn.Module, x, y, eps: float, alpha: float, steps: int, random_start: bool = True):
    """Madry et al.'s PGD on the cross-entropy, from a uniform random start in the eps-ball."""
    return torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=random_start)(
        x, y
    )


def trades_pgd(model: nn.Module, x, eps: float, alpha: float, steps: int):
    """TRADES' inner maximisation: PGD on KL(f(x) || f(x')) (torchattacks' TPGD)."""
    return torchattacks.TPGD(model, eps=eps, alpha=alpha, steps=steps)(x)


def fgsm_rs(model: nn.Module, x, y, eps: float, alpha: float | None = None):
    """FGSM from a random start (Wong et al. 2020, "fast is better than free"); alpha = 1.25 eps."""
    return torchattacks.FFGSM(model, eps=eps, alpha=1.25 * eps if alpha is None else alpha)(x, y)


@torch.no_grad()
def _correct(model, x, y) -> int:
    return int((model(x).argmax(1) == y).sum())


def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    steps: int,
    batch_size: int = 500,
    device: str = "cpu",
    desc: str = "evaluate",
) -> dict:
    """Clean and PGD-``steps`` accuracy (alpha = 2.5 eps / steps, one random start) over all images."""
    check_eps(eps)
    model.eval()
    clean = robust = 0
    bar = progress_log.bar(range(0, len(labels), batch_size), desc=desc, leave=False)
    for i in bar:
        x = images[i : i + batch_size].to(device)
        y = labels[i : i + batch_size].to(device)
        clean += _correct(model, x, y)
        adv = pgd(model, x, y, eps, 2.5 * eps / steps, steps)
        robust += _correct(model, adv, y)
    n = len(labels)
    return {
        "clean_acc": clean / n,
        "pgd_acc": robust / n,
        "n_eval": n,
        "eval_eps": eps,
        "eval_steps": steps,
    }
