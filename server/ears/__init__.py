"""The ears: neural networks that listen. See :mod:`earsight.ears.base` for the interface."""
