"""robustlens: the library behind the companion book on adversarial robustness through the lens of filters."""

__version__ = "0.1.0"
