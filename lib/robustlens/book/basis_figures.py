"""Figures (and the small tables they are drawn from) for the chapter on filter bases and drift.

Same contract as :mod:`robustlens.book.figures`: arrays or tables in, a matplotlib figure out, no backend
chosen, the book's colours (standard = blue, robust = red). It measures nothing: the drift
lives in :mod:`robustlens.science.filters`, the first-stage activations in
:mod:`robustlens.science.activations`.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from robustlens.book import names
from robustlens.science import filters

BASIS_CMAP = "RdBu_r"  # diverging: negative blue, positive red, zero white


def group_color(name: str) -> str:
    """Colour of a filter group ("all", "robust", "standard") or of a training recipe."""
    return names.GROUP_COLORS.get(name, names.recipe_color(name))


# --------------------------------------------------------------------------- PCA basis


def basis_images(bases: Mapping[str, filters.PCABasis]):
    """One row per filter group: its nine principal components as 3x3 images, EVR below each.
    Drawn for :ref:`chapter 03's figure of the basis filters <fig-03-basis-images>`.

    All panels share one symmetric colour scale (the components are unit vectors).
    """
    names = list(bases)
    fig, axes = plt.subplots(len(names), 9, figsize=(8.0, 0.95 * len(names) + 0.45), squeeze=False)
    vmax = max(float(b.components.abs().max()) for b in bases.values())
    im = None
    for r, name in enumerate(names):
        b = bases[name]
        comps = b.components.detach().cpu().numpy().reshape(9, 3, 3)
        evr = b.explained_variance_ratio.detach().cpu().numpy()
        for i in range(9):
            ax = axes[r, i]
            im = ax.imshow(comps[i], cmap=BASIS_CMAP, vmin=-vmax, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            ax.set_xlabel(f"{evr[i]:.3f}", fontsize="small", labelpad=2)
            if r == 0:
                ax.set_title(f"$v_{i}$")
        axes[r, 0].set_ylabel(
            name, rotation=0, ha="right", va="center", color=group_color(name), fontweight="bold"
        )
    fig.colorbar(im, ax=axes, shrink=0.85, aspect=15, label="weight")
    return fig


def cumulative_evr(bases: Mapping[str, filters.PCABasis]):
    """Cumulative explained-variance ratio against the number of components, one line per group.
    Drawn for :ref:`chapter 03's cumulative EVR figure <fig-03-cumulative-evr>`.

    The dotted diagonal is what nine equally important directions (isotropic filters) would give.
    """
    fig, ax = plt.subplots(figsize=(5.4, 3.5))
    k = np.arange(1, 10)
    ax.plot(k, k / 9, ls=":", color="grey", label="isotropic (k/9)")
    for name, b in bases.items():
        evr = b.explained_variance_ratio.detach().cpu().numpy()
        ax.plot(
            k,
            np.cumsum(evr),
            marker="o",
            color=group_color(name),
            label=f"{name} (first: {evr[0]:.3f})",
        )
    ax.set_xlabel("number of principal components")
    ax.set_ylabel("cumulative explained variance")
    ax.set_xticks(k)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize="small", loc="lower right")
    return fig


def coefficient_density_grid(
    coeffs: Mapping[str, torch.Tensor], evr=None, bins: int = 70, value_range=None
):
    """Histogram densities of the PCA coefficients c0..c8 of two filter groups, one panel each.
    Drawn for :ref:`chapter 03's coefficient figure <fig-03-coefficients>`.

    ``coeffs`` maps two group names (first P, then Q) to their (N, 9) coefficients in one shared
    basis; the densities are :func:`robustlens.science.filters.coefficient_densities` (``bins`` equal bins
    over ``value_range``, by default each coefficient's joint range: the very histograms the drift
    with the same arguments uses).  ``evr`` labels the panels.
    """
    (name_p, cp), (name_q, cq) = list(coeffs.items())
    cp, cq = torch.as_tensor(cp).double().cpu(), torch.as_tensor(cq).double().cpu()
    dp, dq = filters.coefficient_densities(cp, cq, bins, value_range)
    if value_range is None:
        lo = torch.minimum(cp.amin(0), cq.amin(0)).numpy()
        hi = torch.maximum(cp.amax(0), cq.amax(0)).numpy()
    else:
        lo, hi = (v.cpu().numpy() for v in filters._as_range(value_range, "cpu"))
    fig, axes = plt.subplots(3, 3, figsize=(8.8, 6.6), squeeze=False)
    for i, ax in enumerate(axes.flat):
        edges = np.linspace(lo[i], hi[i], bins + 1)
        for name, dens in ((name_p, dp), (name_q, dq)):
            ax.stairs(dens[i].numpy(), edges, color=group_color(name), lw=1.5, label=name)
        title = f"$c_{i}$" + (f" (EVR {float(evr[i]):.3f})" if evr is not None else "")
        ax.set_title(title)
        if i % 3 == 0:
            ax.set_ylabel("share of filters")
        if i >= 6:
            ax.set_xlabel("coefficient value")
    axes.flat[0].legend(fontsize="small", loc="upper left")
    return fig


# --------------------------------------------------------------------------- drift tables


def drift_decile_bars(
    tables: Mapping[str, pd.DataFrame],
    reference: Mapping[str, float] | None = None,
    reference_label: str = "[GK]",
    log: bool = True,
):
    """Bars of D per depth decile, one colour per source table, a black tick for its null baseline.
    Drawn for chapter 03's figures of :ref:`the zoo's drift <fig-03-drift-deciles>` and of
    :ref:`the zoo, RobustBench and [GK] side by side <fig-03-drift-compare>`.

    The tick marks the mean D of the null (``D_shuffled``: whole models relabelled in a
    :func:`~robustlens.science.drift_test.model_drift_by_decile` table, filters shuffled in a
    :func:`~robustlens.science.filters.drift_by_decile` one); where the table has
    ``D_shuffled_q95`` a thin black line runs from it up to that 95th percentile (the table's
    ``p_value`` is the permutation test).  ``tables`` maps a source label (e.g. "book zoo (cpu)")
    to such a table;
    ``reference`` optionally maps decile labels to published values, drawn as grey diamonds.
    With ``log`` the y axis is logarithmic (D > 0 always: empty bins get a tiny mass), so a large
    first-layer value does not flatten the other deciles.
    """
    present = [
        d
        for d in filters.DECILE_LABELS
        if any(d in set(t["decile"]) for t in tables.values()) or (reference and d in reference)
    ]
    x = np.arange(len(present))
    n = max(len(tables), 1)
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(min(8.8, max(5.5, 0.7 * len(present) + 2.5)), 3.9))
    for j, (label, t) in enumerate(tables.items()):
        t = t.set_index("decile").reindex(present)
        xs = x - 0.4 + width * (j + 0.5)
        color = names.SOURCE_COLORS[j % len(names.SOURCE_COLORS)]
        ax.bar(xs, t["D"], width=width * 0.92, color=color, label=label)
        ax.scatter(
            xs,
            t["D_shuffled"],
            marker="_",
            s=max(60, 260 / n),
            linewidths=2,
            color="black",
            zorder=3,
            label="mean D with the labels relabelled" if j == 0 else None,
        )
        if "D_shuffled_q95" in t:
            ax.vlines(xs, t["D_shuffled"], t["D_shuffled_q95"], color="black", lw=1, zorder=3)
    if reference:
        ref = [reference.get(d, np.nan) for d in present]
        ax.scatter(
            x,
            ref,
            marker="D",
            s=40,
            color="grey",
            edgecolor="black",
            zorder=4,
            label=reference_label,
        )
    if log:
        ax.set_yscale("log")
    ax.set_xticks(x)
    ax.set_xticklabels(["first layer" if d == "0" else d for d in present], rotation=30, ha="right")
    ax.set_xlabel("depth decile (normalised conv depth)")
    ax.set_ylabel("drift D, robust vs standard" + (" (log)" if log else ""))
    fig.legend(loc="outside lower center", ncol=min(3, n + 1 + bool(reference)), fontsize="small")
    return fig


# --------------------------------------------------------------------------- filters as images


def _mosaic(weight: torch.Tensor, n_max: int) -> tuple[np.ndarray, int, int]:
    """Up to ``n_max`` 3x3 kernels of a conv weight tiled in a grid with one-pixel NaN gaps."""
    k = weight.detach().float().cpu().reshape(-1, weight.shape[-2], weight.shape[-1]).numpy()
    n = min(n_max, len(k))
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    kh, kw = k.shape[1:]
    grid = np.full((rows * (kh + 1) - 1, cols * (kw + 1) - 1), np.nan)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[r * (kh + 1) : r * (kh + 1) + kh, c * (kw + 1) : c * (kw + 1) + kw] = k[i]
    return grid, n, len(k)


def layer_filters(panels: Mapping[tuple[str, str], tuple[str, torch.Tensor]], n_max: int = 64):
    """A grid of kernel mosaics: rows are layers, columns models.
    Drawn for :ref:`chapter 03's first and deepest layer figure <fig-03-layer-filters>`.

    ``panels`` maps ``(row label, column label)`` to ``(layer name, conv weight)``.  Each panel
    shows the first ``n_max`` 2-D kernels (output channel major, then input channel) on a
    symmetric colour scale set by that layer's largest ``|w|``, so a sparse kernel shows as white.
    """
    rows = list(dict.fromkeys(r for r, _ in panels))
    cols = list(dict.fromkeys(c for _, c in panels))
    fig, axes = plt.subplots(
        len(rows), len(cols), figsize=(3.6 * len(cols), 3.7 * len(rows)), squeeze=False
    )
    for (r, c), (layer, w) in panels.items():
        ax = axes[rows.index(r), cols.index(c)]
        grid, n, total = _mosaic(w, n_max)
        vmax = float(w.detach().abs().max()) or 1.0
        cmap = plt.get_cmap(BASIS_CMAP).copy()
        cmap.set_bad("white")
        ax.imshow(grid, cmap=cmap, vmin=-vmax, vmax=vmax)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        ax.set_title(f"{c}: {r}\n{layer}, {n} of {total:,} kernels", fontsize="small")
    return fig


def _show_image(ax, img: torch.Tensor, title: str) -> None:
    img = img.detach().float().cpu()
    if img.shape[0] == 1:
        ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
    ax.set_title(title, fontsize="small")


def activation_maps(
    inputs: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    maps: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    eps: float,
    n_channels: int = 6,
):
    """First-stage feature maps of one image, clean and attacked, for each model.
    Drawn for :ref:`chapter 03's feature-map figure <fig-03-activations>`.

    ``inputs[model] = (x, x_adv)`` (C, H, W) and ``maps[model] = (a, a_adv)`` (K, h, w).  Per model
    three rows: clean, attacked, ``|change|``; the first column shows the input, the attacked input
    and the perturbation (diverging, ±eps).  The ``n_channels`` channels with the largest mean
    activation on the clean image are shown, all on one colour scale per model.
    """
    models = list(maps)
    fig, axes = plt.subplots(
        3 * len(models),
        n_channels + 1,
        figsize=(1.0 * (n_channels + 1) + 1.0, 1.05 * 3 * len(models)),
        squeeze=False,
    )
    for m, name in enumerate(models):
        x, x_adv = inputs[name]
        a, a_adv = (t.detach().float().cpu() for t in maps[name])
        order = a.abs().mean(dim=(1, 2)).argsort(descending=True)[:n_channels].tolist()
        vmax = float(torch.maximum(a[order].abs().max(), a_adv[order].abs().max())) or 1.0
        lo = 0.0 if float(a.min()) >= 0 and float(a_adv.min()) >= 0 else -vmax
        cmap = "magma" if lo == 0 else BASIS_CMAP
        rows = [(a, "clean"), (a_adv, "PGD"), ((a_adv - a).abs(), "|change|")]
        for j, (t, label) in enumerate(rows):
            r = 3 * m + j
            for c, ch in enumerate(order):
                ax = axes[r, c + 1]
                ax.imshow(
                    t[ch].numpy(),
                    cmap="magma" if label == "|change|" else cmap,
                    vmin=0 if label == "|change|" else lo,
                    vmax=vmax,
                )
                if r == 0:
                    ax.set_title(f"channel {ch}", fontsize="small")
            axes[r, 1].set_ylabel(
                f"{name}\n{label}", rotation=0, ha="right", va="center", fontsize="small"
            )
        _show_image(axes[3 * m, 0], x, "input")
        _show_image(axes[3 * m + 1, 0], x_adv, "attacked")
        d = (x_adv - x).detach().float().cpu()
        axes[3 * m + 2, 0].imshow(d.mean(0).numpy(), cmap=BASIS_CMAP, vmin=-eps, vmax=eps)
        axes[3 * m + 2, 0].set_title("perturbation", fontsize="small")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    return fig


def activation_change_bars(changes: pd.DataFrame):
    """Grouped bars: relative activation change (column ``change``) per stage and model (``model``).
    Drawn for :ref:`chapter 03's activation-change figure <fig-03-activation-change>`.
    """
    stages = list(dict.fromkeys(changes["stage"]))
    models = list(dict.fromkeys(changes["model"]))
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    x = np.arange(len(stages))
    width = 0.8 / len(models)
    for j, m in enumerate(models):
        sub = changes[changes["model"] == m].set_index("stage").reindex(stages)
        recipe = sub["recipe"].iloc[0] if "recipe" in sub else m
        ax.bar(
            x - 0.4 + width * (j + 0.5),
            sub["change"],
            width=width * 0.92,
            color=names.recipe_color(recipe),
            label=m,
        )
    ax.set_xticks(x)
    ax.set_xticklabels(stages)
    ax.set_ylabel("mean |Δa| / mean |a|")
    ax.set_xlabel("point of the first stage")
    fig.legend(loc="outside right center", fontsize="small")
    return fig


# --------------------------------------------------------------------------- per-decile metrics


def decile_profiles(
    agg: pd.DataFrame,
    metrics: Sequence[str],
    titles: Mapping[str, str] | None = None,
    highlight: str | None = None,
    colors: Mapping[str, str] | None = None,
):
    """One panel per metric: its per-decile value (``aggregate_by_decile`` table) for every model.
    Drawn for :ref:`chapter 03's ResNet-18 figure <fig-03-resnet18-deciles>`.

    ``titles`` maps a metric to its panel title (e.g. :data:`robustlens.book.names.STATISTICS`).
    ``highlight`` names one model drawn thick and black (e.g. an external reference model); the
    others get ``colors`` or the default cycle.
    """
    present = [d for d in filters.DECILE_LABELS if d in set(agg["decile"])]
    x = {d: i for i, d in enumerate(present)}
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.0 * len(metrics), 3.4), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        sub = agg[agg["metric"] == metric]
        for i, (model, part) in enumerate(sub.groupby("model", sort=False)):
            part = part.sort_values("decile", key=lambda s: s.map(x))
            style = (
                dict(color="black", lw=2.4, marker="o", zorder=3)
                if model == highlight
                else dict(
                    color=(colors or {}).get(
                        model, names.SOURCE_COLORS[i % len(names.SOURCE_COLORS)]
                    ),
                    lw=1.2,
                    marker=".",
                    alpha=0.85,
                )
            )
            ax.plot(part["decile"].map(x), part["value"], label=model, **style)
        ax.set_xticks(range(len(present)))
        ax.set_xticklabels(
            ["first" if d == "0" else d for d in present], rotation=45, ha="right", fontsize="small"
        )
        ax.set_title((titles or {}).get(metric, metric))
        ax.set_xlabel("depth decile")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="outside lower center", ncol=min(3, len(labels)), fontsize="small"
    )
    return fig
