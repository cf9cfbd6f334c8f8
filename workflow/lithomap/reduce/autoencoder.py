"""Dense autoencoders: canonical, and stacked (cascade or greedy).

All three are trained with Keras on the bounded pixel sample (already
scaled per band), with a seeded validation split and early stopping on the
validation loss. Once fitted, a reducer keeps NumPy copies of its weights
and encodes with a plain NumPy forward pass: `transform` needs no Keras,
pickles small, and gives the same numbers on every Dask worker. On 10
bands it was about as fast per core as Keras' ``predict`` and leaves the
parallelism to Dask (see ``workflow/bench/bench_reducers.py``).

Its matrices are thin (10 to 32 columns), and multi-threaded OpenBLAS
made it up to 4 times slower on 2 cores, worse still beside Dask's own
threads: encode with BLAS limited to one thread, set once in the main
thread (``threadpoolctl.threadpool_limits(1, "blas")`` around the Dask
computation, or ``OPENBLAS_NUM_THREADS=1`` in the environment).

Architectures, for ``hidden=[32, 16]`` and ``code_size=5`` on 10 bands:

- canonical (``AutoencoderReducer``): 10-32-16-5-16-32-10, trained end to
  end.
- stacked, ``variant="greedy"``: the same shape, but each encoder layer is
  first trained alone as a shallow autoencoder of the previous layer's
  output (10-32-10, then 32-16-32, then 16-5-16), and the stack is then
  fine-tuned end to end.
- stacked, ``variant="cascade"``: `stages` small autoencoders in a row, as
  in Nagar et al. (2024, Advances in Space Research 74(10)): stage 1 is
  10-32-16-5-16-32-10; stage k > 1 reads the bands followed by the code of
  stage k - 1 (15 inputs) and reconstructs that. The features are the code
  of the last stage.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass

import numpy as np

from lithomap.reduce.base import Reducer, ReducerError

log = logging.getLogger(__name__)

VARIANTS = ("cascade", "greedy")
"""Kinds of stacked autoencoder."""

MIN_SPLIT_PX = 16
"""Fewest pixels allowed in each of the training and validation parts."""

BLOCK_PX = 16_384
"""Pixels encoded at a time: keeps the hidden layers in cache and memory
flat, whatever the size of the Dask chunk."""

_SELU_ALPHA = np.float32(1.6732632423543772)
_SELU_SCALE = np.float32(1.0507009873554805)
_ONE = np.float32(1.0)


# Activations act in place on a fresh float32 block. exp(v) - 1 rather
# than expm1: 3 times faster in NumPy, and its error (~1e-7) is far below
# the 1e-5 agreement with Keras that the tests ask for.
def _linear(v):
    return v


def _relu(v):
    return np.maximum(v, 0, out=v)


def _elu(v, scale=_ONE, alpha=_ONE):
    neg = np.minimum(v, 0)
    np.exp(neg, out=neg)
    neg -= 1
    neg *= alpha * scale
    np.maximum(v, 0, out=v)
    v *= scale
    v += neg
    return v


def _selu(v):
    return _elu(v, _SELU_SCALE, _SELU_ALPHA)


def _sigmoid(v):
    # The tanh form cannot overflow, unlike 1 / (1 + exp(-v)).
    v *= 0.5
    np.tanh(v, out=v)
    v += 1
    v *= 0.5
    return v


def _silu(v):
    return v * _sigmoid(v.copy())


def _tanh(v):
    return np.tanh(v, out=v)


def _softplus(v):
    return np.logaddexp(v, np.float32(0), out=v)


ACTIVATIONS = {"selu": _selu, "elu": _elu, "relu": _relu, "silu": _silu,
               "tanh": _tanh, "sigmoid": _sigmoid, "softplus": _softplus,
               "linear": _linear}
"""Activations by their Keras name, computed in NumPy."""


@dataclass(frozen=True, eq=False)
class DenseLayer:
    """One fitted dense layer: ``activation(x @ kernel + bias)``."""

    kernel: np.ndarray
    """float32 (inputs, units)."""
    bias: np.ndarray
    """float32 (units,)."""
    activation: str
    """Keras name, a key of `ACTIVATIONS`."""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        v = x @ self.kernel
        v += self.bias
        return ACTIVATIONS[self.activation](v)


def forward(layers: list[DenseLayer], x: np.ndarray) -> np.ndarray:
    """`x` (n, inputs) through `layers` in order."""
    for layer in layers:
        x = layer(x)
    return x


class _DenseAutoencoder(Reducer):
    """What the canonical and stacked autoencoders share.

    Subclasses implement `_train(keras, x, x_val, rng)`, returning the
    fitted stages and the history of each training phase; `rng` draws the
    initial weights.
    """

    _PARAMS = ("hidden", "code_size", "activation", "code_activation",
               "l1", "epochs", "batch_size", "learning_rate",
               "validation_fraction", "patience", "min_delta",
               "train_size", "backend")

    def __init__(self, hidden=(32, 16), code_size=5, activation="selu",
                 code_activation="linear", l1=1e-5, epochs=50,
                 batch_size=1024, learning_rate=1e-3,
                 validation_fraction=0.1, patience=5, min_delta=0.0,
                 train_size=200_000, backend=None):
        self.hidden = [int(u) for u in _check_list(self.kind, "hidden",
                                                   hidden)]
        self.code_size = _check_int(self.kind, "code_size", code_size, 1)
        self.activation = _check_activation(self.kind, "activation",
                                            activation)
        self.code_activation = _check_activation(
            self.kind, "code_activation", code_activation)
        self.l1 = _check_float(self.kind, "l1", l1, 0.0)
        self.epochs = _check_int(self.kind, "epochs", epochs, 1)
        self.batch_size = _check_int(self.kind, "batch_size", batch_size, 1)
        self.learning_rate = _check_float(self.kind, "learning_rate",
                                          learning_rate, 0.0, strict=True)
        self.validation_fraction = _check_float(
            self.kind, "validation_fraction", validation_fraction, 0.0,
            strict=True, maximum=0.5)
        self.patience = _check_int(self.kind, "patience", patience, 0)
        self.min_delta = _check_float(self.kind, "min_delta", min_delta, 0.0)
        self.train_size = None if train_size is None else _check_int(
            self.kind, "train_size", train_size, 2 * MIN_SPLIT_PX)
        if backend is not None:
            from lithomap.reduce.keras_backend import BACKENDS

            if backend not in BACKENDS:
                raise ReducerError(f"{self.kind}.backend: expected one of "
                                   f"{BACKENDS} or null. Received: "
                                   f"{backend!r}")
        self.backend = backend
        self.stages_ = None
        self.n_bands_ = None
        self.history_ = None
        self._encoder_keras = None

    # -- fitting -----------------------------------------------------------

    def fit(self, x, seed):
        """Train on the scaled sample `x` (n, bands); seeded by `seed`."""
        x = self._check_sample(x)
        x_train, x_val = self._split(x, seed)

        from lithomap.reduce import keras_backend

        keras = keras_backend.load_keras(self.backend)
        keras_backend.seed_everything(keras, seed)
        backend = keras.backend.backend()
        log.info("%s: training on %d pixels, validating on %d, %d bands, "
                 "Keras %s on %s", self._title(), len(x_train), len(x_val),
                 x.shape[1], keras.__version__, backend)
        self.n_bands_ = x.shape[1]
        # Initial weights come from their own stream, apart from the split.
        rng = np.random.default_rng((seed, 1))
        self.stages_, phases = self._train(keras, x_train, x_val, rng)
        self.history_ = {
            "kind": self.kind, "variant": getattr(self, "variant", None),
            "backend": backend, "keras_version": keras.__version__,
            "seed": int(seed), "n_train": len(x_train), "n_val": len(x_val),
            "seconds": round(sum(p["seconds"] for p in phases), 3),
            "phases": phases}
        self._encoder_keras = None
        return self

    def _check_sample(self, x):
        x = np.asarray(x)
        if x.ndim != 2 or not np.issubdtype(x.dtype, np.number):
            raise ReducerError(
                f"{self.kind}: expected a numeric sample of shape "
                f"(pixels, bands). Received: {x.dtype} array of shape "
                f"{x.shape}")
        if self.code_size > x.shape[1]:
            raise ReducerError(
                f"{self.kind}.code_size: expected at most the band count "
                f"({x.shape[1]}); lower code_size or use more bands. "
                f"Received: {self.code_size}")
        n_val = round(len(x) * self.validation_fraction)
        if min(n_val, len(x) - n_val) < MIN_SPLIT_PX:
            need = int(np.ceil(MIN_SPLIT_PX / min(
                self.validation_fraction, 1 - self.validation_fraction)))
            raise ReducerError(
                f"{self.kind}: the sample is too small to split for "
                f"validation: expected at least {need} pixels, so that "
                f"validation_fraction={self.validation_fraction} leaves "
                f"{MIN_SPLIT_PX} or more in each part; enlarge the sample "
                f"or the region. Received: {len(x)} pixels")
        if not np.isfinite(x).all():
            raise ReducerError(
                f"{self.kind}: expected finite values only; drop masked "
                f"pixels from the sample before fitting. Received: "
                f"{int((~np.isfinite(x)).sum())} NaN or infinite values")
        return x.astype(np.float32, copy=False)

    def _split(self, x, seed):
        rng = np.random.default_rng(seed)
        if self.train_size is not None and len(x) > self.train_size:
            log.info("%s: training on a random %d of the %d sample pixels "
                     "(train_size)", self._title(), self.train_size, len(x))
            x = x[np.sort(rng.choice(len(x), self.train_size,
                                     replace=False))]
        order = rng.permutation(len(x))
        n_val = round(len(x) * self.validation_fraction)
        return x[order[n_val:]], x[order[:n_val]]

    def _train_settings(self, epochs=None):
        return {"epochs": epochs or self.epochs,
                "batch_size": self.batch_size,
                "learning_rate": self.learning_rate,
                "patience": self.patience, "min_delta": self.min_delta}

    def _encoder_spec(self):
        units = self.hidden + [self.code_size]
        activations = ([self.activation] * len(self.hidden)
                       + [self.code_activation])
        return list(zip(units, activations))

    def _decoder_spec(self, n_out):
        units = self.hidden[::-1] + [n_out]
        activations = [self.activation] * len(self.hidden) + ["linear"]
        return list(zip(units, activations))

    def _train_stage(self, keras, x, x_val, rng, prefix, phase):
        """Train one autoencoder of the configured shape on `x`."""
        from lithomap.reduce import keras_backend as kb

        encoder = self._encoder_spec()
        decoder = self._decoder_spec(x.shape[1])
        model = kb.stage_model(keras, x.shape[1], encoder, decoder,
                               self.l1, prefix, rng)
        history = kb.train(keras, model, x, x, x_val, x_val, phase=phase,
                           **self._train_settings())
        return _fitted_stage(model, prefix, encoder, decoder), history

    # -- encoding ----------------------------------------------------------

    @property
    def n_features(self):
        return self.code_size

    def transform(self, x):
        """float32 codes (n, code_size) of scaled pixels `x` (n, bands)."""
        x = self._check_input(x)
        return self._blockwise(x, self._encode, self.code_size)

    def reconstruct(self, x):
        """Reconstruction (n, bands) of scaled pixels `x`, in scaled units."""
        x = self._check_input(x)
        return self._blockwise(x, self._decode, self.n_bands_)

    def _check_input(self, x):
        if self.stages_ is None:
            raise ReducerError(f"{self.kind}: the model is not fitted; call "
                               "fit(sample, seed) or load it first")
        x = np.asarray(x, np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_bands_:
            raise ReducerError(
                f"{self.kind}: expected pixels of shape (n, "
                f"{self.n_bands_}), the bands the model was fitted on. "
                f"Received: shape {x.shape}")
        return x

    def _blockwise(self, x, fn, width):
        # TODO: BLAS threads are not limited here: a limit set from inside
        # Dask's worker threads was slow in some runs and not others. The
        # caller sets it once (module docstring); until the map step does,
        # encoding runs up to 4 times slower than it could.
        out = np.empty((len(x), width), np.float32)
        for start in range(0, len(x), BLOCK_PX):
            block = slice(start, start + BLOCK_PX)
            out[block] = fn(x[block])
        return out

    def _codes(self, x):
        """Code of every stage for the pixels `x`, first to last."""
        codes = []
        for encoder, _ in self.stages_:
            h = x if not codes else np.concatenate([x, codes[-1]], axis=1)
            codes.append(forward(encoder, h))
        return codes

    def _encode(self, x):
        return self._codes(x)[-1]

    def _decode(self, x):
        # The last stage of a cascade reconstructs [bands, previous code];
        # its first n_bands columns are the bands.
        full = forward(self.stages_[-1][1], self._codes(x)[-1])
        return full[:, :self.n_bands_]

    def encode_keras(self, x, batch_size=65_536):
        """Codes of `x` computed by Keras' ``predict`` (for checks/bench).

        Builds the Keras model from the fitted weights on the backend the
        reducer was trained with; `transform` gives the same numbers to
        about 1e-5 without Keras.
        """
        if self._encoder_keras is None:
            from lithomap.reduce import keras_backend as kb

            self._check_input(x[:0])
            keras = kb.load_keras(self._fitted_backend())
            model = kb.cascade_model(keras, self.n_bands_, self.stages_,
                                     self.l1)
            code = model.get_layer(kb.code_layer_name(len(self.stages_)))
            self._encoder_keras = keras.Model(model.inputs, code.output)
        out = self._encoder_keras.predict(np.asarray(x, np.float32),
                                          batch_size=batch_size, verbose=0)
        return np.asarray(out, np.float32)

    def _fitted_backend(self):
        if self.history_ and self.history_.get("backend"):
            return self.history_["backend"]
        return self.backend

    def __getstate__(self):
        # The Keras model is a cache; dropping it keeps pickles small and
        # free of Keras for Dask workers.
        state = self.__dict__.copy()
        state["_encoder_keras"] = None
        return state

    # -- saving ------------------------------------------------------------

    def _files(self):
        return {"model": f"{self.kind}.keras",
                "weights": f"{self.kind}_weights.npz",
                "history": f"{self.kind}_history.json",
                "figure": f"{self.kind}_loss.png"}

    def save_state(self, folder):
        """Write the Keras model, weights, history JSON and loss figure.

        Returns the JSON-able settings that `load_state` needs: the
        parameters, the activations of each layer and a summary of the
        training.
        """
        if self.stages_ is None:
            raise ReducerError(f"{self.kind}: nothing to save; fit the "
                               "model first")
        from lithomap.reduce import keras_backend as kb

        os.makedirs(folder, exist_ok=True)
        files = self._files()
        arrays = {}
        for k, (encoder, decoder) in enumerate(self.stages_):
            for part, layers in (("enc", encoder), ("dec", decoder)):
                for i, layer in enumerate(layers):
                    arrays[f"s{k}_{part}{i}_kernel"] = layer.kernel
                    arrays[f"s{k}_{part}{i}_bias"] = layer.bias
        np.savez(os.path.join(folder, files["weights"]), **arrays)
        history_path = os.path.join(folder, files["history"])
        with open(history_path, "w") as f:
            json.dump(self.history_, f, indent=1)
        plot_history(history_path, os.path.join(folder, files["figure"]))
        keras = kb.load_keras(self._fitted_backend())
        model = kb.cascade_model(keras, self.n_bands_, self.stages_, self.l1)
        model.save(os.path.join(folder, files["model"]))
        return self._settings(files)

    def _settings(self, files):
        settings = {name: getattr(self, name) for name in self._PARAMS}
        settings["n_bands"] = self.n_bands_
        settings["activations"] = [
            [[layer.activation for layer in layers] for layers in stage]
            for stage in self.stages_]
        settings["files"] = files
        settings["training"] = {
            key: self.history_[key] for key in
            ("backend", "keras_version", "seed", "n_train", "n_val",
             "seconds")}
        settings["training"]["best_val_loss"] = [
            p["best_val_loss"] for p in self.history_["phases"]]
        return settings

    @classmethod
    def load_state(cls, folder, settings):
        """Rebuild a fitted reducer from `folder`; Keras is not needed."""
        out = cls(**{name: settings[name] for name in cls._PARAMS})
        out.n_bands_ = settings["n_bands"]
        path = os.path.join(folder, settings["files"]["weights"])
        with np.load(path) as arrays:
            out.stages_ = [
                tuple([DenseLayer(arrays[f"s{k}_{part}{i}_kernel"],
                                  arrays[f"s{k}_{part}{i}_bias"], name)
                       for i, name in enumerate(names)]
                      for part, names in zip(("enc", "dec"), stage))
                for k, stage in enumerate(settings["activations"])]
        with open(os.path.join(folder, settings["files"]["history"])) as f:
            out.history_ = json.load(f)
        return out

    def _title(self):
        return self.kind


class AutoencoderReducer(_DenseAutoencoder):
    """Canonical autoencoder: dense encoder and mirrored decoder.

    Parameters
    ----------
    hidden : list of int, default=[32, 16]
        Units of the encoder's hidden layers, input side first; the
        decoder mirrors them.
    code_size : int, default=5
        Units of the code layer: the number of features. At most the band
        count.
    activation : str, default="selu"
        Activation of the hidden layers: one of `ACTIVATIONS`. Kernels are
        initialised to suit it (lecun_normal for selu, he_normal for relu,
        elu and silu, glorot_uniform otherwise).
    code_activation : str, default="linear"
        Activation of the code layer.
    l1 : float, default=1e-5
        L1 activity regularisation of the code, per pixel.
    epochs : int, default=50
        Most passes over the training pixels.
    batch_size : int, default=1024
        Pixels per gradient step.
    learning_rate : float, default=1e-3
        Adam's learning rate.
    validation_fraction : float, default=0.1
        Share of the training pixels held out for early stopping.
    patience : int, default=5
        Epochs without a better validation loss before training stops; the
        best epoch's weights are kept.
    min_delta : float, default=0.0
        Smallest fall of the validation loss that counts as better.
    train_size : int or None, default=200000
        Most pixels to train on, drawn at random (seeded) from the sample;
        None: the whole sample.
    backend : {"jax", "tensorflow", "torch"} or None, default=None
        Keras backend; None: the ``KERAS_BACKEND`` environment variable,
        else "jax".
    """

    kind = "autoencoder"

    def _train(self, keras, x, x_val, rng):
        stage, history = self._train_stage(keras, x, x_val, rng, "s0",
                                           "autoencoder")
        return [stage], [history]


class StackedAutoencoderReducer(_DenseAutoencoder):
    """Stacked autoencoder, trained as a cascade or greedily layer-wise.

    Parameters
    ----------
    variant : {"cascade", "greedy"}, default="cascade"
        "cascade": `stages` autoencoders of the canonical shape in a row,
        each after the first reading the bands and the previous stage's
        code; the features are the last stage's code. "greedy": one
        canonical autoencoder whose encoder layers are first pretrained
        one by one as shallow autoencoders, then fine-tuned end to end.
    stages : int, default=2
        Number of stages of the cascade (1 is a canonical autoencoder).
        Unused by "greedy".
    pretrain_epochs : int, default=10
        Most epochs of each greedy pretraining step (with the same early
        stopping). Unused by "cascade".
    **params
        As for `AutoencoderReducer`; in a cascade, `hidden` and
        `code_size` shape every stage.
    """

    kind = "stacked"
    _PARAMS = _DenseAutoencoder._PARAMS + ("variant", "stages",
                                           "pretrain_epochs")

    def __init__(self, variant="cascade", stages=2, pretrain_epochs=10,
                 **params):
        super().__init__(**params)
        if variant not in VARIANTS:
            raise ReducerError(f"stacked.variant: expected one of "
                               f"{VARIANTS}. Received: {variant!r}")
        self.variant = variant
        self.stages = _check_int(self.kind, "stages", stages, 1)
        self.pretrain_epochs = _check_int(self.kind, "pretrain_epochs",
                                          pretrain_epochs, 1)

    def _title(self):
        return f"stacked ({self.variant})"

    def _train(self, keras, x, x_val, rng):
        if self.variant == "cascade":
            return self._train_cascade(keras, x, x_val, rng)
        return self._train_greedy(keras, x, x_val, rng)

    def _train_cascade(self, keras, x, x_val, rng):
        stages, phases = [], []
        h, h_val = x, x_val
        for k in range(self.stages):
            stage, history = self._train_stage(
                keras, h, h_val, rng, f"s{k}", f"stage {k + 1}")
            stages.append(stage)
            phases.append(history)
            h = np.concatenate([x, forward(stage[0], h)], axis=1)
            h_val = np.concatenate([x_val, forward(stage[0], h_val)], axis=1)
        return stages, phases

    def _train_greedy(self, keras, x, x_val, rng):
        from lithomap.reduce import keras_backend as kb

        encoder_spec = self._encoder_spec()
        encoder, decoder, phases = [], [], []
        h, h_val = x, x_val
        for i, (units, activation) in enumerate(encoder_spec):
            # Layer i reconstructs its own input: the bands (linear) for
            # the first layer, else the previous layer's activations.
            out = (h.shape[1], "linear" if i == 0 else self.activation)
            is_code = i == len(encoder_spec) - 1
            model = kb.stage_model(keras, h.shape[1], [(units, activation)],
                                   [out], self.l1 if is_code else 0.0,
                                   f"p{i}", rng)
            phases.append(kb.train(
                keras, model, h, h, h_val, h_val,
                phase=f"pretrain layer {i + 1}",
                **self._train_settings(self.pretrain_epochs)))
            (layer,), (back,) = _fitted_stage(
                model, f"p{i}", [(units, activation)], [out])
            encoder.append(layer)
            decoder.insert(0, back)
            h, h_val = layer(h), layer(h_val)

        model = kb.stage_model(keras, x.shape[1], encoder, decoder, self.l1,
                               "s0")
        phases.append(kb.train(keras, model, x, x, x_val, x_val,
                               phase="fine-tune", **self._train_settings()))
        stage = _fitted_stage(model, "s0", encoder_spec,
                              self._decoder_spec(x.shape[1]))
        return [stage], phases


def _fitted_stage(model, prefix, encoder_spec, decoder_spec):
    """NumPy (encoder, decoder) layers of a model built by `stage_model`."""
    from lithomap.reduce.keras_backend import layer_weights

    encoder = []
    for i, (_, activation) in enumerate(encoder_spec):
        last = i == len(encoder_spec) - 1
        name = f"{prefix}_code" if last else f"{prefix}_enc{i}"
        encoder.append(DenseLayer(*layer_weights(model, name), activation))
    decoder = [DenseLayer(*layer_weights(model, f"{prefix}_dec{i}"), act)
               for i, (_, act) in enumerate(decoder_spec)]
    return encoder, decoder


def plot_history(history_json, out_png) -> None:
    """Draw the loss curves of a training history as a PNG.

    One panel per training phase (a cascade stage, a greedy pretraining
    step, the fine-tuning), training and validation loss per epoch on a
    log scale, the kept (best) epoch marked.

    Parameters
    ----------
    history_json : str, path or dict
        A ``*_history.json`` written by ``save_state``, or its content.
    out_png : str or path
        The figure to write.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    history = history_json
    if not isinstance(history, dict):
        with open(history_json) as f:
            history = json.load(f)
    phases = history["phases"]
    fig = Figure(figsize=(3.6 * len(phases) + 0.6, 3.4),
                 layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(phases), squeeze=False)[0]
    for ax, phase in zip(axes, phases):
        epochs = np.arange(1, len(phase["loss"]) + 1)
        ax.plot(epochs, phase["loss"], label="training")
        ax.plot(epochs, phase["val_loss"], label="validation")
        ax.axvline(phase["best_epoch"], color="grey", linestyle=":",
                   label=f"kept: epoch {phase['best_epoch']}")
        ax.set_yscale("log")
        ax.set_title(phase["phase"])
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize="small")
    axes[0].set_ylabel("loss (MSE + L1, scaled units)")
    title = history.get("kind", "")
    if history.get("variant"):
        title += f" ({history['variant']})"
    fig.suptitle(f"{title}: {history.get('n_train', '?')} training pixels, "
                 f"{history.get('backend', '?')} backend")
    fig.savefig(out_png, dpi=100)


def _check_int(kind, key, value, minimum):
    if (isinstance(value, bool) or not isinstance(value, (int, np.integer))
            or value < minimum):
        raise ReducerError(f"{kind}.{key}: expected an integer >= "
                           f"{minimum}. Received: {value!r}")
    return int(value)


def _check_float(kind, key, value, minimum, strict=False, maximum=None):
    ok = (isinstance(value, (int, float, np.number))
          and not isinstance(value, bool) and np.isfinite(value))
    ok = ok and (value > minimum if strict else value >= minimum)
    ok = ok and (maximum is None or value <= maximum)
    if not ok:
        bounds = f"{'>' if strict else '>='} {minimum}"
        if maximum is not None:
            bounds += f" and <= {maximum}"
        raise ReducerError(f"{kind}.{key}: expected a number {bounds}. "
                           f"Received: {value!r}")
    return float(value)


def _check_list(kind, key, value):
    ok = isinstance(value, (list, tuple)) and all(
        isinstance(u, (int, np.integer)) and not isinstance(u, bool)
        and u >= 1 for u in value)
    if not ok:
        raise ReducerError(f"{kind}.{key}: expected a list of layer sizes "
                           f"(integers >= 1). Received: {value!r}")
    return list(value)


def _check_activation(kind, key, value):
    if value not in ACTIVATIONS:
        raise ReducerError(f"{kind}.{key}: expected one of "
                           f"{tuple(sorted(ACTIVATIONS))}. Received: "
                           f"{value!r}")
    return value
