"""One training loop; each training method is a loss function ("recipe") plugged into it."""
from __future__ import annotations

import math
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import attacks
from .profiles import Profile

Recipe = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]

RECIPES = {
    "standard": "standard training (cross-entropy on clean inputs)",
    "pgd": "PGD adversarial training (Madry et al. 2018)",
    "trades": "TRADES (Zhang et al. 2019)",
    "fast": "fast adversarial training: FGSM from a random start (Wong et al. 2020)",
    "gradpen": "input-gradient penalty (double backprop): CE + lam * ||grad_x CE||, norm l1 or l2sq",
}


def make_recipe(name: str, profile: Profile, **params) -> Recipe:
    """The loss of training method ``name`` at the profile's eps and step counts."""
    eps, steps, alpha = profile.eps, profile.pgd_train_steps, profile.pgd_train_alpha

    if name == "standard":
        return lambda model, x, y: F.cross_entropy(model(x), y)
    if name == "pgd":
        def pgd_loss(model, x, y):
            return F.cross_entropy(model(attacks.pgd(model, x, y, eps, alpha, steps)), y)
        return pgd_loss
    if name == "trades":
        beta = params.get("beta", profile.trades_beta)

        def trades_loss(model, x, y):
            adv = attacks.trades_pgd(model, x, eps, alpha, steps)
            logits, logits_adv = model(x), model(adv)
            kl = F.kl_div(F.log_softmax(logits_adv, 1), F.softmax(logits, 1), reduction="batchmean")
            return F.cross_entropy(logits, y) + beta * kl
        return trades_loss
    if name == "fast":
        def fast_loss(model, x, y):
            return F.cross_entropy(model(attacks.fgsm_rs(model, x, y, eps)), y)
        return fast_loss
    if name == "gradpen":
        from . import theory

        if "lam" not in params:
            raise ValueError("training method 'gradpen' needs lam=<penalty weight> (and norm='l1' or 'l2sq')")
        lam, norm = float(params["lam"]), params.get("norm", "l1")
        if not lam >= 0 or norm not in ("l1", "l2sq"):
            raise ValueError(f"gradpen: need lam >= 0 and norm in (l1, l2sq), got lam={lam}, norm={norm!r}")
        return lambda model, x, y: theory.gradient_penalty_loss(model, x, y, lam, norm)
    raise ValueError(f"unknown training method {name!r}: choose one of {', '.join(RECIPES)}")


def augment_batch(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random crop (zero padding 4) and horizontal flip, as in the usual CIFAR-10 recipe."""
    n, _, h, w = x.shape
    padded = F.pad(x, (4, 4, 4, 4))
    dx = torch.randint(0, 9, (n,), generator=generator)
    dy = torch.randint(0, 9, (n,), generator=generator)
    out = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    flip = torch.rand(n, generator=generator) < 0.5
    out[flip] = out[flip].flip(-1)
    return out


def train(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, recipe: Recipe, *,
          epochs: int, batch_size: int, lr: float, weight_decay: float, seed: int,
          augment: bool = False, device: str = "cpu", desc: str = "train") -> dict:
    """SGD (Nesterov momentum 0.9) with a linear warm-up over the first 5% of steps, then cosine decay.

    Returns a small log: final training loss, images seen per second, wall time.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model.to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(labels) / batch_size)
    total = epochs * steps_per_epoch
    warm = max(1, total // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm))))
    losses: list[float] = []
    start = time.perf_counter()
    bar = tqdm(total=total, desc=desc, leave=False)
    for _ in range(epochs):
        order = torch.randperm(len(labels), generator=gen)
        for i in range(0, len(labels), batch_size):
            idx = order[i:i + batch_size]
            x, y = images[idx], labels[idx]
            if augment:
                x = augment_batch(x, gen)
            x, y = x.to(device), y.to(device)
            loss = recipe(model, x, y)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{desc}: the training loss became {loss.item()}: lower lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    bar.close()
    wall = time.perf_counter() - start
    model.eval()
    tail = losses[-max(1, steps_per_epoch // 4):]
    return {"final_train_loss": sum(tail) / len(tail), "train_seconds": wall,
            "train_images_per_second": epochs * len(labels) / wall}
