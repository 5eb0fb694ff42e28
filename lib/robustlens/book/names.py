"""Display names and colours of everything the book names: one registry for every chapter.

A chapter never keeps its own dict of labels: a statistic, recipe or architecture is called the
same on every page and drawn in the same colour in every figure.
"""

from __future__ import annotations

#: Training recipes: their names in prose and legends.
RECIPES = {
    "standard": "standard",
    "pgd": "PGD-AT",
    "trades": "TRADES",
    "fast": "fast AT (FGSM-RS)",
    "gradpen": "input-gradient penalty",
}
#: The recipes' colours in every figure: standard blue, the robust recipes warm.
RECIPE_COLORS = {"standard": "#4C72B0", "pgd": "#C44E52", "trades": "#DD8452", "fast": "#8172B3"}
#: The penalty sweeps' colours (per norm), away from the recipes' blue and warm colours.
PENALTY_COLORS = {"l1": "#55A868", "l2sq": "#937860"}

#: Architectures: their names in prose and legends.
ARCHITECTURES = {
    "cnn": "plain CNN",
    "resnet": "ResNet-8",
    "wresnet": "wide ResNet-8",
    "resnet18": "ResNet-18",
    "deepcnn": "deep CNN",
}
#: The architectures' marker symbols in scatter plots.
ARCH_MARKERS = {"cnn": "o", "resnet": "s", "wresnet": "^", "resnet18": "D", "deepcnn": "v"}

#: Data sets: their names in prose.
DATASETS = {"fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}

#: Per-layer weight statistics (:data:`robustlens.science.filters.WEIGHT_STATS`) and [GK]'s 3x3
#: metrics (:data:`robustlens.science.filters.METRICS_3X3`): their names in prose and figures.
STATISTICS = {
    "weight_std": "std",
    "weight_kurtosis": "excess kurtosis",
    "weight_mean_abs": "mean |w|",
    "weight_small_frac": "near-zero fraction",
    "filter_norm_mean": "mean filter L2 norm",
    "sparsity": "sparsity",
    "variance_entropy": "variance entropy",
    "orthogonality": "orthogonality",
}
#: The same metrics where a figure has room to say what sparsity counts.
STATISTICS_LONG = {**STATISTICS, "sparsity": "sparsity (share of sparse filters)"}

#: The Carlini et al. (2019) sanity checks of
#: :func:`robustlens.science.evaluation.sanity_checks`.
SANITY_CHECKS = {
    "eps_sweep": "accuracy falls to ~0 as ε grows",
    "more_steps": "more PGD steps never help",
    "more_restarts": "more restarts never help",
    "black_vs_white": "Square not stronger than PGD",
    # zoo.black_box_check: Square against every white-box attack of a table, adaptive ones included.
    "black_vs_adaptive": "Square not stronger than every white-box attack",
}

#: The AutoAttack versions a profile runs
#: (:attr:`robustlens.science.profiles.Profile.aa_version`), as the prose names them.
AUTOATTACK_VERSIONS = {
    "core": "AutoAttack's core (APGD-CE + APGD-T)",
    "standard": "AutoAttack's standard version",
}

#: Chapter 03's headline quantities, keyed as :mod:`robustlens.outside.reference_numbers` keys
#: without their data set: the row labels of its result tables.
BASIS_QUANTITIES = {
    "pca_evr0_all": "EVR of the first PCA component, all",
    "pca_evr0_robust": "… robust",
    "pca_evr0_normal": "… standard",
    "drift_all": "drift D, all layers",
    "drift_first": "drift D, first layer",
    "drift_deepest": "drift D, deepest decile",
    "drift_middle_max": "drift D, middle deciles (max)",
}
#: Short forms of the quantities that :mod:`robustlens.outside.reference_numbers` spells out.
QUANTITIES_SHORT = {
    "explained variance ratio of the first PCA component": "EVR of the first PCA component",
    "distribution drift D": "drift D",
}

#: Colours of the filter groups of chapter 03's PCA bases.
GROUP_COLORS = {
    "all": "#55A868",
    "robust": RECIPE_COLORS["pgd"],
    "standard": RECIPE_COLORS["standard"],
}
#: Colours of outside sources beside the book's own models.
SOURCE_COLORS = ("#4C72B0", "#DD8452", "#8172B3", "#937860")


def recipe(key: str) -> str:
    """The display name of a recipe; an unknown key is shown as it is."""
    return RECIPES.get(key, key)


def recipe_color(key: str) -> str:
    """The colour of a recipe; green for one the book has no colour for."""
    return RECIPE_COLORS.get(key, "#55A868")


def model(spec: dict) -> str:
    """A zoo model as the prose names it, from its spec: ``"plain CNN, PGD-AT, seed 0"`` (the
    recipe's own parameters, if any, as they are in the cache label)."""
    params = "".join(f" {k}={v}" for k, v in sorted(spec.get("params", {}).items()))
    arch = ARCHITECTURES.get(spec["arch"], spec["arch"])
    return f"{arch}, {recipe(spec['recipe'])}{params}, seed {spec['seed']}"


def statistic(key: str) -> str:
    return STATISTICS.get(key, key)
