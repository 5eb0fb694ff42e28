"""Chapter 04's "does the penalty move the filters toward PGD-AT" rule, on hand-made tables."""
import pandas as pd

from robustlens.book import theory_figures as tp


def _tables(std_seeds, pgd_seeds, sweep_values):
    wide = pd.DataFrame({"m": {"standard": std_seeds[0], "PGD-AT": pgd_seeds[0],
                               **{f"l{i}": v for i, v in enumerate(sweep_values)}}})
    reps = pd.DataFrame([{"model": name, "seed": s, "metric": "m", "value": v}
                         for name, vals in (("standard", std_seeds), ("PGD-AT", pgd_seeds))
                         for s, v in enumerate(vals)])
    sweeps = {"l1": [(lam, f"l{i}") for i, lam in enumerate((0.01, 0.1, 1.0)[:len(sweep_values)])]}
    return wide, sweeps, reps


def test_monotone_toward_pgd_beyond_the_seed_spread():
    wide, sweeps, reps = _tables([1.0, 1.02], [2.0, 2.03], [1.2, 1.5, 1.9])
    v = tp.sweep_verdicts(wide, sweeps, reps, "standard", "PGD-AT", ["m"]).iloc[0]
    assert v.pgd_dir == 1 and v.end_on_pgd_side and v.verdict == "monotone toward PGD-AT"


def test_pgd_within_the_seed_spread_is_untestable():
    # Two standard seeds differ by 0.5: PGD-AT's 0.3 shift is no direction at all.
    wide, sweeps, reps = _tables([1.0, 1.5], [1.3, 1.35], [1.2, 1.5, 1.9])
    assert tp.sweep_verdicts(wide, sweeps, reps, "standard", "PGD-AT", ["m"]).iloc[0].verdict == "untestable"


def test_moving_less_than_the_floor_does_not_count_and_away_is_reported():
    wide, sweeps, reps = _tables([1.0, 1.02], [2.0, 2.03], [1.0, 1.01, 1.01])
    assert tp.sweep_verdicts(wide, sweeps, reps, "standard", "PGD-AT", ["m"]).iloc[0].verdict == "does not move"
    wide, sweeps, reps = _tables([1.0, 1.02], [2.0, 2.03], [0.9, 0.7, 0.5])
    assert tp.sweep_verdicts(wide, sweeps, reps, "standard", "PGD-AT", ["m"]).iloc[0].verdict == "away from PGD-AT"


def test_one_seed_has_no_noise_floor():
    wide, sweeps, reps = _tables([1.0], [2.0], [1.2, 1.5, 1.9])
    assert tp.sweep_verdicts(wide, sweeps, reps, "standard", "PGD-AT", ["m"]).iloc[0].verdict == "no noise floor"
