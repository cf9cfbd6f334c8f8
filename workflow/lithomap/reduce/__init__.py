"""Reducers: the bands of each pixel to a few features."""

from lithomap.reduce.autoencoder import (AutoencoderReducer,
                                         StackedAutoencoderReducer)
from lithomap.reduce.base import FeatureModel, Reducer, ReducerError, Scaler
from lithomap.reduce.pca import PCAReducer

REDUCERS = {
    "pca": PCAReducer,
    "autoencoder": AutoencoderReducer,
    "stacked": StackedAutoencoderReducer,
}
"""Reducer classes by the name used in config (`methods.<name>.reducer`)."""

__all__ = ["FeatureModel", "Reducer", "ReducerError", "Scaler", "REDUCERS",
           "PCAReducer", "AutoencoderReducer", "StackedAutoencoderReducer"]
