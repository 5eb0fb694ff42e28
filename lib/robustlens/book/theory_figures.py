"""Figures (and the small summaries they are drawn from) for the chapter that tests whether
adversarial training is input-gradient regularisation.

Same contract as :mod:`robustlens.book.figures`: tables in, a matplotlib figure out, no backend chosen,
the book's colours for the training methods.  The few table helpers here only reshape or rank
values that :mod:`robustlens.science.theory` and :mod:`robustlens.science.filters` computed; they hold no
training, attack or metric code; what the chapter concludes from them is decided in
:mod:`robustlens.book.claims`.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from robustlens.book import claims, names
from robustlens.science import frontier as frontier_points

# --------------------------------------------------------------------------- names and colours


def method_of(spec: dict, reference_eps: float | None = None) -> str:
    """A short, human name of a zoo model's training method, e.g. ``"grad-pen l1 λ=0.1"``."""
    recipe, params = spec["recipe"], spec.get("params", {})
    if recipe == "gradpen":
        return f"grad-pen {params.get('norm', 'l1')} λ={params['lam']:g}"
    name = names.recipe(recipe)
    eps = spec.get("recipe_settings", {}).get("eps")  # only recipes that attack have one
    if (
        recipe != "standard"
        and reference_eps is not None
        and eps is not None
        and not math.isclose(eps, reference_eps)
    ):
        name += f" ε={eps:.3g}"
    return name


def method_color(spec: dict) -> str:
    if spec["recipe"] == "gradpen":
        return names.PENALTY_COLORS[spec.get("params", {}).get("norm", "l1")]
    return names.recipe_color(spec["recipe"])


def describe_entry(entry, reference_eps: float) -> dict:
    """Labels of a zoo entry for this chapter's tables: ``model`` (arch, method, seed), ``method``,
    ``arch``, ``recipe``, ``seed``, ``group`` (which sweep it belongs to), ``value`` (its λ or
    training ε; 0 for the standard model), ``train_eps`` and ``color``."""
    spec = entry.spec
    recipe, params = spec["recipe"], spec.get("params", {})
    train_eps = spec.get("recipe_settings", {}).get("eps", math.nan)
    if recipe == "gradpen":
        group, value = f"grad-pen {params.get('norm', 'l1')}", float(params["lam"])
    elif recipe == "standard":
        group, value = "standard", 0.0
    else:
        group, value = names.recipe(recipe), float(train_eps)
    method = method_of(spec, reference_eps)
    return {
        "model": f"{spec['arch']} · {method} · seed {spec['seed']}",
        "method": method,
        "arch": spec["arch"],
        "recipe": recipe,
        "seed": spec["seed"],
        "group": group,
        "value": value,
        "train_eps": train_eps,
        "color": method_color(spec),
    }


# --------------------------------------------------------------------------- 1. tightness


def _log_log(ax, xlim: tuple[float, float], ylim: tuple[float, float]) -> None:
    """Log scale and fixed limits on both axes, for the scatters of a measured value against its
    prediction (:func:`tightness_scatter`) or its bound (:func:`bound_figure`)."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)


def tightness_scatter(tables: dict[str, pd.DataFrame]):
    """Rows: models; columns: the box-aware prediction and eps * ||grad||_1.  PGD loss increase
    against the prediction, every sample at every eps (colour: eps), log-log. Drawn for
    :ref:`chapter 04's figure <fig-04-tightness-scatter>`.

    ``tables`` maps a model name to its :func:`~robustlens.science.theory.first_order_sweep`
    table.  Log-log axes, so only samples where both the increase and the prediction are positive
    are drawn; the number left out is in each panel's title.
    """
    names = list(tables)
    eps_values = sorted(tables[names[0]]["eps"].unique())
    colors = dict(zip(eps_values, plt.get_cmap("viridis")(np.linspace(0.05, 0.9, len(eps_values)))))
    kinds = {"pred_box": "box-aware prediction", "pred_linf": "ε·‖∇ₓL‖₁"}
    fig, axes = plt.subplots(
        len(names), 2, squeeze=False, figsize=(9.5, 4.1 * len(names)), sharex=True, sharey=True
    )
    every = pd.concat(tables.values())
    values = pd.concat([every[c] for c in ("loss_increase", *kinds)])
    values = values[values > 0]
    lo, hi = values.quantile(0.002) / 2, values.max() * 2
    for r, name in enumerate(names):
        t = tables[name]
        for c, (kind, label) in enumerate(kinds.items()):
            ax = axes[r, c]
            keep = t[(t.loss_increase > 0) & (t[kind] > 0)]
            ax.plot([lo, hi], [lo, hi], color="black", linewidth=0.8, linestyle="--")
            for eps, part in keep.groupby("eps"):
                ax.scatter(
                    part[kind],
                    part.loss_increase,
                    s=9,
                    alpha=0.7,
                    color=colors[eps],
                    label=f"ε={eps:.3g}",
                    linewidth=0,
                )
            _log_log(ax, (lo, hi), (lo, hi))
            ax.set_title(
                f"{name}: {label}\n({len(t) - len(keep)} of {len(t)} points not drawn)",
                fontsize="small",
            )
            ax.set_xlabel(f"{label} (nats)")
            if c == 0:
                ax.set_ylabel("PGD loss increase (nats)")
    axes[0, 0].legend(fontsize="small", loc="upper left", markerscale=1.8)
    return fig


def tightness_curves(summary: pd.DataFrame, recipes: dict[str, str], reference_eps: float):
    """Median ratio (PGD increase / prediction) and Spearman correlation against eps, per model.
    Drawn for :ref:`chapter 04's figure <fig-04-tightness-curves>`.

    ``summary`` stacks :func:`~robustlens.science.theory.summarize_tightness` tables with a
    ``model`` column.  The shaded band is :data:`robustlens.book.claims.TIGHT_BAND`; solid lines:
    box-aware prediction, dashed: eps*||g||_1.
    """
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.5, 4.4))
    ax1.axhspan(*claims.TIGHT_BAND, color="#dddddd", alpha=0.6, linewidth=0, label="within ×1.5")
    ax1.axhline(1, color="black", linewidth=0.8)
    for name, part in summary.groupby("model", sort=False):
        color = names.recipe_color(recipes.get(name, name))
        ax1.plot(
            part.eps, part.median_ratio_box, marker="o", color=color, label=f"{name}, box-aware"
        )
        ax1.plot(
            part.eps,
            part.median_ratio_linf,
            marker="x",
            linestyle="--",
            color=color,
            label=f"{name}, ε·‖∇ₓL‖₁",
        )
        ax2.plot(part.eps, part.spearman_box, marker="o", color=color, label=f"{name}, box-aware")
        ax2.plot(
            part.eps,
            part.spearman_linf,
            marker="x",
            linestyle="--",
            color=color,
            label=f"{name}, ε·‖∇ₓL‖₁",
        )
    ax1.set_yscale("log")
    ax1.set_ylabel("median of PGD increase / prediction")
    ax2.set_ylabel("Spearman correlation across samples")
    ax2.set_ylim(
        min(0.0, float(np.nanmin(summary[["spearman_box", "spearman_linf"]].values)) - 0.05), 1.02
    )
    for ax in (ax1, ax2):
        ax.axvline(reference_eps, color="#777777", linewidth=0.8, linestyle=":")
        ax.set_xlabel("attack budget ε (L∞, inputs in [0, 1])")
    handles, labels = ax1.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize="small")
    return fig


# --------------------------------------------------------------------------- 2. filter statistics


def per_model_metrics(agg: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Wide table (model x metric) from an aggregated tidy table, rows in ``order``."""
    wide = agg.pivot_table(index="model", columns="metric", values="value")
    return wide.reindex(order)


def filter_sweep(
    wide: pd.DataFrame,
    sweeps: dict[str, list[tuple[float, str]]],
    standard: str,
    robust: str,
    metrics: list[str],
    metric_names: dict[str, str] | None = None,
    ncols: int = 3,
):
    """Small multiples: each per-model metric against λ (log axis), one line per penalty norm;
    the standard and PGD-trained models as horizontal lines. Drawn for
    :ref:`chapter 04's figure <fig-04-filter-sweep>`."""
    from matplotlib.ticker import MaxNLocator

    nrows = math.ceil(len(metrics) / ncols)
    # Three panels a row at the page's width: the labels stay readable.
    fig, axes = plt.subplots(nrows, ncols, figsize=(9.0, 2.6 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= len(metrics):
            ax.axis("off")
            continue
        ax.yaxis.set_major_locator(MaxNLocator(4))
        metric = metrics[i]
        ax.axhline(
            wide.loc[standard, metric],
            color=names.recipe_color("standard"),
            linestyle="--",
            label=standard,
        )
        ax.axhline(
            wide.loc[robust, metric], color=names.recipe_color("pgd"), linestyle="--", label=robust
        )
        for sweep, pairs in sweeps.items():
            lams = [lam for lam, _ in pairs]
            ax.plot(
                lams,
                [wide.loc[name, metric] for _, name in pairs],
                marker="o",
                color=names.PENALTY_COLORS.get(sweep, "#55A868"),
                label=f"grad-pen {sweep}",
            )
        ax.set_xscale("log")
        ax.set_xlabel("penalty weight λ")
        ax.set_title((metric_names or {}).get(metric, metric))
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if len(metrics) < nrows * ncols:  # the legend goes into the first empty panel
        axes.flat[len(metrics)].legend(handles, labels, loc="center", fontsize="small")
    else:
        fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize="small")
    return fig


# --------------------------------------------------------------------------- 3. the bound


def bound_figure(table: pd.DataFrame):
    """Mean per-sample ||grad_x CE||_2 against its upper bound sqrt(2) * Lip, every model, log-log,
    with grey lines of constant ratio (one per power of ten; solid: equality). Drawn for
    :ref:`chapter 04's figure <fig-04-bound>`.

    ``table`` has ``method, arch, color, grad_l2_mean, grad_bound``.
    """
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    x, y = table["grad_bound"], table["grad_l2_mean"]
    xlo, xhi = x.min() / 3, x.max() * 3
    ylo, yhi = y.min() / 3, y.max() * 3
    for k in range(-15, 16):
        ax.plot(
            [xlo, xhi],
            [xlo * 10.0**-k, xhi * 10.0**-k],
            color="#bbbbbb",
            linewidth=0.9 if k == 0 else 0.6,
            linestyle="-" if k == 0 else ":",
            zorder=0,
        )
    seen = set()
    for _, row in table.iterrows():
        label = row["method"] if row["method"] not in seen else None
        seen.add(row["method"])
        ax.scatter(
            row["grad_bound"],
            row["grad_l2_mean"],
            color=row["color"],
            marker=names.ARCH_MARKERS.get(row["arch"], "o"),
            s=46,
            label=label,
            edgecolor="white",
            linewidth=0.5,
        )
    for arch in [a for a in names.ARCH_MARKERS if a in set(table.arch)]:
        ax.scatter([], [], marker=names.ARCH_MARKERS[arch], color="#555555", label=arch)
    _log_log(ax, (xlo, xhi), (ylo, yhi))
    ax.set_xlabel("upper bound √2·Lip(logits)")
    ax.set_ylabel("mean per-sample ‖∇ₓCE‖₂")
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def shrink_figure(table: pd.DataFrame, reference: pd.DataFrame):
    """Every non-standard model's mean gradient norm (dot) and bound (bar) as a factor of the
    standard model of the same architecture and seed (log axis; below 1 = smaller). Drawn for
    :ref:`chapter 04's figure <fig-04-shrink>`.

    ``table`` has ``model, arch, seed, recipe, color, grad_l2_mean, grad_bound``; ``reference`` the
    same columns for the standard models, indexed by ``(arch, seed)``.
    """
    rel = table.join(
        reference[["grad_l2_mean", "grad_bound"]].add_suffix("_std"), on=["arch", "seed"]
    )
    rel = rel[rel.recipe != "standard"].iloc[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.24 * len(rel) + 1.4))
    pos = np.arange(len(rel))
    ax.scatter(
        rel.grad_l2_mean / rel.grad_l2_mean_std,
        pos,
        color=rel.color,
        marker="o",
        s=34,
        label="mean gradient norm",
    )
    ax.scatter(
        rel.grad_bound / rel.grad_bound_std,
        pos,
        color=rel.color,
        marker="|",
        s=160,
        linewidth=2,
        label="bound √2·Lip",
    )
    ax.axvline(1, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yticks(pos, rel["model"], fontsize="small")
    ax.set_ylim(-0.7, len(rel) - 0.3)
    ax.set_xlabel("factor vs the standard model of the same architecture and seed")
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def layer_norms(
    tables: dict[str, pd.DataFrame],
    colors: dict[str, str],
    kinds=("Conv2d", "BatchNorm2d", "Linear"),
):
    """Operator norm of every conv, BatchNorm and linear layer (from ``theory.operator_norm_bound``)
    in forward order, one line per model, log axis. Drawn for
    :ref:`chapter 04's figure <fig-04-layer-norms>`."""
    fig, ax = plt.subplots(figsize=(9, 3.6))
    ticks = None
    for name, t in tables.items():
        t = t[t.kind.isin(kinds)].reset_index(drop=True)
        ax.plot(t.index, t.op_norm, marker="o", color=colors[name], label=name)
        ticks = t
    short = {"Conv2d": "conv", "BatchNorm2d": "BN", "Linear": "fc"}
    counts: dict[str, int] = {}
    labels = []
    for kind in ticks.kind:
        counts[kind] = counts.get(kind, 0) + 1
        labels.append(f"{short.get(kind, kind)}{counts[kind]}")
    ax.set_xticks(ticks.index, labels, fontsize="small")
    ax.set_yscale("log")
    ax.set_ylabel("operator norm (L2)")
    ax.legend(fontsize="small")
    return fig


# --------------------------------------------------------------------------- 4. the frontier


def frontier(
    table: pd.DataFrame, eps: float, n_eval: int, y: str = "pgd_acc", y_label: str | None = None
):
    """The clean-robust plane: standard model, the λ sweeps and the PGD-AT eps sweep, with the
    upper-right (Pareto) envelope of all of them. Drawn for
    :ref:`chapter 04's figure <fig-04-frontier>`.

    ``table`` has ``model, group`` (``"standard"``, ``"PGD-AT"``, ``"grad-pen l1"``, ...),
    ``value`` (λ or training ε, used to order and annotate), ``color``, ``clean_acc`` and the
    robust accuracy in column ``y`` (labelled ``y_label``).
    """
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    front = frontier_points.pareto_front(table, y=y)
    ax.plot(
        100 * front.clean_acc,
        100 * front[y],
        color="black",
        linewidth=3,
        alpha=0.15,
        label="envelope (static models)",
        zorder=0,
    )
    for group, part in table.groupby("group", sort=False):
        part = part.sort_values("value")
        marker = "*" if group == "standard" else "o"
        ax.plot(
            100 * part.clean_acc,
            100 * part[y],
            marker=marker,
            markersize=12 if marker == "*" else 6,
            color=part.color.iloc[0],
            label=group,
        )
        if group != "standard":
            sym = "ε" if group.startswith("PGD") else "λ"
            for _, row in part.iterrows():
                ax.annotate(
                    f"{sym}={row.value:.3g}",
                    (100 * row.clean_acc, 100 * row[y]),
                    textcoords="offset points",
                    xytext=(4, 4),
                    fontsize="small",
                    color=row.color,
                )
    ax.set_xlabel("clean accuracy (%)")
    ax.set_ylabel(y_label or f"PGD accuracy at ε={eps:.3g} (%)")
    ax.set_title(f"{n_eval:,} test images; every model attacked at the same ε", fontsize="small")
    ax.legend(fontsize="small")
    return fig
