"""Figures and small tables for the filter chapters (the zoo seen through its conv filters).

Built on the shared style of :mod:`robustlens.book.figures` (call ``figures.set_style()`` once; colours
come from ``names.RECIPE_COLORS``).  Inputs are the tidy tables of :mod:`robustlens.science.filters`
(``model, layer, depth, decile, metric, variant, value, n_filters``) with extra key columns
such as ``arch``, ``recipe`` and ``seed``; every function takes the column names it groups by,
so other groupings (e.g. a chapter's own ``hue``) work too.

Nothing here computes a filter metric: that is :mod:`robustlens.science.filters`.  The helpers only
aggregate already measured values (means, spreads, counts of directions) and draw them.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from robustlens.book.names import recipe_color
from robustlens.science import filters

__all__ = [
    "pick_layers",
    "legend_above",
    "decile_summary",
    "occupied_deciles",
    "by_decile",
    "weight_density_grid",
    "stat_vs_depth",
]

_EMPTY_SHADE = "#EBEBEB"
# Line styles cycled over the hue values, so that lines lying on top of each other stay visible.
_STYLES = ("-", "--", "-.", ":")


# --------------------------------------------------------------------------- small utilities


def pick_layers(n: int, picks: Sequence[str | int] = ("first", "middle", "last")) -> list[int]:
    """Indices into ``n`` layers (forward order) for ``"first"``, ``"middle"``, ``"last"`` or ints."""
    if n < 1:
        raise ValueError("no layers to pick from")
    named = {"first": 0, "middle": (n - 1) // 2, "last": n - 1}
    out = []
    for p in picks:
        if isinstance(p, str):
            if p not in named:
                raise ValueError(
                    f"unknown layer pick {p!r}: use 'first', 'middle', 'last' or an index"
                )
            out.append(named[p])
        else:
            out.append(int(p) % n)
    return out


def _label(mapping: Mapping | None, key) -> str:
    return str((mapping or {}).get(key, key))


def _colour(key, colors: Mapping | None) -> str:
    return (colors or {}).get(key) or recipe_color(key)


# --------------------------------------------------------------------------- tables


def decile_summary(
    table: pd.DataFrame, keys: Sequence[str] = ("arch", "recipe", "seed")
) -> pd.DataFrame:
    """Per model and depth decile the filter-count-weighted mean of each metric, with ``keys`` kept.

    A thin wrapper of :func:`robustlens.science.filters.aggregate_by_decile` (weights = ``n_filters``,
    never string lengths) that carries the model's key columns along.
    """
    agg = filters.aggregate_by_decile(table, weighted=True)
    keys = [k for k in keys if k in table.columns]
    if keys:
        ids = table[["model", *keys]].drop_duplicates("model")
        agg = agg.merge(ids, on="model", how="left")
    return agg


def occupied_deciles(table: pd.DataFrame, metrics: Sequence[str] | None = None) -> list[str]:
    """The depth deciles (in depth order) with at least one non-NaN value of ``metrics``."""
    t = table if metrics is None else table[table["metric"].isin(metrics)]
    present = set(t.loc[t["value"].notna(), "decile"])
    return [d for d in filters.DECILE_LABELS if d in present]


# --------------------------------------------------------------------------- figures


def _decile_axis(ax, empty: Sequence[str], label_empty: bool = True) -> None:
    labels = list(filters.DECILE_LABELS)
    for d in empty:
        i = labels.index(d)
        ax.axvspan(i - 0.5, i + 0.5, color=_EMPTY_SHADE, zorder=0, linewidth=0)
        if label_empty:
            ax.text(
                i,
                0.5,
                "no layer",
                rotation=90,
                ha="center",
                va="center",
                fontsize="small",
                color="#8C8C8C",
                transform=ax.get_xaxis_transform(),
            )
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=45, ha="right", fontsize="small")
    ax.set_xlim(-0.6, len(labels) - 0.4)
    ax.set_xlabel('conv depth decile ("0" = first layer)')


def by_decile(
    summary: pd.DataFrame,
    metrics: Sequence[str],
    names: Mapping[str, str] | None = None,
    hue: str = "recipe",
    hue_order: Sequence | None = None,
    hue_names: Mapping | None = None,
    colors: Mapping | None = None,
    ylims: Mapping[str, tuple] | None = None,
    ncols: int | None = None,
    panel_width: float = 4.4,
    panel_height: float = 3.2,
):
    """One panel per metric: its value per depth decile, one line per ``hue`` value.
    Drawn for chapter 02's figures of :ref:`raw <fig-gk-deciles>` and
    :ref:`BatchNorm-folded <fig-gk-deciles-folded>` filters.

    ``summary`` has one row per model, decile and metric (see :func:`decile_summary`); each point
    is the mean over the models of that ``hue`` value that have a layer in the decile, and its
    error bar ± one standard deviation over them (no bar for a single model).  All eleven depth
    groups of :data:`robustlens.science.filters.DECILE_LABELS` are on the x-axis; deciles where no model
    has a layer are shaded and marked "no layer".  The points of different ``hue`` values are
    dodged sideways a little so that their bars do not hide each other.  ``ncols`` panels per row
    (default: all in one row); with one column the panels share the x-axis.
    """
    hues = list(hue_order) if hue_order is not None else list(dict.fromkeys(summary[hue]))
    labels = list(filters.DECILE_LABELS)
    ncols = len(metrics) if ncols is None else max(1, min(ncols, len(metrics)))
    nrows = -(-len(metrics) // ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(panel_width * ncols, panel_height * nrows),
        squeeze=False,
        sharex=ncols == 1,
    )
    for ax in axes.flat[len(metrics) :]:
        ax.axis("off")
    width = 0.5
    offsets = np.linspace(-width / 2, width / 2, len(hues)) if len(hues) > 1 else [0.0]
    for ax, metric in zip(axes.flat, metrics):
        sub = summary[(summary["metric"] == metric) & summary["value"].notna()]
        empty = [d for d in labels if d not in set(sub["decile"])]
        _decile_axis(ax, empty)
        if ncols == 1 and ax is not axes.flat[len(metrics) - 1]:
            ax.set_xlabel("")
            ax.tick_params(labelbottom=False)
        for k, (off, h) in enumerate(zip(offsets, hues)):
            part = sub[sub[hue] == h]
            if part.empty:
                continue
            stats = part.groupby("decile")["value"].agg(["mean", "std", "count"]).reindex(labels)
            x = np.arange(len(labels)) + off
            ax.errorbar(
                x,
                stats["mean"],
                yerr=stats["std"].fillna(0),
                color=_colour(h, colors),
                marker="o",
                markersize=4,
                linewidth=1.3,
                linestyle=_STYLES[k % len(_STYLES)],
                capsize=2.5,
                elinewidth=1,
                label=_label(hue_names, h),
            )
        ax.set_title(_label(names, metric))
        if ylims and metric in ylims:
            ax.set_ylim(*ylims[metric])  # (low, None) keeps the top automatic
    handles, leg_labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(
            handles,
            leg_labels,
            loc="outside upper center",
            ncols=len(handles),
            fontsize="small",
            frameon=False,
        )
    return fig


def _density_line(w: np.ndarray, lim: float, kind: str, bins: int, max_points: int = 20_000):
    """x, y of a density estimate of ``w`` on [-lim, lim]: Gaussian KDE or histogram."""
    if kind == "hist":
        n_bins = bins or int(np.clip(2 * np.sqrt(w.size), 15, 61))
        counts, edges = np.histogram(
            np.clip(w, -lim, lim), bins=n_bins, range=(-lim, lim), density=True
        )
        return np.repeat(edges, 2)[1:-1], np.repeat(counts, 2)
    if kind != "kde":
        raise ValueError(f"unknown density kind {kind!r}: use 'kde' or 'hist'")
    from scipy.stats import gaussian_kde

    if (
        w.size > max_points
    ):  # a fixed, evenly spaced subsample keeps the KDE cheap and deterministic
        w = np.sort(w)[np.linspace(0, w.size - 1, max_points).astype(int)]
    x = np.linspace(-lim, lim, 301)
    if np.ptp(w) == 0:
        return x, np.zeros_like(x)
    return x, gaussian_kde(w)(x)


def weight_density_grid(
    weights: Mapping[str, Mapping[str, Sequence[tuple[str, np.ndarray]]]],
    picks: Sequence[str | int] = ("first", "middle", "last"),
    row_names: Mapping | None = None,
    hue_names: Mapping | None = None,
    colors: Mapping | None = None,
    clip_quantile: float = 0.999,
    kind: str = "kde",
    bins: int | None = None,
    panel_width: float = 3.1,
    panel_height: float = 2.9,
):
    """Weight densities: rows = outer keys (e.g. architectures), columns = picked layers.
    Drawn for :ref:`chapter 02's figure <fig-zoo-weight-densities>`.

    ``weights[row][hue]`` is that model's ``(layer name, flat weights)`` list in forward order
    (as in :func:`robustlens.book.figures.weight_distributions`); every ``hue`` of a row must have the
    same layers.  Each panel shows one layer (``picks``: ``"first"``, ``"middle"``, ``"last"`` or
    indices) with one density line per ``hue``: a Gaussian kernel density estimate (``kind="kde"``,
    on at most 20,000 evenly spaced order statistics of big layers) or a histogram
    (``kind="hist"``, ``bins`` bins, by default about twice the square root of the layer's size).
    The x-range is cut at the ``clip_quantile`` of ``|w|`` over the panel's models.
    """
    rows = list(weights)
    fig, axes = plt.subplots(
        len(rows),
        len(picks),
        figsize=(panel_width * len(picks), panel_height * len(rows)),
        squeeze=False,
    )
    for i, row in enumerate(rows):
        models = weights[row]
        first = next(iter(models.values()))
        for j, (pick, idx) in enumerate(zip(picks, pick_layers(len(first), picks))):
            ax = axes[i, j]
            layer = first[idx][0]
            lim = max(
                np.quantile(np.abs(layers[idx][1]), clip_quantile) for layers in models.values()
            )
            lim = lim if lim > 0 else 1.0
            for k, (h, layers) in enumerate(models.items()):
                x, y = _density_line(np.asarray(layers[idx][1], dtype=float), lim, kind, bins)
                ax.plot(
                    x,
                    y,
                    linewidth=1.4,
                    linestyle=_STYLES[k % len(_STYLES)],
                    color=_colour(h, colors),
                    label=_label(hue_names, h),
                )
            where = f"{pick} conv" if isinstance(pick, str) else f"conv #{idx}"
            ax.set_title(
                f"{_label(row_names, row)}, {where}\n{layer} ({first[idx][1].size:,} weights)",
                fontsize="medium",
            )
            ax.set_xlim(-lim, lim)
            ax.set_ylim(bottom=0)
            # Five symmetric ticks at most: a narrow panel's default ticks run into each other.
            ax.xaxis.set_major_locator(MaxNLocator(4, symmetric=True))
            if i == len(rows) - 1:
                ax.set_xlabel("weight value")
            if j == 0:
                ax.set_ylabel("density")
    legend_above(fig, axes[0, 0])
    return fig


def stat_vs_depth(
    table: pd.DataFrame,
    metrics: Sequence[str],
    names: Mapping[str, str] | None = None,
    col: str = "arch",
    hue: str = "recipe",
    col_order: Sequence | None = None,
    col_names: Mapping | None = None,
    hue_order: Sequence | None = None,
    hue_names: Mapping | None = None,
    colors: Mapping | None = None,
    x: str = "depth",
    panel_width: float = 3.1,
    panel_height: float = 2.3,
):
    """Small multiples: rows = ``metrics``, columns = ``col`` values, one line per ``hue`` value.
    Drawn for :ref:`chapter 02's figure <fig-zoo-stats-depth>`.

    Each point is a layer at its normalised depth ``x``: the mean over the table's other rows at
    that point (e.g. the seeds), with a bar from their minimum to their maximum.
    """
    cols = list(col_order) if col_order is not None else list(dict.fromkeys(table[col]))
    hues = list(hue_order) if hue_order is not None else list(dict.fromkeys(table[hue]))
    fig, axes = plt.subplots(
        len(metrics),
        len(cols),
        figsize=(panel_width * len(cols), panel_height * len(metrics)),
        squeeze=False,
        sharex=True,
    )
    for i, metric in enumerate(metrics):
        for j, c in enumerate(cols):
            ax = axes[i, j]
            sub = table[(table["metric"] == metric) & (table[col] == c)]
            for k, h in enumerate(hues):
                part = sub[sub[hue] == h]
                if part.empty:
                    continue
                s = part.groupby(x)["value"].agg(["mean", "min", "max"]).sort_index()
                err = np.vstack([s["mean"] - s["min"], s["max"] - s["mean"]])
                ax.errorbar(
                    s.index,
                    s["mean"],
                    yerr=err,
                    color=_colour(h, colors),
                    marker="o",
                    markersize=3.5,
                    linewidth=1.2,
                    linestyle=_STYLES[k % len(_STYLES)],
                    capsize=2,
                    elinewidth=0.9,
                    label=_label(hue_names, h),
                )
            if i == 0:
                ax.set_title(_label(col_names, c))
            if j == 0:
                ax.set_ylabel(_label(names, metric), fontsize="small")
            if i == len(metrics) - 1:
                ax.set_xlabel("normalised conv depth", fontsize="small")
            ax.tick_params(labelsize="x-small")
    legend_above(fig, axes[0, 0])
    return fig


def legend_above(fig, ax) -> None:
    """One legend for a grid of panels, above them, built from the panel ``ax``'s lines."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="outside upper center",
        ncols=len(handles),
        fontsize="small",
        frameon=False,
    )
