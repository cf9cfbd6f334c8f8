"""Derived layers: formulas on known values, NaN handling, chunk
exactness of the windowed step."""

import dask.array as da
import numpy as np
import pytest
from lithomap import enrich
from lithomap.enrich import EnrichError

S2_BANDS = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11",
            "B12"]
LANDSAT_BANDS = [f"SR_B{n}" for n in range(1, 8)]
ASTER_BANDS = ["1", "2", "3N", "4", "5", "6", "7", "8", "9"]


@pytest.fixture
def s2_stack():
    """Seeded S2-like reflectance (10, 37, 29) with a masked block and a
    pixel masked in one band only."""
    rng = np.random.default_rng(7)
    a = rng.uniform(0.05, 0.6, (10, 37, 29)).astype(np.float32)
    a[:, 4:9, 10:15] = np.nan
    a[3, 20, 20] = np.nan
    return a


def one_pixel(values, bands, sensor, **settings):
    """The layers of a single pixel, via the public NumPy entry point."""
    x = np.asarray(values, np.float32)[:, None]
    return enrich.spectral_layers(x, bands, sensor, settings)[:, 0]


def test_default_settings_leave_the_stack_as_it_is(s2_stack):
    """No enrichment key: the very same Dask array comes back."""
    stack = da.from_array(s2_stack, chunks=(10, 16, 16))
    assert enrich.apply(stack, S2_BANDS, "sentinel2", {}) is stack
    assert enrich.layer_names(S2_BANDS, "sentinel2", {}) == S2_BANDS


@pytest.mark.parametrize("how, expected", [
    ("mean", [0.5, 1.0, 1.5]),
    ("l2", np.array([1, 2, 3]) / np.sqrt(14)),
    ("log_ratio", np.log([1, 2, 3]) - np.log([1, 2, 3]).mean()),
], ids=["mean", "l2", "log_ratio"])
def test_normalisation_formulas(how, expected):
    """A spectrum (0.1, 0.2, 0.3) is divided by its mean or norm, or
    becomes its centred log-ratio; doubling its brightness changes
    nothing."""
    bands = ["SR_B2", "SR_B3", "SR_B4"]
    got = one_pixel([0.1, 0.2, 0.3], bands, "landsat", normalise=how)
    brighter = one_pixel([0.2, 0.4, 0.6], bands, "landsat", normalise=how)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_allclose(brighter, got, rtol=1e-6)


def test_resolution_groups_get_their_own_divisor():
    """Sentinel-2 10 m and 20 m bands are each divided by their own mean:
    a factor on the 20 m bands alone leaves every layer unchanged."""
    x = np.linspace(0.1, 0.5, 10)
    y = x.copy()
    y[[3, 4, 5, 7, 8, 9]] *= 1.7
    settings = {"normalise": "mean", "normalise_groups": "resolution"}
    a = one_pixel(x, S2_BANDS, "sentinel2", **settings)
    b = one_pixel(y, S2_BANDS, "sentinel2", **settings)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    ten_m = [0, 1, 2, 6]
    np.testing.assert_allclose(a[ten_m].mean(), 1.0, rtol=1e-6)
    whole = one_pixel(y, S2_BANDS, "sentinel2", normalise="mean")
    assert not np.allclose(whole, a)


def test_fused_bands_keep_each_sensors_groups_and_indices():
    """In a fused stack ("sensor:band"), each sensor's resolution groups
    get their own divisor, and indices are computed per sensor from that
    sensor's bands only."""
    bands = ([f"sentinel2:{b}" for b in S2_BANDS]
             + [f"landsat:{b}" for b in LANDSAT_BANDS])
    s2 = np.linspace(0.1, 0.5, 10)
    landsat = np.array([.1, .1, .2, .3, .4, .5, .25])
    settings = {"normalise": "mean", "normalise_groups": "resolution",
                "indices": ["iron_oxide"]}
    a = one_pixel(np.r_[s2, landsat], bands, "fused", **settings)
    # Landsat darker as a whole (another date, another illumination):
    # its own divisor absorbs it, and ratios do not see it.
    b = one_pixel(np.r_[s2, landsat * 0.6], bands, "fused", **settings)
    np.testing.assert_allclose(a, b, rtol=1e-5)
    np.testing.assert_allclose(a[10:17].mean(), 1.0, rtol=1e-6)
    names = enrich.layer_names(bands, "fused", settings)
    assert names[-2:] == ["idx_sentinel2:iron_oxide",
                          "idx_landsat:iron_oxide"]
    np.testing.assert_allclose(a[-2:], [s2[2] / s2[0], 0.3 / 0.1],
                               rtol=1e-5)
    # One sensor alone: the same layers as that sensor's own stack.
    alone = one_pixel(landsat, LANDSAT_BANDS, "landsat", **settings)
    np.testing.assert_allclose(a[[*range(10, 17), 18]], alone, rtol=1e-6)


def test_a_colon_in_a_band_name_outside_fusion_is_just_a_name():
    """A GeoTIFF band named "TM:3" is not taken for a fused sensor's band:
    all bands share one group, as any unknown sensor's bands do."""
    bands = ["TM:1", "TM:2", "ETM:3"]
    got = one_pixel([0.1, 0.2, 0.3], bands, "geotiff", normalise="mean",
                    normalise_groups="resolution")
    np.testing.assert_allclose(got, [0.5, 1.0, 1.5], rtol=1e-6)


@pytest.mark.parametrize("groups", ["all", "resolution"])
def test_fused_sensors_never_share_a_divisor(groups):
    """Whatever the grouping, each sensor of a fused stack is normalised
    apart from the others, and a GeoTIFF band name holding ':' stays whole
    ("geotiff:TM:1" is band TM:1 of sensor geotiff)."""
    bands = ["geotiff:TM:1", "geotiff:TM:2", "geotiff:ETM:3",
             "landsat:SR_B2", "landsat:SR_B4"]
    got = one_pixel([0.1, 0.2, 0.3, 0.2, 0.6], bands, "fused",
                    normalise="mean", normalise_groups=groups)
    np.testing.assert_allclose(got, [0.5, 1.0, 1.5, 0.5, 1.5], rtol=1e-6)


@pytest.mark.parametrize("sensor, bands, values, name, expected", [
    ("landsat", LANDSAT_BANDS, [.1, .1, .2, .3, .4, .5, .25],
     "iron_oxide", 0.3 / 0.1),
    ("landsat", LANDSAT_BANDS, [.1, .1, .2, .3, .4, .5, .25],
     "ferrous_iron", 0.5 / 0.4 + 0.2 / 0.3),
    ("landsat", LANDSAT_BANDS, [.1, .1, .2, .3, .4, .5, .25],
     "clay", 0.5 / 0.25),
    ("landsat", LANDSAT_BANDS, [.1, .1, .2, .3, .4, .5, .25],
     "ferric", 0.4 / 0.3),
    ("landsat", LANDSAT_BANDS, [.1, .1, .2, .3, .4, .5, .25],
     "ndvi", (0.4 - 0.3) / (0.4 + 0.3)),
    ("sentinel2", S2_BANDS, [.1, .2, .3, .3, .3, .3, .6, .3, .4, .2],
     "iron_oxide", 3.0),
    ("sentinel2", S2_BANDS, [.1, .2, .3, .3, .3, .3, .6, .3, .4, .2],
     "ndvi", 1 / 3),
    ("aster", ASTER_BANDS, [.1, .2, .3, .4, .5, .2, .3, .6, .9],
     "ohi", 0.3 / 0.2 * 0.4 / 0.2),
    ("aster", ASTER_BANDS, [.1, .2, .3, .4, .5, .2, .3, .6, .9],
     "kli", 0.4 / 0.5 * 0.6 / 0.2),
    ("aster", ASTER_BANDS, [.1, .2, .3, .4, .5, .2, .3, .6, .9],
     "ali", 0.3 / 0.5 * 0.3 / 0.6),
    ("aster", ASTER_BANDS, [.1, .2, .3, .4, .5, .2, .3, .6, .9],
     "cli", 0.2 / 0.6 * 0.9 / 0.6),
    ("aster", ASTER_BANDS, [.1, .2, .3, .4, .5, .2, .3, .6, .9],
     "carbonate", (0.3 + 0.9) / 0.6),
], ids=["L-iron-oxide", "L-ferrous", "L-clay", "L-ferric", "L-ndvi",
        "S2-iron-oxide", "S2-ndvi", "A-ohi", "A-kli", "A-ali", "A-cli",
        "A-carbonate"])
def test_index_formulas(sensor, bands, values, name, expected):
    """Each index on a hand-made spectrum equals its formula."""
    got = one_pixel(values, bands, sensor, indices=[name])
    assert got.shape == (len(bands) + 1,)
    np.testing.assert_allclose(got[-1], expected, rtol=1e-5)


def test_indices_true_takes_what_the_bands_allow():
    """ASTER VNIR+SWIR gets its SWIR indices but not the TIR ones; Landsat
    gets the five broad-band ratios."""
    aster = enrich.layer_names(ASTER_BANDS, "aster", {"indices": True})
    assert "idx_ohi" in aster and "idx_carbonate" in aster
    assert "idx_ci" not in aster and "idx_qi" not in aster
    landsat = enrich.layer_names(LANDSAT_BANDS, "landsat", {"indices": True})
    assert landsat[7:] == ["idx_iron_oxide", "idx_ferrous_iron", "idx_clay",
                           "idx_ferric", "idx_ndvi"]


def test_missing_band_for_an_index_is_named():
    """Asking for clay without SWIR2 says which bands it needs."""
    with pytest.raises(EnrichError, match="clay .* needs the landsat bands"):
        enrich.layer_names(LANDSAT_BANDS[:6], "landsat", {"indices": ["clay"]})


@pytest.mark.parametrize("settings, match", [
    ({"normalise": "max"}, "settings.normalise: expected one of"),
    ({"normalise_groups": "focal"}, "settings.normalise_groups"),
    ({"context_px": -1}, "settings.context_px: expected an integer"),
    ({"context_px": 1.5}, "settings.context_px: expected an integer"),
    ({"context_mode": "stack"}, "settings.context_mode"),
    ({"indices": ["ndvi", "gossan"]}, r"unknown index \['gossan'\]"),
    ({"indices": "ndvi"}, "settings.indices: expected true, false or a"),
], ids=["normalise", "groups", "negative-radius", "float-radius", "mode",
        "unknown-index", "string-indices"])
def test_bad_settings_are_rejected(settings, match):
    """Each bad key is named with what was expected."""
    with pytest.raises(EnrichError, match=match):
        enrich.layer_names(S2_BANDS, "sentinel2", settings)


def test_nan_in_one_band_masks_every_layer(s2_stack):
    """A pixel masked in one band is NaN in every layer; others are
    finite."""
    settings = {"normalise": "mean", "indices": True, "context_px": 1}
    out = enrich.apply(da.from_array(s2_stack), S2_BANDS, "sentinel2",
                       settings).compute()
    masked = np.isnan(s2_stack).any(axis=0)
    assert np.isnan(out[:, masked]).all()
    assert np.isfinite(out[:, ~masked]).all()


def test_local_mean_leaves_masked_neighbours_out():
    """Normalised convolution: a pixel beside a masked one averages only
    the usable pixels of its window; the window is cut at the grid edge."""
    block = np.array([[[1.0, 2.0, 3.0],
                       [4.0, np.nan, 6.0],
                       [7.0, 8.0, 9.0]]], np.float32)
    out = enrich.local_mean(block, 1)
    assert np.isnan(out[0, 1, 1])
    assert out[0, 0, 0] == pytest.approx((1 + 2 + 4) / 3)
    assert out[0, 1, 0] == pytest.approx((1 + 2 + 4 + 7 + 8) / 5)


@pytest.mark.parametrize("chunks", [(10, 16, 16), (4, 11, 29), (10, 37, 7)],
                         ids=["square", "band-split", "strips"])
@pytest.mark.parametrize("mode", ["append", "replace"])
def test_chunked_equals_whole_array(s2_stack, chunks, mode):
    """Any chunking gives the layers of the whole array at once."""
    settings = {"normalise": "mean", "normalise_groups": "resolution",
                "indices": True, "context_px": 2, "context_mode": mode}
    whole = enrich.apply(da.from_array(s2_stack, chunks=(10, 37, 29)),
                         S2_BANDS, "sentinel2", settings).compute()
    chunked = enrich.apply(da.from_array(s2_stack, chunks=chunks),
                           S2_BANDS, "sentinel2", settings)
    names = enrich.layer_names(S2_BANDS, "sentinel2", settings)
    assert chunked.shape == (len(names),) + s2_stack.shape[1:]
    np.testing.assert_allclose(chunked.compute(), whole, rtol=1e-6,
                               equal_nan=True)


def test_context_names_and_values():
    """Appended local means are named <layer>_mean<width> and equal the
    window mean of a constant-free ramp."""
    ramp = np.arange(25, dtype=np.float32).reshape(1, 5, 5)
    stack = da.from_array(np.concatenate([ramp, ramp + 1]), chunks=(2, 2, 2))
    settings = {"context_px": 1}
    out = enrich.apply(stack, ["SR_B2", "SR_B3"], "landsat",
                       settings).compute()
    assert enrich.layer_names(["SR_B2", "SR_B3"], "landsat", settings) == [
        "SR_B2", "SR_B3", "SR_B2_mean3", "SR_B3_mean3"]
    assert out[2, 2, 2] == pytest.approx(12.0)
    assert out[3, 0, 0] == pytest.approx((0 + 1 + 5 + 6) / 4 + 1)
