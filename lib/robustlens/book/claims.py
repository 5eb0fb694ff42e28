"""Every rule that decides what the book concludes, one small function per rule.

The statistics these rules read are computed in :mod:`robustlens.science.evidence`: above all
:func:`~robustlens.science.evidence.compare`, the noise-floor rule that calls one group of seeds
higher, lower or not distinguishable from another. This module turns such verdicts, intervals
and counts into what a page says: whether a layer-wise pattern exists, whether a paper's
direction reproduces, whether each check of chapter 04 holds. The sentences around the verdicts
are built in :mod:`robustlens.book.wording`.

The verdict words below are read by the prose of the chapters: change one only together with
the pages that print it. "Not distinguishable" and "cannot be decided" are verdicts like the
others, not failures: they say that the measurement at this profile does not separate the
cases from the noise.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from robustlens.science import evidence
from robustlens.science.evidence import (
    ALPHA,
    CONSTANT,
    HIGHER,
    LOWER,
    SAME,
    TOO_FEW,
    VERDICTS,
    Comparison,
)
from robustlens.science.training_progress import TRAINED_REL_CHANGE

__all__ = [
    "FRONTIER_NOT_MEASURED",
    "FRONTIER_WINDOW",
    "DRIFT_ABOVE",
    "DRIFT_NOT_ABOVE",
    "TOO_FEW_MODELS",
    "drift_verdict",
    "HIGHER",
    "LOWER",
    "SAME",
    "TOO_FEW",
    "CONSTANT",
    "VERDICTS",
    "TRAINED_REL_CHANGE",
    "HOLDS",
    "HOLDS_PARTLY",
    "DOES_NOT_HOLD",
    "CONTRADICTED",
    "MIXED",
    "NOT_HERE",
    "CANNOT_DECIDE",
    "NOT_MEASURABLE",
    "REPRODUCES",
    "OPPOSITE",
    "MONOTONE",
    "TOWARD",
    "AWAY",
    "NO_MOVE",
    "UNTESTABLE",
    "NO_NOISE_FLOOR",
    "TIGHT_BAND",
    "ALPHA",
    "MIN_RHO",
    "LOOSE_FACTOR",
    "trained",
    "interpretable",
    "count_verdicts",
    "overall",
    "verdict_cell",
    "agreement",
    "reproduces",
    "direction_verdict",
    "significant",
    "permutation_verdict",
    "ends_above_middle",
    "band_verdict",
    "tightness_verdict",
    "breakdown_eps",
    "sweep_verdict",
    "sweep_verdicts",
    "verdict_table",
    "share_verdict",
    "movement_verdict",
    "bound_loose",
    "bound_verdict",
    "shrinks",
    "shrink_verdict",
    "trades_off",
    "frontier_verdict",
    "COLLAPSE_SHARE",
    "collapsed",
    "ABOVE_FRONTIER",
    "BELOW_FRONTIER",
    "ON_FRONTIER",
    "envelope_at",
    "frontier_position",
    "failed_checks",
    "chance_directions",
    "pooled_verdicts",
]

# --------------------------------------------------------------------------- verdict words

#: A claim holds: every tested case supports it.
HOLDS = "holds"
#: A claim holds for some of the tested cases (more than half, where a share is counted).
HOLDS_PARTLY = "holds partly"
#: A claim is tested and fails.
DOES_NOT_HOLD = "does not hold"
#: The decided cases go against the direction a paper reports.
CONTRADICTED = "contradicted"
#: The decided cases go both ways.
MIXED = "mixed"
#: Nothing separates the cases from the noise at this profile.
NOT_HERE = "not distinguishable at this profile"
#: The test itself cannot be run at this profile (the reason follows in brackets).
CANNOT_DECIDE = "cannot be decided at this profile"
#: No case of a paper's claim could be measured on the book's models.
NOT_MEASURABLE = "not measurable here"
#: The book's direction is the one a paper reports.
REPRODUCES = "the direction reproduces"
#: The book's direction is the opposite of the one a paper reports.
OPPOSITE = "the opposite direction here"
#: Chapter 04, check 2: the penalty moves a statistic onto PGD-AT's side, monotonically in λ.
MONOTONE = "monotone toward PGD-AT"
#: Chapter 04, check 2: onto PGD-AT's side, but not monotonically in λ.
TOWARD = "toward PGD-AT, not monotone"
#: Chapter 04, check 2: beyond the noise floor, to the side opposite PGD-AT's.
AWAY = "away from PGD-AT"
#: Chapter 04, check 2: the largest λ stays within the noise floor of the standard seeds.
NO_MOVE = "does not move"
#: Chapter 04, check 2: PGD-AT itself does not differ from standard beyond the noise floor.
UNTESTABLE = "untestable"
#: Chapter 04, check 2: too few seeds per method for any test to reach ALPHA.
NO_NOISE_FLOOR = "too few seeds to test"

# --------------------------------------------------------------------------- thresholds

#: "The first-order model holds" means PGD's loss increase is within this factor of the
#: prediction (the median ratio and its bootstrap interval lie in this band).
TIGHT_BAND = (2 / 3, 1.5)
#: Spearman correlation with λ, in PGD-AT's direction, from which a move counts as monotone.
MIN_RHO = 0.8
#: A bound that exceeds what it bounds by at least this factor for every model is called loose.
LOOSE_FACTOR = 10.0
#: Fast AT has collapsed (catastrophic overfitting, Wong et al. 2020) when its last epoch keeps
#: less than this share of its best epoch's PGD accuracy.
COLLAPSE_SHARE = 0.5


# --------------------------------------------------------------------------- trained models


def trained(median_rel_change: float) -> bool:
    """A model counts as trained when its median conv layer has moved at least
    :data:`~robustlens.science.training_progress.TRAINED_REL_CHANGE` of its initial norm,
    ``||W - W0|| / ||W0||``."""
    return bool(median_rel_change >= TRAINED_REL_CHANGE)


def collapsed(pgd_by_epoch: Sequence[float], share: float = COLLAPSE_SHARE) -> bool:
    """Catastrophic overfitting of fast AT: the last epoch's PGD accuracy is below ``share`` of
    the best epoch's. An empty curve (no monitor) is not a collapse."""
    curve = [float(v) for v in pgd_by_epoch]
    return bool(curve) and curve[-1] < share * max(curve)


def interpretable(trained_flags: Iterable[bool]) -> bool:
    """Verdicts about what a training method does to the filters are interpretable only when
    every model they rest on counts as :func:`trained` (and there is at least one model)."""
    flags = [bool(f) for f in trained_flags]
    return bool(flags) and all(flags)


# --------------------------------------------------------------------------- many verdicts


def count_verdicts(verdicts: Iterable[str]) -> dict[str, int]:
    """How many of each verdict of :func:`~robustlens.science.evidence.compare`, in
    ``VERDICTS`` order (zeros kept); any other word is an error."""
    vs = list(verdicts)
    unknown = set(vs) - set(VERDICTS)
    if unknown:
        raise ValueError(f"not verdicts of robustlens.science.evidence.compare: {sorted(unknown)}")
    return {v: vs.count(v) for v in VERDICTS}


def overall(verdicts: Iterable[str], expected: str | None = None) -> str:
    """One verdict from many (layers, deciles, architectures): the one word a summary may use.

    With ``expected`` (a direction claimed by a paper): :data:`HOLDS` when every decided case
    goes that way and at least half of all cases are decided; :data:`CONTRADICTED` when every
    decided case goes the other way and at least half are decided; :data:`MIXED` when decided
    cases go both ways; otherwise ``SAME`` ("not distinguishable"). Without ``expected``: the
    common direction under the same rules, :data:`MIXED` or ``SAME``. Cases without a noise
    floor count as undecided; when every case has too few seeds (or is untestable), that is
    the verdict.
    """
    counts = count_verdicts(verdicts)
    n = sum(counts.values())
    hi, lo = counts[HIGHER], counts[LOWER]
    for word in (TOO_FEW, CONSTANT):
        if n and counts[word] == n:
            return word
    if n == 0 or hi + lo < n / 2:
        return MIXED if hi and lo else SAME
    if hi and lo:
        return MIXED
    direction = HIGHER if hi else LOWER
    if expected is None:
        return direction
    if expected not in (HIGHER, LOWER):
        raise ValueError(f"expected must be {HIGHER!r} or {LOWER!r}, got {expected!r}")
    return HOLDS if direction == expected else CONTRADICTED


def verdict_cell(verdicts: Iterable[str]) -> str:
    """``"3 ↑ · 1 ↓ · 5 ="``: how many cases are higher, lower and not distinguishable, with
    ``" · 2 ?"`` appended for cases with too few seeds to test and ``" · 1 ∅"`` for cases where
    the statistic takes one value on every model (untestable)."""
    c = count_verdicts(verdicts)
    text = f"{c[HIGHER]} ↑ · {c[LOWER]} ↓ · {c[SAME]} ="
    text += f" · {c[TOO_FEW]} ?" if c[TOO_FEW] else ""
    return text + (f" · {c[CONSTANT]} ∅" if c[CONSTANT] else "")


def chance_directions(n_cases: int, alpha: float = ALPHA, corrected: bool = True) -> float:
    """What chance alone gives under a rule, beside a count of verdicts: with no true difference
    anywhere, the expected number of "higher" or "lower" among ``n_cases`` tests at ``alpha``
    is ``alpha * n_cases`` uncorrected; after Holm's correction the chance that *any* case gets
    a direction is at most ``alpha`` (returned as that probability)."""
    return float(alpha) if corrected else float(alpha * n_cases)


def pooled_verdicts(pooled: Mapping[str, evidence.PooledComparison], alpha: float = ALPHA):
    """Holm's correction across the pooled claims one chapter draws (one
    :func:`~robustlens.science.evidence.pooled_compare` per statistic): ``{name: verdict}``,
    a direction only where the Holm-adjusted p is at most ``alpha`` and the test could reach it;
    :data:`TOO_FEW` for every claim when none of them could reach Holm's first level,
    ``alpha`` divided by the number of testable claims.
    """
    names_ = list(pooled)
    adjusted = evidence.holm([pooled[n].p_value for n in names_])
    n_tests = sum(pooled[n].verdict not in (TOO_FEW, CONSTANT) for n in names_)
    # Holm rejects nothing unless some claim can reach alpha / n_tests, its first step: where
    # none can, every claim has too few seeds, not "not distinguishable".
    reachable = any(
        pooled[n].smallest_p <= alpha / max(1, n_tests)
        for n in names_
        if pooled[n].verdict not in (TOO_FEW, CONSTANT)
    )
    out = {}
    for n, p_adj in zip(names_, adjusted):
        c = pooled[n]
        if c.verdict in (TOO_FEW, CONSTANT):
            out[n] = c.verdict
        elif not reachable:
            out[n] = TOO_FEW
        elif p_adj <= alpha:
            out[n] = HIGHER if c.effect > 0 else LOWER
        else:
            out[n] = SAME
    return out


def agreement(paper_direction: str | None, here: str) -> str:
    """Does the book's :func:`overall` verdict ``here`` (taken with ``expected=paper_direction``)
    reproduce a direction a paper reports? ``"yes"`` for :data:`HOLDS`, ``"no: opposite
    direction"`` for :data:`CONTRADICTED`, ``"no: mixed directions"`` for :data:`MIXED`,
    :data:`NOT_HERE` for ``SAME``; without a direction in the paper, nothing to reproduce."""
    if paper_direction is None:
        return "– (no direction in the paper)"
    return {
        HOLDS: "yes",
        CONTRADICTED: "no: opposite direction",
        MIXED: "no: mixed directions",
        SAME: NOT_HERE,
        TOO_FEW: f"{CANNOT_DECIDE} (too few seeds)",
        CONSTANT: "untestable (the same value on every model)",
    }.get(here, here)


def reproduces(paper_direction: str | None, verdicts: Sequence[str] | None) -> str:
    """A row of a "paper vs this book" table: :data:`NOT_MEASURABLE` without any case measured
    here, ``"–"`` when the paper gives no direction, else the :func:`agreement` of the paper's
    direction with the :func:`overall` verdict of the cases."""
    if verdicts is None or len(verdicts) == 0:
        return NOT_MEASURABLE
    if not paper_direction:
        return "–"
    return agreement(paper_direction, overall(verdicts, expected=paper_direction))


def direction_verdict(paper_direction: str, verdict: str) -> str:
    """One :func:`~robustlens.science.evidence.compare` verdict against the direction a paper
    reports: :data:`REPRODUCES` when they agree, :data:`OPPOSITE` when the book's goes the other
    way, :data:`NOT_HERE` when the book's is not distinguishable, :data:`CANNOT_DECIDE` with too
    few seeds and :data:`UNTESTABLE` when the statistic takes one value everywhere."""
    if verdict == TOO_FEW:
        return f"{CANNOT_DECIDE} (too few seeds)"
    if verdict == CONSTANT:
        return UNTESTABLE
    if verdict not in (HIGHER, LOWER):
        return NOT_HERE
    return REPRODUCES if verdict == paper_direction else OPPOSITE


# --------------------------------------------------------------------------- permutation tests


def significant(p_value: float, alpha: float = ALPHA) -> bool:
    """A permutation test rejects "no difference" when its p-value is below ``alpha``."""
    return bool(p_value < alpha)


def permutation_verdict(base: float, other: float, p_value: float, alpha: float = ALPHA) -> str:
    """``other`` against ``base`` (two group means) after a permutation test: ``HIGHER`` or
    ``LOWER`` when :func:`significant`, else ``SAME``."""
    if not significant(p_value, alpha):
        return SAME
    return LOWER if other < base else HIGHER


#: :func:`drift_verdict`'s words: D beyond what other splits of the same models give, or not.
DRIFT_ABOVE, DRIFT_NOT_ABOVE = "above", "not above"
#: :func:`drift_verdict` when no split of these models can reach ``alpha``.
TOO_FEW_MODELS = "too few models to test"


def drift_verdict(p_adjusted: float, smallest_p: float, alpha: float = ALPHA) -> str:
    """Chapter 03's drift against the splits of the same models
    (:func:`~robustlens.science.drift_test.model_drift_test`, its p after Holm's correction):
    :data:`DRIFT_ABOVE` when the adjusted p is at most ``alpha``, :data:`TOO_FEW_MODELS` when
    even the most extreme split could not reach ``alpha``, else :data:`DRIFT_NOT_ABOVE`."""
    if not smallest_p <= alpha:
        return TOO_FEW_MODELS
    return DRIFT_ABOVE if p_adjusted <= alpha else DRIFT_NOT_ABOVE


def ends_above_middle(values: pd.Series, first, deepest, middle: Sequence) -> bool | None:
    """[GK]'s depth pattern: do both the first layer and the deepest decile lie above every
    middle decile? ``values`` is indexed by decile; ``first``, ``deepest`` and ``middle`` are
    labels. ``None`` (cannot be checked) when the first, the deepest or every middle decile is
    missing from ``values``."""
    mid = [d for d in middle if d in values.index]
    if first not in values.index or deepest not in values.index or not mid:
        return None
    top = values[mid].max()
    return bool(values[first] > top and values[deepest] > top)


# --------------------------------------------------------------------------- chapter 04, check 1


def band_verdict(ci: Sequence[float], band: Sequence[float] = TIGHT_BAND) -> str:
    """:data:`HOLDS` if the interval ``ci`` lies inside ``band``, :data:`DOES_NOT_HOLD` if it
    lies wholly outside it, and ``SAME`` ("not distinguishable") if it straddles an edge or
    is undefined (NaN)."""
    lo, hi = ci
    if math.isnan(lo) or math.isnan(hi):
        return SAME
    if band[0] <= lo and hi <= band[1]:
        return HOLDS
    if hi < band[0] or lo > band[1]:
        return DOES_NOT_HOLD
    return SAME


def tightness_verdict(band_verdicts: Iterable[str]) -> str:
    """Check 1 over the models tested (one :func:`band_verdict` each): :data:`HOLDS` when it
    holds for every model, :data:`HOLDS_PARTLY` when for some, :data:`DOES_NOT_HOLD` when it
    fails for every model, else :data:`NOT_HERE`."""
    vs = list(band_verdicts)
    n_tight, n_loose = vs.count(HOLDS), vs.count(DOES_NOT_HOLD)
    if vs and n_tight == len(vs):
        return HOLDS
    if n_tight:
        return HOLDS_PARTLY
    if vs and n_loose == len(vs):
        return DOES_NOT_HOLD
    return NOT_HERE


def breakdown_eps(
    summary: pd.DataFrame, column: str = "median_ratio_box", band: Sequence[float] = TIGHT_BAND
) -> pd.DataFrame:
    """Per model: up to which budget the first-order model stays tight, i.e. the median ratio
    ``column`` lies in ``band`` at every eps from the smallest on.

    ``summary`` stacks :func:`robustlens.science.theory.summarize_tightness` tables with a
    ``model`` column. Returns columns ``model``, ``last_tight_eps`` (NaN if even the smallest eps
    is outside the band) and ``first_loose_eps`` (NaN if every eps is inside).
    """
    rows = []
    for name, part in summary.sort_values("eps").groupby("model", sort=False):
        inside = part[column].between(*band).to_numpy()
        n_ok = int(np.argmin(inside)) if not inside.all() else len(inside)
        eps = part["eps"].to_numpy()
        rows.append(
            {
                "model": name,
                "last_tight_eps": eps[n_ok - 1] if n_ok else np.nan,
                "first_loose_eps": eps[n_ok] if n_ok < len(eps) else np.nan,
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- chapter 04, check 2


def sweep_verdict(pgd: Comparison, end: Comparison, rho: float, min_rho: float = MIN_RHO) -> str:
    """Where a penalty sweep moves one statistic, from two
    :func:`~robustlens.science.evidence.compare` results against the standard seeds: ``pgd``
    (the PGD-AT seeds) and ``end`` (the sweep's largest λ, judged with ``pgd``'s noise floor),
    and ``rho``, the Spearman correlation of the statistic with λ.

    :data:`NO_NOISE_FLOOR` with one seed; :data:`UNTESTABLE` when PGD-AT is not distinguishable
    from standard (no direction to move in); :data:`MONOTONE` when the largest λ lands on PGD-AT's
    side and ``rho`` is at least ``min_rho`` in PGD-AT's direction; :data:`TOWARD` when it lands
    on that side less monotonically; :data:`NO_MOVE` when it stays within the noise floor;
    :data:`AWAY` when it moves beyond the floor the other way.
    """
    if pgd.verdict == TOO_FEW:
        return NO_NOISE_FLOOR
    if pgd.sign == 0:
        return UNTESTABLE
    if end.sign == pgd.sign:
        return MONOTONE if not np.isnan(rho) and rho * pgd.sign >= min_rho else TOWARD
    return NO_MOVE if end.sign == 0 else AWAY


def sweep_verdicts(
    wide: pd.DataFrame,
    sweeps: dict[str, list[tuple[float, str]]],
    replicates: pd.DataFrame,
    standard: str,
    robust: str,
    metrics: list[str],
    min_rho: float = MIN_RHO,
) -> pd.DataFrame:
    """:func:`sweep_verdict` of every metric and sweep: does it move from the standard model
    toward the robust one as λ grows?

    ``wide``: model x metric values (the sweep's models, ``standard`` and ``robust``); ``sweeps``:
    per sweep name, ``(λ, model name)`` pairs; ``replicates``: tidy ``model, seed, metric, value``
    rows of the ``standard`` and ``robust`` models at every seed, which set the noise floor (the
    largest gap between two seeds of one method). The standard model counts as λ = 0. One row
    per metric and sweep: ``rho`` (Spearman of the metric against λ), ``pgd_dir`` (+1 / -1 / 0:
    robust vs standard beyond the noise floor), ``end_on_pgd_side`` (the largest λ's value is
    beyond the floor on PGD-AT's side of every standard seed), ``pgd_mde`` (the smallest
    robust-vs-standard difference the seeds could detect) and ``verdict``. PGD-AT's direction is
    Holm-corrected over ``metrics``.
    """
    rows = []
    # PGD-AT's direction per statistic, Holm-corrected over the statistics: it is the
    # direction every sweep verdict is judged against.
    seeds = {
        m: (
            replicates.loc[(replicates.metric == m) & (replicates.model == standard), "value"],
            replicates.loc[(replicates.metric == m) & (replicates.model == robust), "value"],
        )
        for m in metrics
    }
    first = {m: evidence.compare(*seeds[m]) for m in metrics}
    adjusted = evidence.holm([first[m].p_value for m in metrics])
    level = ALPHA / max(1, int(np.sum(~np.isnan(adjusted))))
    # Holm rejects nothing unless some statistic can reach its first level: else too few seeds.
    reachable = any(
        first[m].smallest_p <= level for m in metrics if first[m].p_value == first[m].p_value
    )
    for metric, p_adj in zip(metrics, adjusted):
        base = seeds[metric][0]
        pgd = evidence.compare(
            base,
            seeds[metric][1],
            p_adjusted=None if np.isnan(p_adj) else p_adj,
            level_for_mde=level,
        )
        if not reachable and pgd.verdict != CONSTANT:
            pgd = dataclasses.replace(pgd, verdict=TOO_FEW)
        s, r = wide.loc[standard, metric], wide.loc[robust, metric]
        for sweep, pairs in sweeps.items():
            lams = [0.0] + [lam for lam, _ in pairs]
            vals = [s] + [wide.loc[name, metric] for _, name in pairs]
            # One λ gives two points (the standard model is λ = 0): a Spearman correlation of
            # two points is ±1 whatever happens, so it cannot show monotonicity.
            rho = evidence.spearman(lams, vals) if len(pairs) > 1 else float("nan")
            end = evidence.compare(base, [vals[-1]])
            rows.append(
                {
                    "metric": metric,
                    "sweep": sweep,
                    "standard": s,
                    "largest λ": vals[-1],
                    "PGD-AT": r,
                    "noise_floor": pgd.noise_floor,
                    "pgd_mde": pgd.mde,
                    "rho": rho,
                    "pgd_dir": pgd.sign,
                    "end_on_pgd_side": pgd.sign != 0 and end.sign == pgd.sign,
                    "verdict": sweep_verdict(pgd, end, rho, min_rho),
                }
            )
    return pd.DataFrame(rows)


def verdict_table(verdicts: pd.DataFrame, names: dict[str, str] | None = None) -> pd.DataFrame:
    """:func:`sweep_verdicts` as one row per statistic: PGD-AT's direction, then per penalty norm
    the Spearman correlation with λ and the verdict."""
    arrows = {1: "↑", -1: "↓", 0: "≈"}
    first = verdicts.drop_duplicates("metric").set_index("metric")
    out = pd.DataFrame(
        {
            ("", "PGD-AT vs standard"): first.pgd_dir.map(arrows),
            ("", "noise floor (seeds)"): first.noise_floor,
        }
    )
    if "pgd_mde" in first:  # what "≈" could have seen (inf: no test could reach alpha)
        out[("", "smallest detectable difference")] = first.pgd_mde
    for sweep, part in verdicts.groupby("sweep", sort=False):
        part = part.set_index("metric")
        out[(sweep, "Spearman vs λ")] = part["rho"]
        out[(sweep, "verdict")] = part["verdict"]
    out.columns = pd.MultiIndex.from_tuples(out.columns)
    out.index = [(names or {}).get(m, m) for m in out.index]
    return out


def share_verdict(n_support: int, n_testable: int) -> str:
    """How many of the testable cases support a claim: :data:`HOLDS` when all do,
    :data:`HOLDS_PARTLY` when more than half do, :data:`DOES_NOT_HOLD` otherwise, and
    :data:`CANNOT_DECIDE` when no case is testable."""
    if n_testable <= 0:
        return CANNOT_DECIDE
    if n_support >= n_testable:
        return HOLDS
    return HOLDS_PARTLY if n_support > n_testable / 2 else DOES_NOT_HOLD


def movement_verdict(
    on_side: Mapping[str, int], n_testable: int, n_stats: int, no_floor: bool = False
) -> str:
    """Check 2: does penalising the input gradient move the filter statistics toward PGD-AT's?

    ``on_side`` maps each penalty norm to the number of statistics its largest λ moves beyond the
    noise floor onto PGD-AT's side; ``n_testable`` statistics (of ``n_stats``) differ between
    PGD-AT and standard beyond that floor. :data:`CANNOT_DECIDE` with one seed per method
    (``no_floor``) or when fewer than half of the statistics are testable (one statistic moving
    is an anecdote, not a test of "the distribution moves"). Otherwise :data:`HOLDS` when every
    norm moves every testable statistic, :data:`HOLDS_PARTLY` when at least one norm moves more
    than half of them (:func:`share_verdict`), else :data:`DOES_NOT_HOLD`.
    """
    if no_floor:
        return (
            f"{CANNOT_DECIDE} (too few seeds per method to test PGD-AT against standard: Holm "
            f"over {n_stats} statistics needs {evidence.seeds_needed(n_tests=n_stats)})"
        )
    if n_testable == 0 or n_testable < n_stats / 2:
        return (
            f"{CANNOT_DECIDE} (PGD-AT differs from standard, by an exact test over seeds with "
            f"Holm's correction, in {n_testable} of {n_stats} statistics)"
        )
    shares = [share_verdict(n, n_testable) for n in on_side.values()]
    if shares and all(s == HOLDS for s in shares):
        return HOLDS
    if any(s in (HOLDS, HOLDS_PARTLY) for s in shares):
        return HOLDS_PARTLY
    return DOES_NOT_HOLD


# --------------------------------------------------------------------------- chapter 04, check 3


def bound_loose(looseness: Iterable[float]) -> bool:
    """A bound is loose when it exceeds what it bounds by at least :data:`LOOSE_FACTOR` (an
    order of magnitude) for every model."""
    x = np.asarray(list(looseness), float)
    return bool(x.size) and bool(x.min() >= LOOSE_FACTOR)


def bound_verdict(n_violations: int, looseness: Iterable[float]) -> str:
    """Check 3, the bound itself: a gradient above its certified bound is a bug, never a
    finding; otherwise the bound holds, and how loose it is (bound / largest gradient, per
    model) is said in orders of magnitude when it is :func:`bound_loose`."""
    if n_violations:
        return "is violated, which points to a bug"
    x = np.asarray(list(looseness), float)
    if bound_loose(x):
        oom = np.log10(x)
        return (
            f"{HOLDS}, as it must, but is loose by {oom.min():.1f} to {oom.max():.1f} "
            "orders of magnitude"
        )
    return f"{HOLDS}, as it must"


def shrinks(standard_values: Iterable[float], value: float) -> bool:
    """A model's value (gradient norm, bound) is smaller than the standard models' of the same
    architecture: ``LOWER`` by :func:`~robustlens.science.evidence.compare`, below every
    standard seed by more than the gap between those seeds."""
    return evidence.compare(standard_values, [value]).verdict == LOWER


def shrink_verdict(n_both: int, n_grad_shrunk: int) -> str:
    """Check 3, the link "a smaller gradient comes with a smaller weight bound": of the
    ``n_grad_shrunk`` models whose gradient :func:`shrinks`, ``n_both`` also have a smaller
    bound; :func:`share_verdict` of the two, and :data:`CANNOT_DECIDE` when no gradient shrank
    beyond the seed noise."""
    if n_grad_shrunk <= 0:
        return f"{CANNOT_DECIDE} (no gradient shrank beyond the seed noise)"
    return share_verdict(n_both, n_grad_shrunk)


# --------------------------------------------------------------------------- chapter 04, check 4


def trades_off(
    family: pd.DataFrame,
    standard_clean: Iterable[float],
    standard_robust: Iterable[float],
    clean: str = "clean_acc",
    robust: str = "robust_acc",
) -> bool:
    """A family of models (one regulariser at growing strength ``value``) trades clean accuracy
    for robustness when its strongest member is ``LOWER`` in clean and ``HIGHER`` in
    robust accuracy than the standard seeds, each beyond the gap between those seeds
    (:func:`~robustlens.science.evidence.compare`). One standard seed gives no noise floor and
    so never a trade-off."""
    top = family.sort_values("value").iloc[-1]
    return (
        evidence.compare(standard_clean, [top[clean]]).verdict == LOWER
        and evidence.compare(standard_robust, [top[robust]]).verdict == HIGHER
    )


def frontier_verdict(n_trading: int, n_families: int) -> str:
    """Check 4, "a static network must trade": :data:`HOLDS` when every family
    :func:`trades_off`, :data:`HOLDS_PARTLY` when some do, else :data:`NOT_HERE` (no family's
    trade-off is distinguishable from the seed noise)."""
    if n_families and n_trading == n_families:
        return HOLDS
    return HOLDS_PARTLY if n_trading else NOT_HERE


# --------------------------------------------------------------------------- chapter 05, AW-Net

#: Where a dynamic model sits against the static envelope (:func:`frontier_position`).
ABOVE_FRONTIER = "lies above the static frontier"
#: Below the static envelope (:func:`frontier_position`).
BELOW_FRONTIER = "lies below the static frontier"
#: Neither above nor below it (:func:`frontier_position`).
ON_FRONTIER = "is not distinguishable from the static frontier"


#: How close (in clean accuracy) static models must have been trained, on both sides of a
#: dynamic model, for :func:`frontier_position` to place it: a frontier measured where it is
#: drawn, not a line across a gap.
FRONTIER_WINDOW = 0.03
#: :func:`frontier_position` without static models trained on both sides within the window.
FRONTIER_NOT_MEASURED = (
    "cannot be placed against the static frontier: no static model was trained within 3 points "
    "of its clean accuracy on both sides"
)


def envelope_at(front: pd.DataFrame, clean: float, robust: str = "robust_acc") -> float:
    """The static envelope's robust accuracy at clean accuracy ``clean``: linear between the
    envelope's points (sorted by clean accuracy); beyond its most accurate point, that point's
    robust accuracy (no static model reached that clean accuracy with more); below its least
    accurate point, that point's robust accuracy (the most robust static model)."""
    f = front.sort_values("clean_acc")
    return float(np.interp(clean, f.clean_acc.to_numpy(), f[robust].to_numpy()))


def frontier_position(
    clean: float,
    robust_ci,
    front: pd.DataFrame,
    static: pd.DataFrame | None = None,
    window: float = FRONTIER_WINDOW,
) -> str:
    """:data:`ABOVE_FRONTIER` when the model's whole 95 % interval of worst-case robust accuracy
    lies above the static envelope at its clean accuracy (:func:`envelope_at`),
    :data:`BELOW_FRONTIER` when it lies wholly below, :data:`ON_FRONTIER` otherwise. With
    ``static`` (every static model, ``clean_acc``), :data:`FRONTIER_NOT_MEASURED` unless a
    static model lies within ``window`` of ``clean`` on each side: between far-apart static
    points the envelope is a line no model was trained on. The static points' own noise is not
    in this rule: it can only make "above" and "below" harder to earn than they look."""
    if static is not None:
        gap = static.clean_acc.to_numpy() - clean
        window = window + 1e-9  # accuracies are counts over images: 0.86 - 0.83 is 3 points
        if not ((gap >= 0) & (gap <= window)).any() or not ((gap <= 0) & (gap >= -window)).any():
            return FRONTIER_NOT_MEASURED
    level = envelope_at(front, clean)
    lo, hi = robust_ci
    if lo > level:
        return ABOVE_FRONTIER
    return BELOW_FRONTIER if hi < level else ON_FRONTIER


def failed_checks(sanity: pd.DataFrame, answered_by: Mapping[str, str] | None = None):
    """The gradient-masking checks one model fails (its sanity table, one or more rows per
    check), split into ``(standing, answered)``: a failed check is *answered* when the stronger
    version of it that ``answered_by`` names passed for the same model (Square beating plain PGD
    but not the adaptive attacks: PGD is misled, the worst case is not), and *standing*
    otherwise, a reason to doubt the model's robust accuracy."""
    answered_by = answered_by or {}
    passed = sanity.groupby("check", sort=False).passed.first().astype(bool)
    failed = [c for c in passed.index if not passed[c]]
    answered = [c for c in failed if passed.get(answered_by.get(c), False)]
    return [c for c in failed if c not in answered], answered
