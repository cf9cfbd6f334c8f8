"""Tests of lithomap.choose_k: the sweep over k, its rules and outputs."""

import json
import logging

import numpy as np
import pandas as pd
import pytest
from lithomap import choose_k as ck
from sklearn import metrics


@pytest.fixture(scope="module")
def blobs():
    """Four well separated Gaussian blobs in 3-D, float32, seeded."""
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0, 0], [8, 0, 0], [0, 8, 0], [0, 0, 8]])
    x = np.concatenate([rng.normal(c, 0.7, (300, 3)) for c in centres])
    return x.astype(np.float32)


def fixed_fit(centroids):
    """A `fit` that always returns the first k of `centroids`."""
    def fit(features, k, seed=0, n_init=1):
        return np.asarray(centroids[:k], np.float64)
    return fit


@pytest.fixture(scope="module")
def blobs_sweep(blobs):
    """One sweep over k = 2..8 of the blobs, shared by the rule tests."""
    return ck.sweep_k(blobs, (2, 8), seed=1, silhouette_n=800, n_init=2)


@pytest.mark.parametrize("rule", ck.RULES)
def test_every_rule_finds_four_blobs(blobs_sweep, rule):
    """Each rule picks k = 4 on four well separated blobs, and the table
    records the choice."""
    table = blobs_sweep.copy()
    table.attrs = dict(blobs_sweep.attrs)

    assert ck.pick_k(table, rule) == 4
    assert table["k"].tolist() == list(range(2, 9))
    assert table.attrs["chosen_k"] == 4 and table.attrs["rule"] == rule
    assert table.attrs["elbow_k"] == 4


def test_choose_k_sweeps_then_picks(blobs):
    """choose_k is sweep_k followed by pick_k."""
    k, table = ck.choose_k(blobs, (3, 5), "calinski_harabasz", seed=2,
                           silhouette_n=300, n_init=1)

    assert k == 4 and table.attrs["rule_applied"] == "calinski_harabasz"
    assert table.attrs["k_range"] == [3, 5]


def test_scores_of_a_given_clustering():
    """Inertia, silhouette, CH and DB are those of the nearest-centroid
    labels: computed by hand for inertia, by scikit-learn for the rest."""
    x = np.array([[0, 0], [0, 1], [10, 0], [10, 1], [5, 9], [6, 9]],
                 np.float64)
    centroids = [[0, 0.5], [10, 0.5], [5.5, 9]]
    labels = np.array([0, 0, 1, 1, 2, 2])

    _, table = ck.choose_k(x, (2, 3), "silhouette",
                           fit=fixed_fit(centroids))
    row = table.set_index("k").loc[3]

    assert row["inertia"] == pytest.approx(6 * 0.25)
    assert row["silhouette"] == pytest.approx(
        metrics.silhouette_score(x, labels))
    assert row["calinski_harabasz"] == pytest.approx(
        metrics.calinski_harabasz_score(x, labels))
    assert row["davies_bouldin"] == pytest.approx(
        metrics.davies_bouldin_score(x, labels))


@pytest.mark.parametrize(
    "inertia, expected",
    [([100, 40, 12, 10, 8, 6], 4), ([60, 50, 40, 30, 20, 10], None)],
    ids=["knee", "straight-line"])
def test_find_elbow(inertia, expected):
    """The Kneedle knee of a convex decreasing curve; none on a line."""
    ks = np.arange(2, 8)
    assert ck.find_elbow(ks, np.asarray(inertia, float)) == expected


def test_elbow_falls_back_on_the_silhouette(blobs, monkeypatch, caplog):
    """Without an elbow, k is chosen by the silhouette, and a warning and
    the table say so."""
    monkeypatch.setattr(ck, "find_elbow", lambda ks, inertia: None)
    with caplog.at_level(logging.WARNING, logger="lithomap.choose_k"):
        k, table = ck.choose_k(blobs, (2, 6), "elbow", silhouette_n=300,
                               n_init=1)

    assert k == 4
    assert table.attrs["rule_applied"] == "silhouette"
    assert "no elbow" in caplog.text


def test_sweep_uses_a_seeded_subsample(blobs, caplog):
    """The sweep sees at most sweep_n pixels, drawn by the seed: the same
    seed gives the same table; rows with NaN are left out, with a
    warning."""
    x = blobs.copy()
    x[:7, 1] = np.nan
    runs = []
    for _ in range(2):
        with caplog.at_level(logging.WARNING, logger="lithomap.choose_k"):
            runs.append(ck.choose_k(x, (2, 5), "calinski_harabasz",
                                    seed=3, sweep_n=800, silhouette_n=300,
                                    n_init=1)[1])

    assert runs[0].attrs["sweep_n"] == 800
    assert runs[0].attrs["silhouette_n"] == 300
    pd.testing.assert_frame_equal(runs[0], runs[1])
    assert "7 of 1200 sample rows hold NaN" in caplog.text


def test_choice_is_written(blobs, tmp_path):
    """The figure, JSON and CSV of a sweep are written, the JSON naming
    the chosen k, the rule and the sample sizes, without NaN."""
    _, table = ck.choose_k(blobs, (2, 5), "davies_bouldin",
                           silhouette_n=300, n_init=1)
    ck.write_choice(table, tmp_path / "k.png", tmp_path / "k.json",
                    tmp_path / "k.csv")

    doc = json.loads((tmp_path / "k.json").read_text())
    assert doc["chosen_k"] == 4 and doc["rule"] == "davies_bouldin"
    assert doc["sweep_n"] == len(blobs)
    assert [s["k"] for s in doc["scores"]] == [2, 3, 4, 5]
    assert len(pd.read_csv(tmp_path / "k.csv")) == 4
    assert (tmp_path / "k.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "k_range, rule, message",
    [((2, 8), "gap", "k_rule: expected one of"),
     ((6, 3), "silhouette", r"expected 2 <= min < max"),
     ((1, 4), "silhouette", r"expected 2 <= min < max"),
     ((2, 3), "elbow", "at least three values of k"),
     (("two", 5), "elbow", r"k_range: expected \[min, max\]"),
     ((2, 5000), "silhouette", "smaller than the number of usable pixels")],
    ids=["unknown-rule", "reversed", "k-one", "elbow-two-k", "not-int",
         "k-above-n"])
def test_bad_settings(blobs, k_range, rule, message):
    """Unusable settings stop with the config key and what was wrong."""
    with pytest.raises(ck.ChooseKError, match=message):
        ck.choose_k(blobs, k_range, rule)
