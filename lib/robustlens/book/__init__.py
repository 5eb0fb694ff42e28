"""The book layer: what turns results into the book's figures, words and verdicts.

Figure modules are named after the chapters that use them (``filter_figures`` for chapters 01–02,
``basis_figures`` for 03, ``theory_figures`` for 04) or are generic (``figures``);
:mod:`~robustlens.book.claims` decides every conclusion, :mod:`~robustlens.book.wording` phrases
it, :mod:`~robustlens.book.names` holds display names and colours, and
:mod:`~robustlens.book.runner` executes the notebooks.
"""
