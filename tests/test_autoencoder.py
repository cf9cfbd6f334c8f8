"""Keras autoencoders: canonical, stacked cascade and stacked greedy.

Fits are kept tiny (a few epochs on a few thousand pixels) except the one
that compares the reconstruction error with PCA on the real Sentinel-2
scene.
"""

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from lithomap.reduce import PCAReducer, ReducerError, Scaler
from lithomap.reduce.autoencoder import (
    BLOCK_PX,
    AutoencoderReducer,
    StackedAutoencoderReducer,
    plot_history,
)
from lithomap.reduce.keras_backend import (
    enable_compile_cache,
    load_keras,
    resolve_backend,
)

SCENE = "data/sentinel2/S2A_29RKH_20200219_0_L2A"
BANDS = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11",
         "B12"]
WORKFLOW = Path(__file__).resolve().parents[1] / "workflow"

TINY = {"hidden": [8], "code_size": 3, "epochs": 2, "batch_size": 256,
        "patience": 1}
"""Settings of the quick fits: only the mechanics are checked on them."""

FACTORIES = {
    "autoencoder": lambda **kw: AutoencoderReducer(**{**TINY, **kw}),
    "cascade": lambda **kw: StackedAutoencoderReducer(
        variant="cascade", stages=2, **{**TINY, **kw}),
    "greedy": lambda **kw: StackedAutoencoderReducer(
        variant="greedy", pretrain_epochs=1, **{**TINY, **kw}),
}


def read_reflectance(scene):
    """Reflectance (pixels, 10) of the S2 demo scene on its 200 m grid.

    The 10 m bands (stored at 100 m) are decimated by 2 onto the grid of
    the 20 m bands (stored at 200 m); pixels with DN 0 in a band go.
    """
    layers = []
    for band in BANDS:
        with rasterio.open(scene / f"{band}.tif") as src:
            dn = src.read(1)
        if dn.shape == (1098, 1098):
            dn = dn[::2, ::2]
        assert dn.shape == (549, 549), band
        layers.append(dn.ravel())
    dn = np.stack(layers, axis=1)
    return (dn[(dn > 0).all(axis=1)] / 10_000).astype(np.float32)


@pytest.fixture(scope="module", autouse=True)
def compile_cache(tmp_path_factory):
    """Compile each model shape once: refits then take a fraction of a
    second instead of several."""
    enable_compile_cache(str(tmp_path_factory.mktemp("jax_cache")))


@pytest.fixture(scope="module")
def pixels(shared):
    """Seeded sample of 30,000 scaled pixels: 24,000 to fit, 6,000 held out.

    The scaler is fitted on the fitting part only.
    """
    reflectance = read_reflectance(shared / SCENE)
    rng = np.random.default_rng(2020)
    sample = reflectance[rng.choice(len(reflectance), 30_000, replace=False)]
    scaler = Scaler("standard").fit(sample[:24_000])
    return scaler.transform(sample[:24_000]), scaler.transform(sample[24_000:])


@pytest.fixture(scope="module")
def fitted(pixels):
    """One tiny fitted reducer per variant, on 4,000 pixels, seed 7."""
    return {name: make().fit(pixels[0][:4_000], seed=7)
            for name, make in FACTORIES.items()}


@pytest.mark.parametrize("name", list(FACTORIES), ids=list(FACTORIES))
def test_same_seed_gives_same_features(name, pixels, fitted):
    """Refitting with the same seed and settings gives identical features."""
    again = FACTORIES[name]().fit(pixels[0][:4_000], seed=7)
    held_out = pixels[1]

    np.testing.assert_array_equal(again.transform(held_out),
                                  fitted[name].transform(held_out))


def test_other_seed_gives_other_features(pixels, fitted):
    """The seed is used: another seed starts from other weights."""
    other = FACTORIES["autoencoder"]().fit(pixels[0][:4_000], seed=8)

    assert not np.allclose(other.transform(pixels[1]),
                           fitted["autoencoder"].transform(pixels[1]))


@pytest.mark.parametrize("name", list(FACTORIES), ids=list(FACTORIES))
def test_features_have_configured_code_size(name, pixels, fitted):
    """transform returns float32 (n, code_size); reconstruct (n, bands)."""
    reducer = fitted[name]
    held_out = pixels[1][:1000]

    features = reducer.transform(held_out)

    assert reducer.n_features == TINY["code_size"]
    assert features.shape == (1000, TINY["code_size"])
    assert features.dtype == np.float32
    assert reducer.reconstruct(held_out).shape == (1000, 10)


def test_features_do_not_depend_on_chunking(pixels, fitted):
    """Encoding whole or chunk by chunk (as Dask does) gives the same
    features, across the internal blocks of BLOCK_PX pixels too, to float32
    rounding: BLAS sums in an order that depends on the row count."""
    x = np.concatenate([pixels[0], pixels[1], pixels[0]])[:2 * BLOCK_PX + 5]
    reducer = fitted["cascade"]

    pieces = [reducer.transform(part) for part in np.array_split(x, 7)]

    np.testing.assert_allclose(np.concatenate(pieces), reducer.transform(x),
                               rtol=1e-5, atol=1e-6)


def test_cascade_stages_read_bands_and_previous_code(fitted):
    """Stage 2 of a cascade reads the 10 bands plus stage 1's code."""
    stages = fitted["cascade"].stages_
    phases = fitted["cascade"].history_["phases"]

    assert len(stages) == 2
    assert stages[0][0][0].kernel.shape[0] == 10
    assert stages[1][0][0].kernel.shape[0] == 10 + TINY["code_size"]
    assert [p["phase"] for p in phases] == ["stage 1", "stage 2"]


def test_greedy_pretrains_each_layer_then_fine_tunes(fitted):
    """Greedy: one pretraining phase per encoder layer, then fine-tuning."""
    reducer = fitted["greedy"]
    phases = [p["phase"] for p in reducer.history_["phases"]]
    encoder, decoder = reducer.stages_[0]

    assert phases == ["pretrain layer 1", "pretrain layer 2", "fine-tune"]
    assert [layer.kernel.shape for layer in encoder] == [(10, 8), (8, 3)]
    assert [layer.kernel.shape for layer in decoder] == [(3, 8), (8, 10)]


@pytest.mark.parametrize("name", list(FACTORIES), ids=list(FACTORIES))
def test_numpy_transform_matches_keras_predict(name, pixels, fitted):
    """The NumPy forward pass agrees with Keras' predict to about 1e-5."""
    reducer = fitted[name]

    np.testing.assert_allclose(reducer.transform(pixels[1]),
                               reducer.encode_keras(pixels[1]),
                               rtol=1e-5, atol=1e-5)


def test_autoencoder_beats_pca_on_sentinel2(pixels):
    """On real S2 pixels, held-out MSE is below PCA's with as many features.

    Scaled units (each band standardised on the fitting part).
    """
    train, held_out = pixels
    pca = PCAReducer(n_components=5).fit(train, seed=0)
    # Smaller batches than the default (1024, meant for 200,000 pixels)
    # give enough steps on 21,600 training pixels.
    autoencoder = AutoencoderReducer(
        hidden=[32, 16], code_size=5, epochs=60, batch_size=128,
        learning_rate=1e-3, patience=5).fit(train, seed=0)

    pca_mse = float(np.mean((pca.reconstruct(held_out) - held_out) ** 2))
    ae_mse = float(np.mean((autoencoder.reconstruct(held_out)
                            - held_out) ** 2))

    assert ae_mse < pca_mse, f"autoencoder {ae_mse:.5f}, PCA {pca_mse:.5f}"


@pytest.mark.parametrize("name", ["autoencoder", "cascade"],
                         ids=["autoencoder", "cascade"])
def test_saved_state_reloads_to_the_same_features(name, pixels, fitted,
                                                  tmp_path):
    """save_state writes model, weights, history and figure; load_state
    rebuilds a reducer that encodes identically."""
    reducer = fitted[name]

    settings = reducer.save_state(str(tmp_path))
    json.dumps(settings)
    loaded = type(reducer).load_state(str(tmp_path), settings)

    kind = reducer.kind
    for suffix in (".keras", "_weights.npz", "_history.json", "_loss.png"):
        assert (tmp_path / f"{kind}{suffix}").stat().st_size > 0
    assert (tmp_path / f"{kind}_loss.png").read_bytes()[:4] == b"\x89PNG"
    np.testing.assert_array_equal(loaded.transform(pixels[1]),
                                  reducer.transform(pixels[1]))


def test_saved_keras_model_reproduces_reconstruction(pixels, fitted,
                                                     tmp_path):
    """The .keras file is a working model: its output is reconstruct's."""
    reducer = fitted["autoencoder"]
    reducer.save_state(str(tmp_path))
    keras = load_keras()

    model = keras.saving.load_model(tmp_path / "autoencoder.keras")

    np.testing.assert_allclose(model.predict(pixels[1], verbose=0),
                               reducer.reconstruct(pixels[1]),
                               rtol=1e-5, atol=1e-5)


def test_pickled_reducer_transforms_without_keras(pixels, fitted,
                                                  tmp_path):
    """A pickled reducer encodes in a fresh process that never imports
    Keras, as a Dask worker would."""
    reducer = fitted["cascade"]
    reducer.encode_keras(pixels[1][:10])  # caches a Keras model
    (tmp_path / "reducer.pkl").write_bytes(pickle.dumps(reducer))
    np.save(tmp_path / "x.npy", pixels[1])
    script = (
        "import pickle, sys, numpy as np\n"
        f"r = pickle.load(open({str(tmp_path / 'reducer.pkl')!r}, 'rb'))\n"
        f"x = np.load({str(tmp_path / 'x.npy')!r})\n"
        f"np.save({str(tmp_path / 'f.npy')!r}, r.transform(x))\n"
        "assert 'keras' not in sys.modules, 'keras was imported'\n")

    subprocess.run([sys.executable, "-c", script], check=True,
                   env={"PYTHONPATH": str(WORKFLOW)})

    np.testing.assert_array_equal(np.load(tmp_path / "f.npy"),
                                  reducer.transform(pixels[1]))


def test_plot_history_writes_one_panel_per_phase(fitted, tmp_path):
    """plot_history accepts the history JSON and writes a PNG."""
    path = tmp_path / "history.json"
    path.write_text(json.dumps(fitted["greedy"].history_))

    plot_history(path, tmp_path / "loss.png")

    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"


# -- bad input ---------------------------------------------------------------

@pytest.mark.parametrize(("params", "match"), [
    ({"activation": "sleu"},
     r"autoencoder.activation: expected one of .*Received: 'sleu'"),
    ({"code_activation": "softmax"},
     r"autoencoder.code_activation: expected one of"),
    ({"backend": "mxnet"},
     (r"autoencoder.backend: expected one of \('jax', 'tensorflow', "
      r"'torch'\) or null. Received: 'mxnet'")),
    ({"hidden": 32}, r"autoencoder.hidden: expected a list of layer sizes"),
    ({"hidden": [32, 0]}, r"autoencoder.hidden: .*Received: \[32, 0\]"),
    ({"code_size": 0}, r"autoencoder.code_size: expected an integer >= 1"),
    ({"epochs": 2.5}, r"autoencoder.epochs: expected an integer >= 1"),
    ({"learning_rate": 0}, r"autoencoder.learning_rate: expected a number >"),
    ({"validation_fraction": 0.9},
     r"autoencoder.validation_fraction: expected a number > 0.0 and <= 0.5"),
], ids=["activation", "code-activation", "backend", "hidden-not-list",
        "hidden-zero", "code-size-zero", "epochs-float", "lr-zero",
        "validation-too-large"])
def test_bad_settings_are_refused(params, match):
    """Each bad setting stops at construction with a message naming it."""
    with pytest.raises(ReducerError, match=match):
        AutoencoderReducer(**params)


@pytest.mark.parametrize(("params", "match"), [
    ({"variant": "layerwise"},
     r"stacked.variant: expected one of \('cascade', 'greedy'\)"),
    ({"stages": 0}, r"stacked.stages: expected an integer >= 1"),
], ids=["variant", "stages"])
def test_bad_stacked_settings_are_refused(params, match):
    """The stacked reducer's own settings are checked too."""
    with pytest.raises(ReducerError, match=match):
        StackedAutoencoderReducer(**params)


def test_code_larger_than_band_count_is_refused(pixels):
    """A code wider than the input cannot be fitted."""
    reducer = AutoencoderReducer(code_size=12)

    with pytest.raises(ReducerError, match=r"code_size: expected at most "
                       r"the band count \(10\).*Received: 12"):
        reducer.fit(pixels[0], seed=0)


def test_sample_too_small_to_split_is_refused(pixels):
    """A sample that leaves under 16 pixels for validation is refused."""
    reducer = AutoencoderReducer(validation_fraction=0.1)

    with pytest.raises(ReducerError, match=r"too small to split for "
                       r"validation: expected at least 160 pixels.*"
                       r"Received: 100 pixels"):
        reducer.fit(pixels[0][:100], seed=0)


def test_sample_with_nan_is_refused(pixels):
    """Masked pixels must be dropped before fitting."""
    sample = pixels[0][:1000].copy()
    sample[3, 2] = np.nan

    with pytest.raises(ReducerError, match=r"expected finite values only"):
        AutoencoderReducer().fit(sample, seed=0)


def test_unknown_backend_in_environment_is_refused(monkeypatch):
    """KERAS_BACKEND is checked when no backend is set in config."""
    monkeypatch.setenv("KERAS_BACKEND", "theano")

    with pytest.raises(ReducerError, match=r"backend \(environment variable "
                       r"KERAS_BACKEND\): expected one of .*'theano'"):
        resolve_backend(None)


def test_transform_checks_band_count(pixels, fitted):
    """Pixels with another band count than the fit are refused."""
    with pytest.raises(ReducerError, match=r"expected pixels of shape "
                       r"\(n, 10\).*Received: shape \(5, 9\)"):
        fitted["autoencoder"].transform(pixels[1][:5, :9])


def test_transform_before_fit_is_refused(pixels):
    """An unfitted reducer says so instead of failing on None."""
    with pytest.raises(ReducerError, match=r"not fitted"):
        AutoencoderReducer().transform(pixels[1])
