"""Defaults that several layers share, here once; imports nothing, so that the command line can
show them in ``--help`` without importing torch."""

DEFAULT_METHOD = "vq-lp"
"""The method every verb and function pools with when none is named: the paper's proposal."""
