"""Principal component analysis, the baseline reducer."""

from __future__ import annotations

import os

import numpy as np
from sklearn.decomposition import PCA

from lithomap.reduce.base import Reducer, ReducerError


class PCAReducer(Reducer):
    """PCA fitted on the scaled sample.

    Parameters
    ----------
    n_components : int or None, default=None
        Number of components to keep. None: the fewest whose explained
        variance reaches `variance`.
    variance : float, default=0.99
        Fraction of variance to keep when `n_components` is None.
    whiten : bool, default=False
        Divide each component by its standard deviation.
    """

    kind = "pca"

    def __init__(self, n_components=None, variance=0.99, whiten=False):
        self.n_components = n_components
        self.variance = variance
        self.whiten = whiten
        self.mean_ = self.components_ = self.std_ = None
        self.explained_ = None

    def fit(self, x, seed):
        if self.n_components is not None and self.n_components > x.shape[1]:
            raise ReducerError(
                f"pca.n_components: expected at most the band count "
                f"({x.shape[1]}). Received: {self.n_components}")
        pca = PCA(random_state=seed).fit(x)
        ratio = np.cumsum(pca.explained_variance_ratio_)
        n = self.n_components or int(np.searchsorted(ratio, self.variance) + 1)
        n = min(n, x.shape[1])
        self.mean_ = pca.mean_
        self.components_ = pca.components_[:n]
        self.std_ = np.sqrt(pca.explained_variance_[:n])
        self.explained_ = pca.explained_variance_ratio_.tolist()
        return self

    @property
    def n_features(self):
        return len(self.components_)

    def transform(self, x):
        x = np.asarray(x, np.float32)
        weights = self.components_.T
        if self.whiten:
            weights = weights / self.std_
        weights = weights.astype(np.float32)
        # (x - mean) W = x W - mean W: one pass over the pixels, written as
        # (W' x')' so that BLAS gets the long axis last whatever x's layout.
        out = (weights.T @ x.T).T
        out -= (self.mean_ @ weights).astype(np.float32)
        return out

    def reconstruct(self, x):
        codes = (x - self.mean_) @ self.components_.T
        return codes @ self.components_ + self.mean_

    def save_state(self, folder):
        np.savez(os.path.join(folder, "pca.npz"), mean=self.mean_,
                 components=self.components_, std=self.std_)
        return {"n_components": self.n_components, "variance": self.variance,
                "whiten": self.whiten, "explained_variance_ratio":
                self.explained_}

    @classmethod
    def load_state(cls, folder, settings):
        out = cls(settings["n_components"], settings["variance"],
                  settings["whiten"])
        with np.load(os.path.join(folder, "pca.npz")) as z:
            out.mean_, out.components_ = z["mean"], z["components"]
            out.std_ = z["std"]
        out.explained_ = settings.get("explained_variance_ratio")
        return out
