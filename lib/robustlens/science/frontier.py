"""The clean-vs-robust plane: which models no other model beats on both accuracies."""

from __future__ import annotations

import numpy as np
import pandas as pd


def pareto_front(points: pd.DataFrame, x: str = "clean_acc", y: str = "pgd_acc") -> pd.DataFrame:
    """The points not dominated in (x, y) (higher is better in both), sorted by x."""
    pts = points.sort_values([x, y], ascending=[False, False])
    best, keep = -np.inf, []
    for idx, row in pts.iterrows():
        if row[y] > best:
            keep.append(idx)
            best = row[y]
    return points.loc[keep].sort_values(x)
