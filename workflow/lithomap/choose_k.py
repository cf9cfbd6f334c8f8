"""Choosing the number of clusters, k, from the encoded pixel sample.

When config sets ``k: auto``, k-means is fitted for every k of ``k_range``
and each fit is scored:

- inertia (within-cluster sum of squares) on the sweep sample;
- silhouette on a seeded subsample of the sweep sample (its cost grows with
  the square of the number of pixels, so it never sees more than
  `silhouette_n` of them);
- Calinski-Harabasz and Davies-Bouldin on the whole sweep sample.

``k_rule`` then picks k: ``"elbow"`` takes the knee of the inertia curve
found by the Kneedle method (Satopaa et al., 2011, through the ``kneed``
package); ``"silhouette"`` and ``"calinski_harabasz"`` the highest score;
``"davies_bouldin"`` the lowest.

The sweep is fitted on a seeded subsample of at most `sweep_n` pixels
(100,000 by default) of the encoded sample, not the whole of it: the
scores settle long before that size, and the sweep stays a matter of
seconds per k. The final k-means with the chosen k is fitted elsewhere
(`lithomap.cluster`), on the whole encoded sample.
"""

from __future__ import annotations

import json
import logging
import os
import warnings

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

RULES = ("elbow", "silhouette", "calinski_harabasz", "davies_bouldin")
"""Values ``k_rule`` may take."""

SCORES = ("inertia", "silhouette", "calinski_harabasz", "davies_bouldin")
"""Columns of the table `choose_k` returns, besides ``k``."""


class ChooseKError(ValueError):
    """The settings for choosing k, or the sample they apply to, are unusable.
    """


def choose_k(features: np.ndarray, k_range, rule: str = "elbow",
             seed: int = 0, silhouette_n: int = 10_000,
             sweep_n: int = 100_000, n_init: int = 3, fit=None):
    """Fit k-means for every k of `k_range` and pick k by `rule`.

    `sweep_k` followed by `pick_k`; see those for the parameters.

    Returns
    -------
    k : int
        The chosen number of clusters.
    table : pandas.DataFrame
        One row per k with columns ``k`` and `SCORES`. ``table.attrs``
        records the rule, the chosen k, the elbow, the sample sizes and
        the seed, for `write_choice`.
    """
    _check_rule(rule, _check_range(k_range))
    table = sweep_k(features, k_range, seed, silhouette_n, sweep_n, n_init,
                    fit)
    return pick_k(table, rule), table


def sweep_k(features: np.ndarray, k_range, seed: int = 0,
            silhouette_n: int = 10_000, sweep_n: int = 100_000,
            n_init: int = 3, fit=None) -> pd.DataFrame:
    """Fit and score k-means for every k of `k_range`.

    Parameters
    ----------
    features : ndarray of shape (n_pixels, n_features)
        Encoded pixel sample. Rows holding NaN or inf are left out.
    k_range : sequence of two int
        Smallest and largest k to try, both included; 2 <= min < max.
    seed : int, default=0
        Seeds the sweep subsample, the silhouette subsample and every fit.
    silhouette_n : int, default=10_000
        Pixels the silhouette is computed on (a seeded subsample of the
        sweep sample, the same pixels for every k).
    sweep_n : int, default=100_000
        Pixels the sweep fits and scores use (a seeded subsample of
        `features`).
    n_init : int, default=3
        k-means restarts per k.
    fit : callable, default=None
        ``fit(features, k, seed=..., n_init=...) -> centroids`` of shape
        (k, n_features). None: `lithomap.cluster.fit_kmeans`.

    Returns
    -------
    pandas.DataFrame
        One row per k with columns ``k`` and `SCORES`; ``attrs`` holds
        ``k_range``, ``elbow_k`` (see `find_elbow`), ``sweep_n``,
        ``silhouette_n``, ``n_init`` and ``seed``.
    """
    kmin, kmax = _check_range(k_range)
    if silhouette_n < 2 or sweep_n < 2:
        raise ChooseKError(
            f"silhouette_n and sweep_n must be at least 2. Received: "
            f"{silhouette_n}, {sweep_n}")
    sample = _sweep_sample(features, sweep_n, seed)
    if kmax >= len(sample):
        raise ChooseKError(
            f"k_range: the largest k ({kmax}) must be smaller than the "
            f"number of usable pixels in the sample ({len(sample)}); lower "
            "k_range or draw a bigger sample")
    if fit is None:
        from lithomap.cluster import fit_kmeans as fit
    silhouette_n = min(silhouette_n, len(sample))
    log.info("sweeping k over %d..%d on %d px (silhouette on %d px)",
             kmin, kmax, len(sample), silhouette_n)

    rows = [_score_k(sample, k, seed, n_init, silhouette_n, fit)
            for k in range(kmin, kmax + 1)]
    table = pd.DataFrame(rows, columns=("k",) + SCORES)
    elbow = find_elbow(table["k"].to_numpy(), table["inertia"].to_numpy())
    table.attrs = {"k_range": [kmin, kmax], "elbow_k": elbow,
                   "sweep_n": len(sample), "silhouette_n": silhouette_n,
                   "n_init": n_init, "seed": seed}
    return table


def pick_k(table: pd.DataFrame, rule: str = "elbow") -> int:
    """The k that `rule` picks from a `sweep_k` table.

    ``"elbow"`` takes ``table.attrs["elbow_k"]``, or, when the inertia
    curve has no knee, the k of highest silhouette (with a warning);
    ``"silhouette"`` and ``"calinski_harabasz"`` the highest score,
    ``"davies_bouldin"`` the lowest. The choice is recorded in
    ``table.attrs``: ``rule``, ``rule_applied``, ``chosen_k``.
    """
    _check_rule(rule, tuple(table["k"].iloc[[0, -1]]))
    elbow = table.attrs.get("elbow_k")
    k, used = _apply_rule(table, rule, elbow)
    table.attrs.update(rule=rule, rule_applied=used, chosen_k=k)
    log.info("k = %d chosen by %s (elbow of inertia at %s)", k, used, elbow)
    return k


def find_elbow(ks: np.ndarray, inertia: np.ndarray) -> int | None:
    """k at the knee of a decreasing, convex inertia curve, or None.

    Uses the Kneedle method with sensitivity S = 1 (``kneed.KneeLocator``).
    None means the curve shows no knee (for instance a straight line).
    """
    from kneed import KneeLocator

    finite = np.isfinite(inertia)
    if finite.sum() < 3:
        return None
    with warnings.catch_warnings():
        # kneed warns when it finds no knee; None already says so.
        warnings.simplefilter("ignore", UserWarning)
        knee = KneeLocator(ks[finite], inertia[finite], S=1.0,
                           curve="convex", direction="decreasing").knee
    return None if knee is None else int(knee)


def write_choice(table: pd.DataFrame, figure_path=None, json_path=None,
                 csv_path=None) -> None:
    """Write the sweep of `choose_k`: figure, JSON and/or CSV.

    Parameters
    ----------
    table : pandas.DataFrame
        As returned by `choose_k` (its ``attrs`` name the chosen k).
    figure_path : path-like, default=None
        PNG with one panel per score, the chosen k marked.
    json_path : path-like, default=None
        ``{"chosen_k", "rule", ..., "scores": [{k, inertia, ...}, ...]}``.
    csv_path : path-like, default=None
        The table, one row per k.
    """
    if figure_path is not None:
        _plot_choice(table, figure_path)
    if json_path is not None:
        doc = dict(table.attrs)
        doc["scores"] = [
            {key: _json_number(value) for key, value in row.items()}
            for row in table.to_dict(orient="records")]
        with open(json_path, "w") as fh:
            json.dump(doc, fh, indent=2)
    if csv_path is not None:
        table.to_csv(csv_path, index=False)


# --- steps of choose_k -----------------------------------------------------

def _check_range(k_range) -> tuple[int, int]:
    """(kmin, kmax) of `k_range`, or an error naming the config key."""
    try:
        kmin, kmax = (int(k) for k in k_range)
    except (TypeError, ValueError):
        raise ChooseKError(f"k_range: expected [min, max], two integers. "
                           f"Received: {k_range!r}") from None
    if not 2 <= kmin < kmax:
        raise ChooseKError(f"k_range: expected 2 <= min < max. "
                           f"Received: {list(k_range)}")
    return kmin, kmax


def _check_rule(rule, k_range) -> None:
    """Stop unless `rule` is known and can work over `k_range`."""
    if rule not in RULES:
        raise ChooseKError(f"k_rule: expected one of {RULES}. "
                           f"Received: {rule!r}")
    kmin, kmax = k_range
    if rule == "elbow" and kmax - kmin < 2:
        raise ChooseKError(
            f"k_range: the elbow rule needs at least three values of k. "
            f"Received: {[int(kmin), int(kmax)]}; widen the range or pick "
            "another k_rule")


def _sweep_sample(features, sweep_n, seed):
    """float64 rows of `features` that are finite, at most `sweep_n`."""
    features = np.asarray(features)
    if features.ndim != 2:
        raise ChooseKError(f"features: expected a 2-D array (pixels, "
                           f"features). Received shape {features.shape}")
    finite = np.isfinite(features).all(axis=1)
    if not finite.all():
        log.warning("%d of %d sample rows hold NaN or inf; left out of the "
                    "choice of k", (~finite).sum(), len(features))
    rows = np.flatnonzero(finite)
    if len(rows) > sweep_n:
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(rows, sweep_n, replace=False))
    log.debug("sweep on %d of %d sample rows", len(rows), len(features))
    return features[rows].astype(np.float64)


def _score_k(sample, k, seed, n_init, silhouette_n, fit):
    """(k, inertia, silhouette, CH, DB) of one k-means fit on `sample`."""
    from sklearn import metrics

    centroids = np.asarray(fit(sample, k, seed=seed, n_init=n_init),
                           np.float64)
    labels, inertia = _assign(sample, centroids)
    n_labels = len(np.unique(labels))
    if n_labels < 2:
        log.warning("k = %d: every pixel fell in one cluster; scores NaN",
                    k)
        return k, inertia, np.nan, np.nan, np.nan
    # The same seed draws the same silhouette pixels for every k, so the
    # scores differ only by the clustering.
    sil = metrics.silhouette_score(
        sample, labels, sample_size=min(silhouette_n, len(sample)),
        random_state=seed)
    ch = metrics.calinski_harabasz_score(sample, labels)
    db = metrics.davies_bouldin_score(sample, labels)
    log.debug("k = %d: inertia %.6g, silhouette %.4f, CH %.6g, DB %.4f",
              k, inertia, sil, ch, db)
    return k, inertia, sil, ch, db


def _assign(sample, centroids, rows_per_step=65_536):
    """Nearest centroid of each row, and the summed squared distances."""
    labels = np.empty(len(sample), np.int64)
    inertia = 0.0
    c2 = (centroids ** 2).sum(axis=1)
    for start in range(0, len(sample), rows_per_step):
        x = sample[start:start + rows_per_step]
        d2 = (x ** 2).sum(axis=1)[:, None] - 2 * x @ centroids.T + c2
        nearest = d2.argmin(axis=1)
        labels[start:start + len(x)] = nearest
        # Rounding can leave tiny negative distances; they are zero.
        inertia += np.maximum(d2[np.arange(len(x)), nearest], 0).sum()
    return labels, float(inertia)


def _apply_rule(table, rule, elbow):
    """(k, rule actually used): the elbow falls back on the silhouette."""
    if rule == "elbow":
        if elbow is not None:
            return elbow, "elbow"
        log.warning("no elbow in the inertia curve over k = %d..%d; "
                    "choosing k by the highest silhouette instead",
                    table["k"].min(), table["k"].max())
        rule = "silhouette"
    values = table[rule].to_numpy(dtype=float)
    if np.isnan(values).all():
        raise ChooseKError(f"k_rule {rule}: no k gave a usable score; the "
                           "sample may hold a single distinct pixel value")
    best = np.nanargmin(values) if rule == "davies_bouldin" else \
        np.nanargmax(values)
    return int(table["k"].iloc[best]), rule


def _json_number(value):
    """Plain Python number for JSON; NaN becomes None (null)."""
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _plot_choice(table, path):
    """Four panels, one per score, with the chosen k marked in each."""
    from matplotlib.figure import Figure

    attrs = table.attrs
    titles = {"inertia": "Inertia (lower is tighter)",
              "silhouette": "Silhouette (higher is better)",
              "calinski_harabasz": "Calinski-Harabasz (higher is better)",
              "davies_bouldin": "Davies-Bouldin (lower is better)"}
    fig = Figure(figsize=(9, 6.5), layout="constrained")
    axes = fig.subplots(2, 2, sharex=True).ravel()
    for ax, score in zip(axes, SCORES):
        ax.plot(table["k"], table[score], "o-", color="0.25", ms=4)
        ax.axvline(attrs.get("chosen_k"), color="tab:red", lw=1.5,
                   label=f"chosen k = {attrs.get('chosen_k')}")
        if score == "inertia" and attrs.get("elbow_k") is not None:
            ax.axvline(attrs["elbow_k"], color="tab:blue", ls="--", lw=1,
                       label=f"elbow k = {attrs['elbow_k']}")
        ax.set_title(titles[score], fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    for ax in axes[2:]:
        ax.set_xlabel("k")
    fig.suptitle(
        f"Choice of k by {attrs.get('rule_applied', attrs.get('rule'))} "
        f"(sweep on {attrs.get('sweep_n')} px, silhouette on "
        f"{attrs.get('silhouette_n')} px)", fontsize=11)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
