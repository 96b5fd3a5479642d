"""earsight: an artificial ear you can play."""

__version__ = "0.1.0"
