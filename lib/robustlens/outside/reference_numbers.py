"""The headline numbers of Gavrikov & Keuper [GK], as a small table of facts with their source.

Each :class:`Fact` is one number (or range, or qualitative statement) as the paper reports it,
for one data set, one scope (whole database, a depth decile, the first layer, ...) and one group
of models (``"normal"``, ``"robust"``, ``"all"``, or ``"robust vs normal"`` for a comparison
such as the drift).  Chapters compare them with what the book measures: :func:`paper_direction`
gives the direction [GK] report for a normal/robust pair.  ``Fact.chapter`` says which chapter
of the book measures it ("02": accuracy, sparsity, variance entropy, orthogonality; "03": PCA
basis and distribution drift).

All numbers are copied from the paper; nothing here is measured.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CITATION", "BIBKEY", "Fact", "FACTS", "facts", "fact", "pair", "paper_direction"]

#: How the chapters cite the paper these numbers come from.
CITATION = "Gavrikov & Keuper 2022, arXiv:2204.02481"
#: Its key in ``book/references.bib``.
BIBKEY = "gavrikov2022adversarial"  # key in book/references.bib


@dataclass(frozen=True)
class Fact:
    """One headline number of [GK].

    ``value`` is the number (``None`` for a purely qualitative statement); ``high`` the upper end
    when the paper gives a range (then ``value`` is the lower end); ``approx`` marks numbers read
    as "about" (from a figure or rounded in the text).  ``unit`` is ``"%"`` for percentages
    (stored as percent, e.g. 92.17) and ``""`` for dimensionless metrics.  ``statement`` carries a
    qualitative claim or a remark on how the number was obtained; ``direction`` the direction
    (robust vs normal models) a qualitative comparison states; ``digits`` the decimals the paper
    prints (so that 0.80 stays "0.80").
    """

    key: str
    quantity: str
    dataset: str
    scope: str
    group: str
    value: float | None
    high: float | None = None
    unit: str = ""
    approx: bool = False
    statement: str = ""
    direction: str | None = (
        None  # robust vs normal for a qualitative comparison: "higher" / "lower"
    )
    digits: int = 2  # decimals as printed in the paper
    chapter: str = "02"
    source: str = CITATION

    def text(self, digits: int | None = None) -> str:
        """The value as the paper gives it, e.g. ``"92.17 %"``, ``"≈ 0.28"``, ``"0.80–0.90"``."""
        if self.value is None:
            return self.statement
        d = self.digits if digits is None else digits
        fmt = lambda x: f"{x:.{d}f}"  # noqa: E731
        body = fmt(self.value) if self.high is None else f"{fmt(self.value)}–{fmt(self.high)}"
        unit = (
            f"\u00a0{self.unit}" if self.unit else ""
        )  # non-breaking spaces: "92.17 %" stays whole
        return f"{'≈' + chr(0xA0) if self.approx else ''}{body}{unit}"

    @property
    def mid(self) -> float | None:
        """The value, or the middle of the range."""
        if self.value is None:
            return None
        return self.value if self.high is None else (self.value + self.high) / 2


def _acc(dataset: str, tag: str, normal: float, robust: float, autoattack: float) -> list[Fact]:
    return [
        Fact(
            f"clean_acc_{tag}_normal",
            "clean accuracy",
            dataset,
            "mean over models",
            "normal",
            normal,
            unit="%",
        ),
        Fact(
            f"clean_acc_{tag}_robust",
            "clean accuracy",
            dataset,
            "mean over models",
            "robust",
            robust,
            unit="%",
        ),
        Fact(
            f"autoattack_acc_{tag}_robust",
            "robust accuracy (AutoAttack)",
            dataset,
            "mean over models",
            "robust",
            autoattack,
            unit="%",
            statement="RobustBench L-inf AutoAttack accuracy; not reported for the normal models",
        ),
    ]


#: Every number [GK] report that the book quotes beside its own.
FACTS: tuple[Fact, ...] = (
    # ---- accuracy of the model database
    *_acc("CIFAR-10", "cifar10", 92.17, 86.92, 56.71),
    *_acc("CIFAR-100", "cifar100", 72.68, 62.24, 29.03),
    *_acc("ImageNet", "imagenet", 78.46, 60.72, 30.78),
    # ---- sparsity
    Fact(
        "sparse_share_robust",
        "share of sparse 3x3 filters",
        "all",
        "whole database",
        "robust",
        9.45,
        unit="%",
    ),
    Fact(
        "sparse_share_normal",
        "share of sparse 3x3 filters",
        "all",
        "whole database",
        "normal",
        39.48,
        unit="%",
    ),
    Fact(
        "sparsity_deciles_direction",
        "sparsity",
        "all",
        "depth deciles after the first layer",
        "robust vs normal",
        None,
        statement="robust filters less sparse in almost every depth decile",
        direction="lower",
    ),
    Fact(
        "sparsity_first_layer_direction",
        "sparsity",
        "all",
        "first conv layer",
        "robust vs normal",
        None,
        statement="robust filters MORE sparse in the first layer",
        direction="higher",
    ),
    # Paper: "ImageNet pairs nearly identical except first-decile sparsity (≈ 0.35 vs 0.08)". Which
    # value is the robust one is OUR INFERENCE (from the first-layer claim above), not read from
    # the paper: shown as inferred, never used in a verdict.
    Fact(
        "sparsity_first_decile_imagenet_robust",
        "sparsity",
        "ImageNet",
        "first depth decile",
        "robust (inferred)",
        0.35,
        approx=True,
        statement="the only clear robust/normal difference on ImageNet (read from a figure; which "
        "value is robust is our inference)",
    ),
    Fact(
        "sparsity_first_decile_imagenet_normal",
        "sparsity",
        "ImageNet",
        "first depth decile",
        "normal (inferred)",
        0.08,
        approx=True,
        statement="read from a figure; order inferred by us",
    ),
    # ---- variance entropy (base 10, max log10(9) ≈ 0.954), deepest decile
    Fact(
        "entropy_deepest_cifar10_normal",
        "variance entropy",
        "CIFAR-10",
        "depth decile (0.9, 1.0]",
        "normal",
        0.28,
        approx=True,
    ),
    Fact(
        "entropy_deepest_cifar10_robust",
        "variance entropy",
        "CIFAR-10",
        "depth decile (0.9, 1.0]",
        "robust",
        0.63,
        approx=True,
    ),
    Fact(
        "entropy_deepest_cifar100_normal",
        "variance entropy",
        "CIFAR-100",
        "depth decile (0.9, 1.0]",
        "normal",
        0.27,
        approx=True,
    ),
    Fact(
        "entropy_deepest_cifar100_robust",
        "variance entropy",
        "CIFAR-100",
        "depth decile (0.9, 1.0]",
        "robust",
        0.50,
        approx=True,
    ),
    # ---- orthogonality, range over the depth deciles
    Fact(
        "orthogonality_cifar_normal",
        "orthogonality",
        "CIFAR-10/100",
        "range over depth deciles",
        "normal",
        0.80,
        high=0.90,
        approx=True,
    ),
    Fact(
        "orthogonality_cifar_robust",
        "orthogonality",
        "CIFAR-10/100",
        "range over depth deciles",
        "robust",
        0.92,
        high=0.96,
        approx=True,
    ),
    # ---- PCA basis (chapter 03)
    Fact(
        "pca_evr0_all",
        "explained variance ratio of the first PCA component",
        "all",
        "all 3x3 filters",
        "all",
        0.49,
        chapter="03",
    ),
    Fact(
        "pca_evr0_robust",
        "explained variance ratio of the first PCA component",
        "all",
        "all 3x3 filters",
        "robust",
        0.39,
        chapter="03",
    ),
    Fact(
        "pca_evr0_normal",
        "explained variance ratio of the first PCA component",
        "all",
        "all 3x3 filters",
        "normal",
        0.67,
        chapter="03",
    ),
    # ---- distribution drift D, robust vs normal (chapter 03)
    Fact(
        "drift_all_cifar10",
        "distribution drift D",
        "CIFAR-10",
        "all layers",
        "robust vs normal",
        0.62,
        chapter="03",
    ),
    Fact(
        "drift_all_cifar100",
        "distribution drift D",
        "CIFAR-100",
        "all layers",
        "robust vs normal",
        0.17,
        chapter="03",
    ),
    Fact(
        "drift_all_imagenet",
        "distribution drift D",
        "ImageNet",
        "all layers",
        "robust vs normal",
        0.018,
        digits=3,
        chapter="03",
    ),
    Fact(
        "drift_first_cifar10",
        "distribution drift D",
        "CIFAR-10",
        "first conv layer",
        "robust vs normal",
        0.47,
        chapter="03",
    ),
    Fact(
        "drift_first_cifar100",
        "distribution drift D",
        "CIFAR-100",
        "first conv layer",
        "robust vs normal",
        0.63,
        chapter="03",
    ),
    Fact(
        "drift_deepest_cifar10",
        "distribution drift D",
        "CIFAR-10",
        "depth decile (0.9, 1.0]",
        "robust vs normal",
        1.53,
        approx=True,
        chapter="03",
    ),
    Fact(
        "drift_deepest_cifar100",
        "distribution drift D",
        "CIFAR-100",
        "depth decile (0.9, 1.0]",
        "robust vs normal",
        0.78,
        approx=True,
        chapter="03",
    ),
    Fact(
        "drift_middle_max",
        "distribution drift D",
        "CIFAR-10/100",
        "middle depth deciles",
        "robust vs normal",
        0.16,
        approx=True,
        statement="at most about 0.16",
        chapter="03",
    ),
)

_BY_KEY = {f.key: f for f in FACTS}
if len(_BY_KEY) != len(FACTS):  # pragma: no cover - guards edits of the table above
    raise RuntimeError("duplicate keys in reference_numbers.FACTS")


def fact(key: str) -> Fact:
    """The fact with this key (``KeyError`` naming the known keys otherwise)."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise KeyError(f"no reference fact {key!r}; known: {', '.join(_BY_KEY)}") from None


def facts(
    chapter: str | None = None,
    quantity: str | None = None,
    dataset: str | None = None,
    group: str | None = None,
) -> list[Fact]:
    """The facts matching every given filter, in table order."""
    return [
        f
        for f in FACTS
        if (chapter is None or f.chapter == chapter)
        and (quantity is None or f.quantity == quantity)
        and (dataset is None or f.dataset == dataset)
        and (group is None or f.group == group)
    ]


def pair(prefix: str) -> tuple[Fact, Fact]:
    """The ``(normal, robust)`` facts ``<prefix>_normal`` and ``<prefix>_robust``."""
    return fact(f"{prefix}_normal"), fact(f"{prefix}_robust")


def paper_direction(prefix: str) -> str:
    """'higher' or 'lower': how the robust models' value compares with the normal models' in [GK].

    ``prefix`` names a numeric normal/robust pair (see :func:`pair`) or a qualitative fact with a
    ``direction``.
    """
    if prefix in _BY_KEY and _BY_KEY[prefix].direction is not None:
        return _BY_KEY[prefix].direction
    normal, robust = pair(prefix)
    if normal.mid is None or robust.mid is None:
        raise ValueError(f"{prefix!r} is not a numeric normal/robust pair")
    if robust.mid == normal.mid:
        return "about the same"
    return "higher" if robust.mid > normal.mid else "lower"
