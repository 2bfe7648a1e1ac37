"""TEMPORARY: the console's old import path for ``normalise_number``; the contract lives in :mod:`mmsgate.contract`."""

from mmsgate.contract.numbers import normalise_number  # TEMPORARY: console import, removed after the console split

__all__ = ["normalise_number"]
