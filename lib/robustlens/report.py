"""Words and numbers for the prose: formatting and direction-of-difference sentences.

Every sentence is built from measured values, so the page says what was measured, not what
the papers led us to expect.
"""
from __future__ import annotations

import pandas as pd


def pct(x: float, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f} %"


def direction(a: float, b: float, rel_tol: float = 0.02) -> str:
    """'higher', 'lower' or 'about the same' for b compared with a (relative tolerance)."""
    scale = max(abs(a), abs(b), 1e-12)
    if abs(b - a) <= rel_tol * scale:
        return "about the same"
    return "higher" if b > a else "lower"


def layerwise_direction(table: pd.DataFrame, metric: str, base: str, other: str,
                        metric_name: str | None = None, rel_tol: float = 0.02) -> str:
    """A sentence: in how many layers ``other``'s ``metric`` is higher / lower than ``base``'s.

    ``table`` is tidy (model, layer, metric, value); layers are matched by name.
    """
    sub = table[table["metric"] == metric].pivot_table(index="layer", columns="model", values="value",
                                                       sort=False)
    if base not in sub or other not in sub:
        raise ValueError(f"models {base!r} and {other!r} must both be in the table")
    verdicts = [direction(a, b, rel_tol) for a, b in zip(sub[base], sub[other])]
    n = len(verdicts)
    higher, lower = verdicts.count("higher"), verdicts.count("lower")
    name = metric_name or metric.replace("_", " ")
    if higher == n:
        summary = f"higher in all {n} layers"
    elif lower == n:
        summary = f"lower in all {n} layers"
    else:
        same = n - higher - lower
        parts = [f"higher in {higher}", f"lower in {lower}"] + ([f"about the same in {same}"] if same else [])
        summary = ", ".join(parts) + f" of {n} layers"
    return f"{name}: {summary}"
