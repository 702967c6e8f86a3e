"""The error for a model bundle that does not load, in a module of its own: the modules a bundle
is made of (encoder_top.py) raise kinds of it, and bundle.py imports them."""
from __future__ import annotations


class BundleError(ValueError):
    """A directory that is not a loadable model bundle."""
