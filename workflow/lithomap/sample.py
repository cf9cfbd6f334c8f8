"""A bounded, seeded random sample of usable pixels, drawn chunk by chunk.

Each pixel gets a pseudo-random key from a hash of its position on the grid
and the seed, so the sample depends on neither the chunking nor the
scheduler: the same grid and seed give the same pixels, on one thread or on
a cluster. Keys below a threshold are kept in a first pass (about 10 % more
than needed), then the `n` smallest keys win.
"""

from __future__ import annotations

import logging

import dask
import numpy as np

log = logging.getLogger(__name__)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def pixel_keys(index: np.ndarray, seed: int) -> np.ndarray:
    """Uniform keys in [0, 1) for flat pixel indices (splitmix64 finaliser)."""
    # Multiplications wrap around modulo 2**64 on purpose.
    with np.errstate(over="ignore"):
        z = index.astype(np.uint64) + np.uint64(seed) * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _pick(block, row0, col0, width, seed, threshold):
    """Keys, flat indices and values of a block's usable pixels under
    `threshold`."""
    usable = ~np.isnan(block).any(axis=0)
    rows, cols = np.nonzero(usable)
    index = (rows + row0).astype(np.int64) * width + (cols + col0)
    keys = pixel_keys(index, seed)
    keep = keys < threshold
    return keys[keep], index[keep], block[:, rows[keep], cols[keep]].T


def count_usable(stack) -> int:
    """Number of pixels usable in every band of a (band, y, x) Dask array."""
    return int((~np.isnan(stack).any(axis=0)).sum().compute())


def draw_sample(stack, n: int, seed: int, n_usable: int | None = None):
    """Up to `n` usable pixels of a (band, y, x) Dask array.

    Returns
    -------
    values : ndarray of shape (m, band), float32
        Reflectance of the sampled pixels, in random order; m = min(n,
        usable pixels).
    index : ndarray of shape (m,), int64
        Flat index (row * width + col) of each sampled pixel on the grid.
    """
    if n_usable is None:
        n_usable = count_usable(stack)
    threshold = 1.0 if n_usable <= n else min(1.0, 1.1 * n / n_usable + 1e-4)
    width = stack.shape[2]
    tasks = []
    row0 = 0
    for i, rows in enumerate(stack.chunks[1]):
        col0 = 0
        for j, cols in enumerate(stack.chunks[2]):
            block = stack.blocks[:, i, j]
            tasks.append(dask.delayed(_pick)(block, row0, col0, width, seed,
                                             threshold))
            col0 += cols
        row0 += rows
    parts = dask.compute(*tasks)
    keys = np.concatenate([p[0] for p in parts])
    index = np.concatenate([p[1] for p in parts])
    values = np.concatenate([p[2] for p in parts])
    order = np.argsort(keys, kind="stable")[:n]
    log.info("sampled %d of %d usable pixels (seed %d)", len(order),
             n_usable, seed)
    return values[order].astype(np.float32), index[order]
