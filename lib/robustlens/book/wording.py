"""Words and numbers for the prose: formatting, accuracy cells, the "were the models trained" sentence.

Every sentence is built from measured values, so the page says what was measured, not what
the papers led us to expect. Which way a difference goes is decided in :mod:`robustlens.science.evidence`.
"""
from __future__ import annotations

import pandas as pd

from robustlens.science import evidence


def pct(x: float, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f} %"


def accuracy_cell(value: float, ci, digits: int = 1) -> str:
    """``"83.9 % [83.2, 84.6]"``: an accuracy with its 95 % interval, for tables and prose."""
    return evidence.interval_text(value, ci, digits)


def progress_table(entries, names=None) -> pd.DataFrame:
    """One row per zoo model: how far training moved its conv weights (``zoo.progress``)."""
    from robustlens.science import zoo

    rows = []
    for e in entries:
        s = zoo.progress(e)
        rows.append({"model": (names or {}).get(e.label, e.label),
                     "median ‖W−W₀‖/‖W₀‖": f"{s['median_rel_change']:.2f}",
                     "median std / initial std": f"{s['median_std_ratio']:.2f}",
                     "median excess kurtosis": f"{s['median_excess_kurtosis']:.2f}",
                     "trained": "yes" if s["trained"] else "no (near its initialisation)"})
    return pd.DataFrame(rows)


def progress_sentence(table: pd.DataFrame) -> str:
    """The set-up paragraph's verdict on :func:`progress_table`: are the models trained?"""
    from robustlens.science.training_progress import TRAINED_REL_CHANGE

    col = table["median ‖W−W₀‖/‖W₀‖"].astype(float)
    n, n_trained = len(table), int((table["trained"] == "yes").sum())
    span = f"{col.min():.2f}–{col.max():.2f}"
    if n_trained == n:
        return (f"all {n} models moved their conv weights by at least {TRAINED_REL_CHANGE} of their "
                f"initial norm (median layer: {span}), so they count as trained")
    return (f"{n - n_trained} of {n} models moved their conv weights by less than {TRAINED_REL_CHANGE} of "
            f"their initial norm (median layer: {span}): they are still near their initialisation, "
            "and the verdicts below that rest on them are not interpretable as effects of training")
