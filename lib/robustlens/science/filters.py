"""Filter-level analysis of convolution weights, following Gavrikov & Keuper [GK].

Three parts:

* **Extraction** (:func:`extract_convs`): every ``nn.Conv2d`` of a model in forward (graph)
  order, with its depth rank, normalised depth and depth decile, optionally with an eval-mode
  BatchNorm that directly follows it folded into the weights.
* **Per-layer metrics** (:func:`layer_metrics`, :func:`filter_table`): sparsity, variance
  entropy and orthogonality of 3x3 layers, plus plain weight statistics of every conv layer.
  Small layers of equal shape are stacked and processed in one batched call, on whatever
  device the weights live on; results reach the host in one transfer.
* **Distribution drift** (:func:`pca_basis`, :func:`coefficient_range`,
  :func:`coefficient_densities`, :func:`drift`, :func:`drift_with_baseline`,
  :func:`drift_by_decile`): a shared PCA basis of 3x3 filters and the explained-variance-weighted
  symmetric KL divergence between the coefficient distributions of two filter sets, with a
  label-shuffled baseline (a permutation test).  [GK]'s per-depth drift fits one basis and one
  histogram range on all filters of a comparison and computes every decile's D in them
  (``drift_by_decile(..., basis="global")``).

Definitions (all on raw weights unless stated; bias is always ignored):

* a 3x3 filter is *sparse* iff ``max|w| <= max|W_layer| / 100``;
* *variance entropy* of a layer: the Shannon entropy (base 10) of the normalised variance
  spectrum ``s**2 / (N - 1)`` of its centred ``N x 9`` filter matrix.  The ``variant`` says which
  filters enter (see :data:`VARIANTS`); ``log10(9) ~ 0.954`` is the maximum;
* *orthogonality*: with the weights as an ``out x (in*k*k)`` matrix with L2-normalised rows,
  ``1 - sum|W W^T - I| / (n (n - 1))``, ``n = out``; sparse filters are kept.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from robustlens.science.model_modes import eval_mode

__all__ = [
    "VARIANTS",
    "default_init_std",
    "METRICS_3X3",
    "WEIGHT_STATS",
    "DECILE_LABELS",
    "TABLE_COLUMNS",
    "ConvRecord",
    "weighted_mean",
    "decile_label",
    "decile_labels",
    "extract_convs",
    "sparse_mask",
    "sparsity",
    "variance_entropy",
    "orthogonality",
    "weight_stats",
    "layer_metrics",
    "metrics_table",
    "filter_table",
    "aggregate_by_decile",
    "prepare_filters",
    "PCABasis",
    "pca_basis",
    "coefficient_range",
    "coefficient_densities",
    "kl_divergence",
    "drift",
    "DRIFT_BASES",
    "DRIFT_COLUMNS",
    "drift_with_baseline",
    "drift_by_decile",
]

#: Entropy variants.  ``"gk"``: each filter scaled by its own L-infinity norm, sparse filters
#: dropped ([GK]'s analysis).  ``"cnn-filter-db"``: raw filters, sparse filters kept
#: (``torchconvquality``'s ``variance_entropy``).  ``"raw"``: raw filters, sparse filters dropped
#: (``torchconvquality``'s ``variance_entropy_clean``).  Sparsity and orthogonality do not
#: depend on the variant; every output row still names it so tables of variants can be mixed.
VARIANTS = ("gk", "cnn-filter-db", "raw")
#: [GK]'s filter metrics, computed for 3x3 layers only.
METRICS_3X3 = ("sparsity", "variance_entropy", "orthogonality")
#: Weight statistics computed for every conv layer, whatever its kernel size.
WEIGHT_STATS = (
    "weight_std",
    "weight_kurtosis",
    "weight_mean_abs",
    "weight_small_frac",
    "filter_norm_mean",
    "filter_norm_std",
)
#: Columns of :func:`metrics_table` and :func:`filter_table`.
TABLE_COLUMNS = ("model", "layer", "depth", "decile", "metric", "variant", "value", "n_filters")

SPARSITY_DIVISOR = 100  # a filter is sparse iff max|w| <= max|W_layer| / 100
_DECILE_BINS = np.linspace(0, 1, 11)
#: Every depth-decile label in depth order, ``"0"`` (the first layer) first; see
#: :func:`decile_labels`.
DECILE_LABELS = ("0",) + tuple(
    f"({a:.1f}, {b:.1f}]" for a, b in zip(_DECILE_BINS[:-1], _DECILE_BINS[1:])
)
# Elements per stack of same-shape layers: stacking pays off for small layers (fewer, larger
# kernel calls) while big layers go alone, keeping float32 temporaries around 16 MB.
_CHUNK_ELEMENTS = 2**22


# --------------------------------------------------------------------------- extraction


@dataclass(frozen=True)
class ConvRecord:
    """One conv layer as met in the forward pass.

    ``weight`` is detached and on the model's device; with ``fold_bn`` it already includes the
    BatchNorm scale.  ``conv_depth`` is the 0-based rank among all conv layers in forward order.
    """

    name: str
    weight: torch.Tensor
    kernel_size: tuple
    conv_depth: int
    conv_depth_norm: float
    decile: str
    groups: int = 1
    folded_bn: str | None = None

    @property
    def n_filters(self) -> int:
        """Number of 2-D kernels, ``out * in / groups``."""
        return int(self.weight.shape[0] * self.weight.shape[1])

    @property
    def is_3x3(self) -> bool:
        return tuple(self.kernel_size) == (3, 3)


def decile_labels(conv_depth_norm: Sequence[float]) -> list[str]:
    """Depth-decile labels exactly as ``pd.cut(x, np.linspace(0, 1, 11))`` (right-closed) bins them.

    ``pd.cut`` leaves 0 outside every bin, so the first layer forms its own group ``"0"``;
    the others get clean labels such as ``"(0.0, 0.1]"`` (no float noise like 0.30000000000000004).
    """
    x = np.asarray(conv_depth_norm, dtype=float)
    if np.any((x < 0) | (x > 1)) or np.any(np.isnan(x)):
        raise ValueError("normalised depths must lie in [0, 1]")
    codes = pd.cut(x, _DECILE_BINS).codes  # -1 for the left-open edge 0
    return [DECILE_LABELS[c + 1] for c in codes]


def decile_label(conv_depth_norm: float) -> str:
    """Depth-decile label of a single normalised depth (see :func:`decile_labels`)."""
    return decile_labels([conv_depth_norm])[0]


def extract_convs(
    model: nn.Module, input_shape: Sequence[int] = (1, 3, 32, 32), fold_bn: bool = False
) -> list[ConvRecord]:
    """All ``nn.Conv2d`` layers of ``model`` in forward order.

    One forward pass with hooks on a zero input of ``input_shape`` fixes the order; a conv
    called twice counts once, at its first call.  The model is put in eval mode for the pass,
    so BatchNorm statistics are never touched, and its train/eval flags are restored afterwards.

    With ``fold_bn`` an eval-mode ``nn.BatchNorm2d`` whose input *is* a conv's output tensor
    (unmodified in place) is folded: ``W' = W * gamma / sqrt(var + eps)`` per output channel.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"expected an nn.Module, got {type(model).__name__}")
    names = {id(m): n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    if not names:
        raise ValueError("the model has no nn.Conv2d layers")
    if len(input_shape) != 4:
        raise ValueError(f"input_shape must be (N, C, H, W), got {tuple(input_shape)}")
    bn_flags = {m: m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d)}
    order, bn_after = _trace(model, tuple(input_shape))
    if not order:
        raise ValueError("no nn.Conv2d layer was called in the forward pass")
    n = len(order)
    norms = [i / (n - 1) if n > 1 else 0.0 for i in range(n)]
    labels = decile_labels(norms)
    records = []
    for i, conv in enumerate(order):
        weight = conv.weight.detach()
        folded = None
        bn = bn_after.get(conv)
        if fold_bn and bn is not None:
            weight, folded = _fold(weight, bn, bn_flags.get(bn, bn.training), _name_of(model, bn))
        records.append(
            ConvRecord(
                names[id(conv)],
                weight,
                tuple(conv.kernel_size),
                i,
                norms[i],
                labels[i],
                conv.groups,
                folded,
            )
        )
    return records


def _name_of(model: nn.Module, module: nn.Module) -> str:
    return next((n for n, m in model.named_modules() if m is module), "?")


def _fold(weight: torch.Tensor, bn: nn.BatchNorm2d, was_training: bool, bn_name: str):
    """Weight with the BatchNorm's per-channel scale applied, or unchanged with a warning."""
    if was_training or bn.running_var is None:
        warnings.warn(
            f"BatchNorm {bn_name!r} is not in eval mode with running statistics; not folded"
        )
        return weight, None
    if bn.num_features != weight.shape[0]:
        return weight, None
    scale = torch.rsqrt(bn.running_var.detach().to(weight) + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.detach().to(weight)
    return weight * scale.view(-1, 1, 1, 1), bn_name


def _trace(model: nn.Module, input_shape: tuple):
    """Convs in order of first call, and the BatchNorm (if any) applied directly to each output."""
    order: list[nn.Module] = []
    seen: set[int] = set()
    outputs: dict[
        int, tuple
    ] = {}  # id(tensor) -> (tensor, version, conv); tensor kept so ids stay unique
    bn_after: dict[nn.Module, nn.Module] = {}

    def conv_pre(mod, args):
        if id(mod) not in seen:
            seen.add(id(mod))
            order.append(mod)

    def conv_post(mod, args, out):
        if isinstance(out, torch.Tensor):
            outputs[id(out)] = (out, out._version, mod)

    def bn_pre(mod, args):
        x = args[0] if args else None
        hit = outputs.get(id(x))
        # An in-place op between conv and BN (e.g. ReLU(inplace=True)) keeps the tensor object
        # but bumps its version: then the BN does not see the conv's output.
        if hit is not None and hit[0] is x and x._version == hit[1]:
            bn_after.setdefault(hit[2], mod)

    handles = []
    try:
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                handles += [
                    m.register_forward_pre_hook(conv_pre),
                    m.register_forward_hook(conv_post),
                ]
            elif isinstance(m, nn.BatchNorm2d):
                handles.append(m.register_forward_pre_hook(bn_pre))
        first = next(iter(model.parameters()), None)
        dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
        device = first.device if first is not None else "cpu"
        with eval_mode(model), torch.no_grad():
            model(torch.zeros(input_shape, dtype=dtype, device=device))
    finally:
        for h in handles:
            h.remove()
    return order, bn_after


# --------------------------------------------------------------------------- per-layer metrics


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {VARIANTS}")


def _check_3x3(weight: torch.Tensor) -> None:
    if weight.dim() != 4 or tuple(weight.shape[-2:]) != (3, 3):
        raise ValueError(
            f"expected a conv weight of shape (out, in, 3, 3), got {tuple(weight.shape)}"
        )


def _sparse_batched(
    f: torch.Tensor, f_abs: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``f``: (L, N, 9), ``f_abs`` its absolute values if at hand.

    Returns the per-filter L-infinity norms (L, N) and the sparse mask (L, N).
    """
    fmax = (f.abs() if f_abs is None else f_abs).amax(dim=-1)
    return fmax, fmax <= fmax.amax(dim=-1, keepdim=True) / SPARSITY_DIVISOR


def _scatter_batched(
    f: torch.Tensor, fmax: torch.Tensor, sparse: torch.Tensor, variant: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What the variance entropy of L stacked layers ``f`` (L, N, 9) needs, still on f's device.

    The squared singular values of the centred N x 9 filter matrix are the eigenvalues of its
    9 x 9 scatter matrix, so only that matrix is formed (no SVD of the tall matrix).  The data
    stay float32, as in torchconvquality's SVD: a float64 copy would cost more than the rest.
    Returns the scatter matrices (L, 9, 9), the filter counts (L,) and the largest |value|
    among the kept (scaled) filters (L,), which tells zero spread from rounding noise.
    """
    keep = torch.ones_like(sparse) if variant == "cnn-filter-db" else ~sparse
    keep_f = keep.to(f.dtype)
    w = keep_f / torch.where(fmax == 0, torch.ones_like(fmax), fmax) if variant == "gk" else keep_f
    y = f * w.unsqueeze(-1)  # scaled filters, dropped ones zeroed
    count = keep.sum(dim=1)
    mean = (w.unsqueeze(1) @ f).squeeze(1) / count.clamp_min(1).unsqueeze(
        -1
    )  # a GEMV beats sum(dim=1)
    y.addcmul_(keep_f.unsqueeze(-1), mean.unsqueeze(1), value=-1)  # centre the kept rows only
    return y.transpose(1, 2) @ y, count, (fmax * w).amax(dim=1)


def _entropy_from_scatter(
    scatter: torch.Tensor, count: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """Base-10 entropy of the normalised variance spectra ``s**2 / (N - 1)``; NaN if undefined.

    Solved in float64; meant for the CPU, where batches of 9 x 9 eigenproblems are cheapest.
    """
    scatter, count, scale = scatter.double(), count.double().unsqueeze(-1), scale.double()
    lam = torch.linalg.eigvalsh(scatter).clamp_min(0)
    var = lam / (count - 1).clamp_min(1)
    total = var.sum(dim=-1, keepdim=True)
    p = var / torch.where(total > 0, total, torch.ones_like(total))
    h = torch.special.entr(p).sum(dim=-1) / math.log(10)
    # Zero spread (identical filters, up to float32 rounding) leaves no spectrum to normalise.
    degenerate = (count.squeeze(-1) <= 1) | (total.squeeze(-1).sqrt() <= 1e-6 * scale)
    return torch.where(degenerate, torch.full_like(h, float("nan")), h)


def _orthogonality_batched(w: torch.Tensor, norm: torch.Tensor) -> torch.Tensor:
    """Orthogonality of L stacked layers ``w`` (L, n, d) with row L2 norms ``norm`` (L, n); NaN for n == 1.

    The Gram matrix of the raw rows is normalised afterwards (n x n instead of n x d work);
    zero rows keep a zero row and column, as if normalised by 1.
    """
    n = w.shape[1]
    if n < 2:
        return torch.full((w.shape[0],), float("nan"), dtype=torch.float64, device=w.device)
    inv = 1 / torch.where(norm == 0, torch.ones_like(norm), norm)
    g = w @ w.transpose(1, 2)
    g.mul_(inv.unsqueeze(-1)).mul_(inv.unsqueeze(1))
    g.diagonal(dim1=1, dim2=2).sub_(1)
    return 1 - g.abs_().sum(dim=(1, 2)).double() / (n * (n - 1))


def _weight_stats_batched(
    w: torch.Tensor, w_abs: torch.Tensor, norm: torch.Tensor, tau: float
) -> list[torch.Tensor]:
    """:data:`WEIGHT_STATS` of L stacked layers ``w`` (L, out, d), given ``|w|`` and row norms.

    Population (ddof=0) moments.  Reductions run in float32 (PyTorch sums pairwise, so they
    stay accurate) because a float64 copy of each layer would dominate the cost.
    """
    dims = (1, 2)
    d = w - w.mean(dim=dims, keepdim=True)
    m2 = d.square_().mean(dim=dims).double()
    m4 = d.square_().mean(dim=dims).double()
    del d
    safe = torch.where(m2 > 0, m2, torch.ones_like(m2))
    kurt = torch.where(m2 > 0, m4 / safe.square() - 3, torch.full_like(m2, float("nan")))
    small = (w_abs < tau * w_abs.amax(dim=dims, keepdim=True)).sum(dim=dims).double() / (
        w.shape[1] * w.shape[2]
    )
    norm = norm.double()
    return [
        m2.sqrt(),
        kurt,
        w_abs.mean(dim=dims).double(),
        small,
        norm.mean(dim=1),
        norm.std(dim=1, correction=0),
    ]


# Columns of the per-layer result matrix built on the device and moved to the host at once.
_COLUMNS = WEIGHT_STATS + ("sparsity", "orthogonality", "_count", "_scale")
_N_SCALAR = len(_COLUMNS)


def _stack_metrics(stack: torch.Tensor, variant: str, tau: float) -> torch.Tensor:
    """Metrics of stacked layers ``stack`` (L, out, in, kh, kw) as an (L, _N_SCALAR + 81) float64 matrix.

    Columns follow :data:`_COLUMNS`, then the flattened 9 x 9 scatter matrix; NaN where a
    metric does not apply (non-3x3 kernels).  Nothing leaves the device here.
    """
    rows = stack.reshape(stack.shape[0], stack.shape[1], -1)
    rows_abs = rows.abs()
    norm = torch.linalg.vector_norm(rows, dim=-1)
    cols = _weight_stats_batched(rows, rows_abs, norm, tau)
    nan = torch.full((stack.shape[0],), float("nan"), dtype=torch.float64, device=stack.device)
    if tuple(stack.shape[-2:]) == (3, 3):
        f = stack.reshape(stack.shape[0], -1, 9)
        fmax, sparse = _sparse_batched(f, rows_abs.view(f.shape))
        scatter, count, scale = _scatter_batched(f, fmax, sparse, variant)
        cols += [
            sparse.sum(dim=1).double() / f.shape[1],
            _orthogonality_batched(rows, norm),
            count.double(),
            scale.double(),
        ]
        tail = scatter.double().reshape(-1, 81)
    else:
        cols += [nan] * 4
        tail = nan.unsqueeze(-1).expand(-1, 81)
    return torch.cat([torch.stack(cols, dim=1), tail], dim=1)


def _chunks(indices: list[int], per_layer: int) -> Iterable[list[int]]:
    step = max(1, _CHUNK_ELEMENTS // max(per_layer, 1))
    for i in range(0, len(indices), step):
        yield indices[i : i + step]


def layer_metrics(
    weights: Sequence[torch.Tensor], variant: str = "gk", tau: float = 0.01
) -> list[dict]:
    """Metrics of each conv weight in ``weights``, one dict per layer, in the same order.

    Small layers of equal shape (and device) are stacked and computed in one batched pass;
    big ones go alone without a copy.  All work happens on the weights' device, and the
    results come to the host in one transfer.  Every layer gets the weight statistics
    (:data:`WEIGHT_STATS`); 3x3 layers also get :data:`METRICS_3X3`.  Values are Python floats
    (NaN where undefined).
    """
    _check_variant(variant)
    if not 0 < tau < 1:
        raise ValueError(f"tau must lie in (0, 1), got {tau}")
    groups: dict[tuple, list[int]] = {}
    for i, w in enumerate(weights):
        if not isinstance(w, torch.Tensor) or w.dim() != 4:
            raise ValueError(f"layer {i}: expected a 4-D conv weight tensor")
        if w.numel() == 0:
            raise ValueError(f"layer {i}: empty weight tensor")
        groups.setdefault((tuple(w.shape), w.device), []).append(i)
    per_device: dict[
        torch.device, tuple[list, list]
    ] = {}  # device -> (layer indices, result blocks)
    with torch.no_grad():
        for (shape, device), idx in groups.items():
            order, blocks = per_device.setdefault(device, ([], []))
            for chunk in _chunks(idx, math.prod(shape)):
                parts = [weights[i].detach().float() for i in chunk]
                stack = parts[0].unsqueeze(0) if len(parts) == 1 else torch.stack(parts)
                blocks.append(_stack_metrics(stack, variant, tau))
                order += chunk
    order = [i for o, _ in per_device.values() for i in o]
    table = torch.cat([torch.cat(b).cpu() for _, b in per_device.values()])  # one sync per device
    entropy = _entropy_from_scatter(
        table[:, _N_SCALAR:].reshape(-1, 9, 9).nan_to_num(0),
        table[:, _COLUMNS.index("_count")].nan_to_num(0),
        table[:, _COLUMNS.index("_scale")].nan_to_num(0),
    )
    results: list[dict] = [{} for _ in weights]
    values = table[:, :_N_SCALAR].tolist()
    for row, i, h in zip(values, order, entropy.tolist()):
        results[i] = {k: v for k, v in zip(_COLUMNS, row) if not k.startswith("_")}
        if tuple(weights[i].shape[-2:]) == (3, 3):
            results[i]["variance_entropy"] = h
        else:
            del results[i]["sparsity"], results[i]["orthogonality"]
    return results


def sparse_mask(weight: torch.Tensor) -> torch.Tensor:
    """Boolean mask over the ``out * in`` 3x3 filters: ``max|w| <= max|W_layer| / 100``."""
    _check_3x3(weight)
    return _sparse_batched(weight.detach().reshape(1, -1, 9))[1][0]


def sparsity(weight: torch.Tensor) -> float:
    """Fraction of sparse 3x3 filters of one layer."""
    return float(sparse_mask(weight).double().mean())


def variance_entropy(weight: torch.Tensor, variant: str = "gk") -> float:
    """Variance entropy (base 10) of one 3x3 layer; NaN with fewer than two filters or no spread."""
    _check_variant(variant)
    _check_3x3(weight)
    f = weight.detach().float().reshape(1, -1, 9)
    fmax, sparse = _sparse_batched(f)
    scatter, count, scale = _scatter_batched(f, fmax, sparse, variant)
    return float(_entropy_from_scatter(scatter.cpu(), count.cpu(), scale.cpu())[0])


def orthogonality(weight: torch.Tensor) -> float:
    """Orthogonality of one layer (any kernel size); NaN with a single output channel."""
    if weight.dim() != 4:
        raise ValueError(f"expected a 4-D conv weight, got shape {tuple(weight.shape)}")
    rows = weight.detach().float().reshape(1, weight.shape[0], -1)
    return float(_orthogonality_batched(rows, torch.linalg.vector_norm(rows, dim=-1))[0])


def weight_stats(weight: torch.Tensor, tau: float = 0.01) -> dict[str, float]:
    """Weight statistics of one layer (any kernel size), see :data:`WEIGHT_STATS`.

    ``weight_std`` and ``filter_norm_std`` use ddof=0; ``weight_kurtosis`` is Fisher's excess
    kurtosis with population moments (``scipy.stats.kurtosis`` defaults), 0 for a Gaussian;
    ``weight_small_frac`` is the share of weights with ``|w| < tau * max|W_layer|``; filter
    norms are L2 norms of each output channel's (in, k, k) weights.
    """
    return layer_metrics([weight], tau=tau)[0]


# --------------------------------------------------------------------------- tables


def metrics_table(
    records: Sequence[ConvRecord], model_name: str, variant: str = "gk", tau: float = 0.01
) -> pd.DataFrame:
    """Tidy long table of the metrics of already extracted conv layers (see :func:`filter_table`)."""
    if not records:
        raise ValueError("no conv layers given")
    values = layer_metrics([r.weight for r in records], variant, tau)
    rows = []
    for r, vals in zip(records, values):
        metrics = (METRICS_3X3 if r.is_3x3 else ()) + WEIGHT_STATS
        rows += [
            (model_name, r.name, r.conv_depth_norm, r.decile, k, variant, vals[k], r.n_filters)
            for k in metrics
        ]
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def filter_table(
    model: nn.Module,
    model_name: str,
    variant: str = "gk",
    fold_bn: bool = False,
    input_shape: Sequence[int] = (1, 3, 32, 32),
    tau: float = 0.01,
) -> pd.DataFrame:
    """Tidy long table of filter metrics of every conv layer of ``model``.

    Columns: ``model, layer, depth, decile, metric, variant, value, n_filters`` where ``depth`` is
    the normalised depth ``conv_depth / (n_conv - 1)`` in [0, 1], ``decile`` its label (see
    :func:`decile_labels`) and ``n_filters`` the layer's number of 2-D kernels.  3x3 layers get
    :data:`METRICS_3X3`; every conv layer gets :data:`WEIGHT_STATS`.
    """
    _check_variant(variant)
    return metrics_table(extract_convs(model, input_shape, fold_bn), model_name, variant, tau)


def weighted_mean(
    table: pd.DataFrame, by: Sequence[str] | str, weight: str | None = "n_filters"
) -> pd.DataFrame:
    """Mean of ``value`` per ``by`` group, each row weighted by its ``weight`` column (NaN values left out).

    With a table of one metric, e.g. layer sparsities, this is the share over all filters of the
    group (sparse filters / filters), as [GK] count it over their whole database. ``weight=None``
    weighs every layer alike. Returns the ``by`` columns plus ``value``, ``n_filters`` (summed,
    when the table has it) and ``n_layers``.
    """
    by = [by] if isinstance(by, str) else list(by)
    missing = set(by + ["value"] + ([weight] if weight else [])) - set(table.columns)
    if missing:
        raise ValueError(f"table lacks columns {sorted(missing)}")
    t = table[table["value"].notna()].copy()
    t["_w"] = t[weight].astype(float) if weight else 1.0
    t["_wv"] = t["_w"] * t["value"].astype(float)
    g = t.groupby(by, sort=False)
    out = g[["_wv", "_w"]].sum()
    out["value"] = out["_wv"] / out["_w"]
    out["n_filters"] = g["n_filters"].sum() if "n_filters" in t else np.nan
    out["n_layers"] = g.size()
    return out.reset_index()[by + ["value", "n_filters", "n_layers"]]


def aggregate_by_decile(table: pd.DataFrame, weighted: bool = True) -> pd.DataFrame:
    """Per model, decile, metric and variant: the mean of the layer values, weighted by ``n_filters``.

    NaN values (and their weights) are left out.  Rows are sorted by decile in depth order.
    Returns columns ``model, decile, metric, variant, value, n_filters, n_layers``.
    """
    out = weighted_mean(
        table, ["model", "decile", "metric", "variant"], "n_filters" if weighted else None
    )
    rank = {d: i for i, d in enumerate(DECILE_LABELS)}
    out["_r"] = out["decile"].map(rank)
    return (
        out.sort_values(["model", "metric", "variant", "_r"], kind="stable")
        .drop(columns="_r")
        .reset_index(drop=True)
    )


# --------------------------------------------------------------------------- PCA basis and drift


def _scaled_nonsparse(weight: torch.Tensor) -> torch.Tensor:
    f = weight.detach().float().reshape(1, -1, 9)
    fmax, sparse = _sparse_batched(f)
    keep = ~sparse[0]
    return f[0][keep] / fmax[0][keep].unsqueeze(-1)


def prepare_filters(source) -> torch.Tensor:
    """3x3 filters as an (N, 9) float tensor: L-infinity-scaled, sparse ones dropped, pooled.

    ``source`` may be a model (its 3x3 convs via :func:`extract_convs` with defaults), a
    :class:`ConvRecord`, a 4-D conv weight, or a list/tuple of any of these; sparsity is judged
    per layer.  A 2-D (N, 9) or 3-D (N, 3, 3) tensor is taken as already prepared and only
    reshaped.  Layers whose kernels are not 3x3 are skipped.
    """
    if isinstance(source, nn.Module):
        return prepare_filters([r for r in _extract_any_channels(source) if r.is_3x3])
    if isinstance(source, ConvRecord):
        return _scaled_nonsparse(source.weight) if source.is_3x3 else torch.empty(0, 9)
    if isinstance(source, (list, tuple)):
        parts = [prepare_filters(s) for s in source]
        parts = [p for p in parts if p.numel()]
        if not parts:
            raise ValueError("no 3x3 filters in the given source")
        device = parts[0].device
        return torch.cat([p.to(device) for p in parts])
    if isinstance(source, torch.Tensor):
        if source.dim() == 4:
            return (
                _scaled_nonsparse(source)
                if tuple(source.shape[-2:]) == (3, 3)
                else torch.empty(0, 9)
            )
        if (
            source.dim() in (2, 3)
            and source.shape[-1] * (source.shape[-2] if source.dim() == 3 else 1) == 9
        ):
            return source.detach().float().reshape(-1, 9)
        raise ValueError(f"cannot read 3x3 filters from a tensor of shape {tuple(source.shape)}")
    raise ValueError(f"cannot read 3x3 filters from {type(source).__name__}")


def _extract_any_channels(model: nn.Module) -> list[ConvRecord]:
    """``extract_convs`` for a model whose input channel count is unknown (1 for Fashion-MNIST nets,
    3 for CIFAR ones): try the in_channels of its convs, in definition order, until a trace works."""
    candidates = [m.in_channels for m in model.modules() if isinstance(m, nn.Conv2d)] + [3, 1]
    error = None
    for c in dict.fromkeys(candidates):
        try:
            return extract_convs(model, (1, c, 32, 32))
        except RuntimeError as exc:  # wrong channel count: the first conv refuses the input
            error = exc
    raise ValueError(f"could not trace the model with 1..n input channels: {error}")


@dataclass(frozen=True)
class PCABasis:
    """A 9-component PCA of 3x3 filters.

    ``components`` (9, 9): one principal axis per row, by decreasing variance, signed so that
    each row's largest-magnitude entry is positive (scikit-learn's convention);
    ``explained_variance_ratio`` (9,); ``mean`` (9,) subtracted before projecting.
    """

    components: torch.Tensor
    explained_variance_ratio: torch.Tensor
    mean: torch.Tensor

    def transform(self, filters: torch.Tensor) -> torch.Tensor:
        """PCA coefficients (N, 9) of (N, 9) filters, in float64."""
        x = filters.reshape(-1, 9).double()
        return (x - self.mean.to(x.device)) @ self.components.to(x.device).T


def pca_basis(filters) -> PCABasis:
    """PCA with 9 components of the scaled, non-sparse 3x3 filters of ``filters``.

    ``filters`` is anything :func:`prepare_filters` reads (pooled over all given models or
    layers).  Computed in float64 from the eigendecomposition of the 9x9 scatter matrix of the
    centred filters (its eigenvalues are the squared singular values of the (N, 9) matrix, without
    forming the N x 9 factor an SVD would); explained-variance ratios are ``s**2 / sum(s**2)`` as in
    ``sklearn.decomposition.PCA``.
    """
    x = prepare_filters(filters).double()
    if x.shape[0] < 2:
        raise ValueError("PCA needs at least two non-sparse 3x3 filters")
    mean = x.mean(dim=0)
    centred = x - mean
    evals, evecs = torch.linalg.eigh(centred.T @ centred)
    var = evals.flip(0).clamp_min(0)
    vh = evecs.flip(1).T.contiguous()
    pivot = vh.abs().argmax(dim=1)
    signs = torch.sign(vh.gather(1, pivot.unsqueeze(1)))
    vh = vh * torch.where(signs == 0, torch.ones_like(signs), signs)
    return PCABasis(vh, var / var.sum(), mean)


def coefficient_range(coeffs, shared: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The histogram range ``(lo, hi)`` of a pooled set of PCA coefficients (N, 9), as two
    float64 tensors of shape (9,) on the coefficients' device.

    With ``shared`` (the default) one range serves all nine coefficients: the min and max over
    every coefficient of every filter, as in [GK]'s analysis code, which bins each coefficient
    with ``np.histogram(c_i, range=(min, max), bins=70)`` for one global ``(min, max)`` of all
    transformed filters.  With ``shared=False`` each coefficient gets its own min..max (what
    :func:`coefficient_densities` uses when no range is given).  Pass the coefficients of *all*
    filters of a comparison (both groups, every depth), so that every histogram built with this
    range lives on the same bins.
    """
    c = torch.as_tensor(coeffs).double().reshape(-1, 9)
    if c.shape[0] == 0:
        raise ValueError("no coefficients to take a range from")
    if shared:
        return c.min().expand(9).clone(), c.max().expand(9).clone()
    return c.amin(0), c.amax(0)


def _as_range(value_range, device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lo, hi)`` (scalars or (9,) tensors) as two float64 (9,) tensors on ``device``."""
    try:
        lo, hi = value_range
    except (TypeError, ValueError):
        raise ValueError("value_range must be a pair (lo, hi)") from None
    lo = torch.as_tensor(lo, dtype=torch.float64).to(device).reshape(-1)
    hi = torch.as_tensor(hi, dtype=torch.float64).to(device).reshape(-1)
    if lo.numel() not in (1, 9) or hi.numel() not in (1, 9):
        raise ValueError("value_range bounds must be scalars or hold one value per coefficient (9)")
    lo, hi = lo.expand(9), hi.expand(9)
    if bool((hi < lo).any()) or not bool(torch.isfinite(lo).all() and torch.isfinite(hi).all()):
        raise ValueError("value_range needs finite bounds with lo <= hi")
    return lo, hi


def _joint_range(p: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-coefficient min..max of two coefficient sets together."""
    return torch.minimum(p.amin(0), q.amin(0)), torch.maximum(p.amax(0), q.amax(0))


_RANGE_TOL = 1e-9  # relative to the range's width: rounding noise, not a value outside the range


def _bin_width(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    return torch.where(hi > lo, hi - lo, torch.ones_like(hi))  # zero width: one bin of width 1/bins


def _bin_index(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, bins: int) -> torch.Tensor:
    """Flat bin index (N, 9) of coefficients ``x`` into a vector of ``9 * bins + 1`` counts.

    Coefficient i falls into slot ``i * bins + b``; values outside ``[lo_i, hi_i]`` (possible only
    with an explicit range) go to the last slot, which is dropped, as ``np.histogram`` drops them.
    Values within ``_RANGE_TOL`` of the range's width outside it count in the edge bins, so that the
    extreme filter of a range is not lost when its coefficient is recomputed with rounding noise.
    """
    width = _bin_width(lo, hi)
    idx = ((x - lo) / width * bins).floor().long().clamp_(0, bins - 1)
    idx += torch.arange(9, device=x.device) * bins  # one bincount for all nine coefficients
    tol = _RANGE_TOL * width
    return idx.masked_fill_((x < lo - tol) | (x > hi + tol), 9 * bins)


def _counts(idx: torch.Tensor, bins: int) -> torch.Tensor:
    """Histogram counts (9, bins), float64, of flat bin indices from :func:`_bin_index`."""
    return (
        torch.bincount(idx.reshape(-1), minlength=9 * bins + 1)[: 9 * bins]
        .reshape(9, bins)
        .double()
    )


def _normalise(counts: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, bins: int) -> torch.Tensor:
    """Counts (9, bins) -> density per bin, empty bins at float32 eps, renormalised to sum 1 (CPU)."""
    counts = counts.cpu()
    n = counts.sum(dim=1, keepdim=True)
    if bool((n == 0).any()):
        raise ValueError("a coefficient has no value inside value_range")
    # A density (as numpy's density=True), not a probability: the eps floor for empty bins
    # is relative to it, so the bin width matters after renormalising.
    dens = counts / (n * (_bin_width(lo, hi).cpu() / bins).unsqueeze(1))
    dens[dens == 0] = float(np.finfo(np.float32).eps)
    return dens / dens.sum(dim=1, keepdim=True)


def coefficient_densities(
    coeffs_P, coeffs_Q, bins: int = 70, value_range=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Histogram densities of each PCA coefficient c0..c8 of two coefficient sets (N, 9), (M, 9).

    Per coefficient, ``bins`` equal bins span ``value_range`` (last bin closed): a pair
    ``(lo, hi)`` of scalars or (9,) tensors, e.g. from :func:`coefficient_range`; values outside
    it are left out, as ``np.histogram`` does (values outside by less than 1e-9 of its width,
    i.e. rounding noise, count in the edge bin).  Without ``value_range`` the bins span each
    coefficient's own min..max over both sets.  Each histogram is a density (integrates to 1),
    empty bins are set to ``float32`` eps so the KL divergence stays finite, and the bin values
    are renormalised to sum 1.  Returns two float64 tensors of shape (9, bins), on the CPU.
    """
    p = torch.as_tensor(coeffs_P).double().reshape(-1, 9)
    q = torch.as_tensor(coeffs_Q).double().reshape(-1, 9).to(p.device)
    if p.shape[0] == 0 or q.shape[0] == 0:
        raise ValueError("both coefficient sets must be non-empty")
    if bins < 1:
        raise ValueError("bins must be positive")
    lo, hi = _joint_range(p, q) if value_range is None else _as_range(value_range, p.device)
    return (
        _normalise(_counts(_bin_index(p, lo, hi, bins), bins), lo, hi, bins),
        _normalise(_counts(_bin_index(q, lo, hi, bins), bins), lo, hi, bins),
    )


def kl_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``KL(p || q)`` (natural log) along the last axis of strictly positive distributions."""
    return (p * (p / q).log()).sum(dim=-1)


def drift(
    P_filters,
    Q_filters,
    bins: int = 70,
    details: bool = False,
    basis: PCABasis | None = None,
    value_range=None,
):
    """Distribution drift ``D = sum_i EVR_i * (KL(P_i || Q_i) + KL(Q_i || P_i))`` over c0..c8.

    P (robust) and Q (normal) are anything :func:`prepare_filters` reads.  ``basis`` gives the
    coordinates: the PCA whose components project the filters and whose explained-variance
    ratios weight the coefficients; ``value_range`` the histogram range (see
    :func:`coefficient_densities`).  By default both are fitted on P and Q pooled (the basis on
    P ∪ Q, each coefficient binned over its own min..max of P ∪ Q), so the value depends on the two
    sets alone.  To compare several D values with each other, as [GK] do across depth, compute
    them all in one set of coordinates: one basis (:func:`pca_basis`) and one range
    (:func:`coefficient_range`) from all filters of the comparison; :func:`drift_by_decile` does
    that.  With ``details`` also returns a DataFrame with one row per coefficient
    (``evr, kl_pq, kl_qp``).
    """
    p = prepare_filters(P_filters)
    q = prepare_filters(Q_filters).to(p.device)
    if basis is None:
        basis = pca_basis(torch.cat([p, q]))
    dp, dq = coefficient_densities(basis.transform(p), basis.transform(q), bins, value_range)
    kl_pq, kl_qp = kl_divergence(dp, dq), kl_divergence(dq, dp)
    evr = basis.explained_variance_ratio.cpu().double()
    value = float((evr * (kl_pq + kl_qp)).sum())
    if not details:
        return value
    table = pd.DataFrame(
        {
            "coefficient": [f"c{i}" for i in range(9)],
            "evr": evr.numpy(),
            "kl_pq": kl_pq.numpy(),
            "kl_qp": kl_qp.numpy(),
        }
    )
    return value, table


# --------------------------------------------------------------------------- drift with a shuffled baseline

#: Coordinates of :func:`drift_by_decile`.  ``"global"``: [GK]'s statistic, one PCA basis and one
#: histogram range for all deciles.  ``"per_decile"``: a variant that refits both in every decile.
DRIFT_BASES = ("global", "per_decile")
#: Columns of :func:`drift_by_decile`.
DRIFT_COLUMNS = (
    "decile",
    "variant",
    "D",
    "D_shuffled",
    "D_shuffled_q95",
    "excess",
    "p_value",
    "n_P",
    "n_Q",
)


def _drift_with_null(
    cp: torch.Tensor,
    cq: torch.Tensor,
    evr: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
    bins: int,
    shuffles: int,
    seed: int,
) -> dict:
    """D of coefficient sets ``cp``, ``cq`` in fixed coordinates, and D for ``shuffles`` relabellings.

    Every relabelling keeps the group sizes and uses the same basis (the given coefficients and
    ``evr``) and the same range ``lo..hi``.  Filters are binned once; a relabelling only recounts
    the smaller group (the other group's counts are the rest of the pooled counts).
    """
    if bins < 1:
        raise ValueError("bins must be positive")
    if shuffles < 0:
        raise ValueError("shuffles must be >= 0")
    evr = evr.detach().cpu().double()
    n_p = cp.shape[0]
    idx = _bin_index(torch.cat([cp, cq.to(cp.device)]), lo.to(cp.device), hi.to(cp.device), bins)
    total = _counts(idx, bins)

    def value(counts_p: torch.Tensor) -> float:
        dp, dq = _normalise(counts_p, lo, hi, bins), _normalise(total - counts_p, lo, hi, bins)
        return float((evr * (kl_divergence(dp, dq) + kl_divergence(dq, dp))).sum())

    d = value(_counts(idx[:n_p], bins))
    null = []
    if shuffles:
        gen = torch.Generator().manual_seed(seed)
        count_p = n_p <= len(idx) - n_p
        for _ in range(shuffles):
            perm = torch.randperm(len(idx), generator=gen).to(idx.device)
            null.append(
                value(_counts(idx[perm[:n_p]], bins))
                if count_p
                else value(total - _counts(idx[perm[n_p:]], bins))
            )
    arr = np.asarray(null, dtype=float)
    return {
        "D": d,
        "D_shuffled": float(arr.mean()) if shuffles else math.nan,
        "D_shuffled_q95": float(np.quantile(arr, 0.95)) if shuffles else math.nan,
        "p_value": float((1 + np.sum(arr >= d)) / (shuffles + 1)) if shuffles else math.nan,
        "D_shuffled_values": tuple(arr.tolist()),
    }


def _prepared_or_empty(source) -> torch.Tensor:
    if isinstance(source, (list, tuple)) and len(source) == 0:
        return torch.empty(0, 9)
    try:
        return prepare_filters(source)
    except ValueError:  # no 3x3 filter at all
        return torch.empty(0, 9)


def drift_with_baseline(
    P,
    Q,
    bins: int = 70,
    shuffles: int = 20,
    seed: int = 0,
    basis: PCABasis | None = None,
    value_range=None,
) -> dict:
    """The drift D of P (robust) vs Q (normal), and D with the group labels shuffled.

    ``basis`` and ``value_range`` are the coordinates, as in :func:`drift` (by default fitted on
    P ∪ Q).  The histogram estimate of a KL divergence is biased upwards when a group holds few
    filters for ``bins`` bins; shuffling which filter belongs to which group (keeping the group
    sizes, same basis and range) keeps that bias and removes any real difference.  The
    relabellings (``shuffles`` of them, drawn from a generator seeded with ``seed``) form a
    permutation test: ``p_value = (1 + #{shuffled D >= D}) / (shuffles + 1)``, so the smallest
    p-value there is, is ``1 / (shuffles + 1)`` and p < 0.05 needs at least 20 shuffles.

    Returns ``{"D", "D_shuffled" (mean of the shuffled values), "D_shuffled_q95" (their 95th
    percentile: say "D exceeds the shuffled baseline" only when D is above it), "p_value", "n_P",
    "n_Q", "D_shuffled_values" (all shuffled values, a tuple)}``; D and the baseline are NaN where
    a group has fewer than 2 filters, the baseline also with ``shuffles=0``.
    """
    p, q = _prepared_or_empty(P), _prepared_or_empty(Q)
    out = {
        "D": math.nan,
        "D_shuffled": math.nan,
        "D_shuffled_q95": math.nan,
        "p_value": math.nan,
        "n_P": len(p),
        "n_Q": len(q),
        "D_shuffled_values": (),
    }
    if len(p) < 2 or len(q) < 2:
        return out
    q = q.to(p.device)
    if basis is None:
        basis = pca_basis(torch.cat([p, q]))
    cp, cq = basis.transform(p), basis.transform(q)
    lo, hi = _joint_range(cp, cq) if value_range is None else _as_range(value_range, cp.device)
    out.update(
        _drift_with_null(cp, cq, basis.explained_variance_ratio, lo, hi, bins, shuffles, seed)
    )
    return out


def drift_by_decile(
    P_records: Sequence[ConvRecord],
    Q_records: Sequence[ConvRecord],
    bins: int = 70,
    shuffles: int = 20,
    seed: int = 0,
    basis: str = "global",
) -> pd.DataFrame:
    """Drift D of two groups of models' 3x3 filters per depth decile, with a shuffled-label baseline.

    ``P_records`` (robust) and ``Q_records`` (normal) are the :class:`ConvRecord` s of all models
    of each group; filters are prepared as in :func:`prepare_filters` (sparsity judged per layer).
    The first layer of every model is its own group ``"0"`` (see :func:`decile_labels`).

    ``basis`` picks the coordinates:

    * ``"global"`` (default) is [GK]'s statistic, as their analysis code computes it: one
      9-component PCA fitted on *all* 3x3 filters of both groups over all deciles, its
      explained-variance ratios as the weights, and one histogram range, the min..max over every
      coefficient of all those filters (:func:`coefficient_range`, shared by c0..c8).  Every
      decile's D is computed in these coordinates, so values are comparable across deciles.
    * ``"per_decile"`` is a variant (this library's earlier statistic): basis, weights and
      per-coefficient ranges refitted on each decile's P ∪ Q, as :func:`drift` does by default.
      Each value then answers a slightly different question and the deciles are not on one scale.

    The baseline relabels the filters of a decile between P and Q (group sizes kept) ``shuffles``
    times, in the same coordinates as that decile's D, with a generator seeded by ``seed`` (the
    same seed for every decile); see :func:`drift_with_baseline` for ``D_shuffled``,
    ``D_shuffled_q95`` and ``p_value`` (a permutation test; its smallest value is
    ``1 / (shuffles + 1)``, so p < 0.05 needs ``shuffles >= 20``).

    Rows in depth order; deciles where either group has fewer than two non-sparse 3x3 filters are
    left out.  Columns: :data:`DRIFT_COLUMNS`, i.e. ``decile, variant, D, D_shuffled,
    D_shuffled_q95, excess (= D - D_shuffled), p_value, n_P, n_Q``.  ``table.attrs`` holds
    ``variant``, ``bins``, ``shuffles``, ``seed``, ``shuffled_D`` (decile -> tuple of the shuffled
    values) and, for ``"global"``, ``evr`` (the global basis's explained-variance ratios, a tuple
    of 9) and ``value_range`` (its ``(lo, hi)``); for ``"per_decile"``, ``evr_by_decile``.
    """
    if basis not in DRIFT_BASES:
        raise ValueError(f"unknown basis {basis!r}; choose one of {DRIFT_BASES}")
    if bins < 1:
        raise ValueError("bins must be positive")
    if shuffles < 0:
        raise ValueError("shuffles must be >= 0")
    rank = {d: i for i, d in enumerate(DECILE_LABELS)}
    parts, group, decile = [], [], []
    for g, records in ((0, P_records), (1, Q_records)):
        for r in records:
            if not r.is_3x3:
                continue
            if r.decile not in rank:
                raise ValueError(f"record {r.name!r} has an unknown decile label {r.decile!r}")
            f = _scaled_nonsparse(r.weight)
            parts.append(f)
            group += [g] * len(f)
            decile += [rank[r.decile]] * len(f)
    attrs = {"variant": basis, "bins": bins, "shuffles": shuffles, "seed": seed, "shuffled_D": {}}
    x = torch.cat([f.to(parts[0].device) for f in parts]) if parts else torch.empty(0, 9)
    rows = []
    if len(x) >= 2:
        group_t = torch.as_tensor(group, device=x.device)
        decile_t = torch.as_tensor(decile, device=x.device)
        if basis == "global":
            pca = pca_basis(x)
            coeffs = pca.transform(x)
            lo, hi = coefficient_range(coeffs)
            attrs["evr"] = tuple(pca.explained_variance_ratio.cpu().tolist())
            attrs["value_range"] = (float(lo[0]), float(hi[0]))
        else:
            attrs["evr_by_decile"] = {}
        for k, label in enumerate(DECILE_LABELS):
            in_decile = decile_t == k
            mp, mq = in_decile & (group_t == 0), in_decile & (group_t == 1)
            n_p, n_q = int(mp.sum()), int(mq.sum())
            if n_p < 2 or n_q < 2:
                continue
            if basis == "global":
                cp, cq, evr, lo_k, hi_k = (
                    coeffs[mp],
                    coeffs[mq],
                    pca.explained_variance_ratio,
                    lo,
                    hi,
                )
            else:
                xp, xq = x[mp], x[mq]
                local = pca_basis(torch.cat([xp, xq]))
                cp, cq, evr = (
                    local.transform(xp),
                    local.transform(xq),
                    local.explained_variance_ratio,
                )
                lo_k, hi_k = _joint_range(cp, cq)
                attrs["evr_by_decile"][label] = tuple(evr.cpu().tolist())
            res = _drift_with_null(cp, cq, evr, lo_k, hi_k, bins, shuffles, seed)
            attrs["shuffled_D"][label] = res.pop("D_shuffled_values")
            rows.append({"decile": label, "variant": basis, **res, "n_P": n_p, "n_Q": n_q})
    table = pd.DataFrame(rows, columns=[c for c in DRIFT_COLUMNS if c != "excess"])
    table.insert(DRIFT_COLUMNS.index("excess"), "excess", table["D"] - table["D_shuffled"])
    table.attrs.update(attrs)
    return table


def default_init_std(weight: torch.Tensor) -> float:
    """Std of PyTorch's default ``nn.Conv2d`` initialisation for a weight of this shape.

    ``kaiming_uniform_(a=sqrt(5))`` draws from U(-b, b) with b = 1/sqrt(fan_in), so the std is
    b/sqrt(3) and the excess kurtosis -1.2: the yardstick for "how far has training moved it".
    """
    fan_in = weight.shape[1] * weight.shape[2] * weight.shape[3]
    return 1.0 / math.sqrt(3 * fan_in)


UNIFORM_EXCESS_KURTOSIS = -1.2
