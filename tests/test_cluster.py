"""k-means and Gaussian-mixture clustering: fitting, NumPy assignment,
model dicts and the BIC choice of k."""

import json

import numpy as np
import pytest
from lithomap import cluster
from lithomap.cluster import ClusterError
from scipy.special import logsumexp
from sklearn.mixture import GaussianMixture


@pytest.fixture
def blobs():
    """Four seeded round blobs in 3-D: 900, 600, 400 and 200 pixels."""
    rng = np.random.default_rng(3)
    centres = np.array([[0, 0, 0], [6, 0, 0], [0, 6, 0], [0, 0, 6]], float)
    sizes = [900, 600, 400, 200]
    x = np.concatenate([rng.normal(c, 0.6, (n, 3))
                        for c, n in zip(centres, sizes)])
    truth = np.repeat(np.arange(4), sizes)
    return x.astype(np.float32), truth


@pytest.fixture
def narrow_and_wide():
    """A tight cloud (sd 0.3) beside a wide one (sd 1.5), 1500 pixels
    each: k-means puts the border halfway between the centres, a mixture
    with a covariance per component puts it where the densities cross."""
    rng = np.random.default_rng(5)
    n = 1500
    x = np.concatenate([rng.normal(0, 0.3, (n, 2)),
                        rng.normal([2.5, 0], 1.5, (n, 2))])
    return x, np.repeat([0, 1], n)


def agreement(labels, truth):
    from sklearn.metrics import adjusted_rand_score

    return adjusted_rand_score(truth, labels)


def test_kmeans_labels_are_1_to_k_largest_first(blobs):
    """Cluster 1 is the largest; labels run 1..k as uint8."""
    x, truth = blobs
    centroids = cluster.fit_kmeans(x, 4, seed=0)
    labels = cluster.assign(x, centroids)
    assert labels.dtype == np.uint8
    assert sorted(np.unique(labels)) == [1, 2, 3, 4]
    assert np.bincount(labels)[1] == 900
    assert agreement(labels, truth) == pytest.approx(1.0)


def test_gmm_log_density_matches_scikit_learn(blobs):
    """Our NumPy log density sums (over components) to sklearn's
    per-pixel log-likelihood of the same fitted mixture."""
    x, _ = blobs
    model = cluster.fit_gmm(x, 4, seed=0)
    gm = GaussianMixture(4, reg_covar=1e-4, random_state=0).fit(
        x.astype(np.float64))
    got = logsumexp(cluster.gmm_log_density(x, model), axis=1)
    np.testing.assert_allclose(got, gm.score_samples(x), rtol=1e-6)


@pytest.mark.parametrize("covariance", ["full", "diag"])
def test_gmm_assignment_matches_scikit_learn(blobs, covariance):
    """Labels equal sklearn's predict, renumbered by weight."""
    x, _ = blobs
    model = cluster.fit_gmm(x, 4, seed=1, covariance=covariance)
    gm = GaussianMixture(4, covariance_type=covariance, reg_covar=1e-4,
                         random_state=1).fit(x.astype(np.float64))
    rank = np.empty(4, int)
    rank[np.argsort(-gm.weights_, kind="stable")] = np.arange(4)
    np.testing.assert_array_equal(cluster.assign_gmm(x, model),
                                  rank[gm.predict(x)] + 1)
    assert np.diff(model["weights"]).max() <= 0


def test_gmm_follows_cluster_spread_kmeans_ignores(narrow_and_wide):
    """Clouds of unequal spread: the mixture recovers them far better."""
    x, truth = narrow_and_wide
    kmeans = cluster.predict(x, cluster.fit(x, 2, {"seed": 0}))
    gmm = cluster.predict(x, cluster.fit(x, 2, {"seed": 0,
                                               "clusterer": "gmm"}))
    assert agreement(gmm, truth) > 0.85
    assert agreement(kmeans, truth) < 0.6


@pytest.mark.parametrize("kind", ["kmeans", "gmm"])
def test_model_dicts_survive_json(blobs, kind):
    """A fitted model written as JSON and read back labels the same."""
    x, _ = blobs
    model = cluster.fit(x, 4, {"seed": 0, "clusterer": kind})
    again = json.loads(json.dumps(model))
    assert again["kind"] == kind
    assert cluster.n_clusters(again) == 4
    np.testing.assert_array_equal(cluster.predict(x, again),
                                  cluster.predict(x, model))


def test_gmm_fit_n_bounds_the_rows_em_sees(blobs):
    """gmm_fit_n subsamples before EM: the fit still finds the blobs."""
    x, truth = blobs
    model = cluster.fit(x, 4, {"seed": 0, "clusterer": "gmm",
                               "gmm_fit_n": 500})
    assert agreement(cluster.predict(x, model), truth) > 0.99


@pytest.mark.parametrize("rule", ["min", "knee"])
def test_bic_finds_the_number_of_blobs(blobs, rule):
    """Minimum and knee of the BIC curve over k = 1..9: the 4 blobs."""
    x, _ = blobs
    table = cluster.sweep_bic(x, [1, 9], seed=0)
    assert list(table["k"]) == list(range(1, 10))
    assert cluster.pick_k_bic(table, rule) == 4


def test_bic_without_knee_takes_the_lowest(caplog):
    """A table with no knee falls back on the lowest BIC, with a warning."""
    import pandas as pd

    table = pd.DataFrame({"k": [2, 3, 4], "bic": [5.0, 3.0, 4.0]})
    table.attrs["knee_k"] = None
    assert cluster.pick_k_bic(table, "knee") == 3
    assert "no knee in the BIC curve" in caplog.text
    with pytest.raises(ClusterError, match="k_rule: expected one of"):
        cluster.pick_k_bic(table, "elbow")


@pytest.mark.parametrize("call, match", [
    (lambda x: cluster.fit(x, 2, {"seed": 0, "clusterer": "dbscan"}),
     "settings.clusterer: expected one of"),
    (lambda x: cluster.fit_gmm(x, 2, 0, covariance="tied"),
     "gmm_covariance: expected one of"),
    (lambda x: cluster.fit_gmm(x[:3], 5, 0), "k=5 exceeds the 3 sampled"),
    (lambda x: cluster.sweep_bic(x, [5, 5]), r"k_range: expected \[min"),
], ids=["clusterer", "covariance", "k-too-big", "k-range"])
def test_bad_settings_are_rejected(blobs, call, match):
    """Each bad setting names the key and what was expected."""
    with pytest.raises(ValueError, match=match):
        call(blobs[0])


def test_subsample_is_seeded_and_bounded(blobs):
    """Same seed, same rows; never more than asked; small input as is."""
    x, _ = blobs
    a = cluster.subsample(x, 100, 3)
    np.testing.assert_array_equal(a, cluster.subsample(x, 100, 3))
    assert len(a) == 100
    assert cluster.subsample(x[:50], 100, 3) is not None
    assert len(cluster.subsample(x[:50], 100, 3)) == 50
