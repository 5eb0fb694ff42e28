"""The distribution drift D between robust and standard models, tested with the model as the unit.

[GK]'s drift D (:func:`robustlens.science.filters.drift`) compares the pooled filters of two
groups of models. Shuffling *filters* between the groups
(:func:`~robustlens.science.filters.drift_with_baseline`) gives the histogram's small-sample
bias, but it treats filters of one model as independent replicates: two standard models of
different seeds drift apart too, and a filter shuffle cannot see that. Here the null
distribution relabels whole **models** between the two groups, within each architecture, so a
D counts as real only when the robust-vs-standard split drifts further than other splits of the
same models into groups of the same sizes. The statistic is D itself in one fixed set of
coordinates (one PCA basis, one histogram range), so the relabelled D share its small-sample
bias, and its *size-corrected* value ``excess = D - mean(relabelled D)`` is what a real difference
adds.

With 2 seeds per method and 2 architectures there are 6 x 6 relabellings and each D has a
mirror image (D is symmetric), so the smallest p is 2/36 and no verdict at 0.05 is possible;
with 4 seeds it is 2/4900.
"""

from __future__ import annotations

import itertools
import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from robustlens.science import filters
from robustlens.science.filters import ConvRecord, PCABasis

#: Beyond this many relabellings the test samples them (seeded), the observed one first.
MAX_RELABELLINGS = 20_000
#: Columns of :func:`model_drift_by_decile`.
COLUMNS = (
    "decile",
    "D",
    "D_shuffled",
    "D_shuffled_q95",
    "excess",
    "p_value",
    "smallest_p",
    "n_P_models",
    "n_Q_models",
    "n_P",
    "n_Q",
)


def _model_counts(
    records: Sequence[ConvRecord], basis: PCABasis, lo: torch.Tensor, hi: torch.Tensor, bins: int
) -> np.ndarray:
    """Histogram counts (9, bins) of one model's scaled, non-sparse 3x3 filters."""
    kept = [r for r in records if r.is_3x3]
    if not kept:
        return np.zeros((9, bins))
    f = filters._prepared_or_empty(kept)
    if len(f) == 0:
        return np.zeros((9, bins))
    idx = filters._bin_index(basis.transform(f), lo.to(f.device), hi.to(f.device), bins)
    return filters._counts(idx, bins).cpu().numpy()


def _drift_of_counts(
    counts_p: np.ndarray, counts_q: np.ndarray, evr: np.ndarray, width: np.ndarray, bins: int
) -> np.ndarray:
    """D for a batch of count pairs (R, 9, bins), as :func:`~robustlens.science.filters.drift` computes it: densities
    with empty bins at float32 eps, renormalised, the symmetric KL weighted by the EVR."""

    def normalise(c):
        n = c.sum(axis=2, keepdims=True)
        dens = c / (n * (width / bins)[None, :, None])
        dens[dens == 0] = float(np.finfo(np.float32).eps)
        return dens / dens.sum(axis=2, keepdims=True)

    dp, dq = normalise(counts_p), normalise(counts_q)
    kl = (dp * np.log(dp / dq)).sum(axis=2) + (dq * np.log(dq / dp)).sum(axis=2)
    return kl @ evr


def _relabellings(is_p: np.ndarray, blocks: np.ndarray, seed: int) -> np.ndarray:
    """Boolean (R, M): every split of the models into "P" and "Q" that keeps each block's number
    of P models, the observed split first; sampled (seeded) beyond :data:`MAX_RELABELLINGS`."""
    per_block = []
    for b in dict.fromkeys(blocks.tolist()):
        members = np.flatnonzero(blocks == b)
        k = int(is_p[members].sum())
        per_block.append((members, k, math.comb(len(members), k)))
    total = math.prod(n for _, _, n in per_block)
    m = len(is_p)
    if total <= MAX_RELABELLINGS:
        rows = []
        for choice in itertools.product(
            *[itertools.combinations(members, k) for members, k, _ in per_block]
        ):
            row = np.zeros(m, bool)
            for chosen in choice:
                row[list(chosen)] = True
            rows.append(row)
        out = np.array(rows)
        observed = np.flatnonzero((out == is_p).all(axis=1))[0]
        out[[0, observed]] = out[[observed, 0]]
        return out
    rng = np.random.default_rng(seed)
    out = np.zeros((MAX_RELABELLINGS, m), bool)
    out[0] = is_p
    for row in range(1, MAX_RELABELLINGS):
        for members, k, _ in per_block:
            out[row, rng.choice(members, k, replace=False)] = True
    return out


def model_drift_test(
    P_models: Mapping[str, Sequence[ConvRecord]],
    Q_models: Mapping[str, Sequence[ConvRecord]],
    basis: PCABasis,
    value_range,
    bins: int = 70,
    block_of: Mapping[str, str] | None = None,
    seed: int = 0,
) -> dict:
    """D of the pooled filters of models ``P_models`` (robust) against ``Q_models`` (standard),
    and its permutation test over whole models.

    ``P_models`` and ``Q_models`` map a model's label to its :class:`~robustlens.science.filters.ConvRecord` s (restrict them
    to one depth decile for a per-decile test); ``basis`` and ``value_range`` are the fixed
    coordinates (:func:`~robustlens.science.filters.pca_basis`, :func:`~robustlens.science.filters.coefficient_range` of all filters of
    the comparison). ``block_of`` maps a label to its architecture: relabellings stay within an
    architecture (none given: one block). The p-value is the share of relabellings whose D is at
    least the observed one (one-sided: D only grows with a difference), the observed one
    included, so it is never 0; ``smallest_p`` is the smallest p the test can give here (the
    share of relabellings that tie the largest D: at least 2, the observed split and its mirror
    when the group sizes allow one).

    Returns ``{"D", "D_shuffled" (mean relabelled D), "D_shuffled_q95", "excess" (D - mean
    relabelled D, the size-corrected drift), "p_value", "smallest_p", "n_relabellings",
    "n_P_models", "n_Q_models", "n_P", "n_Q" (filters)}``; all NaN but the counts where a group
    has fewer than 2 filters or no relabelling other than the observed one exists.
    """
    labels = list(P_models) + list(Q_models)
    if len(set(labels)) != len(labels):
        raise ValueError("a model label is in both groups: each model belongs to one group")
    if block_of is not None and set(labels) - set(block_of):
        missing = sorted(set(labels) - set(block_of))
        raise ValueError(f"block_of has no architecture for {missing[:3]}: give one per model")
    lo, hi = filters._as_range(value_range, torch.device("cpu"))
    lo, hi = lo.cpu(), hi.cpu()
    records = {**P_models, **Q_models}
    counts = np.stack([_model_counts(records[lab], basis, lo, hi, bins) for lab in labels])
    is_p = np.array([lab in P_models for lab in labels])
    n_filters = counts[:, 0, :].sum(axis=1)
    out = {
        "D": math.nan,
        "D_shuffled": math.nan,
        "D_shuffled_q95": math.nan,
        "excess": math.nan,
        "p_value": math.nan,
        "smallest_p": math.nan,
        "n_relabellings": 0,
        "n_P_models": int(is_p.sum()),
        "n_Q_models": int((~is_p).sum()),
        "n_P": int(n_filters[is_p].sum()),
        "n_Q": int(n_filters[~is_p].sum()),
    }
    if out["n_P"] < 2 or out["n_Q"] < 2:
        return out
    blocks = np.array([block_of[lab] if block_of is not None else "" for lab in labels])
    lab = _relabellings(is_p, blocks, seed)
    flat = counts.reshape(len(labels), -1)
    total = flat.sum(axis=0)
    counts_p = (lab.astype(float) @ flat).reshape(len(lab), 9, bins)
    counts_q = total.reshape(1, 9, bins) - counts_p
    # A relabelling that leaves a coefficient with no filter in one group has no D.
    valid = (counts_p.sum(axis=2) > 0).all(axis=1) & (counts_q.sum(axis=2) > 0).all(axis=1)
    evr = basis.explained_variance_ratio.detach().cpu().double().numpy()
    width = filters._bin_width(lo, hi).numpy()
    d = np.full(len(lab), math.nan)
    d[valid] = _drift_of_counts(counts_p[valid], counts_q[valid], evr, width, bins)
    null = d[valid]
    out["n_relabellings"] = int(valid.sum())
    if out["n_relabellings"] < 2:
        out["D"] = float(d[0])
        return out
    tol = 1e-9 * (1 + abs(float(d[0])))
    top = float(null.max())
    out.update(
        D=float(d[0]),
        D_shuffled=float(null.mean()),
        D_shuffled_q95=float(np.quantile(null, 0.95)),
        excess=float(d[0] - null.mean()),
        p_value=float(np.mean(null >= d[0] - tol)),
        smallest_p=float(np.mean(null >= top - 1e-9 * (1 + top))),
    )
    return out


def model_drift_by_decile(
    P_models: Mapping[str, Sequence[ConvRecord]],
    Q_models: Mapping[str, Sequence[ConvRecord]],
    bins: int = 70,
    block_of: Mapping[str, str] | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """:func:`model_drift_test` per depth decile, in [GK]'s global coordinates (one PCA basis and
    one histogram range fitted on every 3x3 filter of both groups, as
    :func:`~robustlens.science.filters.drift_by_decile` with ``basis="global"``). Rows in depth order, deciles where a
    group has fewer than 2 filters left out; columns :data:`COLUMNS`. ``table.attrs`` holds
    ``evr`` and ``value_range``."""
    every = [r for recs in (*P_models.values(), *Q_models.values()) for r in recs if r.is_3x3]
    pca = filters.pca_basis(every)
    lo, hi = filters.coefficient_range(pca.transform(filters.prepare_filters(every)))
    rows = []
    for label in filters.DECILE_LABELS:

        def pick(group):
            return {m: [r for r in recs if r.decile == label] for m, recs in group.items()}

        res = model_drift_test(pick(P_models), pick(Q_models), pca, (lo, hi), bins, block_of, seed)
        if res["n_P"] >= 2 and res["n_Q"] >= 2:
            rows.append({"decile": label, **res})
    table = pd.DataFrame(rows, columns=list(COLUMNS) + ["n_relabellings"])[list(COLUMNS)]
    table.attrs.update(
        evr=tuple(pca.explained_variance_ratio.cpu().tolist()),
        value_range=(float(lo[0]), float(hi[0])),
    )
    return table


__all__ = ["COLUMNS", "MAX_RELABELLINGS", "model_drift_by_decile", "model_drift_test"]
