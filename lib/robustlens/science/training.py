"""One training loop; each training method is a loss function ("recipe") plugged into it."""

from __future__ import annotations

import math
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from robustlens.science import attacks, progress_log, seeding
from robustlens.science.profiles import Profile

Recipe = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
Monitor = Callable[[nn.Module, int], dict]

RECIPES = {
    "standard": "standard training (cross-entropy on clean inputs)",
    "pgd": "PGD adversarial training (Madry et al. 2018)",
    "trades": "TRADES (Zhang et al. 2019)",
    "fast": "fast adversarial training: FGSM from a random start (Wong et al. 2020)",
    "gradpen": "input-gradient penalty (double backprop): CE + lam * ||grad_x CE||, norm l1 or l2sq",
}


# torchattacks crafts every example with the model in eval mode (BatchNorm on its running
# statistics) and restores the training mode afterwards; recorded in each spec because it
# changes the examples a model is trained on.
TRAIN_ATTACK_BN_MODE = "eval"


def recipe_settings(name: str, profile: Profile, **params) -> dict:
    """Every value that training method ``name`` uses, derived ones (step sizes) included.

    This dict is what a model's cache key records of its recipe, and the only input
    :func:`recipe_from_settings` reads, so a value cannot change a model without changing its key.
    """
    if name not in RECIPES:
        raise ValueError(f"unknown training method {name!r}: choose one of {', '.join(RECIPES)}")
    known = {"trades": {"beta"}, "gradpen": {"lam", "norm"}}.get(name, set())
    if set(params) - known:
        raise ValueError(
            f"training method {name!r} takes no parameter(s) {sorted(set(params) - known)}"
            + (f": it takes {sorted(known)}" if known else "")
        )
    attack = {
        "eps": profile.eps,
        "steps": profile.pgd_train_steps,
        "alpha": profile.pgd_train_alpha,
        "attack_bn_mode": TRAIN_ATTACK_BN_MODE,
    }
    if name == "standard":
        return {}
    if name == "pgd":
        return attack
    if name == "trades":
        beta = float(params.get("beta", profile.trades_beta))
        if not beta >= 0:
            raise ValueError(f"trades: beta={beta} must be >= 0")
        return {**attack, "beta": beta}
    if name == "fast":
        # Wong et al. 2020: step 1.25 eps from a uniform random start.
        return {
            "eps": profile.eps,
            "alpha": 1.25 * profile.eps,
            "attack_bn_mode": TRAIN_ATTACK_BN_MODE,
        }
    if "lam" not in params:
        raise ValueError(
            "training method 'gradpen' needs lam=<penalty weight> (and norm='l1' or 'l2sq')"
        )
    lam, norm = float(params["lam"]), params.get("norm", "l1")
    if not lam >= 0 or norm not in ("l1", "l2sq"):
        raise ValueError(
            f"gradpen: need lam >= 0 and norm in (l1, l2sq), got lam={lam}, norm={norm!r}"
        )
    return {"lam": lam, "norm": norm}


def recipe_from_settings(name: str, s: dict) -> Recipe:
    """The loss of training method ``name`` built from :func:`recipe_settings`' dict alone."""
    if name == "standard":
        return lambda model, x, y: F.cross_entropy(model(x), y)
    if name == "pgd":

        def pgd_loss(model, x, y):
            return F.cross_entropy(
                model(attacks.pgd(model, x, y, s["eps"], s["alpha"], s["steps"])), y
            )

        return pgd_loss
    if name == "trades":

        def trades_loss(model, x, y):
            adv = attacks.trades_pgd(model, x, s["eps"], s["alpha"], s["steps"])
            logits, logits_adv = model(x), model(adv)
            kl = F.kl_div(F.log_softmax(logits_adv, 1), F.softmax(logits, 1), reduction="batchmean")
            return F.cross_entropy(logits, y) + s["beta"] * kl

        return trades_loss
    if name == "fast":

        def fast_loss(model, x, y):
            return F.cross_entropy(model(attacks.fgsm_rs(model, x, y, s["eps"], s["alpha"])), y)

        return fast_loss
    if name == "gradpen":
        from robustlens.science import gradient_penalty

        return lambda model, x, y: gradient_penalty.gradient_penalty_loss(
            model, x, y, s["lam"], s["norm"]
        )
    raise ValueError(f"unknown training method {name!r}: choose one of {', '.join(RECIPES)}")


def make_recipe(name: str, profile: Profile, **params) -> Recipe:
    """The loss of training method ``name`` at the profile's eps and step counts."""
    return recipe_from_settings(name, recipe_settings(name, profile, **params))


def augment_batch(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random crop (zero padding 4) and horizontal flip, as in the usual CIFAR-10 recipe."""
    n, _, h, w = x.shape
    padded = F.pad(x, (4, 4, 4, 4))
    dx = torch.randint(0, 9, (n,), generator=generator)
    dy = torch.randint(0, 9, (n,), generator=generator)
    out = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])
    flip = torch.rand(n, generator=generator) < 0.5
    out[flip] = out[flip].flip(-1)
    return out


def train(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    recipe: Recipe,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    seed: int,
    augment: bool = False,
    device: str = "cpu",
    desc: str = "train",
    monitor: Monitor | None = None,
) -> dict:
    """SGD (Nesterov momentum 0.9) with a linear warm-up over the first 5% of steps, then cosine decay.

    Data order and augmentation draw from a generator of their own and the recipe's random draws
    (attack starts) from a forked global RNG, both derived from ``seed`` (:mod:`robustlens.science.seeding`):
    the same model, data and seed give the same weights whatever ran before in the process.
    Returns a small log: final training loss, images seen per second, wall time (without the
    monitor's), loss per epoch, and what ``monitor(model, epoch)`` returned after each epoch (run
    in eval mode on an RNG of its own, so it cannot change the weights).
    """
    with seeding.seeded(seed, "recipe", device=device):
        return _train(
            model,
            images,
            labels,
            recipe,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            gen=seeding.generator(seed, "data-order"),
            augment=augment,
            device=device,
            desc=desc,
            monitor=monitor,
        )


def pgd_monitor(
    images: torch.Tensor, labels: torch.Tensor, eps: float, steps: int, seed: int = 0
) -> Monitor:
    """A training monitor: PGD-``steps`` accuracy on fixed images after every epoch.

    Fast FGSM-RS training can overfit catastrophically (Wong et al. 2020): within an epoch its PGD
    accuracy collapses to ~0 while its FGSM accuracy stays high. Logging PGD accuracy per epoch
    catches it.
    """

    def monitor(model: nn.Module, epoch: int) -> dict:
        device = next(model.parameters()).device
        x, y = images.to(device), labels.to(device)
        with seeding.seeded(seed, "monitor", epoch, device=device):
            adv = attacks.pgd(model, x, y, eps, 2.5 * eps / steps, steps)
        with torch.no_grad():
            return {
                "epoch": epoch + 1,
                "pgd_acc": float((model(adv).argmax(1) == y).float().mean()),
                "clean_acc": float((model(x).argmax(1) == y).float().mean()),
            }

    return monitor


def _train(
    model,
    images,
    labels,
    recipe,
    *,
    epochs,
    batch_size,
    lr,
    weight_decay,
    gen,
    augment,
    device,
    desc,
    monitor=None,
) -> dict:
    model.to(device).train()
    opt = torch.optim.SGD(
        model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay
    )
    steps_per_epoch = math.ceil(len(labels) / batch_size)
    total = epochs * steps_per_epoch
    warm = max(1, total // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (
            (s + 1) / warm
            if s < warm
            else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm)))
        ),
    )
    losses: list[float] = []
    epoch_loss: list[float] = []
    monitored: list[dict] = []
    monitor_seconds = 0.0
    start = time.perf_counter()
    bar = progress_log.bar(total=total, desc=desc, leave=False)
    for epoch in range(epochs):
        order = torch.randperm(len(labels), generator=gen)
        for i in range(0, len(labels), batch_size):
            idx = order[i : i + batch_size]
            x, y = images[idx], labels[idx]
            if augment:
                x = augment_batch(x, gen)
            x, y = x.to(device), y.to(device)
            loss = recipe(model, x, y)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"{desc}: the training loss became {loss.item()}: lower lr"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        epoch_loss.append(sum(losses[-steps_per_epoch:]) / steps_per_epoch)
        if monitor is not None:
            t0 = time.perf_counter()
            model.eval()
            monitored.append(monitor(model, epoch))
            model.train()
            monitor_seconds += time.perf_counter() - t0
    bar.close()
    wall = time.perf_counter() - start - monitor_seconds
    model.eval()
    tail = losses[-max(1, steps_per_epoch // 4) :]
    return {
        "final_train_loss": sum(tail) / len(tail),
        "train_seconds": wall,
        "train_images_per_second": epochs * len(labels) / wall,
        "epoch_train_loss": epoch_loss,
        **({"monitor": monitored} if monitor is not None else {}),
    }
