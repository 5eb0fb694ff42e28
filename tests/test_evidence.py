"""The statistics behind every verdict of the book (intervals, the noise-floor rule, tests), on
small hand-made inputs; the rules that turn them into conclusions are tested in test_claims.py."""

import math

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


def test_a_difference_smaller_than_the_seed_spread_is_not_distinguishable():
    # Two random initialisations of the same recipe already differ by 0.05.
    c = ev.compare([0.50, 0.55], [0.56, 0.58])
    assert c.verdict == ev.SAME and c.noise_floor == pytest.approx(0.05)


def test_a_separated_difference_beyond_the_spread_is_a_direction():
    assert ev.compare([0.50, 0.51], [0.60, 0.62]).verdict == ev.HIGHER
    assert ev.compare([0.50, 0.51], [0.30, 0.31]).verdict == ev.LOWER
    # Large mean difference but overlapping seeds: not distinguishable.
    assert ev.compare([0.1, 0.9], [0.95, 0.96]).verdict == ev.SAME


def test_one_seed_has_no_noise_floor_unless_one_is_given():
    assert ev.compare([0.5], [0.9]).verdict == ev.NO_FLOOR
    assert ev.compare([0.5], [0.9], noise_floor=0.1).verdict == ev.HIGHER
    assert ev.compare([0.5], [0.55], noise_floor=0.1).verdict == ev.SAME


def test_compare_table_compares_each_group_within_each_level():
    t = pd.DataFrame(
        {
            "layer": ["a"] * 4 + ["b"] * 4,
            "recipe": ["standard", "standard", "pgd", "pgd"] * 2,
            "value": [1.0, 1.1, 2.0, 2.1, 1.0, 1.5, 1.2, 1.3],
        }
    )
    v = ev.compare_table(t, "value", group="recipe", base="standard", by=["layer"])
    assert v.set_index("layer").verdict.to_dict() == {"a": ev.HIGHER, "b": ev.SAME}
    assert v.set_index("layer").noise_floor.to_dict() == pytest.approx({"a": 0.1, "b": 0.5})


def test_permutation_test_separates_and_does_not_invent():
    assert ev.permutation_test([0, 0.1, 0.2, 0.1] * 5, [1, 1.1, 1.2, 1.1] * 5, 500) < 0.01
    p = ev.permutation_test([0.1, 0.5, 0.3, 0.2], [0.2, 0.4, 0.1, 0.5], 500)
    assert p > 0.3 and not math.isnan(p)


def test_bootstrap_interval_stays_within_the_data_and_drops_nans():
    lo, hi = ev.bootstrap_interval([1.0] * 50 + [1.2] * 50, n_resamples=500)
    assert 1.0 <= lo <= hi <= 1.2
    assert ev.bootstrap_interval([1.0, math.nan, 1.0], n_resamples=50) == (1.0, 1.0)
    assert all(math.isnan(v) for v in ev.bootstrap_interval([math.nan]))
