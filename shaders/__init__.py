"""GLSL programs, one file per program (package data, so a wheel finds them)."""
