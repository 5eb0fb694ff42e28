"""APGD against a router-gated network, with the router in the loss (an adaptive attack).

Croce & Hein's APGD (2020) with the loss an outside attacker of an AW-Net would choose
(Tramèr et al. 2020: attack the defence as built): a classification loss — cross-entropy or a
margin (Carlini-Wagner's logit margin, or its targeted form toward one wrong class) — plus
``kappa * log p(clean | x')``, which rewards inputs the router takes for clean, so that the signals
and MixBN treat the attack as a clean image. ``log p(clean)`` comes from ``log_softmax`` of each
type head (never ``log(1 - softmax)``, which rounds to 0 on a confident head and hides its
gradient), averaged over the heads in probability space.

APGD as published: a step size that starts at 2ε and halves at checkpoints where the loss stopped
rising, momentum 0.75, a restart from the best point after each halving. Every iterate is
scored: an image counts as broken when *any* iterate of any restart or target misclassifies it,
so a last step that undoes an earlier success cannot hide it (the best iterate is kept).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from robustlens.science import adaptive_attacks, awnet, evaluation, progress_log, seeding
from robustlens.science.model_modes import eval_mode

#: The classification losses :func:`router_apgd_correct` can ascend.
LOSSES = ("ce", "margin")
#: APGD's momentum and its share of successful steps below which the step size halves.
MOMENTUM, RHO = 0.75, 0.75


def log_p_clean(type_logits: list[torch.Tensor]) -> torch.Tensor:
    """log p(clean | x) per example: the type heads' probabilities averaged, in log space."""
    logp = torch.stack([F.log_softmax(t, 1)[:, awnet.CLEAN] for t in type_logits])
    return torch.logsumexp(logp, 0) - math.log(len(type_logits))


def margin(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None):
    """Per example, the logit margin an attack ascends: ``max_{j != y} z_j - z_y`` (positive when
    misclassified), or toward ``target``, ``z_t - max_{j != t} z_j``."""
    if target is None:
        other = logits.scatter(1, y[:, None], float("-inf")).amax(1)
        return other - logits.gather(1, y[:, None]).squeeze(1)
    rest = logits.scatter(1, target[:, None], float("-inf")).amax(1)
    return logits.gather(1, target[:, None]).squeeze(1) - rest


def router_loss(model: nn.Module, loss: str, kappa: float):
    """``(adv, y, target) -> (per-example loss, logits)`` for the full network: the
    classification loss plus ``kappa * log p(clean | adv)``."""
    if loss not in LOSSES:
        raise ValueError(f"loss={loss!r}: choose one of {', '.join(LOSSES)}")

    def fn(adv, y, target=None):
        logits, routing = model.forward_all(adv)
        if loss == "ce" and target is None:
            cls = F.cross_entropy(logits, y, reduction="none")
        elif loss == "ce":
            cls = -F.cross_entropy(logits, target, reduction="none")
        else:
            cls = margin(logits, y, target)
        return cls + kappa * log_p_clean(routing.type_logits), logits

    return fn


def _checkpoints(steps: int) -> list[int]:
    """APGD's iterations at which the step size may halve, in integers as AutoAttack's code
    counts them: the first after 22 % of ``steps``, each later interval 3 % shorter than the one
    before, never under 6 %."""
    first, shrink = max(int(0.22 * steps), 1), max(int(0.03 * steps), 1)
    shortest = max(int(0.06 * steps), 1)
    points, interval = [first], first
    while True:
        interval = max(interval - shrink, shortest)
        if points[-1] + interval > steps:
            return points
        points.append(points[-1] + interval)


def apgd(
    loss_fn: Callable,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int,
    generator: torch.Generator,
    target: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per example, whether some iterate of one APGD run on ``loss_fn`` misclassified it
    (``loss_fn(adv, y, target) -> (per-example loss, logits)``, ascended)."""
    lo, hi = (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)
    start = (torch.rand(x.shape, generator=generator) * 2 - 1).to(x.device) * eps
    cur = torch.min(torch.max(x + start, lo), hi)
    broken = torch.zeros(len(y), dtype=torch.bool, device=x.device)
    shape = (-1,) + (1,) * (x.dim() - 1)

    def evaluate(adv):
        adv = adv.detach().requires_grad_(True)
        loss, logits = loss_fn(adv, y, target)
        (grad,) = torch.autograd.grad(loss.sum(), adv)
        return loss.detach(), logits.detach(), grad.detach().clone()

    loss, logits, grad = evaluate(cur)
    broken |= logits.argmax(1) != y
    best_loss, best_x, best_grad = loss.clone(), cur.clone(), grad.clone()
    eta = torch.full((len(y),), 2.0 * eps, device=x.device)
    prev = cur.clone()
    checkpoints = _checkpoints(steps)
    last_check, rises = 0, torch.zeros(len(y), device=x.device)
    eta_at_check, best_at_check = eta.clone(), best_loss.clone()
    for k in range(steps):
        z = torch.min(torch.max(cur + eta.view(shape) * grad.sign(), lo), hi)
        a = 1.0 if k == 0 else MOMENTUM
        nxt = torch.min(torch.max(cur + a * (z - cur) + (1 - a) * (cur - prev), lo), hi)
        prev, cur = cur, nxt
        before = loss
        loss, logits, grad = evaluate(cur)
        broken |= logits.argmax(1) != y
        rises += (loss > before).float()  # a step that raised the loss (APGD's condition 1)
        better = loss > best_loss
        best_loss = torch.where(better, loss, best_loss)
        best_x[better], best_grad[better] = cur[better], grad[better]
        if k + 1 in checkpoints:
            span = k + 1 - last_check
            stalled = (rises < RHO * span) | ((eta == eta_at_check) & (best_loss == best_at_check))
            eta = torch.where(stalled, eta / 2, eta)
            # A halving restarts from the best point found so far.
            cur[stalled], grad[stalled] = best_x[stalled], best_grad[stalled]
            prev[stalled] = cur[stalled]
            last_check, rises = k + 1, torch.zeros_like(rises)
            eta_at_check, best_at_check = eta.clone(), best_loss.clone()
    return broken


def router_apgd_correct(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    loss: str = "margin",
    kappa: float = 1.0,
    targeted: bool = False,
    n_targets: int = 3,
    steps: int = 100,
    restarts: int = 1,
    *,
    seed: int = 0,
    device="cpu",
    batch_size: int = evaluation.DEFAULT_BATCH_SIZE,
    desc: str | None = None,
) -> torch.Tensor:
    """Per image, whether the full network still classifies it correctly after APGD on the
    classification ``loss`` plus ``kappa * log p(clean)`` (see module): ``restarts`` random
    starts, and with ``targeted`` a run toward each of the ``n_targets`` most likely wrong
    classes of the clean image (the margin then toward that class, as APGD-T). An image is
    broken when any iterate of any run misclassifies it; every (batch, target, restart) draws its
    random start from ``seed``."""
    dev = adaptive_attacks._check(model, x, y, eps, steps, restarts, seed, device, batch_size)
    if not hasattr(model, "forward_all"):
        raise ValueError(
            f"router_apgd needs a model with an adversarial router (an AW-Net): "
            f"{type(model).__name__} has none; use autoattack for static models"
        )
    if not kappa >= 0:
        raise ValueError(f"kappa={kappa!r} must be >= 0 (0: no router term)")
    if targeted and n_targets < 1:
        raise ValueError(f"n_targets={n_targets}: a targeted run needs at least one target")
    loss_fn = router_loss(model, loss, float(kappa))
    out = []
    starts = range(0, len(y), batch_size)
    with eval_mode(model):
        for b, i in enumerate(
            progress_log.bar(starts, desc=desc, leave=False, disable=desc is None)
        ):
            xb, yb = x[i : i + batch_size].to(dev), y[i : i + batch_size].to(dev)
            with torch.no_grad():
                clean_logits = model(xb)
            alive = clean_logits.argmax(1) == yb
            targets = [None]
            if targeted:
                ranked = clean_logits.scatter(1, yb[:, None], float("-inf")).argsort(1, True)
                targets = [ranked[:, t] for t in range(min(n_targets, ranked.shape[1] - 1))]
            for t, target in enumerate(targets):
                for r in range(restarts):
                    idx = alive.nonzero().squeeze(1)
                    if idx.numel() == 0:
                        break
                    gen = seeding.generator(seed, "router-apgd", loss, kappa, t, r, b)
                    broken = apgd(
                        loss_fn,
                        xb[idx],
                        yb[idx],
                        float(eps),
                        int(steps),
                        gen,
                        None if target is None else target[idx],
                    )
                    alive[idx[broken]] = False
            out.append(alive.cpu())
    return torch.cat(out)


evaluation.register_attack(
    "router_apgd",
    router_apgd_correct,
    "white-box",
    "APGD on a CE or margin loss + kappa * log p(clean), optionally targeted; best iterate kept",
    loss="margin",
    kappa=1.0,
    targeted=False,
    steps=100,
    restarts=1,
)

__all__ = [
    "LOSSES",
    "MOMENTUM",
    "RHO",
    "apgd",
    "log_p_clean",
    "margin",
    "router_apgd_correct",
    "router_loss",
]
