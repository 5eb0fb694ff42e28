"""The science layer: data, models, training, attacks, filter metrics, theory and statistics.

Nothing here imports :mod:`robustlens.book` or :mod:`robustlens.outside`
(``tests/test_layers.py`` checks it): a result computed here does not depend on how the book
words or draws it, or on which outside models exist.
"""
