"""The interface every reducer follows, and per-band scaling.

A reducer is fitted on the bounded pixel sample only, and then encodes any
number of pixels with `transform`, chunk by chunk. `transform` must be a
plain NumPy function of the fitted state, so that it is cheap to ship to
Dask workers and gives the same numbers wherever it runs.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod

import numpy as np


class ReducerError(ValueError):
    """A reducer's settings or training data cannot be used."""


SCALINGS = ("standard", "robust", "minmax", "none")


class Scaler:
    """Per-band affine scaling, fitted on the sample: (x - center) / scale.

    Parameters
    ----------
    method : {"standard", "robust", "minmax", "none"}, default="standard"
        "standard": mean and standard deviation; "robust": median and the
        2-98 percentile range; "minmax": minimum and range; "none": identity.
    """

    def __init__(self, method: str = "standard"):
        if method not in SCALINGS:
            raise ReducerError(f"scaling: expected one of {SCALINGS}. "
                               f"Received: {method!r}")
        self.method = method
        self.center_ = None
        self.scale_ = None

    def fit(self, x: np.ndarray) -> "Scaler":
        x = np.asarray(x, np.float64)
        if self.method == "standard":
            center, scale = x.mean(axis=0), x.std(axis=0)
        elif self.method == "robust":
            lo, center, hi = np.percentile(x, [2, 50, 98], axis=0)
            scale = hi - lo
        elif self.method == "minmax":
            center, scale = x.min(axis=0), np.ptp(x, axis=0)
        else:
            center, scale = np.zeros(x.shape[1]), np.ones(x.shape[1])
        # A constant band would divide by zero; leave it centred, unscaled.
        scale = np.where(scale > 0, scale, 1.0)
        self.center_, self.scale_ = center, scale
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """float32 (x - center) / scale; float32 throughout, for speed."""
        x = np.asarray(x, np.float32)
        out = x - self.center_.astype(np.float32)
        out *= (1.0 / self.scale_).astype(np.float32)
        return out

    def to_dict(self) -> dict:
        return {"method": self.method, "center": self.center_.tolist(),
                "scale": self.scale_.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Scaler":
        out = cls(d["method"])
        out.center_ = np.asarray(d["center"])
        out.scale_ = np.asarray(d["scale"])
        return out


class Reducer(ABC):
    """Maps scaled pixels (n, bands) to features (n, n_features).

    Subclasses set `kind` (the name used in config) and implement `fit`,
    `transform`, `save_state` and `load_state`.
    """

    kind: str = ""

    @abstractmethod
    def fit(self, x: np.ndarray, seed: int) -> "Reducer":
        """Fit on the scaled sample `x` of shape (n, bands)."""

    @abstractmethod
    def transform(self, x: np.ndarray) -> np.ndarray:
        """float32 features (n, n_features) of scaled pixels `x`."""

    @property
    @abstractmethod
    def n_features(self) -> int:
        """Number of features `transform` returns."""

    @abstractmethod
    def save_state(self, folder: str) -> dict:
        """Write fitted state into `folder`; return JSON-able settings."""

    @classmethod
    @abstractmethod
    def load_state(cls, folder: str, settings: dict) -> "Reducer":
        """Rebuild a fitted reducer saved by `save_state`."""

    def reconstruct(self, x: np.ndarray) -> np.ndarray | None:
        """Reconstruction of scaled `x`, if the reducer has a decoder."""
        return None


class FeatureModel:
    """Scaler followed by a reducer: reflectance in, features out."""

    def __init__(self, scaler: Scaler, reducer: Reducer, bands: list[str]):
        self.scaler = scaler
        self.reducer = reducer
        self.bands = list(bands)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Features (n, n_features) of reflectance `x` (n, bands)."""
        return self.reducer.transform(self.scaler.transform(x))

    def save(self, folder: str) -> None:
        os.makedirs(folder, exist_ok=True)
        settings = self.reducer.save_state(folder)
        meta = {"kind": self.reducer.kind, "settings": settings,
                "bands": self.bands, "scaler": self.scaler.to_dict(),
                "n_features": self.reducer.n_features}
        with open(os.path.join(folder, "reducer.json"), "w") as f:
            json.dump(meta, f, indent=2)

    @classmethod
    def load(cls, folder: str) -> "FeatureModel":
        from lithomap.reduce import REDUCERS

        with open(os.path.join(folder, "reducer.json")) as f:
            meta = json.load(f)
        reducer = REDUCERS[meta["kind"]].load_state(folder, meta["settings"])
        return cls(Scaler.from_dict(meta["scaler"]), reducer, meta["bands"])
