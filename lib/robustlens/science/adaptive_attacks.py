"""Attacks aimed at what a dynamic, router-gated network could hide behind (Carlini et al. 2019:
attack the defence as built). Each returns, per image, whether the model still classifies it
correctly, like every attack of :mod:`robustlens.science.evaluation`, and is registered there
as a suite column, so the worst case over all attacks is one ``&`` per image.

- ``router_evasion``: PGD on ``CE(f(x'), y) + kappa * log p(clean | x')``: misclassify while
  persuading the type head that the input is clean (the signals and soft MixBN then treat it as
  clean). It runs on the images that plain PGD (same steps, same seed) leaves correct, so it never
  reports a higher accuracy than PGD alone; ``kappa = 0`` is plain PGD through the whole network.
- ``forced_clean`` / ``forced_adv``: PGD on the network with its router forced to one type (every
  MixBN uses that BatchNorm), the examples then scored by the full network: a transfer attack
  from a simpler, non-switching surrogate.
- ``transfer``: PGD on another model (e.g. the book's static robust twin), scored by this one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robustlens.science import evaluation, progress_log, seeding
from robustlens.science.model_modes import eval_mode

ROUTER_ATTACKS = ("router_evasion", "forced_clean", "forced_adv")


def _check(model, x, y, eps, steps, restarts, seed, device, batch_size) -> torch.device:
    dev = evaluation._check_inputs(model, x, y, device, batch_size, seed)
    evaluation._check_eps(eps)
    evaluation._check_positive_int(steps, "steps")
    evaluation._check_positive_int(restarts, "restarts")
    return dev


def _needs_router(model: nn.Module, attack: str) -> None:
    if not hasattr(model, "p_adv") or not hasattr(model, "forced"):
        raise ValueError(
            f"attack {attack!r} needs a model with an adversarial router (an AW-Net): "
            f"{type(model).__name__} has none; use pgd or autoattack for static models"
        )


def _pgd_on(loss_fn, x, y, eps, alpha, steps, generator: torch.Generator) -> torch.Tensor:
    """L-inf PGD ascending ``loss_fn(x_adv, y)`` from a uniform random start."""
    start = (torch.rand(x.shape, generator=generator) * 2 - 1).to(x.device) * eps
    adv = (x + start).clamp(0, 1)
    for _ in range(steps):
        adv.requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_fn(adv, y), adv)
        adv = adv.detach() + alpha * grad.sign()
        adv = (x + (adv - x).clamp(-eps, eps)).clamp(0, 1)
    return adv.detach()


def _run(
    model,
    surrogate_loss,
    x,
    y,
    eps,
    steps,
    alpha,
    restarts,
    seed,
    dev,
    batch_size,
    desc,
    purpose,
    survivors: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per image, correct after every restart of PGD on ``surrogate_loss``; later restarts
    attack only the survivors, each (restart, batch) seeded from ``seed`` and ``purpose``.
    ``survivors`` (per image) restricts the attack to images an earlier attack left correct."""
    alpha = 2.5 * eps / steps if alpha is None else float(alpha)
    out = []
    starts = range(0, len(y), batch_size)
    with eval_mode(model):
        for b, i in enumerate(
            progress_log.bar(starts, desc=desc, leave=False, disable=desc is None)
        ):
            xb, yb = x[i : i + batch_size].to(dev), y[i : i + batch_size].to(dev)
            with torch.no_grad():
                alive = model(xb).argmax(1) == yb
            if survivors is not None:
                alive &= survivors[i : i + batch_size].to(dev)
            for r in range(restarts):
                idx = alive.nonzero().squeeze(1)
                if idx.numel() == 0:
                    break
                gen = seeding.generator(seed, purpose, r, b)
                adv = _pgd_on(surrogate_loss, xb[idx], yb[idx], eps, alpha, steps, gen)
                with torch.no_grad():
                    alive[idx] = model(adv).argmax(1) == yb[idx]
            out.append(alive.cpu())
    return torch.cat(out)


def _evasion_loss(model, kappa: float):
    """CE + kappa * log p(clean | x'), p(clean) averaged over the type heads."""

    def loss(adv, labels):
        logits, routing = model.forward_all(adv)
        p_clean = 1 - torch.stack([F.softmax(t, 1)[:, 1] for t in routing.type_logits]).mean(0)
        return F.cross_entropy(logits, labels) + kappa * torch.log(p_clean + 1e-12).mean()

    return loss


def router_evasion_correct(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    kappa: float = 1.0,
    steps: int = 20,
    alpha: float | None = None,
    restarts: int = 1,
    *,
    seed: int = 0,
    device="cpu",
    batch_size: int = evaluation.DEFAULT_BATCH_SIZE,
    desc: str | None = None,
) -> torch.Tensor:
    """Per image, whether it survives plain PGD and then PGD on ``CE + kappa * log p(clean | x')``
    (see module): never more images than :func:`~robustlens.science.evaluation.pgd_correct` with
    the same ``steps``, ``alpha``, ``restarts`` and ``seed``."""
    dev = _check(model, x, y, eps, steps, restarts, seed, device, batch_size)
    _needs_router(model, "router_evasion")
    if not kappa >= 0:
        raise ValueError(f"kappa={kappa!r} must be >= 0 (0 is plain PGD)")
    step = 2.5 * eps / steps if alpha is None else float(alpha)
    pgd_alive = evaluation._pgd(
        model, x, y, float(eps), int(steps), step, int(restarts), seed, dev, batch_size, None
    )
    if kappa == 0:
        return pgd_alive

    loss = _evasion_loss(model, kappa)

    return _run(
        model,
        loss,
        x,
        y,
        float(eps),
        int(steps),
        alpha,
        int(restarts),
        seed,
        dev,
        batch_size,
        desc,
        f"router-evasion-{kappa}",
        survivors=pgd_alive,
    )


def router_evasion_examples(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    kappa: float = 1.0,
    steps: int = 20,
    seed: int = 0,
    batch_size: int = evaluation.DEFAULT_BATCH_SIZE,
) -> torch.Tensor:
    """The router-evasion examples of every image (returned on the CPU), to look at what the
    router says about them; ``kappa = 0`` gives plain PGD through the whole network. Unlike
    :func:`router_evasion_correct` they are made for every image, not only PGD's survivors."""
    device = next(model.parameters()).device
    dev = _check(model, x, y, eps, steps, 1, seed, device, batch_size)
    _needs_router(model, "router_evasion")
    loss = _evasion_loss(model, kappa)
    out = []
    with eval_mode(model):
        for b, i in enumerate(range(0, len(y), batch_size)):
            gen = seeding.generator(seed, f"router-evasion-{kappa}", 0, b)
            xb, yb = x[i : i + batch_size].to(dev), y[i : i + batch_size].to(dev)
            out.append(_pgd_on(loss, xb, yb, eps, 2.5 * eps / steps, steps, gen).cpu())
    return torch.cat(out)


def _forced_correct(kind: int, name: str):
    def forced_correct(
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        eps: float,
        steps: int = 20,
        alpha: float | None = None,
        restarts: int = 1,
        *,
        seed: int = 0,
        device="cpu",
        batch_size: int = evaluation.DEFAULT_BATCH_SIZE,
        desc: str | None = None,
    ) -> torch.Tensor:
        dev = _check(model, x, y, eps, steps, restarts, seed, device, batch_size)
        _needs_router(model, name)

        def loss(adv, labels):
            with model.forced(kind):
                return F.cross_entropy(model(adv), labels)

        return _run(
            model,
            loss,
            x,
            y,
            float(eps),
            int(steps),
            alpha,
            int(restarts),
            seed,
            dev,
            batch_size,
            desc,
            name,
        )

    forced_correct.__name__ = f"{name}_correct"
    forced_correct.__doc__ = (
        f"Per image, whether it survives PGD crafted with every MixBN forced to the "
        f"{'clean' if kind == 0 else 'adversarial'} BatchNorm, scored by the full network."
    )
    return forced_correct


forced_clean_correct = _forced_correct(0, "forced_clean")
forced_adv_correct = _forced_correct(1, "forced_adv")


def transfer_correct(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    source: nn.Module | None = None,
    steps: int = 20,
    alpha: float | None = None,
    restarts: int = 1,
    *,
    seed: int = 0,
    device="cpu",
    batch_size: int = evaluation.DEFAULT_BATCH_SIZE,
    desc: str | None = None,
) -> torch.Tensor:
    """Per image, whether it survives PGD crafted on ``source`` (another model), scored by
    ``model``."""
    if source is None:
        raise ValueError("transfer needs source=<the model to craft the examples on>")
    dev = _check(model, x, y, eps, steps, restarts, seed, device, batch_size)
    evaluation._check_inputs(source, x, y, device, batch_size, seed)

    def loss(adv, labels):
        return F.cross_entropy(source(adv), labels)

    with eval_mode(source):
        return _run(
            model,
            loss,
            x,
            y,
            float(eps),
            int(steps),
            alpha,
            int(restarts),
            seed,
            dev,
            batch_size,
            desc,
            "transfer",
        )


evaluation.register_attack(
    "router_evasion",
    router_evasion_correct,
    "white-box",
    "PGD on CE + kappa * log p(clean): evade the router while misclassifying",
    kappa=1.0,
    steps=20,
)
evaluation.register_attack(
    "forced_clean",
    forced_clean_correct,
    "white-box",
    "PGD with the router forced to 'clean', transferred to the full network",
    steps=20,
)
evaluation.register_attack(
    "forced_adv",
    forced_adv_correct,
    "white-box",
    "PGD with the router forced to 'adversarial', transferred to the full network",
    steps=20,
)
evaluation.register_attack(
    "transfer",
    transfer_correct,
    "white-box",
    "PGD crafted on another model (give source=), scored by this one",
    steps=20,
)
