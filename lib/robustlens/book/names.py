"""Display names and colours of everything the book names: one registry for every chapter.

A chapter never keeps its own dict of labels: a statistic, recipe or architecture is called the
same on every page and drawn in the same colour in every figure.
"""
from __future__ import annotations

# Training recipes: names in prose and legends, and their colours (standard blue, robust warm).
RECIPES = {"standard": "standard", "pgd": "PGD-AT", "trades": "TRADES", "fast": "fast AT (FGSM-RS)",
           "gradpen": "input-gradient penalty"}
RECIPE_COLORS = {"standard": "#4C72B0", "pgd": "#C44E52", "trades": "#DD8452", "fast": "#8172B3"}
# The penalty sweeps get colours of their own, away from the recipes' blue and warm colours.
PENALTY_COLORS = {"l1": "#55A868", "l2sq": "#937860"}

ARCHITECTURES = {"cnn": "plain CNN", "resnet": "ResNet-8", "wresnet": "wide ResNet-8", "resnet18": "ResNet-18"}
ARCH_MARKERS = {"cnn": "o", "resnet": "s", "wresnet": "^", "resnet18": "D"}

DATASETS = {"fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}

# Per-layer weight statistics (robustlens.science.filters.WEIGHT_STATS) and [GK]'s 3x3 metrics.
STATISTICS = {"weight_std": "std", "weight_kurtosis": "excess kurtosis", "weight_mean_abs": "mean |w|",
              "weight_small_frac": "near-zero fraction", "filter_norm_mean": "mean filter L2 norm",
              "sparsity": "sparsity", "variance_entropy": "variance entropy",
              "orthogonality": "orthogonality"}
# The same metrics where a figure has room to say what sparsity counts.
STATISTICS_LONG = {**STATISTICS, "sparsity": "sparsity (share of sparse filters)"}

# The Carlini et al. (2019) sanity checks (robustlens.science.evaluation.sanity_checks).
SANITY_CHECKS = {"eps_sweep": "accuracy falls to ~0 as ε grows", "more_steps": "more PGD steps never help",
                 "more_restarts": "more restarts never help",
                 "black_vs_white": "Square not stronger than white-box"}

# Filter groups of chapter 03's PCA bases, and the colours of outside sources beside the book's.
GROUP_COLORS = {"all": "#55A868", "robust": RECIPE_COLORS["pgd"], "standard": RECIPE_COLORS["standard"]}
SOURCE_COLORS = ("#4C72B0", "#DD8452", "#8172B3", "#937860")


def recipe(key: str) -> str:
    """The display name of a recipe; an unknown key is shown as it is."""
    return RECIPES.get(key, key)


def recipe_color(key: str) -> str:
    """The colour of a recipe; green for one the book has no colour for."""
    return RECIPE_COLORS.get(key, "#55A868")


def statistic(key: str) -> str:
    return STATISTICS.get(key, key)
