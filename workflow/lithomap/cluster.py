"""Clustering of the encoded sample, and chunked assignment of every pixel.

Two clusterers, both fitted on the bounded sample and applied to any
number of pixels by plain NumPy functions of their fitted state (cheap to
ship to Dask workers, the same numbers wherever they run):

- k-means (`fit_kmeans`, `assign`): nearest centroid; spherical clusters
  of equal spread.
- Gaussian mixture (`fit_gmm`, `assign_gmm`): each cluster a Gaussian with
  its own covariance, fitted by EM (scikit-learn); a pixel goes to the
  component of highest posterior. Rock units whose abundances vary along
  a few mixing directions form elongated, correlated clouds that a
  full-covariance mixture follows and k-means cuts across.

`fit` and `predict` dispatch on a model dict (``{"kind": "kmeans",
"centroids": ...}`` or ``{"kind": "gmm", ...}``) that is JSON-able as it
is. With a mixture, k can be chosen from the BIC curve (`sweep_bic`,
`pick_k_bic`): its minimum or its knee.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans

log = logging.getLogger(__name__)

CLUSTERERS = ("kmeans", "gmm")
"""Values ``settings.clusterer`` may take."""

BIC_RULES = ("min", "knee")
"""How `pick_k_bic` reads a BIC curve."""

COVARIANCES = ("full", "diag")
"""Covariance types `fit_gmm` accepts."""

ROWS_PER_STEP = 65_536
"""Rows scored at a time, to bound the (rows, k) work arrays."""


class ClusterError(ValueError):
    """Clustering settings or the sample they apply to are unusable."""


def fit_kmeans(features: np.ndarray, k: int, seed: int, n_init: int = 4,
               max_iter: int = 300) -> np.ndarray:
    """Centroids (k, n_features) of k-means on `features`, largest first.

    Ordering clusters by size makes cluster numbers (and so map colours)
    independent of k-means' arbitrary label order.
    """
    _check_k(features, k, "k-means")
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
    dist = (c * c).sum(axis=1)[:, None] - 2.0 * (c @ features.T)
    return (np.argmin(dist, axis=0) + 1).astype(np.uint8)


def fit_gmm(features: np.ndarray, k: int, seed: int, n_init: int = 1,
            max_iter: int = 200, covariance: str = "full",
            reg_covar: float = 1e-4) -> dict:
    """Gaussian mixture of `k` components fitted on `features` by EM.

    Parameters
    ----------
    features : ndarray of shape (n_pixels, n_features)
        Encoded sample (scaled features: `reg_covar` is in their units).
    k : int
        Number of components.
    seed : int
        Seeds the k-means initialisation of EM.
    n_init : int, default=1
        EM restarts; the highest likelihood wins.
    max_iter : int, default=200
        EM iterations per restart.
    covariance : {"full", "diag"}, default="full"
        Covariance of each component.
    reg_covar : float, default=1e-4
        Added to covariance diagonals, so that a component spread along
        fewer dimensions than the features (normalised bands sum to a
        constant) keeps an invertible covariance.

    Returns
    -------
    dict
        ``kind`` ("gmm"), ``weights`` (k,), ``means`` (k, f) and
        ``precisions_cholesky`` (k, f, f), components largest weight
        first, as lists (JSON-able); see `assign_gmm`.
    """
    from sklearn.mixture import GaussianMixture

    # TODO: EM starts from k-means only (scikit-learn's default); when
    # k-means cuts a cloud badly EM can stay in that optimum. Random or
    # k-means++ starts with n_init > 1 would cost n_init times the time.
    _check_k(features, k, "Gaussian mixture")
    if covariance not in COVARIANCES:
        raise ClusterError(f"gmm_covariance: expected one of {COVARIANCES}."
                           f" Received: {covariance!r}")
    gm = GaussianMixture(k, covariance_type=covariance, n_init=n_init,
                         max_iter=max_iter, reg_covar=reg_covar,
                         random_state=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gm.fit(features.astype(np.float64))
    if any("converge" in str(w.message) for w in caught):
        log.warning("Gaussian mixture k=%d did not converge in %d "
                    "iterations; the map uses the last estimate (raise "
                    "max_iter to let EM go on)", k, max_iter)
    chol = gm.precisions_cholesky_
    if covariance == "diag":
        chol = np.stack([np.diag(c) for c in chol])
    order = np.argsort(-gm.weights_, kind="stable")
    log.info("Gaussian mixture k=%d (%s): mean log-likelihood %.4g, "
             "weights %s", k, covariance, gm.score(features),
             np.round(gm.weights_[order], 3).tolist())
    return {"kind": "gmm", "weights": gm.weights_[order].tolist(),
            "means": gm.means_[order].tolist(),
            "precisions_cholesky": chol[order].tolist()}


def gmm_log_density(features: np.ndarray, model: dict) -> np.ndarray:
    """log(weight_j N(x | mean_j, cov_j)) of each row and component.

    Returns
    -------
    ndarray of shape (n, k), float64
    """
    x = np.asarray(features, np.float64)
    weights = np.asarray(model["weights"], np.float64)
    means = np.asarray(model["means"], np.float64)
    chol = np.asarray(model["precisions_cholesky"], np.float64)
    n_features = means.shape[1]
    # log det of the precision's Cholesky factor = sum of log diagonal.
    log_det = np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    const = np.log(weights) + log_det - 0.5 * n_features * np.log(2 * np.pi)
    out = np.empty((len(x), len(weights)))
    for j in range(len(weights)):
        y = (x - means[j]) @ chol[j]
        out[:, j] = const[j] - 0.5 * np.einsum("ij,ij->i", y, y)
    return out


def assign_gmm(features: np.ndarray, model: dict) -> np.ndarray:
    """Labels 1..k (uint8): the component of highest posterior."""
    out = np.empty(len(features), np.uint8)
    for start in range(0, len(features), ROWS_PER_STEP):
        part = features[start:start + ROWS_PER_STEP]
        out[start:start + len(part)] = \
            gmm_log_density(part, model).argmax(axis=1) + 1
    return out


def fit(features: np.ndarray, k: int, settings: dict) -> dict:
    """Model dict of the clusterer ``settings["clusterer"]``.

    Reads ``seed``, ``clusterer`` (default "kmeans"), ``kmeans_n_init``
    (default 4), ``gmm_covariance`` (default "full"), ``gmm_n_init``
    (default 1), ``gmm_reg_covar`` (default 1e-4) and ``gmm_fit_n``
    (default 200,000: EM runs on a seeded subsample of that many rows, as
    its cost grows with rows x k x features^2) from `settings`.
    """
    kind = settings.get("clusterer", "kmeans")
    seed = settings["seed"]
    if kind == "kmeans":
        centroids = fit_kmeans(features, k, seed,
                               settings.get("kmeans_n_init", 4))
        return {"kind": "kmeans", "centroids": centroids.tolist()}
    if kind == "gmm":
        features = subsample(features, settings.get("gmm_fit_n", 200_000),
                             seed)
        return fit_gmm(features, k, seed, settings.get("gmm_n_init", 1),
                       covariance=settings.get("gmm_covariance", "full"),
                       reg_covar=settings.get("gmm_reg_covar", 1e-4))
    raise ClusterError(f"settings.clusterer: expected one of {CLUSTERERS}. "
                       f"Received: {kind!r}")


def predict(features: np.ndarray, model: dict) -> np.ndarray:
    """Labels 1..k (uint8) of `features` (n, f) under a `fit` model."""
    if model.get("kind", "kmeans") == "gmm":
        return assign_gmm(features, model)
    return assign(features, np.asarray(model["centroids"], np.float32))


def n_clusters(model: dict) -> int:
    """k of a `fit` model."""
    if model.get("kind", "kmeans") == "gmm":
        return len(model["weights"])
    return len(model["centroids"])


def sweep_bic(features: np.ndarray, k_range, seed: int = 0,
              sweep_n: int = 100_000, n_init: int = 1,
              covariance: str = "full", reg_covar: float = 1e-4
              ) -> pd.DataFrame:
    """BIC of a Gaussian mixture for every k of `k_range`.

    Fitted on a seeded subsample of at most `sweep_n` rows of `features`.
    Returns a table with columns ``k``, ``bic``, ``log_likelihood`` (mean
    per pixel) and ``n_parameters``; ``attrs`` holds ``k_range``,
    ``sweep_n``, ``seed`` and ``knee_k`` (see `pick_k_bic`).
    """
    from sklearn.mixture import GaussianMixture

    kmin, kmax = int(k_range[0]), int(k_range[1])
    if not 1 <= kmin < kmax:
        raise ClusterError(f"k_range: expected [min, max] with 1 <= min < "
                           f"max. Received: {list(k_range)}")
    x = subsample(features[np.isfinite(features).all(axis=1)], sweep_n,
                  seed).astype(np.float64)
    rows = []
    for k in range(kmin, kmax + 1):
        gm = GaussianMixture(k, covariance_type=covariance, n_init=n_init,
                             reg_covar=reg_covar, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gm.fit(x)
        rows.append((k, gm.bic(x), gm.score(x), gm._n_parameters()))
        log.debug("k = %d: BIC %.6g", k, rows[-1][1])
    table = pd.DataFrame(rows, columns=["k", "bic", "log_likelihood",
                                        "n_parameters"])
    table.attrs = {"k_range": [kmin, kmax], "sweep_n": len(x),
                   "seed": seed}
    table.attrs["knee_k"] = _bic_knee(table)
    return table


def pick_k_bic(table: pd.DataFrame, rule: str = "min") -> int:
    """The k that `rule` picks from a `sweep_bic` table.

    ``"min"``: the lowest BIC (Schwarz's rule). ``"knee"``: the knee of
    the BIC curve (Kneedle on its running minimum, as for the k-means
    inertia), or the lowest BIC when there is none; the knee moves with
    the ends of ``k_range``, the minimum does not once the range covers
    it. Both grow with the sweep sample (`sweep_n`): BIC's penalty grows
    as log(n) while the likelihood gain of splitting a smooth abundance
    gradient grows as n.
    """
    if rule not in BIC_RULES:
        raise ClusterError(f"k_rule: expected one of {BIC_RULES} for a "
                           f"Gaussian mixture. Received: {rule!r}")
    knee = table.attrs.get("knee_k")
    if rule == "knee" and knee is not None:
        return int(knee)
    best = int(table["k"].iloc[int(np.argmin(table["bic"].to_numpy()))])
    if rule == "knee":
        log.warning("no knee in the BIC curve over k = %d..%d; choosing "
                    "the lowest BIC, k = %d", table["k"].min(),
                    table["k"].max(), best)
    return best


def _bic_knee(table: pd.DataFrame):
    from lithomap.choose_k import find_elbow

    # Kneedle wants a decreasing curve: BIC from independent fits can
    # wiggle, so take its running minimum.
    bic = np.minimum.accumulate(table["bic"].to_numpy(dtype=float))
    return find_elbow(table["k"].to_numpy(), bic)


def subsample(features: np.ndarray, n: int, seed: int) -> np.ndarray:
    """At most `n` rows of `features`, drawn without replacement (seeded).
    """
    if len(features) <= n:
        return features
    rng = np.random.default_rng(seed)
    return features[np.sort(rng.choice(len(features), n, replace=False))]


def _check_k(features, k, what):
    if len(features) < k:
        raise ValueError(f"{what}: k={k} exceeds the {len(features)} "
                         "sampled pixels; lower k or enlarge the AOI")
