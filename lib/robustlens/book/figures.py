"""Figure helpers with one shared style: a table or arrays in, a matplotlib figure out.

Nothing here picks a backend: notebooks run under the inline backend so that myst-nb ``glue``
stores real PNGs (a forced Agg backend would make it store ``<Figure ...>`` text).
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from robustlens.book.names import recipe_color


def set_style() -> None:
    # Figures are drawn 6.5-9.5 in wide and shown at the page's width (about 7 in): this scale
    # keeps tick labels near 9 pt as rendered.
    sns.set_theme(style="whitegrid", context="notebook", font_scale=1.15)
    plt.rcParams.update(
        {
            "figure.dpi": 110,
            "savefig.dpi": 110,
            "axes.titlesize": "medium",
            "figure.constrained_layout.use": True,
        }
    )


def weight_distributions(
    weights: dict[str, list[tuple[str, np.ndarray]]],
    recipes: dict[str, str] | None = None,
    clip_quantile: float = 0.999,
    ncols: int = 3,
):
    """One panel per conv layer: density of that layer's weights, one line per model.
    Drawn for :ref:`chapter 01's figure <fig-01-weight-distributions>`.

    ``weights`` maps a model label to its ``(layer name, flat weights)`` list in forward order;
    ``recipes`` maps the label to its training recipe (for the colour). The x-range of each panel
    is cut at the ``clip_quantile`` of ``|w|`` so that a few large weights do not flatten the rest.
    """
    labels = list(weights)
    n_layers = len(weights[labels[0]])
    nrows = math.ceil(n_layers / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.1 * ncols, 2.6 * nrows), squeeze=False)
    for i in range(nrows * ncols):
        ax = axes.flat[i]
        if i >= n_layers:
            ax.axis("off")
            continue
        lim = max(np.quantile(np.abs(weights[lab][i][1]), clip_quantile) for lab in labels)
        bins = np.linspace(-lim, lim, 81)
        for lab in labels:
            w = weights[lab][i][1]
            recipe = (recipes or {}).get(lab, lab)
            ax.hist(
                np.clip(w, -lim, lim),
                bins=bins,
                density=True,
                histtype="step",
                linewidth=1.6,
                color=recipe_color(recipe),
                label=lab,
            )
        ax.set_title(f"conv {i + 1} ({len(weights[labels[0]][i][1]):,} weights)")
        ax.xaxis.set_major_locator(plt.MaxNLocator(4))  # room for "-0.05" at this panel width
        ax.set_xlabel("weight value")
        ax.set_ylabel("density")
    axes.flat[0].legend(loc="upper right", fontsize="small")
    return fig


def stat_by_layer(
    table: pd.DataFrame,
    metrics: list[str],
    names: dict[str, str] | None = None,
    hue: str = "model",
    x: str = "depth",
):
    """Small multiples: each per-layer statistic against conv depth, one line per model.
    Drawn for :ref:`chapter 01's figure <fig-01-stats-by-layer>`.
    """
    # At most three panels a row, so that each stays readable at the page's width.
    ncols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(9.0, 2.9 * nrows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        sub = table[table["metric"] == metric]
        for model, part in sub.groupby(hue, sort=False):
            recipe = part["recipe"].iloc[0] if "recipe" in part else model
            ax.plot(part[x], part["value"], marker="o", color=recipe_color(recipe), label=model)
        ax.set_title((names or {}).get(metric, metric))
        ax.set_xlabel("normalised conv depth")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if len(metrics) < nrows * ncols:  # the legend takes the first empty panel
        spare = axes.flat[len(metrics)]
        spare.axis("off")
        spare.legend(handles, labels, loc="center")
        for ax in list(axes.flat)[len(metrics) + 1 :]:
            ax.axis("off")
    else:
        axes.flat[0].legend(fontsize="small")
    return fig
