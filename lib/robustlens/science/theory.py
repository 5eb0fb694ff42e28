"""Checks of the claim that adversarial training is, to first order, input-gradient regularisation.

Three groups of tools:

* input gradients and the penalised loss CE + lam * ||grad_x CE|| live in
  :mod:`robustlens.science.gradient_penalty` (a training recipe); this module uses them;
* how well the first-order expansion L(x + delta) ~ L(x) + grad_x L(x) . delta predicts the loss
  increase that PGD actually finds;
* layer-wise operator norms, and the Lipschitz upper bound on the logits that they give (conv
  norms certified from above through the exact norm of a circular convolution).

Conventions used throughout:

* inputs live in [0, 1] and the loss is the cross-entropy;
* an *input gradient* is always per sample: row i is the gradient of sample i's own loss with
  respect to x_i, never the gradient of a batch mean (which would be 1/N times smaller).  This
  holds when samples do not interact inside the model, i.e. no BatchNorm in training mode; with
  train-mode BatchNorm row i is d(sum of losses)/d x_i, which includes cross-sample terms;
* norms of tensors are taken over all non-batch dimensions, flattened.
"""

from __future__ import annotations

import math
import operator
from typing import Callable, Iterable, NamedTuple

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair

from robustlens.science import evidence
from robustlens.science.attacks import check_eps, pgd
from robustlens.science.gradient_penalty import check_batch, loss_and_input_grad
from robustlens.science.model_modes import eval_mode

# --------------------------------------------------------------------------------------------
# validation and small helpers
# --------------------------------------------------------------------------------------------


def _check_iters(iters: int) -> None:
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise ValueError(f"iters={iters!r}: need an integer >= 1")


def _check_tol(tol: float) -> None:
    if not tol >= 0:
        raise ValueError(f"tol={tol!r}: need tol >= 0")


def _check_steps(steps: int) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r}: need an integer >= 1")


def _check_unit_box(x: torch.Tensor) -> None:
    # The box-aware prediction and torchattacks both assume images in [0, 1].
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError("inputs must lie in [0, 1]")


def _model_dtype_device(model: nn.Module) -> tuple[torch.dtype, torch.device]:
    p = next(model.parameters(), None)
    return (
        (p.dtype, p.device) if p is not None else (torch.get_default_dtype(), torch.device("cpu"))
    )


# --------------------------------------------------------------------------------------------
# 1. how tight is the first-order prediction of the PGD loss increase?
# --------------------------------------------------------------------------------------------


def first_order_box_prediction(grad: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Per-sample max of grad . delta over the eps-ball intersected with the box x + delta in [0, 1].

    The feasible set is a product of intervals [-min(eps, x_i), min(eps, 1 - x_i)], so the linear
    model is maximised coordinate-wise: move up where g_i > 0, down where g_i < 0, as far as the
    ball and the box allow.  Equals eps * ||g||_1 when every pixel is at least eps from 0 and 1.
    """
    check_eps(eps)
    _check_unit_box(x)
    room_up = torch.clamp(1 - x, max=eps)
    room_down = torch.clamp(x, max=eps)
    gain = grad.clamp(min=0) * room_up + (-grad).clamp(min=0) * room_down
    return gain.flatten(1).sum(1)


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    # A zero prediction (saturated softmax, zero gradient) has no meaningful ratio: NaN, not inf.
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _clean_terms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    logits, losses, grad = loss_and_input_grad(model, x, y, create_graph=False)
    return {
        "loss": losses.detach(),
        "grad": grad.detach(),
        "correct": (logits.argmax(1) == y).detach(),
    }


def _tightness_table(model, x, y, eps, steps, alpha, random_start, clean) -> pd.DataFrame:
    adv = pgd(model, x, y, eps, alpha, steps, random_start=random_start)
    with torch.no_grad():
        adv_logits = model(adv)
        adv_loss = F.cross_entropy(adv_logits, y, reduction="none")
    grad = clean["grad"]
    grad_l1 = grad.flatten(1).abs().sum(1)
    to_np = lambda t: t.detach().double().cpu().numpy()  # noqa: E731
    increase = to_np(adv_loss - clean["loss"])
    pred_linf = eps * to_np(grad_l1)
    pred_box = to_np(first_order_box_prediction(grad, x, eps))
    return pd.DataFrame(
        {
            "eps": eps,
            "sample": np.arange(len(y)),
            "label": y.cpu().numpy(),
            "clean_correct": clean["correct"].cpu().numpy(),
            "pgd_correct": (adv_logits.argmax(1) == y).cpu().numpy(),
            "clean_loss": to_np(clean["loss"]),
            "pgd_loss": to_np(adv_loss),
            "loss_increase": increase,
            "grad_l1": to_np(grad_l1),
            "pred_linf": pred_linf,
            "pred_box": pred_box,
            "ratio_linf": _safe_ratio(increase, pred_linf),
            "ratio_box": _safe_ratio(increase, pred_box),
        }
    )


def _check_tightness_args(x, y, steps, alpha) -> None:
    check_batch(x, y)
    _check_unit_box(x)
    _check_steps(steps)
    if alpha is not None and not alpha > 0:
        raise ValueError(f"alpha={alpha!r}: need alpha > 0")


def first_order_tightness(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int,
    alpha: float | None = None,
    random_start: bool = True,
) -> pd.DataFrame:
    """One row per sample: how much PGD raises the loss vs. what the linearisation predicts.

    Columns: ``eps``, ``sample``, ``label``, ``clean_correct``, ``pgd_correct``, ``clean_loss``
    L(x), ``pgd_loss`` L(x + delta_PGD) (L-inf PGD via ``robustlens.science.attacks.pgd``),
    ``loss_increase``, ``grad_l1`` ||grad_x L(x)||_1, and two first-order predictions with their
    ratios ``ratio_* = loss_increase / pred_*`` (NaN where the prediction is 0):

    * ``pred_linf`` = eps * ||grad_x L(x)||_1, the linear model's maximum over the eps-ball,
      ignoring that PGD clips to [0, 1] -- the quantity in the first-order argument [WZ] make;
    * ``pred_box``, the linear model's exact maximum over the ball intersected with the box
      (:func:`first_order_box_prediction`), which is what PGD can actually reach; always
      <= ``pred_linf``, so ``ratio_box`` is the fairer tightness measure.

    The model is evaluated in eval mode; alpha defaults to 2.5 * eps / steps (as
    ``attacks.evaluate``).  Seed torch's RNG for a reproducible random start.
    """
    check_eps(eps)
    _check_tightness_args(x, y, steps, alpha)
    alpha = 2.5 * eps / steps if alpha is None else alpha
    with eval_mode(model):
        clean = _clean_terms(model, x, y)
        return _tightness_table(model, x, y, eps, steps, alpha, random_start, clean)


def first_order_sweep(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps_values: Iterable[float],
    steps: int,
    alpha_scale: float = 2.5,
    random_start: bool = True,
) -> pd.DataFrame:
    """:func:`first_order_tightness` for each eps, stacked into one long table (``eps`` column).

    The step size scales with the budget, alpha = alpha_scale * eps / steps, so every eps gets an
    equally strong attack.  The clean loss and gradient are computed once and shared.
    """
    eps_values = [float(e) for e in eps_values]
    if not eps_values:
        raise ValueError("eps_values is empty")
    for eps in eps_values:
        check_eps(eps)
    if not alpha_scale > 0:
        raise ValueError(f"alpha_scale={alpha_scale!r}: need alpha_scale > 0")
    _check_tightness_args(x, y, steps, None)
    with eval_mode(model):
        clean = _clean_terms(model, x, y)
        tables = [
            _tightness_table(
                model, x, y, eps, steps, alpha_scale * eps / steps, random_start, clean
            )
            for eps in eps_values
        ]
    return pd.concat(tables, ignore_index=True)


def summarize_tightness(table: pd.DataFrame) -> pd.DataFrame:
    """One row per eps: how well each first-order prediction tracks the PGD loss increase.

    Columns: ``eps``, ``n``, ``mean_loss_increase``, and for kind in (linf, box):
    ``pearson_<kind>`` and ``spearman_<kind>`` (correlation across samples between
    ``loss_increase`` and ``pred_<kind>``) and ``median_ratio_<kind>`` (NaN ratios skipped).
    """
    needed = {"eps", "loss_increase", "pred_linf", "pred_box", "ratio_linf", "ratio_box"}
    missing = needed - set(table.columns)
    if missing:
        raise ValueError(f"not a first-order tightness table: missing {sorted(missing)}")
    rows = []
    for eps, group in table.groupby("eps", sort=True):
        row = {"eps": eps, "n": len(group), "mean_loss_increase": group["loss_increase"].mean()}
        for kind in ("linf", "box"):
            pred = group[f"pred_{kind}"]
            row[f"pearson_{kind}"] = group["loss_increase"].corr(pred)
            row[f"spearman_{kind}"] = evidence.spearman(group["loss_increase"], pred)
            row[f"median_ratio_{kind}"] = group[f"ratio_{kind}"].median()
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# 2. operator norms and the Lipschitz bound on the logits
# --------------------------------------------------------------------------------------------


def _power_iteration(
    forward: Callable,
    adjoint: Callable,
    shape: tuple,
    iters: int,
    tol: float,
    seed: int,
    dtype: torch.dtype,
    device,
) -> float:
    """Largest singular value of a linear map given as (forward, adjoint) callables.

    Iterates v <- A^T A v / ||A^T A v||.  For unit v, sqrt(||A^T A v||) lies between the Rayleigh
    quotient ||A v|| and sigma_max, so the estimate approaches sigma_max from below.
    """
    gen = torch.Generator(device="cpu").manual_seed(seed)
    v = torch.randn(shape, generator=gen, dtype=dtype).to(device)
    v = v / v.norm()
    sigma = 0.0
    for _ in range(iters):
        w = adjoint(forward(v))
        w_norm = float(w.norm())
        if w_norm == 0.0:  # v is in the null space; with a random start this means A = 0
            return 0.0
        new_sigma = math.sqrt(w_norm)
        v = w / w_norm
        converged = abs(new_sigma - sigma) <= tol * new_sigma
        sigma = new_sigma
        if converged:
            break
    return sigma


def _conv_padding(conv: nn.Conv2d) -> tuple[tuple[int, int], tuple[int, int]]:
    """(before, after) zero padding per spatial dim, as the conv applies it."""
    if conv.padding == "valid":
        return ((0, 0), (0, 0))
    if conv.padding == "same":
        # Odd total padding: PyTorch puts the extra zero after (bottom / right).
        totals = [d * (k - 1) for k, d in zip(conv.kernel_size, conv.dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    return tuple((p, p) for p in conv.padding)


def _check_conv(conv: nn.Conv2d, input_shape, padding_modes: tuple[str, ...]) -> None:
    if not isinstance(conv, nn.Conv2d):
        raise ValueError(f"expected nn.Conv2d, got {type(conv).__name__}")
    if conv.padding_mode not in padding_modes:
        raise ValueError(
            f"padding_mode={conv.padding_mode!r} is not supported "
            f"({' or '.join(padding_modes)} only)"
        )
    if len(input_shape) != 3 or input_shape[0] != conv.in_channels:
        raise ValueError(
            f"input_shape={tuple(input_shape)} must be (C, H, W) with C = {conv.in_channels}"
        )


def _conv_maps(conv: nn.Conv2d, input_shape) -> tuple[Callable, Callable]:
    """The conv without bias as a linear map on (1, C, H, W) tensors, and its exact adjoint.

    Padding is applied explicitly with F.pad, so a single code path covers symmetric, 'valid' and
    asymmetric 'same' padding: the adjoint is conv_transpose2d without padding, cropped back to the
    input window.  ``output_padding`` restores the rows/columns that a stride > 1 skips at the end
    (the floor in the output-size formula); without it the adjoint's output would be too small.
    """
    _check_conv(conv, input_shape, ("zeros",))
    _, h, w = input_shape
    weight = conv.weight.detach().to(torch.float64)
    (top, bottom), (left, right) = _conv_padding(conv)
    padded = (h + top + bottom, w + left + right)
    out_size, out_pad = [], []
    for n, k, s, d in zip(padded, conv.kernel_size, conv.stride, conv.dilation):
        span = d * (k - 1) + 1
        if n < span:
            raise ValueError(f"input_shape={tuple(input_shape)} is smaller than the conv's kernel")
        out_size.append((n - span) // s + 1)
        out_pad.append(n - ((out_size[-1] - 1) * s + span))
    opts = dict(stride=conv.stride, dilation=conv.dilation, groups=conv.groups)

    def forward(v):
        return F.conv2d(F.pad(v, (left, right, top, bottom)), weight, **opts)

    def adjoint(u):
        full = F.conv_transpose2d(u, weight, output_padding=tuple(out_pad), **opts)
        return full[..., top : top + h, left : left + w]

    return forward, adjoint


def conv_operator_norm(
    conv: nn.Conv2d, input_shape, iters: int = 50, tol: float = 1e-6, seed: int = 0
) -> float:
    """Spectral norm of ``conv`` (bias ignored) as a linear map on inputs of shape (C, H, W).

    Power iteration with F.conv2d and its adjoint F.conv_transpose2d, in float64; honours stride,
    padding (zeros, including 'same'), dilation and groups.  The norm depends on H and W through
    the boundary, hence ``input_shape``.  Stops after ``iters`` steps or when the relative change
    falls below ``tol``; the estimate approaches the true norm from below, so it is an estimate,
    not a bound: :func:`conv_operator_norm_upper` gives a certified upper bound.
    """
    _check_iters(iters)
    _check_tol(tol)
    forward, adjoint = _conv_maps(conv, input_shape)
    return _power_iteration(
        forward, adjoint, (1, *input_shape), iters, tol, seed, torch.float64, conv.weight.device
    )


# Kernel transforms are evaluated in chunks of frequencies of about this many bytes (complex128),
# so that 512 x 512 channels on a 34 x 34 grid need a few hundred MiB, not several GiB.
_FFT_CHUNK_BYTES = 1 << 27


def _int_pair(value, name: str) -> tuple[int, int]:
    pair = _pair(value)
    if len(pair) != 2 or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in pair
    ):
        raise ValueError(f"{name}={value!r}: need one or two integers >= 1")
    return pair


def _tap_phases(n: int, dilation: int, k: int, freqs: torch.Tensor, device) -> torch.Tensor:
    """exp(-2 pi i f (dilation * a) / n) for every frequency f and tap a = 0..k-1, shape (F, k)."""
    taps = torch.arange(k, device=device) * dilation
    # Reduce f * tap modulo n in integers first, so the angle is exact before the float multiply.
    residues = torch.remainder(freqs.to(device)[:, None] * taps[None, :], n).to(torch.float64)
    angle = residues * (-2 * math.pi / n)
    return torch.polar(torch.ones_like(angle), angle)


def circular_conv_operator_norm(
    weight: torch.Tensor, grid, stride=1, dilation=1, groups: int = 1
) -> float:
    """Exact spectral norm of the circular (periodic) conv with ``weight`` on an N1 x N2 grid.

    The map sends x of shape (C_in, N1, N2) to y of shape (C_out, N1 / s1, N2 / s2) with

        y[o, i, j] = sum_{c, a, b} W[o, c, a, b] * x[c, (s1 i + d1 a) mod N1, (s2 j + d2 b) mod N2]

    (cross-correlation, as F.conv2d; c runs over the input channels of o's group), where
    ``stride`` = (s1, s2) must divide ``grid`` = (N1, N2) and ``dilation`` = (d1, d2).

    Stride 1 (Sedghi, Gupta & Long, "The Singular Values of Convolutional Layers", ICLR 2019):
    the 2-D DFT block-diagonalises the map, and its singular values are those of the C_out x C_in
    matrices K(u, v) = sum_{a, b} W[:, :, a, b] exp(-2 pi i (u d1 a / N1 + v d2 b / N2)) over all
    N1 N2 frequencies, so the norm is the largest singular value of any K(u, v).
    Stride s: keeping every s-th output aliases the frequencies u0 + p N1 / s1 onto u0; in the
    (unitary) DFT bases the map is still block diagonal, with one C_out x (s1 s2 C_in) block
    [K(u0 + p N1/s1, v0 + q N2/s2)]_{p, q} / sqrt(s1 s2) per output frequency (u0, v0).  Real
    weights give K(-u, -v) = conj K(u, v), so only half of the (u0, v0) are evaluated; groups make
    the map block diagonal over groups, so the norm is the largest over groups as well.

    Computed in float64 (complex128), batched over frequencies with torch.linalg.matrix_norm
    (ord=2), the kernel transform evaluated directly at the kernel's taps in chunks of
    frequencies (the same numbers as torch.fft.fft2 of the kernel zero-padded to the grid, without
    materialising all C_out x C_in x N1 x N2 of them at once).
    """
    w = weight.detach()
    if w.dim() != 4 or w.is_complex():
        raise ValueError(
            f"weight of shape {tuple(w.shape)}: need a real tensor of shape "
            "(C_out, C_in / groups, kh, kw)"
        )
    (n1, n2), (s1, s2) = _int_pair(grid, "grid"), _int_pair(stride, "stride")
    d1, d2 = _int_pair(dilation, "dilation")
    cout, cin_g, kh, kw = w.shape
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or cout % groups:
        raise ValueError(f"groups={groups!r}: need an integer >= 1 that divides C_out = {cout}")
    if n1 % s1 or n2 % s2:
        raise ValueError(f"grid={(n1, n2)} must be divisible by the stride {(s1, s2)}")
    if w.numel() == 0:
        return 0.0
    cout_g, device = cout // groups, w.device
    w = w.to(torch.complex128).reshape(groups, cout_g, cin_g, kh, kw)
    m1, m2 = n1 // s1, n2 // s2  # the output grid
    nv0 = m2 // 2 + 1  # v0 in [0, m2 // 2]; the rest are conjugates
    v = (torch.arange(s2)[:, None] * m2 + torch.arange(nv0)[None, :]).reshape(-1)  # q-major
    phase2 = _tap_phases(n2, d2, kw, v, device)
    row_bytes = 16 * groups * cout_g * cin_g * s1 * s2 * nv0
    rows = max(1, _FFT_CHUNK_BYTES // row_bytes)
    best = 0.0
    for start in range(0, m1, rows):
        u0 = torch.arange(start, min(start + rows, m1))
        u = (u0[:, None] + torch.arange(s1)[None, :] * m1).reshape(-1)  # u0-major, then p
        phase1 = _tap_phases(n1, d1, kh, u, device)
        khat = torch.einsum("gocab,xa,yb->gxyoc", w, phase1, phase2)
        khat = khat.reshape(groups, len(u0), s1, s2, nv0, cout_g, cin_g)
        # One block per (group, u0, v0): rows are output channels, columns (p, q, input channel).
        blocks = khat.permute(0, 1, 4, 5, 2, 3, 6).reshape(-1, cout_g, s1 * s2 * cin_g)
        best = max(best, float(torch.linalg.matrix_norm(blocks, ord=2).max()))
    return best / math.sqrt(s1 * s2)


def _circular_grid(conv: nn.Conv2d, input_shape) -> tuple[tuple, tuple, int]:
    """(grid, stride, multiplicity) with ||conv|| <= sqrt(multiplicity) * ||circular conv||."""
    grid, stride, multiplicity = [], [], 1
    for n, (before, after), k, s, d in zip(
        input_shape[1:], _conv_padding(conv), conv.kernel_size, conv.stride, conv.dilation
    ):
        span, padded = d * (k - 1) + 1, n + before + after
        if padded < span:
            raise ValueError(f"input_shape={tuple(input_shape)} is smaller than the conv's kernel")
        out = (padded - span) // s + 1
        if conv.padding_mode == "zeros":
            # No wrap-around: inputs sit at [before, before + n) and every tap index past the grid
            # wraps onto [0, before), which is zero; outputs 0, s, ..., s (out - 1) are distinct.
            size = max(n + max(before, after), padded - span + 1)
            grid.append(-(-size // s) * s)
            stride.append(s)
        elif n % s == 0:  # circular padding: output i reads the periodic conv at (s i - before)
            grid.append(n)
            stride.append(s)
            multiplicity *= -(-out // (n // s))  # rows repeat once out exceeds n / s
        else:
            grid.append(n)
            stride.append(1)
            hits: dict[int, int] = {}
            for i in range(out):
                hits[(s * i - before) % n] = hits.get((s * i - before) % n, 0) + 1
            multiplicity *= max(hits.values())
    return tuple(grid), tuple(stride), multiplicity


def conv_operator_norm_upper(conv: nn.Conv2d, input_shape) -> float:
    """Certified upper bound on the spectral norm of ``conv`` (bias ignored) on (C, H, W) inputs.

    Honours stride, padding (including asymmetric 'same'), dilation and groups, for
    ``padding_mode`` 'zeros' and 'circular'.  The bound is the exact norm of a circular
    convolution (:func:`circular_conv_operator_norm`, after Sedghi, Gupta & Long, ICLR 2019) of
    which the conv is a compression, so it holds up to float64 rounding -- unlike power iteration
    (:func:`conv_operator_norm`), which approaches the norm from below.

    Why it is an upper bound (zero padding).  Per spatial dim let the input have n entries, padding
    t before and b after, kernel k, dilation d (span d (k - 1) + 1) and stride s.  Take a periodic
    grid of N >= n + max(t, b) points, with N > n + t + b - span and N a multiple of s, and place
    the input at positions [t, t + n) with zeros elsewhere: this embedding E is an isometry.  The
    conv's output i reads the padded input at s i + d a <= n + t + b - 1; read on the periodic
    grid, such an index either lies in [0, N), where the grid holds exactly the padded input, or
    wraps to an index below t, where both the grid and the padded input hold zeros (indices >= N
    >= n + t are padding).  So the conv's output equals the strided circular conv C on the first
    ``out`` of its N / s output positions, which are distinct: conv = P C E with P a coordinate
    restriction (a crop, ||P|| <= 1) and ||E|| = 1, hence ||conv|| <= ||C||.  The grid is the
    smallest such N (a 1x1 conv without padding gets N = n and the bound is exact, as is any
    circular conv whose output covers its grid once); the gap elsewhere is the boundary effect of
    zero padding, which vanishes as H, W grow.

    Circular padding: output i reads the periodic conv of the input on its own n-point grid at
    position (s i - t) mod n, so conv = P C S with S a cyclic shift and P a selection that repeats
    a row at most m times (m = 1 when the output fits the grid once), and ||conv|| <= sqrt(m) ||C||.
    """
    _check_conv(conv, input_shape, ("zeros", "circular"))
    grid, stride, multiplicity = _circular_grid(conv, input_shape)
    norm = circular_conv_operator_norm(conv.weight, grid, stride, conv.dilation, conv.groups)
    return math.sqrt(multiplicity) * norm


def linear_operator_norm(linear: nn.Linear) -> float:
    """Exact spectral norm (largest singular value) of the weight of ``linear``; bias ignored."""
    return float(torch.linalg.matrix_norm(linear.weight.detach().to(torch.float64), ord=2))


def batchnorm_operator_norm(bn: nn.modules.batchnorm._BatchNorm) -> float:
    """Operator norm of an eval-mode BatchNorm: max over channels of ``|gamma| / sqrt(var + eps)``.

    In eval mode BatchNorm is an affine map whose linear part is diagonal (one scale per channel),
    so its spectral norm is the largest ``|scale|``.  Uses the running variance; a BatchNorm without
    running statistics normalises by batch statistics even in eval mode and has no such norm.
    """
    if bn.running_var is None:
        raise ValueError("BatchNorm without running statistics is not a fixed map")
    scale = torch.rsqrt(bn.running_var.detach().double() + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.detach().double()
    return float(scale.abs().max())


def _avg_pool_norm(pool: nn.Module, input_shape) -> float:
    """Schur-test bound sqrt(max row sum * max column sum) for an average pool.

    Average pooling is linear with non-negative weights, so pooling a tensor of ones gives the row
    sums and back-propagating ones gives the column sums.  The bound is exact for non-overlapping
    pools and for global pooling (adaptive 1x1 over H x W gives 1 / sqrt(H W)); for overlapping
    windows it is an upper bound.  Pools act per channel, so one channel suffices.
    """
    ones = torch.ones((1, 1, *input_shape[-2:]), dtype=torch.float64, requires_grad=True)
    with torch.enable_grad():
        out = pool(ones)
        (col_sums,) = torch.autograd.grad(out.sum(), ones)
    return math.sqrt(float(out.detach().max()) * float(col_sums.max()))


def _max_pool_lipschitz(pool: nn.MaxPool2d) -> float:
    """sqrt(most windows any one pixel belongs to): the L2 Lipschitz constant bound of a max pool.

    |max(a) - max(b)| <= max|a - b|, so each output moves at most by the perturbation's norm on its
    window; summing the squares counts a pixel once per window that contains it.  Non-overlapping
    pools (kernel <= stride) give 1; a 3x3 stride-1 pool gives 3, and that is attained.
    """
    count = 1
    for k, s, d in zip(
        _pair(pool.kernel_size), _pair(pool.stride or pool.kernel_size), _pair(pool.dilation)
    ):
        count *= min(k, math.ceil((d * (k - 1) + 1) / s))
    return math.sqrt(count)


# Element-wise maps: their Lipschitz constant is the sup of |derivative|.
_ACTIVATIONS: dict[type, Callable[[nn.Module], float]] = {
    nn.ReLU: lambda m: 1.0,
    nn.ReLU6: lambda m: 1.0,
    nn.Tanh: lambda m: 1.0,
    nn.Softplus: lambda m: 1.0,
    nn.Hardtanh: lambda m: 1.0,
    nn.Sigmoid: lambda m: 0.25,
    nn.LeakyReLU: lambda m: max(1.0, abs(m.negative_slope)),
    nn.Identity: lambda m: 1.0,
    nn.Flatten: lambda m: 1.0,
    nn.Dropout: lambda m: 1.0,  # identity in eval mode
}


CONV_NORMS = ("certified", "power")
_CONV_METHODS = {
    "certified": "circular-FFT upper bound",
    "power": "power iteration (estimate from below)",
}


def _check_conv_norm(conv_norm: str) -> None:
    if conv_norm not in CONV_NORMS:
        raise ValueError(f"unknown conv_norm {conv_norm!r}: choose one of {', '.join(CONV_NORMS)}")


def _layer_lipschitz(
    module: nn.Module, input_shape, iters: int, tol: float, conv_norm: str = "certified"
) -> tuple[float, str]:
    """(Lipschitz bound of the layer's linear part / the layer, how it was obtained)."""
    if isinstance(module, nn.Conv2d):
        if conv_norm == "certified":
            value = conv_operator_norm_upper(module, input_shape)
        else:
            value = conv_operator_norm(module, input_shape, iters, tol)
        return value, _CONV_METHODS[conv_norm]
    if isinstance(module, nn.Linear):
        return linear_operator_norm(module), "exact spectral norm"
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return batchnorm_operator_norm(module), "max |gamma|/sqrt(running_var+eps)"
    if isinstance(module, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
        return _avg_pool_norm(module, input_shape), "Schur test (exact if non-overlapping)"
    if isinstance(module, nn.MaxPool2d):
        return _max_pool_lipschitz(module), "sqrt(max windows per pixel)"
    for kind, rule in _ACTIVATIONS.items():
        if type(module) is kind:
            return rule(module), "sup |derivative|"
    raise ValueError(f"no Lipschitz rule for layer type {type(module).__name__}")


def _layer_norms(iters: int, tol: float, conv_norm: str) -> Callable:
    """layer_norm(module, input_shape) -> (value, method), computed once per module and shape.

    The cache lives as long as the returned function, i.e. one call of the public functions, so
    a model whose weights change between calls is never served stale norms.
    """
    _check_iters(iters)
    _check_tol(tol)
    _check_conv_norm(conv_norm)
    cache: dict = {}

    def layer_norm(module: nn.Module, input_shape) -> tuple[float, str]:
        key = (id(module), tuple(input_shape))
        if key not in cache:
            # Keep the module referenced, so its id cannot be reused within this call.
            cache[key] = (module, _layer_lipschitz(module, input_shape, iters, tol, conv_norm))
        return cache[key][1]

    return layer_norm


def _record_layer_calls(model: nn.Module, input_shape) -> list[tuple[str, nn.Module, tuple]]:
    """(name, module, input shape without batch) for every leaf-module call, in forward order."""
    calls, handles = [], []
    for name, module in model.named_modules():
        # Empty containers (e.g. an identity shortcut nn.Sequential()) are not layers.
        if next(module.children(), None) is not None or isinstance(module, nn.Sequential):
            continue
        hook = (
            lambda n, m: lambda _m, inputs, _out: calls.append((n, m, tuple(inputs[0].shape[1:])))
        )(name, module)
        handles.append(module.register_forward_hook(hook))
    dtype, device = _model_dtype_device(model)
    try:
        with eval_mode(model), torch.no_grad():
            model(torch.zeros((1, *input_shape), dtype=dtype, device=device))
    finally:
        for handle in handles:
            handle.remove()
    return calls


def _layer_table(
    model: nn.Module, input_shape, layer_norm: Callable, conv_norm: str
) -> pd.DataFrame:
    rows = []
    for order, (name, module, shape) in enumerate(_record_layer_calls(model, input_shape)):
        value, method = layer_norm(module, shape)
        rows.append(
            {
                "order": order,
                "layer": name,
                "kind": type(module).__name__,
                "input_shape": shape,
                "op_norm": value,
                "method": method,
            }
        )
    table = pd.DataFrame(
        rows, columns=["order", "layer", "kind", "input_shape", "op_norm", "method"]
    )
    table["cum_product"] = table["op_norm"].cumprod()
    table.attrs["product"] = float(table["op_norm"].prod())
    table.attrs["conv_norm"] = conv_norm
    return table


def operator_norm_bound(
    model: nn.Module, input_shape, iters: int = 50, tol: float = 1e-6, conv_norm: str = "certified"
) -> pd.DataFrame:
    """Every layer call in forward order with its operator norm / Lipschitz bound, and their product.

    Input shapes come from forward hooks on one eval-mode pass of a zero input of shape
    ``(1, *input_shape)``.  Rows: ``order``, ``layer`` (qualified name), ``kind`` (class name),
    ``input_shape``, ``op_norm``, ``method``, ``cum_product``; ``table.attrs["product"]`` holds the
    product of all ``op_norm`` (the last ``cum_product``) and ``table.attrs["conv_norm"]`` the
    ``conv_norm`` used.

    Per layer:

    * Conv2d, bias ignored: with ``conv_norm="certified"`` (default) a certified upper bound on
      its spectral norm, the exact norm of a circular convolution that it is a compression of
      (:func:`conv_operator_norm_upper`; method "circular-FFT upper bound"); with
      ``conv_norm="power"`` the spectral norm by power iteration (:func:`conv_operator_norm`,
      ``iters`` and ``tol``), which approaches it from below;
    * Linear: exact spectral norm;
    * BatchNorm (eval mode, running statistics): it is a diagonal map, so its norm is
      ``max_c |gamma_c| / sqrt(running_var_c + eps)``;
    * AvgPool2d / AdaptiveAvgPool2d: a Schur-test bound, exact when windows do not overlap, so
      global average pooling over H x W counts as 1 / sqrt(H W) (not 1);
    * MaxPool2d: sqrt(most windows a pixel falls in) -- 1 only without overlap;
    * ReLU, Tanh, ... : the sup of ``|derivative|``.

    With ``conv_norm="certified"`` every entry is an upper bound, and for a *chain* of modules the
    product is a certified upper bound on the L2 Lipschitz constant of the logits (up to float64
    rounding).  With ``conv_norm="power"`` each conv norm is an estimate from below (tight to
    ``tol``), so the product is only an estimate of that bound, not a bound.  Either way the
    product misses functional ops (x * 10 inside ``forward``) and is wrong for skip connections,
    where f(x) + x can vary faster than the product of the branch's norms: for residual networks
    use :func:`lipschitz_upper_bound`, which follows the traced graph, or
    :func:`lipschitz_report` for the table and the graph bound from one computation.
    """
    layer_norm = _layer_norms(iters, tol, conv_norm)
    return _layer_table(model, input_shape, layer_norm, conv_norm)


# How a traced graph node's Lipschitz bound follows from its inputs' bounds.
_SAME_AS_INPUT_FUNCTIONS = {
    torch.relu,
    F.relu,
    torch.tanh,
    torch.flatten,
    torch.reshape,
    torch.squeeze,
    torch.unsqueeze,
    torch.permute,
    torch.transpose,
}
_SAME_AS_INPUT_METHODS = {
    "relu",
    "relu_",
    "tanh",
    "view",
    "reshape",
    "flatten",
    "contiguous",
    "squeeze",
    "unsqueeze",
    "permute",
    "transpose",
    "clone",
}
_CONSTANT_FUNCTIONS = {getattr}
_CONSTANT_METHODS = {"size", "dim"}
_SUM_FUNCTIONS = {operator.add, operator.iadd, torch.add, operator.sub, operator.isub, torch.sub}
_SCALE_FUNCTIONS = {operator.mul, operator.imul, torch.mul}
_DIVIDE_FUNCTIONS = {operator.truediv, torch.div}


def _is_basic_index(index) -> bool:
    # Slices and integers select each entry at most once; tensor or list indices may repeat
    # entries (x[:, [0, 0]]), which multiplies the Lipschitz constant.
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (int, slice)) for p in parts)


def _node_lipschitz(node, bounds: dict, module_bound: Callable) -> float:
    """Upper bound on the Lipschitz constant of the map from the model input to ``node``."""
    from torch.fx import Node

    def bound_of(arg) -> float:
        return bounds[arg] if isinstance(arg, Node) else 0.0  # constants do not move

    target = node.target
    if node.op == "placeholder":
        return 1.0
    if node.op == "get_attr":
        return 0.0
    if node.op == "call_module":
        return module_bound(node) * bound_of(node.args[0])
    if node.op == "output":
        return bound_of(node.args[0])
    if node.op == "call_method":
        if target in _CONSTANT_METHODS:
            return 0.0
        if target in _SAME_AS_INPUT_METHODS:
            return bound_of(node.args[0])
    if node.op == "call_function":
        if target in _CONSTANT_FUNCTIONS:
            return 0.0
        if target in _SAME_AS_INPUT_FUNCTIONS:
            return bound_of(node.args[0])
        if target is operator.getitem and _is_basic_index(node.args[1]):
            return bound_of(node.args[0])  # a sub-tensor: no entry is repeated
        if target in _SUM_FUNCTIONS:  # Lip(f + g) <= Lip(f) + Lip(g): this is the skip connection
            if set(node.kwargs) - {"alpha"}:
                raise ValueError(f"unsupported keyword arguments in {node.format_node()}")
            return bound_of(node.args[0]) + abs(node.kwargs.get("alpha", 1)) * bound_of(
                node.args[1]
            )
        if target in _SCALE_FUNCTIONS or target in _DIVIDE_FUNCTIONS:
            a, b = node.args[:2]
            if isinstance(b, (int, float)):
                return bound_of(a) * (abs(b) if target in _SCALE_FUNCTIONS else 1 / abs(b))
            if isinstance(a, (int, float)) and target in _SCALE_FUNCTIONS:
                return abs(a) * bound_of(b)
        if target is torch.cat:  # blocks of a vector: norms add in squares
            return math.sqrt(sum(bound_of(a) ** 2 for a in node.args[0]))
    raise ValueError(f"no Lipschitz rule for graph node {node.format_node()}")


def _graph_bound(model: nn.Module, input_shape, layer_norm: Callable) -> float:
    from torch.fx import Interpreter, symbolic_trace

    class ModuleInputShapes(Interpreter):
        """Runs the traced graph once, noting the input shape of every module call."""

        def __init__(self, graph_module):
            super().__init__(graph_module)
            self.shapes: dict = {}

        def run_node(self, n):
            if n.op == "call_module":
                self.shapes[n] = tuple(self.env[n.args[0]].shape[1:])
            return super().run_node(n)

    dtype, device = _model_dtype_device(model)
    with eval_mode(model), torch.no_grad():
        graph_module = symbolic_trace(model)
        recorder = ModuleInputShapes(graph_module)
        recorder.run(torch.zeros((1, *input_shape), dtype=dtype, device=device))
    # symbolic_trace keeps the model's own leaf modules (not copies), so a shared layer_norm
    # cache recognises the layers that the forward hooks of _layer_table saw.
    modules = dict(graph_module.named_modules())

    def module_bound(node) -> float:
        return layer_norm(modules[node.target], recorder.shapes[node])[0]

    bounds: dict = {}
    for node in graph_module.graph.nodes:
        bounds[node] = _node_lipschitz(node, bounds, module_bound)
        if node.op == "output":
            return bounds[node]
    raise ValueError("traced graph has no output")


def lipschitz_upper_bound(
    model: nn.Module, input_shape, iters: int = 50, tol: float = 1e-6, conv_norm: str = "certified"
) -> float:
    """Upper bound on the L2 Lipschitz constant of the logits (eval mode), following the graph.

    The model is traced with torch.fx; each layer contributes its :func:`operator_norm_bound`
    norm, compositions multiply and sums (skip connections) add: Lip(f + g) <= Lip(f) + Lip(g).
    For a plain chain this equals the product of the layer norms; for a ResNet block it is
    ||main branch|| + ||shortcut|| where the product alone would not be a bound.

    With ``conv_norm="certified"`` (default) each conv enters with the circular-FFT upper bound
    of :func:`conv_operator_norm_upper` and the result is a certified upper bound (up to float64
    rounding).  With ``conv_norm="power"`` the conv norms come from power iteration, which
    approaches each from below, so the result is an estimate of the graph bound, not a bound.
    Raises ValueError for an operation with no rule and whatever torch.fx raises for an
    untraceable model.  :func:`lipschitz_report` also returns the per-layer table.
    """
    return _graph_bound(model, input_shape, _layer_norms(iters, tol, conv_norm))


class LipschitzReport(NamedTuple):
    """What :func:`lipschitz_report` returns: unpacks as ``table, bound = ...``."""

    table: pd.DataFrame  # as operator_norm_bound's, with attrs["lipschitz_bound"] = bound
    bound: float  # as lipschitz_upper_bound's


def lipschitz_report(
    model: nn.Module, input_shape, iters: int = 50, tol: float = 1e-6, conv_norm: str = "certified"
) -> LipschitzReport:
    """:func:`operator_norm_bound`'s table and :func:`lipschitz_upper_bound`'s graph bound at once.

    Each layer's norm is computed once per (module, input shape) and shared by the two, which
    halves the cost of calling both (the conv norms dominate it).  ``table.attrs`` holds
    ``product`` (the plain product of the layer norms, a bound only for a chain),
    ``lipschitz_bound`` (= ``bound``) and ``conv_norm``.  With ``conv_norm="certified"``
    (default) ``bound`` is a certified upper bound on the L2 Lipschitz constant of the logits;
    with ``"power"`` it is an estimate (see :func:`lipschitz_upper_bound`).
    """
    layer_norm = _layer_norms(iters, tol, conv_norm)
    table = _layer_table(model, input_shape, layer_norm, conv_norm)
    bound = _graph_bound(model, input_shape, layer_norm)
    table.attrs["lipschitz_bound"] = bound
    return LipschitzReport(table, bound)
