"""The statistics behind every verdict of the book (intervals, the noise-floor rule, tests), on
small hand-made inputs; the rules that turn them into conclusions are tested in test_claims.py."""

import math

import numpy as np
import pandas as pd
import pytest

from robustlens.science import evidence as ev


def test_wilson_interval_known_values_and_edges():
    lo, hi = ev.wilson_interval(81, 100)
    assert lo == pytest.approx(0.7222, abs=1e-4) and hi == pytest.approx(0.8749, abs=1e-4)
    assert ev.wilson_interval(0, 10)[0] == 0.0 and ev.wilson_interval(0, 10)[1] == pytest.approx(
        0.2775, abs=1e-4
    )
    assert ev.wilson_interval(10, 10)[1] == 1.0 and ev.wilson_interval(10, 10)[0] == pytest.approx(
        0.7225, abs=1e-4
    )
    assert ev.wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    for k, n in ((0, 0), (3, 2), (-1, 5)):
        with pytest.raises(ValueError):
            ev.wilson_interval(k, n)


def test_clopper_pearson_is_exact_and_wider_than_wilson_at_zero():
    lo, hi = ev.clopper_pearson(0, 50)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 50), rel=1e-9)
    lo, hi = ev.clopper_pearson(5, 20)
    assert lo == pytest.approx(0.0866, abs=1e-4) and hi == pytest.approx(0.4910, abs=1e-4)


def test_the_exact_permutation_test_enumerates_every_relabelling():
    # 3 against 3, fully separated: 2 of the C(6, 3) = 20 relabellings are as extreme.
    assert ev.exact_permutation_p([1, 2, 3], [10, 11, 12]) == pytest.approx(0.1)
    assert ev.smallest_p(2, 2) == pytest.approx(1 / 3)
    assert ev.smallest_p(3, 3) == pytest.approx(0.1)
    assert ev.smallest_p(4, 4) == pytest.approx(2 / 70)
    # One model against n seeds: it can only be the most extreme of n + 1.
    assert ev.smallest_p(2, 1) == pytest.approx(1 / 3)


def test_two_seeds_against_two_cannot_decide_whatever_the_data():
    # Under the old rule (beyond the seed spread, no overlap) this was "higher".
    c = ev.compare([0.50, 0.51], [0.60, 0.62])
    assert c.verdict == ev.TOO_FEW and c.smallest_p == pytest.approx(1 / 3)
    assert math.isinf(c.mde)
    assert ev.compare([0.5], [0.9]).verdict == ev.TOO_FEW


def test_four_seeds_separated_is_a_direction_and_overlap_is_not():
    assert ev.compare([0.50, 0.51, 0.52, 0.50], [0.60, 0.62, 0.61, 0.63]).verdict == ev.HIGHER
    assert ev.compare([0.50, 0.51, 0.52, 0.50], [0.30, 0.31, 0.33, 0.32]).verdict == ev.LOWER
    c = ev.compare([0.1, 0.9, 0.5, 0.4], [0.95, 0.96, 0.2, 0.6])
    assert c.verdict == ev.SAME and 0 < c.mde < math.inf


def test_a_statistic_that_never_varies_is_untestable():
    assert ev.compare([0.0, 0.0, 0.0], [0.0, 0.0, 0.0]).verdict == ev.CONSTANT


def test_seeds_needed_matches_the_smallest_p():
    assert ev.seeds_needed() == 4  # 2 / 70 < 0.05 <= 2 / 20
    assert ev.smallest_p(4, 4) <= 0.05 < ev.smallest_p(3, 3)
    assert ev.seeds_needed(n_blocks=2) == 3  # (C(6, 3))^2 = 400 relabellings
    assert ev.seeds_needed(n_tests=17) == 6  # Holm's first step: 0.05 / 17


def test_minimum_detectable_effect_scales_with_the_seed_spread():
    one = ev.minimum_detectable_effect(5, 5, 1.0)
    assert 1.0 < one < 4.0  # a normal-theory two-sample test needs about 1.8 sd at n = 5
    assert ev.minimum_detectable_effect(5, 5, 0.1) == pytest.approx(one / 10)
    assert ev.minimum_detectable_effect(8, 8, 1.0) < one


def test_holm_and_bh_adjust_as_published():
    p = [0.01, 0.04, 0.03, 0.005]
    assert ev.holm(p).tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert ev.benjamini_hochberg(p).tolist() == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert math.isnan(ev.holm([math.nan, 0.01])[0]) and ev.holm([math.nan, 0.01])[1] == 0.01


def test_compare_table_corrects_its_cases_together():
    rng = np.random.default_rng(0)
    rows = []
    for layer in "abc":
        for recipe, shift in (("standard", 0.0), ("pgd", 5.0 if layer == "a" else 0.0)):
            for seed in range(5):
                rows.append((layer, recipe, shift + rng.normal()))
    t = pd.DataFrame(rows, columns=["layer", "recipe", "value"])
    v = ev.compare_table(t, "value", group="recipe", base="standard", by=["layer"])
    v = v.set_index("layer")
    assert v.verdict["a"] == ev.HIGHER
    assert (v.p_adjusted >= v.p_value).all()
    assert ((v.verdict == ev.SAME) == (v.p_adjusted > 0.05)).all()


def test_pooled_compare_keeps_the_model_as_the_unit():
    # Three layers of one model move together: pooling them must not make 2 v 2 decidable.
    def table(n_seeds):
        rows = [
            (arch, layer, recipe, seed, (1.0 if recipe == "pgd" else 0.0) + 0.01 * seed + layer)
            for arch in ("cnn", "deep")
            for layer in range(3)
            for recipe in ("standard", "pgd")
            for seed in range(n_seeds)
        ]
        return pd.DataFrame(rows, columns=["arch", "layer", "recipe", "seed", "value"])

    c = ev.pooled_compare(table(2), "value", "recipe", "standard", "pgd", "seed", ["layer"], "arch")
    assert c.verdict == ev.TOO_FEW and c.smallest_p == pytest.approx(2 / 36)
    c3 = ev.pooled_compare(
        table(3), "value", "recipe", "standard", "pgd", "seed", ["layer"], "arch"
    )
    assert c3.verdict == ev.HIGHER and c3.p_value == pytest.approx(2 / 400)


def test_paired_test_and_p_text_never_print_zero():
    a = np.linspace(0, 1, 50)
    assert ev.paired_permutation_test(a, a + 0.1, 999) == pytest.approx(1 / 1000)
    assert ev.p_text(1 / 1000, 999) == "≤ 0.001"
    assert ev.p_text(0.0123) == "0.012"
    assert "0.000" not in ev.p_text(1e-6)


def test_permutation_test_separates_and_does_not_invent():
    assert ev.permutation_test([0, 0.1, 0.2, 0.1] * 5, [1, 1.1, 1.2, 1.1] * 5, 500) < 0.01
    p = ev.permutation_test([0.1, 0.5, 0.3, 0.2], [0.2, 0.4, 0.1, 0.5], 500)
    assert p > 0.3 and not math.isnan(p)


def test_bootstrap_interval_stays_within_the_data_and_drops_nans():
    lo, hi = ev.bootstrap_interval([1.0] * 50 + [1.2] * 50, n_resamples=500)
    assert 1.0 <= lo <= hi <= 1.2
    assert ev.bootstrap_interval([1.0, math.nan, 1.0], n_resamples=50) == (1.0, 1.0)
    assert all(math.isnan(v) for v in ev.bootstrap_interval([math.nan]))


def test_the_pooled_detectable_effect_shrinks_with_blocks_and_is_infinite_when_unreachable():
    one = ev.pooled_mde(4, 4, 1, 0.05)
    assert one == pytest.approx(ev.minimum_detectable_effect(4, 4, 1.0), rel=0.1)
    assert ev.pooled_mde(4, 4, 2, 0.05) < one
    assert ev.pooled_mde(2, 2, 2, 0.05) == math.inf  # 2/36 > 0.05
    assert ev.pooled_mde(4, 4, 2, 0.01) < math.inf  # 2/4900 reaches Holm's 0.05 / 5
