"""Layers derived from the stack before reduction (indices, context).

`apply` turns the reflectance stack (band, y, x) into the stack that the
sample is drawn from and that every chunk is encoded from. It must be a
chunk-wise (or halo-exact) function, so that sampled pixels and mapped
pixels see the same values.
"""

from __future__ import annotations

import dask.array as da


def layer_names(bands: list[str], sensor: str, settings: dict) -> list[str]:
    """Names of the layers `apply` returns, in order."""
    return list(bands)


def apply(stack: da.Array, bands: list[str], sensor: str,
          settings: dict) -> da.Array:
    """The stack with derived layers; NaN wherever any input is NaN."""
    return stack
