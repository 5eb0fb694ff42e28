"""Every rule that decides what the book concludes (robustlens.book.claims), on small hand-made
inputs: for each rule, inputs that must come out as a finding and inputs that must not."""

import math

import pandas as pd
import pytest

from robustlens.book import claims as cl
from robustlens.book import wording
from robustlens.science import evidence as ev

H, L, S, N = cl.HIGHER, cl.LOWER, cl.SAME, cl.TOO_FEW


# --------------------------------------------------------------------------- trained models


def test_a_model_counts_as_trained_from_the_threshold_on():
    assert cl.trained(cl.TRAINED_REL_CHANGE) and cl.trained(0.9)
    assert not cl.trained(cl.TRAINED_REL_CHANGE - 0.01)


def test_verdicts_are_interpretable_only_when_every_model_is_trained():
    assert cl.interpretable([True, True])
    assert not cl.interpretable([True, False])
    assert not cl.interpretable([])


def test_progress_sentence_reads_the_claims_decision():
    table = pd.DataFrame({"median ‖W−W₀‖/‖W₀‖": ["0.88", "0.40"], "trained": ["yes", "no"]})
    assert wording.progress_sentence(table).startswith("1 of 2 models moved")
    assert wording.progress_sentence(table.iloc[:1]).startswith("all 1 models moved")


# --------------------------------------------------------------------------- many verdicts


def test_count_verdicts_keeps_zeros_and_rejects_other_words():
    assert cl.count_verdicts([H, H, N]) == {H: 2, L: 0, S: 0, N: 1, cl.CONSTANT: 0}
    with pytest.raises(ValueError):
        cl.count_verdicts([H, "holds"])


def test_overall_needs_half_of_the_cases_decided_and_one_direction():
    assert cl.overall([H, H, S], expected=H) == cl.HOLDS
    assert cl.overall([L, L, S], expected=H) == cl.CONTRADICTED
    assert cl.overall([H, L, S]) == cl.MIXED
    assert cl.overall([L, L, S]) == L


def test_overall_is_not_distinguishable_on_anecdotes_and_without_floor():
    assert cl.overall([H, S, S, S], expected=H) == S  # one of four is an anecdote
    assert cl.overall([N, N, H], expected=H) == S  # cases without a noise floor are undecided
    assert cl.overall([]) == S
    with pytest.raises(ValueError):
        cl.overall([H], expected=S)


def test_verdict_cell_counts_and_marks_missing_floors():
    assert cl.verdict_cell([H, S]) == "1 ↑ · 0 ↓ · 1 ="
    assert cl.verdict_cell([L, N, N]) == "0 ↑ · 1 ↓ · 0 = · 2 ?"


def test_agreement_and_reproduces():
    assert cl.agreement(L, cl.overall([S, S], expected=L)) == cl.NOT_HERE
    assert cl.agreement(L, cl.HOLDS) == "yes"
    assert cl.agreement(L, cl.CONTRADICTED) == "no: opposite direction"
    assert cl.agreement(None, cl.HOLDS) == "– (no direction in the paper)"
    assert cl.reproduces(L, [L, L, S]) == "yes"
    assert cl.reproduces(H, [L, L]) == "no: opposite direction"
    assert cl.reproduces(H, [H, L, L, H]) == "no: mixed directions"
    assert cl.reproduces(H, [S, S, H]) == cl.NOT_HERE
    assert cl.reproduces(None, [H]) == "–"
    assert cl.reproduces(H, []) == cl.NOT_MEASURABLE
    assert cl.reproduces(H, None) == cl.NOT_MEASURABLE


def test_direction_against_a_paper():
    assert cl.direction_verdict(L, L) == cl.REPRODUCES
    assert cl.direction_verdict(L, H) == cl.OPPOSITE
    # Too few seeds, and a difference inside the seed spread with enough seeds: no direction.
    too_few = ev.compare([0.50, 0.55], [0.51, 0.53]).verdict
    assert cl.direction_verdict(L, too_few) == f"{cl.CANNOT_DECIDE} (too few seeds)"
    assert cl.direction_verdict(L, ev.compare([0.5], [0.3]).verdict).startswith(cl.CANNOT_DECIDE)
    same = ev.compare([0.50, 0.55, 0.52, 0.53], [0.51, 0.53, 0.54, 0.50]).verdict
    assert cl.direction_verdict(L, same) == cl.NOT_HERE
    assert cl.direction_verdict(L, cl.CONSTANT) == cl.UNTESTABLE


def test_count_sentence_is_worded_from_the_counts():
    assert wording.count_sentence([H, S]) == "higher in 1, not distinguishable in 1 of 2 layers"
    assert wording.count_sentence([S] * 3) == "not distinguishable in all 3 layers"
    assert wording.count_sentence([N, N], "cases") == (
        "not decidable in any of the 2 cases (too few seeds for a test at α = 0.05)"
    )
    assert wording.count_sentence([], "cases") == "no cases to compare"
    assert wording.count_sentence([N, cl.CONSTANT], "cases") == (
        "undecidable (too few seeds) in 1, untestable in 1 of 2 cases"
    )


def test_a_count_says_what_it_could_detect_and_what_chance_gives():
    # 4 seeds against 4 per case: one case alone can reach 0.05 (2/70), three under Holm cannot.
    table = pd.DataFrame(
        {
            "layer": ["a"] * 8,
            "recipe": ["standard"] * 4 + ["pgd"] * 4,
            "value": [1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 1.0, 1.1],
        }
    )
    one = ev.compare_table(table, "value", group="recipe", base="standard", by=["layer"])
    text = wording.verdict_summary(one)
    assert text.startswith("not distinguishable in 1 of 1 layers (the smallest difference")
    assert f"a median of {one.mde.iloc[0]:.3g}" in text
    assert "at most 5%" in text  # chance alone, under Holm
    three = ev.compare_table(
        pd.concat([table.assign(layer=k) for k in "abc"]),
        "value",
        group="recipe",
        base="standard",
        by=["layer"],
    )
    text = wording.verdict_summary(three)
    assert "no difference of any size was detectable" in text
    assert f"needs {ev.seeds_needed(n_tests=3)} seeds" in text
    # Too few seeds: nothing could be detected, and chance has nothing to give.
    two = ev.compare_table(
        table[table.index % 4 < 2], "value", group="recipe", base="standard", by=["layer"]
    )
    assert wording.verdict_summary(two) == wording.count_sentence(two.verdict)
    assert wording.chance_clause(20, corrected=False).endswith(
        "about 1.0 ↑ or ↓ among these 20 cases"
    )


def test_p_phrase_never_prints_zero():
    assert ev.p_phrase(1 / 10000, 9999) == "p ≤ 0.0001"
    assert ev.p_phrase(0.0312) == "p = 0.031"


# ------------------------------------------------------------------------- permutation tests, depth


def test_permutation_verdict_needs_p_below_alpha():
    assert cl.significant(0.01) and not cl.significant(0.05)
    assert cl.permutation_verdict(0.30, 0.20, p_value=0.01) == L
    assert cl.permutation_verdict(0.30, 0.40, p_value=0.01) == H
    assert cl.permutation_verdict(0.30, 0.10, p_value=0.20) == S


def test_ends_above_middle():
    mid = ["m1", "m2"]
    t = pd.Series({"first": 0.9, "m1": 0.3, "m2": 0.5, "deep": 0.7})
    assert cl.ends_above_middle(t, "first", "deep", mid) is True
    assert cl.ends_above_middle(t.replace(0.7, 0.4), "first", "deep", mid) is False
    assert cl.ends_above_middle(t.drop("deep"), "first", "deep", mid) is None
    assert cl.ends_above_middle(t.drop(mid), "first", "deep", mid) is None


# --------------------------------------------------------------------------- check 1: tightness


def test_band_verdict():
    assert cl.band_verdict((0.9, 1.1)) == cl.HOLDS
    assert cl.band_verdict((2.0, 3.0)) == cl.DOES_NOT_HOLD
    assert cl.band_verdict((0.1, 0.5)) == cl.DOES_NOT_HOLD
    # A bootstrap interval straddling the band's edge decides nothing.
    assert cl.band_verdict((1.2, 1.8)) == S
    assert cl.band_verdict((math.nan, 1.0), (0, 2)) == S


def test_tightness_verdict_over_models():
    assert cl.tightness_verdict([cl.HOLDS, cl.HOLDS]) == cl.HOLDS
    assert cl.tightness_verdict([cl.HOLDS, S]) == cl.HOLDS_PARTLY
    assert cl.tightness_verdict([cl.HOLDS, cl.DOES_NOT_HOLD]) == cl.HOLDS_PARTLY
    assert cl.tightness_verdict([cl.DOES_NOT_HOLD, cl.DOES_NOT_HOLD]) == cl.DOES_NOT_HOLD
    assert cl.tightness_verdict([cl.DOES_NOT_HOLD, S]) == cl.NOT_HERE
    assert cl.tightness_verdict([S, S]) == cl.NOT_HERE


def test_breakdown_eps_finds_where_the_ratio_leaves_the_band():
    summary = pd.DataFrame(
        {
            "model": ["a"] * 3 + ["b"] * 3 + ["c"] * 3,
            "eps": [0.3, 0.1, 0.2] * 3,
            "median_ratio_box": [2.0, 1.0, 1.1, 1.0, 1.0, 1.0, 1.0, 3.0, 1.0],
        }
    )
    b = cl.breakdown_eps(summary).set_index("model")
    assert b.loc["a"].tolist() == [0.2, 0.3]
    assert b.loc["b", "last_tight_eps"] == 0.3 and math.isnan(b.loc["b", "first_loose_eps"])
    assert math.isnan(b.loc["c", "last_tight_eps"]) and b.loc["c", "first_loose_eps"] == 0.1
    row = b.loc["a"]
    assert wording.band_phrase(row, 0.1, 0.3) == (
        "stays inside it up to ε = 0.2 and leaves it at ε = 0.3"
    )


# ------------------------------------------------------------------------ check 2: the filters move


STD4 = [1.0, 1.02, 1.01, 1.03]
PGD4 = [2.0, 2.03, 2.02, 2.01]


def _sweep_tables(std_seeds, pgd_seeds, sweep_values):
    wide = pd.DataFrame(
        {
            "m": {
                "standard": std_seeds[0],
                "PGD-AT": pgd_seeds[0],
                **{f"l{i}": v for i, v in enumerate(sweep_values)},
            }
        }
    )
    reps = pd.DataFrame(
        [
            {"model": name, "seed": s, "metric": "m", "value": v}
            for name, vals in (("standard", std_seeds), ("PGD-AT", pgd_seeds))
            for s, v in enumerate(vals)
        ]
    )
    sweeps = {"l1": [(lam, f"l{i}") for i, lam in enumerate((0.01, 0.1, 1.0)[: len(sweep_values)])]}
    return wide, sweeps, reps


def _sweep(std_seeds, pgd_seeds, sweep_values):
    wide, sweeps, reps = _sweep_tables(std_seeds, pgd_seeds, sweep_values)
    return cl.sweep_verdicts(wide, sweeps, reps, "standard", "PGD-AT", ["m"]).iloc[0]


def test_monotone_toward_pgd_beyond_the_seed_spread():
    v = _sweep(STD4, PGD4, [1.2, 1.5, 1.9])
    assert v.pgd_dir == 1 and v.end_on_pgd_side and v.verdict == cl.MONOTONE
    assert _sweep(STD4, PGD4, [1.6, 1.2, 1.5]).verdict == cl.TOWARD
    # Two seeds per method: no test reaches 0.05, so no direction to move in.
    assert _sweep([1.0, 1.02], [2.0, 2.03], [1.2, 1.5, 1.9]).verdict == cl.NO_NOISE_FLOOR


def test_pgd_within_the_seed_spread_is_untestable():
    # The standard seeds spread by 0.5: PGD-AT's 0.3 shift is no direction at all.
    assert _sweep([1.0, 1.5, 1.2, 1.3], [1.3, 1.35, 1.4, 1.6], [1.2, 1.5, 1.9]).verdict == (
        cl.UNTESTABLE
    )


def test_moving_less_than_the_floor_does_not_count_and_away_is_reported():
    assert _sweep(STD4, PGD4, [1.0, 1.01, 1.01]).verdict == cl.NO_MOVE
    assert _sweep(STD4, PGD4, [0.9, 0.7, 0.5]).verdict == cl.AWAY


def test_one_seed_has_no_noise_floor():
    assert _sweep([1.0], [2.0], [1.2, 1.5, 1.9]).verdict == cl.NO_NOISE_FLOOR


def test_verdict_table_one_row_per_statistic():
    wide, sweeps, reps = _sweep_tables(STD4, PGD4, [1.2, 1.5, 1.9])
    v = cl.sweep_verdicts(wide, sweeps, reps, "standard", "PGD-AT", ["m"])
    t = cl.verdict_table(v, {"m": "statistic m"})
    assert t.loc["statistic m", ("", "PGD-AT vs standard")] == "↑"
    assert t.loc["statistic m", ("l1", "verdict")] == cl.MONOTONE


def test_share_verdict():
    assert cl.share_verdict(4, 4) == cl.HOLDS
    assert cl.share_verdict(3, 4) == cl.HOLDS_PARTLY
    assert cl.share_verdict(2, 4) == cl.DOES_NOT_HOLD  # half is not more than half
    assert cl.share_verdict(0, 0) == cl.CANNOT_DECIDE


def test_movement_verdict():
    assert cl.movement_verdict({"l1": 5, "l2sq": 5}, 5, 7) == cl.HOLDS
    assert cl.movement_verdict({"l1": 5, "l2sq": 1}, 5, 7) == cl.HOLDS_PARTLY
    assert cl.movement_verdict({"l1": 2, "l2sq": 1}, 4, 7) == cl.DOES_NOT_HOLD


def test_movement_cannot_be_decided_with_few_testable_statistics_or_one_seed():
    few = cl.movement_verdict({"l1": 3, "l2sq": 3}, 3, 7)
    assert few == (
        "cannot be decided at this profile (PGD-AT differs from standard, by an exact test "
        "over seeds with Holm's correction, in 3 of 7 statistics)"
    )
    assert cl.movement_verdict({"l1": 0}, 0, 7, no_floor=True) == (
        "cannot be decided at this profile (too few seeds per method to test PGD-AT against "
        "standard: Holm over 7 statistics needs 6)"
    )


# --------------------------------------------------------------------------- check 3: the bound


def test_bound_verdict():
    assert cl.bound_verdict(1, [20.0, 30.0]) == "is violated, which points to a bug"
    assert cl.bound_verdict(0, [100.0, 1000.0]) == (
        "holds, as it must, but is loose by 2.0 to 3.0 orders of magnitude"
    )
    assert cl.bound_verdict(0, [3.0, 1000.0]) == "holds, as it must"
    assert cl.bound_loose([10.0, 50.0]) and not cl.bound_loose([9.0, 50.0])


def test_shrinks_needs_to_beat_the_standard_seeds():
    assert cl.shrinks([1.0, 1.1, 1.05], 0.5)
    assert not cl.shrinks([1.0, 1.5, 1.2], 0.9)  # below every seed but within their spread
    assert not cl.shrinks([1.0], 0.1)  # one seed: no spread to test against


def test_shrink_verdict():
    assert cl.shrink_verdict(3, 3) == cl.HOLDS
    assert cl.shrink_verdict(2, 3) == cl.HOLDS_PARTLY
    assert cl.shrink_verdict(1, 3) == cl.DOES_NOT_HOLD
    assert cl.shrink_verdict(0, 0) == (
        "cannot be decided at this profile (no gradient shrank beyond the seed noise)"
    )


# --------------------------------------------------------------------------- check 4: the frontier


def _family(top_clean, top_robust):
    return pd.DataFrame(
        {
            "value": [0.0, 0.3, 0.1],
            "clean_acc": [0.90, top_clean, 0.88],
            "robust_acc": [0.00, top_robust, 0.20],
        }
    )


def test_a_family_trades_when_its_strongest_member_beats_the_seed_spread_both_ways():
    std_clean, std_robust = [0.90, 0.91, 0.905], [0.00, 0.01, 0.005]
    assert cl.trades_off(_family(0.80, 0.40), std_clean, std_robust)
    # Top model's clean accuracy within the standard seeds' spread: no trade-off shown.
    assert not cl.trades_off(_family(0.902, 0.40), std_clean, std_robust)
    # Lower clean accuracy but no robustness gained beyond the spread.
    assert not cl.trades_off(_family(0.80, 0.005), std_clean, std_robust)
    # One standard seed: no noise floor, no verdict.
    assert not cl.trades_off(_family(0.80, 0.40), [0.90], [0.00])


def test_frontier_verdict():
    assert cl.frontier_verdict(3, 3) == cl.HOLDS
    assert cl.frontier_verdict(1, 3) == cl.HOLDS_PARTLY
    assert cl.frontier_verdict(0, 3) == cl.NOT_HERE
    assert cl.frontier_verdict(0, 0) == cl.NOT_HERE


def test_phrases_for_the_prose():
    assert wording.count_phrase(["a", "b"], 7, "statistics") == "2 of 7 statistics (a, b)"
    assert wording.count_phrase([], 3, "families") == "none of the 3 families"
    assert wording.factor(2.0, 0.62) == "0.31×" and wording.factor(0, 1.0) == "n/a"
    part = pd.DataFrame(
        {
            "group": ["standard", "PGD-AT"],
            "value": [0.0, 0.1],
            "clean_acc": [0.9, 0.8],
            "pgd_acc": [0.0, 0.4],
        }
    )
    assert wording.path_phrase(part, "ε") == (
        "standard → ε = 0.1: clean accuracy 90.0 % → 80.0 %, PGD accuracy 0.0 % → 40.0 %"
    )


def test_fast_at_collapse_is_a_fall_below_half_the_best_epoch():
    assert cl.collapsed([0.30, 0.45, 0.10])
    assert not cl.collapsed([0.30, 0.45, 0.40])
    assert not cl.collapsed([0.30, 0.45, 0.225])  # exactly half of the best is kept
    assert not cl.collapsed([])


def test_frontier_position_reads_the_interval_against_the_envelope():
    front = pd.DataFrame({"clean_acc": [0.9, 0.8, 0.7], "robust_acc": [0.1, 0.5, 0.6]})
    assert cl.envelope_at(front, 0.85) == pytest.approx(0.3)
    assert cl.envelope_at(front, 0.95) == pytest.approx(0.1)  # beyond the most accurate
    assert cl.envelope_at(front, 0.60) == pytest.approx(0.6)  # below the least accurate
    assert cl.frontier_position(0.85, (0.35, 0.45), front) == cl.ABOVE_FRONTIER
    assert cl.frontier_position(0.85, (0.20, 0.28), front) == cl.BELOW_FRONTIER
    assert cl.frontier_position(0.85, (0.25, 0.35), front) == cl.ON_FRONTIER


def test_the_frontier_is_measured_where_the_point_is_drawn():
    # A sparse static family (standard at 0.90, robust at 0.80): the line between them says
    # "above" for a model at 0.88 with 0.20-0.30; static models trained near 0.88 say "below".
    sparse = pd.DataFrame({"clean_acc": [0.90, 0.80], "robust_acc": [0.0, 0.60]})
    dense = pd.DataFrame(
        {"clean_acc": [0.90, 0.89, 0.875, 0.86, 0.80], "robust_acc": [0.0, 0.35, 0.42, 0.48, 0.60]}
    )
    model = (0.88, (0.20, 0.30))
    assert cl.frontier_position(*model, sparse) == cl.ABOVE_FRONTIER  # the old rule
    assert cl.frontier_position(*model, sparse, static=sparse) == cl.FRONTIER_NOT_MEASURED
    assert cl.frontier_position(*model, dense, static=dense) == cl.BELOW_FRONTIER
    # Exactly 3 points away on each side counts, whatever the float rounding of 0.86 - 0.83.
    edges = pd.DataFrame({"clean_acc": [0.86, 0.80], "robust_acc": [0.0, 0.26]})
    assert cl.frontier_position(0.83, (0.07, 0.20), edges, static=edges) == cl.ON_FRONTIER


def _sanity_table(checks, settings, accuracies, second_passed):
    """A sanity table of two checks on 50 images, two rows each; the first check passes."""
    return pd.DataFrame(
        {
            "check": [checks[0], checks[0], checks[1], checks[1]],
            "setting": settings,
            "accuracy": accuracies,
            "n": [50] * 4,
            "passed": [True, True, second_passed, second_passed],
        }
    )


def test_sanity_rows_give_one_row_per_check_and_a_verdict_per_model():
    def table(passed):
        return _sanity_table(
            ("eps_sweep", "more_restarts"),
            ["PGD-50 eps=0.1", "PGD-50 eps=0.5", "PGD-10 x1", "PGD-10 x5"],
            [0.5, 0.0, 0.5, 0.48],
            passed,
        )

    rows = wording.sanity_rows({"A": table(True), "B": table(False)}, {"eps_sweep": "to zero"})
    assert [r["attack"] for r in rows] == [
        "sanity: to zero (PGD-50: eps=0.1 → eps=0.5)",
        "sanity: more_restarts (PGD-10: x1 vs x5)",
    ]
    assert rows[0]["A"] == "pass: 50 → 0 %" and rows[1]["B"] == "FAIL: 50 vs 48 %"
    assert rows[0]["images"] == "50"


def test_sanity_by_model_is_a_row_per_model_and_a_column_per_check():
    one = pd.DataFrame(
        {
            "check": ["eps_sweep", "eps_sweep", "more_steps", "more_steps"],
            "setting": ["PGD-50 eps=0.1", "PGD-50 eps=0.5", "PGD-10", "PGD-100"],
            "accuracy": [0.5, 0.0, 0.5, 0.5],
            "n": [50] * 4,
            "passed": [True, True, True, True],
        }
    )
    both = pd.concat([one.assign(model="a"), one.assign(model="b", passed=False)])
    table = wording.sanity_by_model(both, {})
    assert list(table.model) == ["a", "b"]
    assert list(table.columns[1:]) == [
        "eps_sweep (PGD-50: eps=0.1 → eps=0.5)",
        "more_steps (PGD-10 vs PGD-100)",
    ]
    assert table.iloc[1, 2] == "FAIL: 50 vs 50 %"


def test_styled_hides_a_bare_integer_index_and_keeps_one_that_names_rows():
    plain = pd.DataFrame({"model": ["a", "b", "c"], "acc": ["1 %", "2 %", "3 %"]})
    filtered = plain[plain.model != "b"]  # index 0, 2: still names nothing
    named = plain.set_index("model")
    for table, shown in ((plain, False), (filtered, False), (named, True)):
        html = wording.styled(table).to_html()
        assert ("<th" in html and ">a</th>" in html) == shown
        assert "white-space: nowrap" in html and "padding" in html


def test_styled_takes_a_table_whose_index_repeats():
    twice = pd.concat([pd.DataFrame({"a": [1.0], "b": ["x"]})] * 2)  # index 0, 0
    assert wording.styled(twice).format("{:.1f}", subset=["a"]).to_html().count("<tr") == 3


def test_autoattack_flags_are_quoted_per_model_and_square_explained():
    square = (
        "AutoAttack (standard, eps=0.1): Square Attack has decreased the robust accuracy of "
        "2.00%. This might indicate that the robustness evaluation using AutoAttack is unreliable."
    )
    text = wording.flags_sentence("AutoAttack", {"AW-Net": [square], "static": []})
    assert "for AW-Net, “Square Attack has decreased the robust accuracy of 2.00%”" in text
    assert "(none for static)" in text and "black-box attack found images" in text
    none = wording.flags_sentence("AutoAttack", {"AW-Net": [], "static": []})
    assert none == "AutoAttack raised none of its own reliability flags for any model here."
    other = wording.flags_sentence(
        "AutoAttack", {"m": ["AutoAttack (core, eps=0.1): zero gradients. X"]}
    )
    assert "“zero gradients”" in other and "black-box" not in other


def test_sanity_sentence_names_each_failed_check_with_what_it_compared():
    def table(passed):
        return _sanity_table(
            ("more_steps", "black_vs_white"),
            ["PGD-10", "PGD-100", "Square", "white-box"],
            [0.54, 0.54, 0.44, 0.54],
            passed,
        )

    names = {"black_vs_white": "Square not stronger than white-box"}
    assert wording.sanity_sentence({"A": table(True), "B": table(True)}, names) == (
        "all 2 gradient-masking checks pass for both models"
    )
    failed = wording.sanity_sentence({"AW-Net": table(False), "static": table(True)}, names)
    assert failed == (
        "the gradient-masking check “Square not stronger than white-box” fails for AW-Net "
        "(44 vs 54 %): its robust accuracy may be overstated"
    )
    both = wording.sanity_sentence({"A": table(False), "B": table(False)}, names)
    assert both.startswith("the gradient-masking checks ") and "their robust accuracy" in both


def test_a_failed_check_answered_by_its_stronger_version_is_not_a_doubt_on_the_worst_case():
    names = {"black_vs_white": "Square not stronger than PGD", "black_vs_adaptive": "every"}

    def table(adaptive_passed):
        weak = _sanity_table(
            ("more_steps", "black_vs_white"),
            ["PGD-10", "PGD-100", "Square", "PGD runs"],
            [0.54, 0.54, 0.44, 0.54],
            False,
        )
        strong = _sanity_table(
            ("more_restarts", "black_vs_adaptive"),
            ["x1", "x5", "Square", "every white-box attack"],
            [0.5, 0.5, 0.25, 0.21],
            adaptive_passed,
        )
        return pd.concat([weak, strong])

    answered = {"black_vs_white": "black_vs_adaptive"}
    said = wording.sanity_sentence({"AW-Net": table(True)}, names, answered)
    assert said == (
        "the gradient-masking check “Square not stronger than PGD” fails for AW-Net (44 vs 54 %) "
        "but “every” passes (25 vs 21 %): plain PGD is misled there; Square as a whole is not "
        "stronger than the adaptive attacks, but an image only Square breaks is one they miss "
        "(the worst case counts it)"
    )
    doubted = wording.sanity_sentence({"AW-Net": table(False)}, names, answered)
    assert doubted.endswith("its robust accuracy may be overstated") and "passes" not in doubted


def test_failed_checks_split_into_standing_and_answered():
    table = pd.DataFrame(
        {
            "check": ["black_vs_white", "black_vs_adaptive", "more_steps"],
            "passed": [False, True, False],
        }
    )
    answered = {"black_vs_white": "black_vs_adaptive"}
    assert cl.failed_checks(table, answered) == (["more_steps"], ["black_vs_white"])
    assert cl.failed_checks(table) == (["black_vs_white", "more_steps"], [])


def test_pooled_claims_say_too_few_seeds_when_holm_cannot_start():
    def claim(p, p_min, effect=1.0):
        return ev.PooledComparison(H, effect, p, p_min, 5, 8)

    # 4 against 4 seeds of one architecture: the smallest p, 2/70, cannot reach 0.05 / 5.
    five = {f"s{i}": claim(2 / 70, 2 / 70) for i in range(5)}
    assert set(cl.pooled_verdicts(five).values()) == {N}
    # Over two architectures (smallest p 2/4900) a strong claim gets its direction.
    two_archs = {"a": claim(0.0004, 0.0004), "b": claim(0.5, 0.0004, -1.0)}
    assert cl.pooled_verdicts(two_archs) == {"a": H, "b": S}
