"""Keras for the autoencoders: backend choice, seeding, models, training.

Everything here imports Keras (or JAX) when called, so only fitting,
saving and the optional `encode_keras` check use this module; `transform`
runs on NumPy copies of the weights (see `lithomap.reduce.autoencoder`).

The backend is fixed when Keras is first imported in a process. It comes
from the reducer's ``backend`` setting, else the ``KERAS_BACKEND``
environment variable, else `DEFAULT_BACKEND`. JAX is the default: on the
2-core CPU machines this project runs on it trained a small dense
autoencoder as fast as TensorFlow and 6 times faster than PyTorch, encoded
the fastest with ``predict``, gave identical losses run after run, and is
the smallest install of the three (about 380 MB against 860 MB for PyTorch
and 1.4 GB for TensorFlow).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
import time

import numpy as np

from lithomap.reduce.base import ReducerError

log = logging.getLogger(__name__)

BACKENDS = ("jax", "tensorflow", "torch")
"""Keras 3 backends a reducer may ask for."""

DEFAULT_BACKEND = "jax"

INITIALIZERS = {"selu": "lecun_normal", "relu": "he_normal",
                "elu": "he_normal", "silu": "he_normal"}
"""Kernel initialiser by activation; others get glorot_uniform."""

_TRUNCATED_STD = 0.87962566103423978
"""Standard deviation of a unit normal truncated to [-2, 2]."""


def resolve_backend(name: str | None = None) -> str:
    """The backend to use: `name`, else ``KERAS_BACKEND``, else the default.

    Parameters
    ----------
    name : str or None, default=None
        Backend asked for in config.

    Returns
    -------
    str
        One of `BACKENDS`.
    """
    source = "config key 'backend'"
    if name is None:
        name = os.environ.get("KERAS_BACKEND") or None
        source = "environment variable KERAS_BACKEND"
    if name is None:
        log.debug("Keras backend: %s (default)", DEFAULT_BACKEND)
        return DEFAULT_BACKEND
    if name not in BACKENDS:
        raise ReducerError(f"backend ({source}): expected one of {BACKENDS}. "
                           f"Received: {name!r}")
    return name


def load_keras(backend: str | None = None):
    """Import Keras on `backend` and return the `keras` module.

    If Keras is not imported yet, sets ``KERAS_BACKEND`` in this process's
    environment first (child processes inherit it).

    Raises
    ------
    ReducerError
        If the backend's package is missing, or Keras was already imported
        in this process with another backend (Keras cannot switch then).
    """
    backend = resolve_backend(backend)
    package = {"jax": "jax", "tensorflow": "tensorflow", "torch": "torch"}
    if importlib.util.find_spec(package[backend]) is None:
        raise ReducerError(
            f"backend: {backend!r} needs the Python package "
            f"'{package[backend]}', which is not installed. Install it, or "
            f"set backend to {DEFAULT_BACKEND!r}. Received: {backend!r}")
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = backend
    keras = importlib.import_module("keras")
    active = keras.backend.backend()
    if active != backend:
        raise ReducerError(
            f"backend: Keras is already running on {active!r} in this "
            f"process and cannot switch; use {active!r} for every model, or "
            f"set KERAS_BACKEND={backend} before Python starts. Received: "
            f"{backend!r}")
    return keras


def enable_compile_cache(folder: str) -> bool:
    """Keep JAX's compiled programs in `folder`, across fits and processes.

    Compiling a training step takes 1 to 3 s on 2 CPU cores, more than
    training a small model on a few thousand pixels; models of the same
    shape then reuse it. The compiled program is the same either way, so
    features do not change. Call before the first fit; only the JAX
    backend has such a cache.

    Returns
    -------
    bool
        True if the cache is on; False on another backend.
    """
    backend = resolve_backend(None)
    if backend != "jax":
        log.debug("compile cache: not available on the %s backend", backend)
        return False
    import jax

    os.makedirs(folder, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    log.debug("compile cache: JAX programs kept in %s", folder)
    return True


def seed_everything(keras, seed: int) -> None:
    """Seed Python, NumPy and the backend, and ask for deterministic ops.

    JAX on CPU is deterministic as it is; TensorFlow and PyTorch need their
    determinism switches, which make a few GPU kernels slower.
    """
    keras.utils.set_random_seed(int(seed))
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif backend == "torch":
        import torch

        torch.use_deterministic_algorithms(True)


def initializer(activation: str, rng: np.random.Generator):
    """Kernel initialiser suited to `activation`, drawing from `rng`.

    Same distributions as Keras' lecun_normal, he_normal and
    glorot_uniform, but drawn with NumPy: on JAX each Keras draw compiles
    a kernel per shape (about a second each on 2 cores), which made the
    initialisation of a small model slower than its training.
    """
    kind = INITIALIZERS.get(activation, "glorot_uniform")

    def draw(shape, dtype=None):
        fan_in, fan_out = shape
        if kind == "glorot_uniform":
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            return rng.uniform(-limit, limit, shape).astype(np.float32)
        gain = 1.0 if kind == "lecun_normal" else 2.0
        values = rng.standard_normal(shape)
        outside = np.abs(values) > 2
        while outside.any():
            values[outside] = rng.standard_normal(outside.sum())
            outside = np.abs(values) > 2
        std = np.sqrt(gain / fan_in) / _TRUNCATED_STD
        return (values * std).astype(np.float32)

    return draw


def stage_model(keras, n_in: int, encoder: list, decoder: list,
                l1: float = 0.0, prefix: str = "s0", rng=None):
    """An uncompiled dense autoencoder, input and output of width `n_in`.

    Parameters
    ----------
    keras : module
        From `load_keras`.
    n_in : int
        Input width.
    encoder, decoder : list
        Layers in order, each either ``(units, activation)`` for a new layer
        or a fitted `DenseLayer` whose weights are copied. The last encoder
        layer is the code, named ``"{prefix}_code"`` and penalised by `l1`;
        the others are ``"{prefix}_enc{i}"`` and ``"{prefix}_dec{i}"``.
    l1 : float, default=0.0
        L1 activity regularisation of the code (0: none).
    prefix : str, default="s0"
        Prefix of the layer names.
    rng : numpy.random.Generator or None, default=None
        Source of the initial weights of new layers; None: seeded with 0.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    inputs = keras.Input((n_in,), name=f"{prefix}_in")
    h = _stack(keras, inputs, encoder, l1, prefix, rng, code=True)
    outputs = _stack(keras, h, decoder, 0.0, prefix, rng, code=False)
    return keras.Model(inputs, outputs, name=f"{prefix}_autoencoder")


def cascade_model(keras, n_bands: int, stages: list, l1: float = 0.0):
    """One Keras model of fitted stages, with their weights.

    Stage 1 reads the bands; stage k > 1 reads the bands followed by the
    code of stage k - 1 (the cascade of the stacked reducer; a canonical
    or greedy model is a single stage). Only the last stage's decoder is
    kept: the model outputs its reconstruction, and the code features are
    the output of layer ``code_layer_name(len(stages))``.

    Parameters
    ----------
    n_bands : int
        Band count of the input.
    stages : list of (encoder, decoder)
        Each a list of fitted `DenseLayer`.
    """
    bands = keras.Input((n_bands,), name="bands")
    h = bands
    for k, (encoder, _) in enumerate(stages):
        if k:
            h = keras.layers.Concatenate(name=f"s{k}_concat")([bands, h])
        h = _stack(keras, h, encoder, l1, f"s{k}", None, code=True)
    h = _stack(keras, h, stages[-1][1], 0.0, f"s{len(stages) - 1}", None,
               code=False)
    return keras.Model(bands, h, name="autoencoder")


def code_layer_name(n_stages: int) -> str:
    """Name of the code layer of the last of `n_stages` stages."""
    return f"s{n_stages - 1}_code"


def _stack(keras, h, layers, l1, prefix, rng, code):
    for i, spec in enumerate(layers):
        is_code = code and i == len(layers) - 1
        if is_code:
            name = f"{prefix}_code"
        else:
            name = f"{prefix}_{'enc' if code else 'dec'}{i}"
        regularizer = keras.regularizers.L1(l1) if is_code and l1 else None
        h = _dense(keras, spec, name, regularizer, rng)(h)
    return h


def _dense(keras, spec, name, regularizer, rng):
    if isinstance(spec, tuple):
        units, activation = spec
        return keras.layers.Dense(
            units, activation=activation, name=name,
            kernel_initializer=initializer(activation, rng),
            activity_regularizer=regularizer)
    # A fitted layer: "zeros" skips a random draw its weights replace.
    dense = keras.layers.Dense(spec.kernel.shape[1],
                               activation=spec.activation, name=name,
                               kernel_initializer="zeros",
                               activity_regularizer=regularizer)
    dense.build((None, spec.kernel.shape[0]))
    dense.set_weights([spec.kernel, spec.bias])
    return dense


def train(keras, model, x, y, x_val, y_val, *, epochs: int,
          batch_size: int, learning_rate: float, patience: int,
          min_delta: float, phase: str) -> dict:
    """Fit `model` to map `x` to `y` by MSE, stopping on validation loss.

    Adam; early stopping on ``val_loss`` with `patience` and `min_delta`,
    restoring the best epoch's weights. `x` and `y` must be in random
    order: the last partial batch is dropped, because a batch of another
    shape compiles the training step a second time (1 to 3 s on JAX CPU).
    The validation pixels are evaluated as one batch, for the same reason.

    Returns
    -------
    dict
        ``phase``, ``loss`` and ``val_loss`` per epoch, ``best_epoch``
        (1-based), ``best_val_loss``, ``epochs_run`` and ``seconds``.
    """
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="mse")
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=patience, min_delta=min_delta,
        restore_best_weights=True)
    n = len(x) - len(x) % batch_size if len(x) > batch_size else len(x)
    start = time.perf_counter()
    fitted = model.fit(x[:n], y[:n], validation_data=(x_val, y_val),
                       epochs=epochs, batch_size=batch_size, shuffle=True,
                       validation_batch_size=len(x_val), callbacks=[stop],
                       verbose=0)
    seconds = time.perf_counter() - start
    val_loss = [float(v) for v in fitted.history["val_loss"]]
    best = int(np.argmin(val_loss))
    log.info("%s: %d epochs in %.1f s, best val_loss %.5g at epoch %d",
             phase, len(val_loss), seconds, val_loss[best], best + 1)
    return {"phase": phase,
            "loss": [float(v) for v in fitted.history["loss"]],
            "val_loss": val_loss, "best_epoch": best + 1,
            "best_val_loss": val_loss[best], "epochs_run": len(val_loss),
            "seconds": round(seconds, 3)}


def layer_weights(model, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Kernel (in, out) and bias (out,) of `model`'s layer, as float32."""
    kernel, bias = model.get_layer(name).get_weights()
    return np.asarray(kernel, np.float32), np.asarray(bias, np.float32)
