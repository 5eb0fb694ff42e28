"""Words and numbers for the prose: formatting, accuracy cells, the "were the models trained" sentence.

Every sentence is built from measured values, so the page says what was measured, not what
the papers led us to expect. What a measurement concludes (which way a difference goes, whether a
check holds, whether a model counts as trained) is decided in :mod:`robustlens.book.claims`; the
functions here only phrase it.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from robustlens.book import claims
from robustlens.book import names as book_names
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
        rows.append(
            {
                "model": (names or {}).get(e.label) or book_names.model(e.spec),
                "median ‖W−W₀‖/‖W₀‖": f"{s['median_rel_change']:.2f}",
                "median std / initial std": f"{s['median_std_ratio']:.2f}",
                "median excess kurtosis": f"{s['median_excess_kurtosis']:.2f}",
                "trained": (
                    "yes"
                    if claims.trained(s["median_rel_change"])
                    else "no (near its initialisation)"
                ),
            }
        )
    return pd.DataFrame(rows)


def progress_sentence(table: pd.DataFrame) -> str:
    """The set-up paragraph's verdict on :func:`progress_table`: are the models trained?

    Which models count as trained, and whether that makes the verdicts interpretable, is decided
    by :func:`robustlens.book.claims.trained` and :func:`robustlens.book.claims.interpretable`."""
    threshold = claims.TRAINED_REL_CHANGE
    col = table["median ‖W−W₀‖/‖W₀‖"].astype(float)
    flags = (table["trained"] == "yes").tolist()  # set by claims.trained in progress_table
    n, n_trained = len(table), sum(flags)
    span = f"{col.min():.2f}–{col.max():.2f}"
    if claims.interpretable(flags):
        return (
            f"all {n} models moved their conv weights by at least {threshold} of their "
            f"initial norm (median layer: {span}), so they count as trained"
        )
    return (
        f"{n - n_trained} of {n} models moved their conv weights by less than {threshold} of "
        f"their initial norm (median layer: {span}): they are still near their initialisation, "
        "and the verdicts below that rest on them are not interpretable as effects of training"
    )


def count_sentence(verdicts: Iterable[str], unit: str = "layers") -> str:
    """``"higher in 3, lower in 1, not distinguishable in 2 of 6 layers"`` (only non-zero counts),
    from the verdicts that :func:`robustlens.book.claims.count_verdicts` counts."""
    counts = claims.count_verdicts(verdicts)
    n = sum(counts.values())
    if n == 0:
        return f"no {unit} to compare"
    for v in (claims.HIGHER, claims.LOWER, claims.SAME):
        if counts[v] == n:
            return f"{v} in all {n} {unit}" if n > 1 else f"{v} in 1 of 1 {unit}"
    if counts[claims.TOO_FEW] == n:
        return f"not decidable in any of the {n} {unit} (too few seeds for a test at α = 0.05)"
    if counts[claims.CONSTANT] == n:
        return f"untestable in all {n} {unit} (the same value everywhere)"
    # The verdict words read as a list: "too few seeds to test in 4" would not.
    said = {claims.TOO_FEW: "undecidable (too few seeds)", claims.CONSTANT: "untestable"}
    parts = [f"{said.get(v, v)} in {counts[v]}" for v in claims.VERDICTS if counts[v]]
    return ", ".join(parts) + f" of {n} {unit}"


def detectable_clause(cases: pd.DataFrame, fmt: str = "{:.3g}") -> str:
    """What the "not distinguishable" cases of a :func:`~robustlens.science.evidence.compare_table`
    could have seen: ``" (the smallest difference these 12 cases could detect, at 80 % power: a
    median of 0.012)"``, or, where no case could reach α after the table's correction, that no
    difference of any size was detectable and how many seeds would be. Empty without such cases."""
    same = cases[cases.verdict == claims.SAME]
    if same.empty:
        return ""
    mde = same.mde.astype(float)
    finite = mde[np.isfinite(mde)]
    if "n_tests" in cases and len(cases):  # the whole family Holm corrected, not this subset
        n_tests = int(cases.n_tests.iloc[0])
    else:
        n_tests = int(cases.p_adjusted.notna().sum()) if "p_adjusted" in cases else len(cases)
    if finite.empty:
        need = evidence.seeds_needed(n_tests=max(1, n_tests))
        return (
            f" (with Holm's correction over {n_tests} tests no difference of any size was "
            f"detectable in the {len(same)} not-distinguishable cases: that needs {need} seeds "
            "per method)"
        )
    return (
        f" (the smallest difference the {len(same)} not-distinguishable cases could detect, at "
        f"{evidence.POWER:.0%} power: a median of {fmt.format(float(finite.median()))})"
    )


def chance_clause(n_cases: int, corrected: bool = True) -> str:
    """What chance alone gives beside a count of verdicts (:func:`~robustlens.book.claims.chance_directions`)."""
    if corrected:
        return (
            f"; with no true difference, Holm's correction keeps the chance of even one ↑ or ↓ "
            f"among these {n_cases} cases at most {claims.chance_directions(n_cases):.0%}"
        )
    return (
        f"; chance alone would give about {claims.chance_directions(n_cases, corrected=False):.1f}"
        f" ↑ or ↓ among these {n_cases} cases"
    )


def verdict_summary(cases: pd.DataFrame, unit: str = "layers", fmt: str = "{:.3g}") -> str:
    """:func:`count_sentence` of a :func:`~robustlens.science.evidence.compare_table`'s rows,
    with what they could have detected (:func:`detectable_clause`) and what chance alone gives
    (:func:`chance_clause`)."""
    text = count_sentence(cases.verdict, unit) + detectable_clause(cases, fmt)
    decidable = cases.verdict.isin([claims.HIGHER, claims.LOWER, claims.SAME]).sum()
    return text + (chance_clause(len(cases)) if decidable else "")


def band_phrase(row, smallest: float, largest: float) -> str:
    """How far in eps the first-order model stays within
    :data:`robustlens.book.claims.TIGHT_BAND`, from a :func:`robustlens.book.claims.breakdown_eps`
    row, as words."""
    if np.isnan(row["last_tight_eps"]):
        return f"is outside it already at the smallest budget tested (ε = {smallest:.3g})"
    if np.isnan(row["first_loose_eps"]):
        return f"stays inside it up to the largest budget tested (ε = {largest:.3g})"
    return (
        f"stays inside it up to ε = {row['last_tight_eps']:.3g} and leaves it at "
        f"ε = {row['first_loose_eps']:.3g}"
    )


def count_phrase(names: list[str], total: int, what: str) -> str:
    """``"3 of 7 statistics (a, b, c)"`` or ``"none of the 7 statistics"``."""
    if not names:
        return f"none of the {total} {what}"
    return f"{len(names)} of {total} {what} ({', '.join(names)})"


def path_phrase(part: pd.DataFrame, symbol: str) -> str:
    """``"standard → λ = 0.1 → λ = 0.3: clean accuracy 90.1 % → 88.0 % → 85.2 %, PGD accuracy
    ..."`` from rows sorted by strength (``value``; the standard model first)."""
    steps = [
        "standard" if row.group == "standard" else f"{symbol} = {row.value:.3g}"
        for row in part.itertuples()
    ]
    clean = " → ".join(pct(v) for v in part.clean_acc)
    robust = " → ".join(pct(v) for v in part.pgd_acc)
    return f"{' → '.join(steps)}: clean accuracy {clean}, PGD accuracy {robust}"


def factor(a: float, b: float) -> str:
    """``b`` as a multiple of ``a``, in words: ``"0.31×"`` (``"n/a"`` when ``a`` is 0)."""
    return f"{b / a:.2g}×" if a else "n/a"


def tightness_sentence(tight: list[str], loose: list[str], undecided: list[str]) -> str:
    """Chapter 04's check-1 sentence: for which models the first-order prediction is tight at
    the reference budget, for which it is not, and for which the interval cannot tell."""
    parts = []
    if tight:
        parts.append(f"holds at the reference budget for the {' and '.join(tight)} model")
    if loose:
        parts.append(f"does not hold for the {' and '.join(loose)} model")
    if undecided:
        parts.append(
            f"cannot be decided for the {' and '.join(undecided)} model "
            "(its interval straddles the band's edge)"
        )
    return "; ".join(parts)


def styled(table: pd.DataFrame, nowrap=None, index: bool | None = None):
    """The book's look of a table: no index column (unless the index names the rows), room
    between columns, and the cells of number columns (an accuracy with its interval, a verdict
    with its numbers) never broken across lines; by default every column but the first is such a
    column (every column when the index names the rows). ``index``: show (True) or hide (False)
    the index; by default shown only when it names the rows."""
    rows = table.index
    # A bare integer index (0, 1, ... or what filtering left of it) names nothing.
    named_rows = (
        rows.nlevels > 1 or rows.name is not None or not pd.api.types.is_integer_dtype(rows)
    )
    show_index = named_rows if index is None else index
    if not show_index:
        table = table.reset_index(drop=True)  # pandas styles only a unique index
    if nowrap is None:
        nowrap = table.columns if show_index else table.columns[1:]
    style = table.style if show_index else table.style.hide(axis="index")
    # Room between columns, so neighbouring numbers never read as one; 0.9 of the text size (14
    # px as rendered, well above 9 pt) so that seven or eight number columns fit the page; a
    # table that still does not fit scrolls in its own box instead of running under the margin.
    cells = "padding: 0.1em 0.3em; font-size: 0.9em;"
    box = "display: block; max-width: 100%; overflow-x: auto;"
    style = style.set_table_styles(
        [{"selector": "td, th", "props": cells}, {"selector": "", "props": box}]
    )
    if len(nowrap):
        style = style.set_properties(subset=list(nowrap), **{"white-space": "nowrap"})
    return style


def _compact(settings: list[str], joiner: str) -> str:
    """``["PGD-10 x1", "PGD-10 x5"]`` -> ``"PGD-10: x1 vs x5"``: the words they share, once."""
    words = [s.split(" ") for s in settings]
    k = 0
    while all(len(w) > k + 1 and w[k] == words[0][k] for w in words):
        k += 1
    if k == 0:
        return joiner.join(settings)
    return " ".join(words[0][:k]) + ": " + joiner.join(" ".join(w[k:]) for w in words)


def _joiner(check: str) -> str:
    """The ε sweep is a curve (→); the other checks compare two attacks (vs)."""
    return " → " if check == "eps_sweep" else " vs "


def _sanity_label(check: str, part: pd.DataFrame, names: dict[str, str]) -> str:
    """``"accuracy falls to ~0 as ε grows (PGD-50: eps=0.1 → eps=0.5)"``: what a check compares."""
    return f"{names.get(check, check)} ({_compact(list(part.setting), _joiner(check))})"


def sanity_rows(checks: dict[str, pd.DataFrame], names: dict[str, str]) -> list[dict]:
    """The sanity checks of :func:`robustlens.science.evaluation.sanity_checks` as rows of a
    results table: one row per check, one column per model (``checks`` maps a column name to
    that model's sanity table), each cell the verdict and the accuracies the check compared,
    in the order it ran them (e.g. ``"pass: 46 → 12 → 0 %"``). ``names`` words each check."""
    first = next(iter(checks.values()))
    rows = []
    for check, part in first.groupby("check", sort=False):
        row = {
            "attack": f"sanity: {_sanity_label(check, part, names)}",
            "images": f"{int(part.n.iloc[0]):,}",
        }
        for column, table in checks.items():
            row[column] = sanity_cell(table[table.check == check])
        rows.append(row)
    return rows


def sanity_cell(rows: pd.DataFrame) -> str:
    """One check of one model (its rows of a sanity table): ``"pass: 46 → 12 → 0 %"``, the
    verdict and the accuracies the check compared, in the order it ran them."""
    verdict = "pass" if bool(rows.passed.iloc[0]) else "FAIL"
    return (
        f"{verdict}: "
        + _joiner(rows.check.iloc[0]).join(f"{100 * a:.0f}" for a in rows.accuracy)
        + " %"
    )


def sanity_sentence(
    checks: dict[str, pd.DataFrame],
    names: dict[str, str],
    answered_by: dict[str, str] | None = None,
) -> str:
    """The verdict of the gradient-masking checks in words, naming each failure with the
    accuracies it compared: ``"all 4 gradient-masking checks pass for both models"`` or
    ``"the gradient-masking check “…” fails for AW-Net (44 vs 54 %): its robust accuracy may
    be overstated"``. ``checks`` maps a model's name to its sanity table.

    ``answered_by`` maps a check to a stronger version of it (e.g. Square against PGD only →
    Square against every white-box attack): a failure whose stronger version passed for the same
    model says that plain PGD is misled and that Square as a whole is no stronger than the
    adaptive attacks; images only Square breaks are still ones the white-box attacks miss, which
    the worst case counts."""
    failures, answered = [], []
    for model, table in checks.items():
        groups = dict(tuple(table.groupby("check", sort=False)))
        standing, answered_checks = claims.failed_checks(table, answered_by)

        def said(check):
            return f"“{names.get(check, check)}” fails for {model} ({_compared(groups[check])})"

        failures += [(model, said(c)) for c in standing]
        answered += [
            f"{said(c)} but “{names.get(answered_by[c], answered_by[c])}” passes "
            f"({_compared(groups[answered_by[c]])})"
            for c in answered_checks
        ]
    if not failures and not answered:
        n_checks = next(iter(checks.values())).check.nunique()
        models = "both models" if len(checks) == 2 else "every model"
        return f"all {n_checks} gradient-masking checks pass for {models}"
    parts = []
    if answered:
        parts.append(
            "the gradient-masking check "
            + "; ".join(answered)
            + ": plain PGD is misled there; Square as a whole is not stronger than the adaptive "
            "attacks, but an image only Square breaks is one they miss (the worst case counts it)"
        )
    if failures:
        word = "check" if len(failures) == 1 else "checks"
        whose = "its" if len({m for m, _ in failures}) == 1 else "their"
        lead = "the gradient-masking" if not answered else "and the"
        parts.append(
            f"{lead} {word} "
            + "; ".join(f for _, f in failures)
            + f": {whose} robust accuracy may be overstated"
        )
    return "; ".join(parts)


def _compared(rows: pd.DataFrame) -> str:
    """``"44 vs 54 %"``: the accuracies one check compared (its cell without the verdict)."""
    return sanity_cell(rows).split(": ", 1)[1]


def sanity_by_model(sanity: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """Sanity tables of many models (one, with a ``model`` column) as a row per model and a
    column per check, each cell :func:`sanity_cell`; the header says what each check compares."""
    first = sanity[sanity.model == sanity.model.iloc[0]]
    header = {
        check: _sanity_label(check, part, names)
        for check, part in first.groupby("check", sort=False)
    }
    rows = []
    for model, mine in sanity.groupby("model", sort=False):
        row = {"model": model}
        for check, part in mine.groupby("check", sort=False):
            row[header[check]] = sanity_cell(part)
        rows.append(row)
    return pd.DataFrame(rows)


def flags_sentence(attack: str, flags: dict[str, list[str]]) -> str:
    """AutoAttack's own reliability flags per model (``zoo.autoattack_flags``), quoted: e.g. its
    check that black-box Square found no image the gradient-based attacks missed."""
    raised = {m: msgs for m, msgs in flags.items() if msgs}
    if not raised:
        return f"{attack} raised none of its own reliability flags for any model here."
    parts = []
    for model, msgs in raised.items():
        # "AutoAttack (standard, eps=0.1): Square Attack has ... of 2.00%. This might ..."
        quoted = "; ".join(
            "“" + m.split("): ", 1)[-1].split(". ")[0].rstrip(".") + "”" for m in msgs
        )
        parts.append(f"for {model}, {quoted}")
    clean = [m for m in flags if m not in raised]
    tail = f" (none for {' or '.join(clean)})" if clean else ""
    square = any("Square" in m for msgs in raised.values() for m in msgs)
    why = (
        ": the black-box attack found images the gradient-based attacks left correct, a sign "
        "that gradients there mislead; those images count as lost in the worst case above"
        if square
        else ""
    )
    return f"{attack} raised its own reliability flag {'; '.join(parts)}{tail}{why}."
