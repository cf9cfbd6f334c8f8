"""Majority (modal) filter of a class map, exact across chunk borders.

For each class, the number of pixels of that class in the window around a
pixel is a box sum of its indicator, computed with two 1-D passes. The
pixel takes the class with the largest count; nodata (0) never votes and
stays nodata. Ties go to the pixel's own class if it is among the largest,
else to the lowest class number. Box sums are exact integers, so the
filter over a chunk with a halo of ``window_px // 2`` equals the filter of
the whole map at once.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
from scipy import ndimage


def majority(labels: np.ndarray, window_px: int, k: int | None = None):
    """Majority filter of a 2-D uint8 class map (0 = nodata)."""
    if window_px <= 1:
        return labels.copy()
    if k is None:
        k = int(labels.max())
    weights = np.ones(window_px, dtype=np.float64)
    best = np.zeros(labels.shape, np.uint16)
    out = np.zeros(labels.shape, np.uint8)
    # Counts are doubled and the pixel's own class gets +1, so a tie with
    # the own class wins over a lower class number.
    for c in range(1, k + 1):
        is_c = (labels == c).astype(np.uint16)
        count = ndimage.correlate1d(is_c, weights, axis=0, mode="constant")
        count = ndimage.correlate1d(count, weights, axis=1, mode="constant")
        score = count * 2 + is_c
        better = score > best
        best[better] = score[better]
        out[better] = c
    out[labels == 0] = 0
    return out


def majority_dask(labels: da.Array, window_px: int, k: int) -> da.Array:
    """`majority` over a chunked map, with a halo of ``window_px // 2``."""
    if window_px <= 1:
        return labels
    halo = window_px // 2
    return labels.map_overlap(majority, depth=halo, boundary=0,
                              dtype=np.uint8, window_px=window_px, k=k)
