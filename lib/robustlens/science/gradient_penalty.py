"""Input gradients and the input-gradient penalty CE + lam * ||grad_x CE||, trained by double backprop.

The ``gradpen`` recipe of :mod:`robustlens.science.training` trains with
:func:`gradient_penalty_loss`; chapter 04 uses :func:`input_gradient` and
:func:`input_gradient_norms` to check the first-order theory (:mod:`robustlens.science.theory`).

An *input gradient* is always per sample: row i is the gradient of sample i's own loss with
respect to x_i, never the gradient of a batch mean (which would be 1/N times smaller). This holds
when samples do not interact inside the model, i.e. no BatchNorm in training mode; with
train-mode BatchNorm row i is d(sum of losses)/d x_i, which includes cross-sample terms.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

PENALTY_NORMS = ("l1", "l2sq")


def check_penalty_norm(norm: str) -> None:
    if norm not in PENALTY_NORMS:
        raise ValueError(f"unknown penalty norm {norm!r}: choose one of {', '.join(PENALTY_NORMS)}")


def check_batch(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.dim() < 2 or y.dim() != 1 or len(x) != len(y):
        raise ValueError(
            f"need x of shape (N, ...) and y of shape (N,), got {tuple(x.shape)} "
            f"and {tuple(y.shape)}"
        )


def _norm_order(p) -> float:
    try:
        order = float(p)  # also parses "inf"
    except (TypeError, ValueError):
        order = None
    if order not in (1.0, 2.0, math.inf):
        raise ValueError(f"p={p!r}: choose 1, 2 or inf")
    return order


def loss_and_input_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor, create_graph: bool):
    """(logits, per-sample CE, per-sample input gradient)."""
    check_batch(x, y)
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        losses = F.cross_entropy(logits, y, reduction="none")
        # Differentiating the *sum* is what makes each row per-sample: loss j does not depend on
        # x_i for j != i, so row i of grad_x sum_j l_j is grad l_i.  The batch mean would scale
        # every row by 1/N and make the penalty depend on the batch size.
        (grad,) = torch.autograd.grad(losses.sum(), x, create_graph=create_graph)
    return logits, losses, grad


def input_gradient(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, create_graph: bool = False
) -> torch.Tensor:
    """Per-sample input gradients of the cross-entropy, shaped like ``x``.

    Row i is grad_x of CE(model(x_i), y_i) (see the module docstring for the BatchNorm caveat).
    With ``create_graph=True`` the result can itself be differentiated w.r.t. the parameters.
    """
    return loss_and_input_grad(model, x, y, create_graph)[2]


def input_gradient_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor, p=1) -> torch.Tensor:
    """Per-sample ||grad_x CE||_p for p in {1, 2, inf}, as a detached tensor of shape (N,).

    p = 1 is the one that matters for L-inf attacks: it is the dual norm, so eps * ||g||_1 is the
    largest first-order loss increase in the eps-ball.
    """
    order = _norm_order(p)
    grad = input_gradient(model, x, y)
    return torch.linalg.vector_norm(grad.flatten(1), ord=order, dim=1).detach()


def _penalty_per_sample(grad: torch.Tensor, norm: str) -> torch.Tensor:
    flat = grad.flatten(1)
    return flat.abs().sum(1) if norm == "l1" else flat.pow(2).sum(1)


def input_gradient_penalty(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, norm: str = "l1", create_graph: bool = True
) -> torch.Tensor:
    """Batch mean of ||grad_x l(x_i)||_1 (``norm="l1"``) or ||grad_x l(x_i)||_2^2 (``"l2sq"``).

    l is the per-sample cross-entropy.  "l1" is the first-order excess loss of an L-inf attack
    per unit eps (the regulariser of the first-order argument; our reading of [WZ]'s abstract); "l2sq" is classic double backpropagation.  With
    ``create_graph=True`` (default) the scalar is differentiable w.r.t. the parameters.
    """
    check_penalty_norm(norm)
    grad = input_gradient(model, x, y, create_graph=create_graph)
    return _penalty_per_sample(grad, norm).mean()


def gradient_penalty_loss(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, lam: float, norm: str = "l1"
) -> torch.Tensor:
    """Mean CE + lam * input_gradient_penalty, from one forward pass, ready for ``.backward()``.

    With ``norm="l1"`` and ``lam=eps`` this is the first-order Taylor model of the L-inf
    adversarial loss (ignoring the clip to [0, 1]).
    """
    check_penalty_norm(norm)
    if not (math.isfinite(lam) and lam >= 0):
        raise ValueError(f"lam={lam!r}: need a finite lam >= 0")
    if lam == 0:  # no need for the double-backprop graph
        check_batch(x, y)
        return F.cross_entropy(model(x), y)
    _, losses, grad = loss_and_input_grad(model, x, y, create_graph=True)
    return losses.mean() + lam * _penalty_per_sample(grad, norm).mean()
