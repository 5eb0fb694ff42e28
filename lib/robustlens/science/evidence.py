"""The book's rules for deciding what a measurement shows, and the intervals it quotes.

Every "higher" and "lower" in the book rests on a test here whose false-positive rate is stated
and holds (``tests/test_verdict_error_rates.py`` simulates tables with no true difference and
counts how often each rule says "higher" or "lower"); what a page concludes from the verdicts is
decided in ``robustlens.book.claims``:

* **Between training methods, the training run (seed) as the unit.** :func:`compare` runs an
  *exact* two-sided permutation test of the difference of seed means: every relabelling of the
  seeds into the two groups is enumerated, so a verdict's false-positive rate is at most
  ``alpha`` (default :data:`ALPHA` = 0.05) whatever the distribution. A permutation test of
  ``n`` seeds against ``m`` cannot give a p-value below :func:`smallest_p` (2 of the
  ``C(n + m, n)`` relabellings when ``n = m``): with 2 seeds against 2 that is 1/3, so no verdict
  is possible and the verdict says :data:`TOO_FEW`; :func:`seeds_needed` says how many seeds
  reach ``alpha``. :func:`compare_table` tests many cases at once and corrects them with Holm's
  step-down method (the family-wise error rate is at most ``alpha``); :func:`pooled_compare`
  tests one claim across architectures, layers or deciles with whole models (seeds) relabelled
  within each architecture, so a layer is never treated as a replicate. One model against the
  seeds of a method (a single λ of a sweep) is tested against the seeds' t prediction interval.
* **Between groups of many values of one model** (filters, images): a permutation test of the
  difference of means, with the seeded permutations recorded, or a paired sign-flip test where
  both groups are measured on the same images (:func:`paired_permutation_test`).
* **Accuracies** carry 95 % Wilson score intervals; counts of rare events (sparse filters) exact
  Clopper-Pearson intervals.

"Not distinguishable at this profile" is a verdict like the others, not a failure, and it comes
with the smallest effect the test could have detected (:func:`minimum_detectable_effect`).
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

#: The verdicts of :func:`compare`: a direction, or no difference beyond what chance gives.
HIGHER, LOWER, SAME = "higher", "lower", "not distinguishable"
#: The verdict of :func:`compare` when its test cannot reach ``alpha`` with so few seeds.
TOO_FEW = "too few seeds to test"
#: The verdict of :func:`compare` when the statistic takes one value on every model (nothing
#: can differ, e.g. the share of sparse filters where no model has a sparse filter).
CONSTANT = "untestable (the same value on every model)"
#: Every verdict :func:`compare` can return, in the order counts of them are reported.
VERDICTS = (HIGHER, LOWER, SAME, TOO_FEW, CONSTANT)
#: The level of every test of the book, after correction for the number of verdicts drawn.
ALPHA = 0.05
#: The power at which :func:`minimum_detectable_effect` is computed.
POWER = 0.8
#: The two-sided 95 % quantile of the standard normal distribution (the intervals' ``z``).
Z95 = 1.959963984540054
#: Beyond this many relabellings a permutation test samples them (seeded) instead.
MAX_ENUMERATED = 50_000


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
    """``other`` against ``base``: the verdict and the numbers it rests on."""

    verdict: str
    difference: float  # mean(other) - mean(base)
    noise_floor: float  # the largest gap between two seeds of one group (NaN with one seed each)
    n_base: int
    n_other: int
    p_value: float = math.nan  # exact two-sided permutation p (NaN when untestable)
    smallest_p: float = math.nan  # the smallest p any data could give with these seed counts
    mde: float = math.nan  # the smallest |difference| detectable at ``POWER`` (inf: none)

    @property
    def sign(self) -> int:
        return {HIGHER: 1, LOWER: -1}.get(self.verdict, 0)


def seed_spread(*groups: Iterable[float]) -> float:
    """The largest gap between two seeds of the same recipe (NaN if no group has two seeds)."""
    ranges = [np.ptp(g) for g in (np.asarray(list(g), float) for g in groups) if g.size >= 2]
    return float(max(ranges)) if ranges else math.nan


def pooled_sd(*groups: Iterable[float]) -> float:
    """Within-group standard deviation of seeds, pooled over the groups (NaN without any
    group of two)."""
    arrays = [np.asarray(list(g), float) for g in groups]
    ss = sum(float(((g - g.mean()) ** 2).sum()) for g in arrays if g.size >= 2)
    df = sum(g.size - 1 for g in arrays if g.size >= 2)
    return math.sqrt(ss / df) if df else math.nan


@functools.lru_cache(maxsize=64)
def _labellings(n: int, k: int, seed: int = 0) -> np.ndarray:
    """Boolean ``(L, n)`` matrix: which of ``n`` units are in the second group (``k`` of them),
    every labelling when there are at most :data:`MAX_ENUMERATED`, else that many at random
    (seeded) with the observed labelling first."""
    if math.comb(n, k) <= MAX_ENUMERATED:
        out = np.zeros((math.comb(n, k), n), bool)
        for row, idx in enumerate(itertools.combinations(range(n), k)):
            out[row, list(idx)] = True
        out.flags.writeable = False  # cached: shared by every caller
        return out
    rng = np.random.default_rng(seed)
    out = np.zeros((MAX_ENUMERATED, n), bool)
    out[0, n - k :] = True
    for row in range(1, MAX_ENUMERATED):
        out[row, rng.choice(n, k, replace=False)] = True
    out.flags.writeable = False  # cached: shared by every caller
    return out


def exact_permutation_p(base: Sequence[float], other: Sequence[float]) -> float:
    """Two-sided p-value of ``mean(other) - mean(base)`` over every relabelling of the pooled
    values into groups of the same sizes (sampled beyond :data:`MAX_ENUMERATED`)."""
    a, b = np.asarray(base, float), np.asarray(other, float)
    pooled = np.concatenate([a, b])
    lab = _labellings(pooled.size, b.size)
    diffs = (lab @ pooled) / b.size - ((~lab) @ pooled) / a.size
    observed = abs(b.mean() - a.mean())
    # A relative tolerance: relabellings that give the same difference up to rounding count.
    return float(np.mean(np.abs(diffs) >= observed - 1e-9 * (1 + observed)))


@functools.lru_cache(maxsize=None)
def smallest_p(n_base: int, n_other: int) -> float:
    """The smallest p-value :func:`exact_permutation_p` can give with these group sizes: that of
    two groups with no overlap at all (1/3 for 2 seeds against 2, 0.1 for 3 against 3)."""
    if n_base < 1 or n_other < 1:
        return 1.0
    return exact_permutation_p(np.arange(n_base), 1e6 + np.arange(n_other))


def seeds_needed(alpha: float = ALPHA, n_tests: int = 1, n_blocks: int = 1) -> int:
    """Seeds per group before an exact two-sided permutation test can reach ``alpha / n_tests``
    (Holm's first step over ``n_tests`` verdicts), with the seeds of ``n_blocks`` architectures
    pooled as in :func:`pooled_compare` (whose relabellings multiply across blocks)."""
    level = alpha / n_tests
    for n in range(1, 50):
        # Two-sided with equal groups: the two extreme labellings per block give the smallest p.
        if 2 / math.comb(2 * n, n) ** n_blocks <= level:
            return n
    raise ValueError(f"no seed count below 50 reaches {level:g}")


@functools.lru_cache(maxsize=None)
def _standard_mde(n_base: int, n_other: int, level: float, power: float) -> float:
    """:func:`minimum_detectable_effect` in units of the seed standard deviation, by simulating
    normal seeds (seeded, so the same sizes always give the same number)."""
    if smallest_p(n_base, n_other) > level:
        return math.inf
    rng = np.random.default_rng(12345)
    n = n_base + n_other
    lab = _labellings(n, n_other)
    noise = rng.standard_normal((400, n))

    def detected(delta: float) -> float:
        x = noise.copy()
        x[:, n_base:] += delta
        diffs = x @ lab.T / n_other - x @ (~lab).T / n_base
        observed = np.abs(x[:, n_base:].mean(1) - x[:, :n_base].mean(1))
        p = np.mean(np.abs(diffs) >= observed[:, None] - 1e-9, axis=1)
        return float(np.mean(p <= level))

    return _smallest_detected(detected, power, 30)


def _smallest_detected(detected, power: float, halvings: int) -> float:
    """The smallest effect (standard deviations) that ``detected(effect)`` finds in a share
    ``power`` of repeats: doubled until found, then bisected ``halvings`` times; inf past 1000."""
    lo, hi = 0.0, 1.0
    while detected(hi) < power:
        lo, hi = hi, 2 * hi
        if hi > 1e3:
            return math.inf
    for _ in range(halvings):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if detected(mid) < power else (lo, mid)
    return hi


def minimum_detectable_effect(
    n_base: int, n_other: int, sd: float, level: float = ALPHA, power: float = POWER
) -> float:
    """The smallest true difference of means that :func:`exact_permutation_p` detects at
    ``level`` in a share ``power`` of repeats, for seeds of standard deviation ``sd`` (normal
    seeds assumed for this one number). ``inf`` when the test cannot reach ``level`` at all with
    these seed counts; NaN when there is no ``sd`` to scale by."""
    scale = _standard_mde(int(n_base), int(n_other), float(level), float(power))
    if math.isinf(scale):
        return math.inf
    return scale * sd if sd == sd else math.nan


@functools.lru_cache(maxsize=None)
def pooled_mde(
    n_base: int, n_other: int, n_blocks: int = 1, level: float = ALPHA, power: float = POWER
) -> float:
    """The smallest true difference, in units of the per-stratum standard deviation that
    :func:`pooled_compare` divides by, that its test detects at ``level`` in a share ``power`` of
    repeats: normal models, ``n_base`` against ``n_other`` in each of ``n_blocks``
    architectures, the strata of one model moving together (the least favourable case for a
    pooled test, so the number is an upper bound). ``inf`` when the test cannot reach ``level``.
    Simulated with a fixed seed, so the same sizes always give the same number."""
    n = n_base + n_other
    lab = _labellings(n, n_other)
    per_block_extreme = 2 / len(lab) if n_base == n_other else 1 / len(lab)
    if per_block_extreme**n_blocks > level:
        return math.inf
    rng = np.random.default_rng(2024)
    noise = rng.standard_normal((300, n_blocks, n))

    def detected(delta: float) -> float:
        x = noise.copy()
        x[:, :, n_base:] += delta
        hits = 0
        for rep in x:
            null = np.zeros(1)
            observed = 0.0
            for v in rep:
                diffs = (lab @ v) / n_other - ((~lab) @ v) / n_base
                null = np.add.outer(null, diffs).ravel()
                observed += v[n_base:].mean() - v[:n_base].mean()
            hits += np.mean(np.abs(null) >= abs(observed) - 1e-9) <= level
        return hits / len(x)

    return _smallest_detected(detected, power, 20)


def _adjusted(p_values: Sequence[float], step) -> np.ndarray:
    """Apply ``step`` (sorted p-values -> adjusted, same order) to the non-NaN p-values; NaNs
    stay NaN and are not counted as tests."""
    p = np.asarray(p_values, float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        order = np.argsort(p[ok])
        vals = np.empty(int(ok.sum()))
        vals[order] = step(p[ok][order])
        out[ok] = vals
    return out


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaNs stay NaN and are not counted as tests): reject
    where the adjusted p is at most ``alpha`` and the family-wise error rate is at most
    ``alpha``."""

    def step(p):
        m = p.size
        return np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p))

    return _adjusted(p_values, step)


def benjamini_hochberg(p_values: Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false-discovery rate; NaNs stay NaN)."""

    def step(p):
        ranked = p * p.size / np.arange(1, p.size + 1)
        return np.minimum(1.0, np.minimum.accumulate(ranked[::-1])[::-1])

    return _adjusted(p_values, step)


CORRECTIONS = {"holm": holm, "bh": benjamini_hochberg, "none": lambda p: np.asarray(p, float)}


def _verdict(diff: float, p: float, p_min: float, alpha: float, constant: bool) -> str:
    if constant:
        return CONSTANT
    if p_min > alpha:
        return TOO_FEW
    if p <= alpha:
        return HIGHER if diff > 0 else LOWER
    return SAME


def compare(
    base: Iterable[float],
    other: Iterable[float],
    alpha: float = ALPHA,
    p_adjusted: float | None = None,
    level_for_mde: float | None = None,
) -> Comparison:
    """Is ``other`` higher, lower or not distinguishable from ``base``?

    ``base`` and ``other`` hold one value per seed (the training run is the unit). The verdict is
    a direction when the exact two-sided permutation p-value (or ``p_adjusted``, the same p after
    a correction for many verdicts) is at most ``alpha``; :data:`TOO_FEW` when no data could
    reach ``alpha`` with so few seeds (:func:`smallest_p`), :data:`CONSTANT` when every value is
    the same. NaN values are dropped. The :func:`minimum_detectable_effect` is computed at
    ``level_for_mde`` (default ``alpha``) from the seeds' pooled standard deviation.
    """
    a = np.asarray([v for v in base if not _isnan(v)], float)
    b = np.asarray([v for v in other if not _isnan(v)], float)
    if a.size == 0 or b.size == 0:
        return Comparison(TOO_FEW, math.nan, math.nan, a.size, b.size, math.nan, 1.0, math.inf)
    diff = float(b.mean() - a.mean())
    constant = bool(np.ptp(np.concatenate([a, b])) == 0)
    if min(a.size, b.size) == 1 and max(a.size, b.size) >= 2:
        return _one_against_seeds(a, b, diff, constant, alpha, p_adjusted, level_for_mde)
    p_min = smallest_p(a.size, b.size)
    p = math.nan if constant else exact_permutation_p(a, b)
    p_used = p if p_adjusted is None else float(p_adjusted)
    mde = minimum_detectable_effect(a.size, b.size, pooled_sd(a, b), level_for_mde or alpha)
    verdict = _verdict(diff, p_used, p_min, alpha, constant)
    return Comparison(verdict, diff, seed_spread(a, b), a.size, b.size, p, p_min, mde)


def _one_against_seeds(a, b, diff, constant, alpha, p_adjusted, level_for_mde) -> Comparison:
    """One model (a single λ of a sweep) against the seeds of a method: is it outside their
    two-sided t prediction interval? An exact permutation rank test would need 39 seeds to
    reach 0.05 against one value; the prediction interval holds its rate exactly for normal
    seeds, and ``tests/test_verdict_error_rates.py`` checks it on simulated ones."""
    seeds, one = (a, b) if b.size == 1 else (b, a)
    n, sd = seeds.size, float(seeds.std(ddof=1))
    scale = sd * math.sqrt(1 + 1 / n)
    if constant:
        p = math.nan
    elif scale == 0:
        p = 0.0
    else:
        p = float(2 * stats.t.sf(abs(one[0] - seeds.mean()) / scale, n - 1))
    level = level_for_mde or alpha
    t_crit = stats.t.ppf(1 - level / 2, n - 1) + stats.t.ppf(POWER, n - 1)
    p_used = p if p_adjusted is None else float(p_adjusted)
    verdict = _verdict(diff, p_used, 0.0, alpha, constant)
    return Comparison(
        verdict, diff, seed_spread(a, b), a.size, b.size, p, 0.0, float(t_crit * scale)
    )


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
    alpha: float = ALPHA,
    correction: str = "holm",
) -> pd.DataFrame:
    """:func:`compare` every ``group`` level against ``base`` within each combination of ``by``,
    the verdicts corrected together for their number (``correction``: ``"holm"``, ``"bh"`` or
    ``"none"``).

    ``table`` is tidy: one row per seed (or per replicate) with the statistic in ``value``.
    Returns one row per (``by``..., other): ``verdict, difference, noise_floor, p_value,
    p_adjusted, smallest_p, mde, n_base, n_other, n_tests`` (the number of tests corrected
    together). ``mde`` is computed at the level the first step of Holm's method asks of a p-value
    (``alpha`` divided by the number of tests).
    """
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}, got {correction!r}")
    by = list(by)
    cases = []
    groups = table.groupby(by, sort=False) if by else [((), table)]
    for keys, sub in groups:
        keys = keys if isinstance(keys, tuple) else (keys,)
        levels = [g for g in (others or sub[group].unique()) if g != base]
        base_vals = sub.loc[sub[group] == base, value].tolist()
        for other in levels:
            cases.append((keys, other, base_vals, sub.loc[sub[group] == other, value].tolist()))
    first = [compare(b, o, alpha) for _, _, b, o in cases]
    adjusted = CORRECTIONS[correction]([c.p_value for c in first])
    n_tests = max(1, int(np.sum(~np.isnan(adjusted))))
    level = alpha / n_tests if correction == "holm" else alpha
    rows = []
    for (keys, other, b, o), c, p_adj in zip(cases, first, adjusted):
        final = compare(b, o, alpha, p_adjusted=p_adj, level_for_mde=level)
        rows.append(
            {
                **dict(zip(by, keys)),
                group: other,
                "verdict": final.verdict,
                "difference": c.difference,
                "noise_floor": c.noise_floor,
                "p_value": c.p_value,
                "p_adjusted": p_adj,
                "smallest_p": c.smallest_p,
                "mde": final.mde,
                "n_base": c.n_base,
                "n_other": c.n_other,
                "n_tests": n_tests,
            }
        )
    columns = [*by, group, "verdict", "difference", "noise_floor", "p_value", "p_adjusted"]
    return pd.DataFrame(
        rows, columns=[*columns, "smallest_p", "mde", "n_base", "n_other", "n_tests"]
    )


@dataclass(frozen=True)
class PooledComparison:
    """One claim tested across strata (layers, deciles) and blocks (architectures)."""

    verdict: str
    effect: float  # mean over strata of the difference in units of the stratum's seed spread
    p_value: float
    smallest_p: float
    n_strata: int
    n_models: int


def pooled_compare(
    table: pd.DataFrame,
    value: str,
    group: str,
    base: str,
    other: str,
    unit: str,
    strata: Sequence[str],
    block: str | None = None,
    alpha: float = ALPHA,
) -> PooledComparison:
    """One claim ("``other`` has a higher ``value`` than ``base``") across many strata, with
    the model as the unit: the statistic is the mean over strata of the difference of group
    means, each divided by that stratum's standard deviation over all its models, and its null
    distribution relabels whole models (``unit``, e.g. the seed) between the two groups, within
    each ``block`` (e.g. the architecture) separately. Layers of one model move together, so
    they are never counted as replicates. Exact (every relabelling) up to
    :data:`MAX_ENUMERATED` relabellings, sampled beyond. Strata where the value is the same on
    every model are left out; with none left the verdict is :data:`CONSTANT`.
    """
    t = table[table[group].isin([base, other])]
    blocks = [((), t)] if block is None else list(t.groupby(block, sort=False))
    contributions, n_strata, n_models, observed = [], 0, 0, 0.0
    for _, part in blocks:
        wide = part.pivot_table(index=[group, unit], columns=list(strata), values=value)
        wide = wide.dropna(axis=1)
        sd = wide.std(axis=0, ddof=1)
        wide = wide.loc[:, sd > 0] / sd[sd > 0]
        if wide.shape[1] == 0:
            continue
        is_other = (wide.index.get_level_values(group) == other).astype(bool)
        k, n = int(is_other.sum()), len(is_other)
        if k == 0 or k == n:
            continue
        lab = _labellings(n, k)
        v = wide.to_numpy()
        # Sum over this block's strata of the per-stratum difference, for every relabelling.
        diffs = (lab @ v) / k - ((~lab) @ v) / (n - k)
        contributions.append(diffs.sum(axis=1))
        observed += float((v[is_other].mean(0) - v[~is_other].mean(0)).sum())
        n_strata += v.shape[1]
        n_models += n
    if not contributions:
        return PooledComparison(CONSTANT, math.nan, math.nan, math.nan, 0, n_models)
    null = contributions[0]
    for c in contributions[1:]:
        null = np.add.outer(null, c).ravel()
        if null.size > MAX_ENUMERATED:
            rng = np.random.default_rng(0)
            null = rng.choice(null, MAX_ENUMERATED, replace=False)
    tol = 1e-9 * (1 + abs(observed))
    p = float(np.mean(np.abs(null) >= abs(observed) - tol))
    # The smallest p: only the observed labelling and its mirror reach the extreme.
    extreme = np.max(np.abs(null))
    p_min = float(np.mean(np.abs(null) >= extreme - 1e-9 * (1 + extreme)))
    effect = observed / n_strata
    return PooledComparison(
        _verdict(effect, p, p_min, alpha, False), effect, p, p_min, n_strata, n_models
    )


def paired_permutation_test(
    a: Sequence[float], b: Sequence[float], n_permutations: int = 9999, seed: int = 0
) -> float:
    """Two-sided p-value of the mean of ``b - a`` when both were measured on the same items
    (images): the signs of the paired differences are flipped at random. ``(1 + hits) /
    (1 + n_permutations)``, never below ``1 / (1 + n_permutations)``."""
    d = np.asarray(b, float) - np.asarray(a, float)
    if d.size == 0:
        raise ValueError("paired_permutation_test needs at least one pair")
    rng = np.random.default_rng(seed)
    observed = abs(d.mean())
    signs = rng.choice([-1.0, 1.0], size=(n_permutations, d.size))
    hits = int(np.sum(np.abs(signs @ d / d.size) >= observed - 1e-12))
    return (1 + hits) / (1 + n_permutations)


def p_text(p: float, n_permutations: int | None = None) -> str:
    """A p-value as the page prints it: never ``0.000``; at the test's floor it says
    ``p ≤ floor`` (the smallest p ``n_permutations`` random relabellings can give)."""
    if p != p:
        return "–"
    floor = None if n_permutations is None else 1 / (1 + n_permutations)
    if floor is not None and p <= floor * (1 + 1e-9):
        return f"≤ {floor:.2g}"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def p_phrase(p: float, n_permutations: int | None = None) -> str:
    """``"p = 0.012"``, or ``"p ≤ 0.0001"`` at the test's floor (:func:`p_text`)."""
    text = p_text(p, n_permutations)
    return f"p {text}" if text.startswith("≤") else f"p = {text}"


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
