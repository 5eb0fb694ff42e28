"""How a computed value reaches the page: glue it raw, once; the page formats it.

A number is glued as a plain Python number and formatted where the text shows it, e.g.
``{glue:text}`clean_acc:.1%``` or ``{glue:text}`n_models:d```, so one number has one source and
the notebook holds no hand-formatted copies of it. Text (a verdict, an interval), tables and
figures are glued as they are.
"""

from __future__ import annotations

import numbers

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def plain(value):
    """``value`` as a plain Python object that the page can format.

    myst-nb formats ``{glue:text}`name:spec``` by reading back the value's ``repr``: numpy
    scalars print as ``np.float64(0.5)`` under numpy 2, which it cannot read, so they become
    Python numbers here. Anything else that is not a number is returned unchanged.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return plain(value.item())
    return value


def glue(name: str, value) -> None:
    """Glue ``value`` under ``name`` for the page, without showing it as the cell's output.

    Numbers are glued raw (see :func:`plain`); a matplotlib figure is glued and closed, so the
    inline backend does not also show it as the cell's output; tables (a ``pandas`` Styler or
    DataFrame) and text are glued as they are.
    """
    from myst_nb import glue as myst_glue

    value = plain(value)
    if isinstance(value, float) and not np.isfinite(value):
        # A NaN would print as "nan%" in the text; refuse it here, where its name is known.
        raise ValueError(
            f"{name!r} is {value}: glue a sentence that says why it is missing instead"
        )
    myst_glue(name, value, display=False)
    if isinstance(value, Figure):
        plt.close(value)
