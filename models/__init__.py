"""Shipped ears: weights (safetensors), model cards and cached layouts (package data)."""
