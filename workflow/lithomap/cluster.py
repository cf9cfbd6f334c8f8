"""k-means on the encoded sample, and chunked assignment of every pixel."""

from __future__ import annotations

import logging

import numpy as np
from sklearn.cluster import KMeans

log = logging.getLogger(__name__)


def fit_kmeans(features: np.ndarray, k: int, seed: int, n_init: int = 4,
               max_iter: int = 300) -> np.ndarray:
    """Centroids (k, n_features) of k-means on `features`, largest first.

    Ordering clusters by size makes cluster numbers (and so map colours)
    independent of k-means' arbitrary label order.
    """
    if len(features) < k:
        raise ValueError(f"k-means: k={k} exceeds the {len(features)} "
                         "sampled pixels; lower k or enlarge the AOI")
    km = KMeans(n_clusters=k, n_init=n_init, max_iter=max_iter,
                random_state=seed).fit(features.astype(np.float64))
    sizes = np.bincount(km.labels_, minlength=k)
    order = np.argsort(-sizes, kind="stable")
    log.info("k-means k=%d: inertia %.4g, cluster sizes %s", k,
             km.inertia_, sizes[order].tolist())
    return km.cluster_centers_[order].astype(np.float32)


def assign(features: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Nearest-centroid labels 1..k (uint8) of `features` (n, f)."""
    # |x - c|^2 = |x|^2 - 2 x.c + |c|^2; |x|^2 does not change the argmin.
    c = centroids.astype(np.float32)
    dist = (c * c).sum(axis=1) - 2.0 * (features @ c.T)
    return (np.argmin(dist, axis=1) + 1).astype(np.uint8)
