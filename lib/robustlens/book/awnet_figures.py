"""Chapter 05's figures: AW-Net's architecture, its training, its router at work, its place on
the clean-robust plane. Tables or arrays in, a matplotlib figure out."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from robustlens.science import awnet
from robustlens.science import frontier as frontier_points

CLEAN_COLOR, ADV_COLOR = "#4c72b0", "#dd8452"


def _box(ax, xy, w, h, text, color, fontsize=8.5):
    ax.add_patch(
        FancyBboxPatch(
            xy, w, h, boxstyle="round,pad=0.02,rounding_size=0.08", fc=color, ec="0.3", lw=0.8
        )
    )
    ax.text(xy[0] + w / 2, xy[1] + h / 2, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, a, b, color="0.35", style="-|>", ls="-"):
    ax.add_patch(
        FancyArrowPatch(a, b, arrowstyle=style, mutation_scale=9, color=color, lw=1, ls=ls)
    )


def architecture(net: awnet.AWNet, title: str = ""):
    """AW-Net as this book builds it, drawn from the network object itself: the router (top),
    the classifier's units (conv, the per-sample scale where a signal arrives, MixBN) and the
    type head. Drawn for :ref:`chapter 05's architecture figure <fig-05-architecture>`."""
    units = awnet.unit_list(net)
    main = [u for u in units if u.conv.conv.kernel_size != (1, 1)]  # shortcuts are not drawn
    n = len(main)
    # Drawn at about the page's width (6.8 in) with 10-11 pt text, so the labels stay near 9 pt
    # as rendered (smaller for nets of more than five convs); what the boxes cannot say is in the
    # chapter's caption.
    fs = 10 if n <= 5 else 8.5
    fig, ax = plt.subplots(figsize=(6.8, 3.0))
    ax.set_xlim(-0.2, n * 1.25 + 2.6)
    ax.set_ylim(0.0, 4.0)
    ax.axis("off")
    _box(ax, (-0.1, 1.1), 0.9, 0.8, "input\nx", "white", fs)
    _box(ax, (1.1, 3.1), 2.4, 0.8, "router: feature\nextractor (2 convs)", "#f3c9c4", fs)
    _arrow(ax, (0.35, 1.9), (1.1, 3.45))
    x0 = 1.1
    for k, u in enumerate(main):
        x = x0 + k * 1.25
        conv = u.conv.conv
        varied = u.signal_index is not None
        label = f"conv {u.index + 1}\n{conv.in_channels}→{conv.out_channels}"
        _box(ax, (x, 1.05), 1.05, 0.9, label, "#c6dbef" if varied else "#e5e5e5", fs)
        mix = "MixBN" if u.bn.adv is not None else "BN"
        _box(ax, (x, 0.15), 1.05, 0.55, mix, "#d9ead3", fs)
        _arrow(ax, (x + 0.5, 1.05), (x + 0.5, 0.7))
        # conv -> MixBN -> ReLU -> the next conv (or the head)
        _arrow(ax, (x + 1.05, 0.42), (x + 1.25 if k < n - 1 else x + 1.45, 1.3))
        if varied:
            _arrow(ax, (2.3, 3.1), (x + 0.5, 1.95), color="#c44e52")
            ax.text(x + 0.58, 2.2, "×ω", color="#c44e52", fontsize=fs + 1)
    _arrow(ax, (0.8, 1.5), (x0, 1.5))
    xe = x0 + n * 1.25
    _box(ax, (xe + 0.2, 1.1), 1.0, 0.8, "pool +\nFC", "#c6dbef", fs)
    heads = len(net.router.type_heads)
    _box(
        ax,
        (xe - 1.6, 3.1),
        2.6,
        0.8,
        f"type head{'s' if heads > 1 else ''} ({heads}):\np(adversarial | x)",
        "#d8c7e8",
        fs,
    )
    _arrow(ax, (3.5, 3.5), (xe - 1.6, 3.5))
    # p(adversarial) reaches every MixBN: one dashed arrow to the row stands for all of them.
    _arrow(ax, (xe - 0.05, 3.1), (xe - 0.22, 0.6), color="#8172b3", ls="--")
    if title:
        ax.set_title(title, fontsize=11)
    return fig


def _running_mean(values: np.ndarray, window: int) -> np.ndarray:
    window = max(1, min(window, len(values)))
    return pd.Series(values).rolling(window, min_periods=1).mean().to_numpy()


def training_curves(steps: pd.DataFrame, monitor: pd.DataFrame, steps_per_epoch: int):
    """AW-Net's training, step by step (running means over a tenth of an epoch): the two
    distillation losses and their weights, the type loss and the type heads' accuracy on the
    training batch, and the monitor's clean, PGD and type accuracy on held-out test images after
    each epoch. Drawn for :ref:`chapter 05's training figure <fig-05-training>`."""
    fig, axes = plt.subplots(1, 3, figsize=(9.5, 3.4))
    window = max(1, steps_per_epoch // 10)
    epoch = np.arange(1, len(steps) + 1) / steps_per_epoch
    ax = axes[0]
    ax.plot(
        epoch,
        _running_mean(steps.loss_nat.to_numpy(), window),
        color=CLEAN_COLOR,
        label="clean-input loss",
    )
    ax.plot(
        epoch,
        _running_mean(steps.loss_adv.to_numpy(), window),
        color=ADV_COLOR,
        label="adversarial-input loss",
    )
    ax.set_ylabel("loss (nats)")
    ax.set_xlabel("epoch")
    ax.legend(fontsize="small")
    ax.set_title("classifier losses")
    ax = axes[1]
    ax.plot(epoch, steps.w_nat, color=CLEAN_COLOR, label="weight of the clean loss")
    ax.plot(
        epoch,
        _running_mean(steps.type_acc.to_numpy(), window),
        color="#8172b3",
        label="type accuracy (batch)",
    )
    ax.plot(
        epoch,
        _running_mean(steps.type_loss.to_numpy(), window),
        color="0.4",
        ls="--",
        label="type loss (nats)",
    )
    ax.set_xlabel("epoch")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize="small")
    ax.set_title("router and loss weights")
    ax = axes[2]
    for col, label, color in (
        ("clean_acc", "clean", CLEAN_COLOR),
        ("pgd_acc", "PGD", ADV_COLOR),
        ("type_acc_clean", "type, clean images", "#64b5cd"),
        ("type_acc_adv", "type, PGD images", "#8172b3"),
    ):
        ax.plot(monitor.epoch, 100 * monitor[col], marker="o", label=label, color=color)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy on held-out images (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize="small")
    ax.set_title("after each epoch")
    return fig


def router_histograms(clean, adversarial, bins: int = 40):
    """Per varied conv, the distribution of the regulation signals (all filters pooled) for
    clean test images and their PGD versions, and the distribution of p(adversarial). Drawn for
    :ref:`chapter 05's router figure <fig-05-router>`. ``clean``/``adversarial``:
    :class:`~robustlens.science.awnet_analysis.RouterOutputs` of the same images."""
    n = len(clean.units) + 1
    cols = min(3, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(9, 2.9 * rows), squeeze=False)
    for ax, unit, sc, sa in zip(axes.flat, clean.units, clean.signals, adversarial.signals):
        lo = min(sc.min(), sa.min())
        hi = max(sc.max(), sa.max())
        edges = np.linspace(lo, hi + 1e-9, bins + 1)
        ax.hist(sc.ravel(), edges, density=True, alpha=0.55, color=CLEAN_COLOR, label="clean")
        ax.hist(sa.ravel(), edges, density=True, alpha=0.55, color=ADV_COLOR, label="PGD")
        ax.set_title(f"{unit}: signal ω")
        ax.set_xlabel("ω (1 = the static filter)")
        ax.ticklabel_format(axis="x", useOffset=False)
        ax.set_ylabel("density")
    ax = axes.flat[n - 1]
    edges = np.linspace(0, 1, bins + 1)
    ax.hist(clean.p_adv, edges, alpha=0.55, color=CLEAN_COLOR, label="clean")
    ax.hist(adversarial.p_adv, edges, alpha=0.55, color=ADV_COLOR, label="PGD")
    ax.set_title("type head: p(adversarial | x)")
    ax.set_xlabel("p(adversarial)")
    ax.set_ylabel("images")
    ax.legend(fontsize="small")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return fig


def effective_weight_densities(clean, adversarial, bins: int = 80):
    """Per varied conv, the density of the effective weights w·ω that clean test images and their
    PGD examples get (all images pooled; log scale, so the tails show). ``clean`` and
    ``adversarial``: :func:`~robustlens.science.awnet.effective_filters` of the same images.
    Drawn for :ref:`chapter 05's weight figure <fig-05-weights>`."""
    n = len(clean)
    cols = min(3, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(9, 2.8 * rows), squeeze=False)
    for ax, (unit, wc), (_, wa) in zip(axes.flat, clean, adversarial):
        c, a = wc.flatten().cpu().numpy(), wa.flatten().cpu().numpy()
        lim = float(np.quantile(np.abs(np.concatenate([c, a])), 0.999))
        edges = np.linspace(-lim, lim, bins + 1)
        for values, color, label in ((c, CLEAN_COLOR, "clean"), (a, ADV_COLOR, "PGD")):
            density, _ = np.histogram(values, edges, density=True)
            ax.semilogy(0.5 * (edges[1:] + edges[:-1]), density, color=color, label=label)
        ax.set_title(f"{unit}: w·ω")
        ax.set_xlabel("effective weight")
    axes.flat[0].set_ylabel("density (log)")
    axes.flat[0].legend(fontsize="small")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return fig


def roc_figure(curves: dict[str, pd.DataFrame], aucs: dict[str, float]):
    """ROC curves of the type head as a detector of attacked inputs, one per attack. Drawn for
    :ref:`chapter 05's ROC figure <fig-05-roc>`."""
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    for name, curve in curves.items():
        ax.plot(curve.fpr, curve.tpr, label=f"{name} (AUC {aucs[name]:.2f})")
    ax.plot([0, 1], [0, 1], color="0.6", ls=":", label="chance")
    ax.set_xlabel("false-positive rate (clean flagged)")
    ax.set_ylabel("true-positive rate (attacked flagged)")
    ax.legend(fontsize="small", loc="lower right")
    return fig


def plane(static: pd.DataFrame, dynamic: pd.DataFrame, eps: float, n_eval: int):
    """AW-Net models (and their ablations) on the clean-robust plane beside the static models of
    the same architecture and their envelope (chapter 04's frontier). Both tables have
    ``model, clean_acc, robust_acc`` and, for the dynamic ones, ``robust_lo, robust_hi``. Drawn
    for :ref:`chapter 05's plane <fig-05-plane>`."""
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    front = frontier_points.pareto_front(static, y="robust_acc")
    ax.plot(
        100 * front.clean_acc,
        100 * front.robust_acc,
        color="black",
        lw=3,
        alpha=0.15,
        label="envelope of the static models",
    )
    ax.scatter(
        100 * static.clean_acc,
        100 * static.robust_acc,
        color="0.45",
        s=22,
        label="static models (chapter 04)",
    )
    for _, row in static.iterrows():
        ax.annotate(
            row.model,
            (100 * row.clean_acc, 100 * row.robust_acc),
            fontsize=9,
            color="0.4",
            textcoords="offset points",
            xytext=(3, 3),
        )
    for k, (_, row) in enumerate(dynamic.iterrows()):
        color = plt.cm.tab10(3 + k)
        ax.errorbar(
            100 * row.clean_acc,
            100 * row.robust_acc,
            yerr=[
                [100 * (row.robust_acc - row.robust_lo)],
                [100 * (row.robust_hi - row.robust_acc)],
            ],
            marker="D",
            ms=7,
            color=color,
            capsize=3,
            label=row.model,
            ls="none",
        )
    ax.set_xlabel("clean accuracy (%)")
    ax.set_ylabel(f"worst-case robust accuracy at ε={eps:.3g} (%)")
    ax.set_title(f"worst case over every attack, {n_eval:,} test images", fontsize="small")
    ax.legend(fontsize="small", loc="best")
    return fig
