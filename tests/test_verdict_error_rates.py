"""Every verdict rule of the book says "higher" or "lower" at no more than its stated rate when
there is no true difference.

Each test draws tables in which both groups come from one distribution (the null), runs the
rule the chapters use, and counts how often it names a direction. The rate must stay within
Monte-Carlo error (three standard errors) of the stated level. The seed spread of the draws is
that of a real profile (cpu's per-layer variance entropy varies by about 0.005 between seeds
around 0.9), but every rule here is invariant to shift and scale, so the rates hold for any.
The rule the book used before (a difference beyond the largest gap between seeds, with no
overlap) is measured too: with two seeds per group it names a direction about one time in five
(the groups alone fail to overlap one time in three).
"""

import math

import numpy as np
import pandas as pd
import pytest

from robustlens.book import claims
from robustlens.science import evidence as ev

ALPHA = ev.ALPHA
DRAWS = 2000
# The largest rate still consistent with ALPHA after DRAWS draws (three standard errors).
CEILING = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / DRAWS)
CENTRE, SPREAD = 0.9, 0.005


def null_table(rng, n_seeds, n_layers=17, archs=("cnn", "deepcnn")):
    """One tidy table of per-layer values of standard and PGD-AT models with no true
    difference: each layer its own mean, each model (seed) its own offset shared by its layers."""
    rows = []
    for arch in archs:
        layer_means = CENTRE + rng.normal(0, 0.02, n_layers)
        for recipe in ("standard", "pgd"):
            for seed in range(n_seeds):
                model_offset = rng.normal(0, SPREAD)
                noise = rng.normal(0, SPREAD, n_layers)
                for layer in range(n_layers):
                    rows.append(
                        (
                            arch,
                            layer,
                            recipe,
                            seed,
                            layer_means[layer] + model_offset + noise[layer],
                        )
                    )
    return pd.DataFrame(rows, columns=["arch", "layer", "recipe", "seed", "value"])


def old_rule(base, other):
    """The rule this module replaced: beyond the seed spread and no overlap."""
    a, b = np.asarray(base), np.asarray(other)
    floor = max(np.ptp(a), np.ptp(b))
    diff = b.mean() - a.mean()
    return abs(diff) > floor and (b.min() > a.max() or b.max() < a.min())


def test_compare_names_a_direction_at_most_alpha_of_the_time():
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(DRAWS):
        a, b = rng.normal(CENTRE, SPREAD, (2, 4))
        hits += ev.compare(a, b).verdict in (ev.HIGHER, ev.LOWER)
    assert hits / DRAWS <= CEILING
    # Exact: only full separation reaches alpha with 4 seeds against 4 (2 of 70 relabellings).
    assert hits / DRAWS == pytest.approx(2 / 70, abs=3 * math.sqrt(2 / 70 / DRAWS))


def test_the_old_rule_names_a_direction_one_time_in_five_with_two_seeds():
    rng = np.random.default_rng(2)
    old = new = 0
    for _ in range(DRAWS):
        a, b = rng.normal(CENTRE, SPREAD, (2, 2))
        old += old_rule(a, b)
        new += ev.compare(a, b).verdict in (ev.HIGHER, ev.LOWER)
    assert 0.18 < old / DRAWS < 0.27  # about 22 %: far above any stated level
    assert new == 0  # 2 against 2 can never reach alpha: the verdict says "too few seeds"


def test_a_corrected_table_and_its_summary_err_at_most_alpha():
    """compare_table (Holm over 17 layers x 2 architectures) and what claims make of it."""
    rng = np.random.default_rng(3)
    any_direction = holds = 0
    for _ in range(DRAWS // 4):
        v = ev.compare_table(
            null_table(rng, 6), "value", "recipe", "standard", by=["arch", "layer"]
        )
        any_direction += v.verdict.isin([ev.HIGHER, ev.LOWER]).any()
        holds += claims.reproduces(ev.HIGHER, v.verdict.tolist()) == "yes"
    n = DRAWS // 4
    ceiling = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / n)
    assert any_direction / n <= ceiling  # the family-wise error rate of Holm's method
    assert holds / n <= ceiling


def test_the_pooled_claim_errs_at_most_alpha_and_holm_across_claims_too():
    rng = np.random.default_rng(4)
    single = family = 0
    for _ in range(DRAWS // 4):
        pooled = {}
        for stat in range(3):
            t = null_table(rng, 3, n_layers=5)
            pooled[stat] = ev.pooled_compare(
                t, "value", "recipe", "standard", "pgd", "seed", ["layer"], "arch"
            )
        single += pooled[0].verdict in (ev.HIGHER, ev.LOWER)
        family += any(v in (ev.HIGHER, ev.LOWER) for v in claims.pooled_verdicts(pooled).values())
    n = DRAWS // 4
    ceiling = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / n)
    assert single / n <= ceiling and family / n <= ceiling


def test_pooling_layers_as_if_they_were_replicates_would_not_hold_its_rate():
    """Why the pooled test relabels models, not layers: a shared per-model offset makes a
    layer-level test reject far more often than alpha."""
    rng = np.random.default_rng(5)
    hits = 0
    n = 300
    for _ in range(n):
        t = null_table(rng, 2, n_layers=17, archs=("cnn",))
        a = t[t.recipe == "standard"].value - t[t.recipe == "standard"].layer.map(
            t.groupby("layer").value.mean()
        )
        b = t[t.recipe == "pgd"].value - t[t.recipe == "pgd"].layer.map(
            t.groupby("layer").value.mean()
        )
        hits += ev.permutation_test(a, b, n_permutations=199, seed=1) <= ALPHA
    assert hits / n > 2 * ALPHA


def test_permutation_verdicts_over_images_err_at_most_alpha():
    rng = np.random.default_rng(6)
    hits = 0
    n = 400
    for i in range(n):
        a, b = rng.normal(0, 1, (2, 60))
        p = ev.permutation_test(a, b, n_permutations=199, seed=i)
        hits += claims.permutation_verdict(a.mean(), b.mean(), p) != ev.SAME
    assert hits / n <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / n)


def test_one_model_against_the_standard_seeds_errs_at_most_alpha():
    """claims.shrinks and claims.trades_off: one model against the standard seeds, by the
    seeds' t prediction interval."""
    rng = np.random.default_rng(7)
    for n_seeds in (2, 4):
        hits = 0
        for _ in range(DRAWS):
            seeds = rng.normal(CENTRE, SPREAD, n_seeds)
            hits += ev.compare(seeds, [rng.normal(CENTRE, SPREAD)]).verdict != ev.SAME
        assert hits / DRAWS <= CEILING
        assert hits / DRAWS >= ALPHA - 3 * math.sqrt(ALPHA * (1 - ALPHA) / DRAWS)  # exact


def test_the_frontier_rule_calls_a_point_on_the_envelope_above_rarely():
    rng = np.random.default_rng(8)
    front = pd.DataFrame({"clean_acc": [0.80, 0.90], "robust_acc": [0.60, 0.40]})
    truth = claims.envelope_at(front, 0.85)
    hits = 0
    for _ in range(DRAWS):
        k = rng.binomial(300, truth)
        ci = ev.wilson_interval(int(k), 300)
        hits += claims.frontier_position(0.85, ci, front) != claims.ON_FRONTIER
    assert hits / DRAWS <= CEILING
