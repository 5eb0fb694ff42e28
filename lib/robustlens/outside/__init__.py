"""Models and numbers from outside the book: RobustBench, checkpoints, the papers' reported values.

This layer may use :mod:`robustlens.science` (to build and evaluate what it loads) but never
:mod:`robustlens.book`. The workarounds that make RobustBench 1.1.1 importable live here too.
"""
