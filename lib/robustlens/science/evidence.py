"""The book's one rule for deciding what a measurement shows, and the intervals it quotes.

Every "higher" and "lower" in the book rests on the tests here, against a noise floor (what a
page concludes from them is decided in ``robustlens.book.claims``):

* **Between recipes, with seeds.** A statistic measured on models trained with several seeds
  per recipe differs between two recipes only when the difference of the seed means exceeds the
  *seed spread* -- the largest gap between two seeds of the same recipe -- and the two groups
  of seeds do not overlap. Two random initialisations of the same recipe set the scale of what
  "different" must beat. With a single seed there is no spread to beat, and the verdict says so.
* **Between groups of many values** (filters, images): a permutation test of the difference
  of means, with the seeded permutations recorded.
* **Accuracies** carry 95 % Wilson score intervals; counts of rare events (sparse filters) exact
  Clopper-Pearson intervals.

"Not distinguishable at this profile" is a verdict like the others, not a failure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

#: The three verdicts of :func:`compare` when there is a noise floor to beat.
HIGHER, LOWER, SAME = "higher", "lower", "not distinguishable"
#: The verdict of :func:`compare` when there is no noise floor (one seed on each side).
NO_FLOOR = "no noise floor (one seed)"
#: Every verdict :func:`compare` can return, in the order counts of them are reported.
VERDICTS = (HIGHER, LOWER, SAME, NO_FLOOR)
#: The two-sided 95 % quantile of the standard normal distribution (the intervals' ``z``).
Z95 = 1.959963984540054


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion ``k / n`` (well behaved at 0 and n)."""
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At k = 0 and k = n the bound is exactly 0 or 1; rounding must not make it 1e-16 off.
    return (0.0 if k == 0 else max(0.0, centre - half)), (
        1.0 if k == n else min(1.0, centre + half)
    )


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval of ``k / n`` (for counts of rare events such as sparse filters)."""
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(stats.beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def accuracy_text(correct: Sequence[bool] | np.ndarray, digits: int = 1) -> str:
    """``"83.9 % [83.2, 84.6]"``: accuracy with its 95 % Wilson interval, in percent."""
    ok = np.asarray(correct, dtype=bool)
    lo, hi = wilson_interval(int(ok.sum()), ok.size)
    return f"{100 * ok.mean():.{digits}f} % [{100 * lo:.{digits}f}, {100 * hi:.{digits}f}]"


def interval_text(value: float, ci: Sequence[float], digits: int = 1, percent: bool = True) -> str:
    scale, unit = (100, " %") if percent else (1, "")
    return (
        f"{scale * value:.{digits}f}{unit} [{scale * ci[0]:.{digits}f}, {scale * ci[1]:.{digits}f}]"
    )


@dataclass(frozen=True)
class Comparison:
    """``other`` against ``base``: the verdict, the difference of means and the floor it had to beat."""

    verdict: str
    difference: float  # mean(other) - mean(base)
    noise_floor: float  # NaN when there was none
    n_base: int
    n_other: int

    @property
    def sign(self) -> int:
        return {HIGHER: 1, LOWER: -1}.get(self.verdict, 0)


def seed_spread(*groups: Iterable[float]) -> float:
    """The largest gap between two seeds of the same recipe (NaN if no group has two seeds)."""
    ranges = [np.ptp(g) for g in (np.asarray(list(g), float) for g in groups) if g.size >= 2]
    return float(max(ranges)) if ranges else math.nan


def compare(
    base: Iterable[float], other: Iterable[float], noise_floor: float | None = None
) -> Comparison:
    """Is ``other`` higher, lower or not distinguishable from ``base``?

    ``base`` and ``other`` hold one value per seed. The difference of their means must exceed
    ``noise_floor`` (default: :func:`seed_spread` of the two groups) *and* the groups must not
    overlap. Without a floor (one seed each and none given) the verdict is :data:`NO_FLOOR`.
    NaN values are dropped; an empty group gives :data:`SAME` with a NaN difference.
    """
    a = np.asarray([v for v in base if not _isnan(v)], float)
    b = np.asarray([v for v in other if not _isnan(v)], float)
    if a.size == 0 or b.size == 0:
        return Comparison(SAME, math.nan, math.nan, a.size, b.size)
    diff = float(b.mean() - a.mean())
    floor = seed_spread(a, b) if noise_floor is None else float(noise_floor)
    if math.isnan(floor):
        return Comparison(NO_FLOOR, diff, floor, a.size, b.size)
    if diff > floor and b.min() > a.max():
        verdict = HIGHER
    elif -diff > floor and b.max() < a.min():
        verdict = LOWER
    else:
        verdict = SAME
    return Comparison(verdict, diff, floor, a.size, b.size)


def _isnan(v) -> bool:
    try:
        return math.isnan(v)
    except TypeError:
        return False


def compare_table(
    table: pd.DataFrame,
    value: str,
    group: str,
    base: str,
    by: Sequence[str] = (),
    others: Sequence[str] | None = None,
    noise_floor: float | None = None,
) -> pd.DataFrame:
    """:func:`compare` every ``group`` level against ``base`` within each combination of ``by``.

    ``table`` is tidy: one row per seed (or per replicate) with the statistic in ``value``.
    Returns one row per (``by``..., other): ``verdict, difference, noise_floor, n_base, n_other``.
    """
    by = list(by)
    rows = []
    groups = table.groupby(by, sort=False) if by else [((), table)]
    for keys, sub in groups:
        keys = keys if isinstance(keys, tuple) else (keys,)
        levels = [g for g in (others or sub[group].unique()) if g != base]
        base_vals = sub.loc[sub[group] == base, value]
        for other in levels:
            c = compare(base_vals, sub.loc[sub[group] == other, value], noise_floor)
            rows.append(
                {
                    **dict(zip(by, keys)),
                    group: other,
                    "verdict": c.verdict,
                    "difference": c.difference,
                    "noise_floor": c.noise_floor,
                    "n_base": c.n_base,
                    "n_other": c.n_other,
                }
            )
    return pd.DataFrame(
        rows, columns=[*by, group, "verdict", "difference", "noise_floor", "n_base", "n_other"]
    )


def permutation_test(
    a: Sequence[float], b: Sequence[float], n_permutations: int = 2000, seed: int = 0
) -> float:
    """Two-sided p-value of the difference of means of ``a`` and ``b`` under random relabelling.

    ``(1 + #|permuted difference| >= |observed|) / (1 + n_permutations)``: never 0, and the
    smallest p a test of ``n_permutations`` can give is ``1 / (1 + n_permutations)``.
    """
    x, y = np.asarray(a, float), np.asarray(b, float)
    if x.size == 0 or y.size == 0:
        raise ValueError("permutation_test needs two non-empty groups")
    pooled = np.concatenate([x, y])
    observed = abs(y.mean() - x.mean())
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(n_permutations):
        perm = rng.permutation(pooled)
        hits += abs(perm[x.size :].mean() - perm[: x.size].mean()) >= observed - 1e-12
    return (1 + hits) / (1 + n_permutations)


def bootstrap_interval(
    values: Sequence[float],
    statistic=np.median,
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over ``values`` (NaNs dropped; seeded)."""
    x = np.asarray(values, float)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    stats_ = np.array([statistic(x[rng.integers(0, x.size, x.size)]) for _ in range(n_resamples)])
    a = (1 - level) / 2
    return float(np.quantile(stats_, a)), float(np.quantile(stats_, 1 - a))


def spearman(a, b) -> float:
    """Spearman's rho of two sequences; NaN, without a warning, when either is constant.

    Pearson's r on average ranks, which is Spearman's definition with ties.
    """
    a, b = pd.Series(list(a), dtype=float), pd.Series(list(b), dtype=float)
    if len(a) < 2 or a.nunique() < 2 or b.nunique() < 2:
        return float("nan")
    return float(a.rank().corr(b.rank()))
